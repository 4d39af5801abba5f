//! Paging the log for a viewer.

use std::sync::Arc;

use sea_orm::ConnectionTrait;

use super::model::{visible_to, Topic};
use crate::auth::Viewer;
use crate::error::AppResult;
use crate::platform::events::{log, Cursor, Envelope};

/// Entries read per query of the log while filling a page.
const SCAN_BATCH: u64 = 200;
/// Entries one page may look at: a viewer who can see little of a busy log gets a short (even
/// empty) page with `has_next` and a cursor to go on from, never an unbounded scan.
const MAX_SCANNED: usize = 2_000;

pub struct EventPage {
    pub entries: Vec<Arc<Envelope>>,
    /// Where the next page starts: the last entry looked at, seen or not.
    pub end: Option<Cursor>,
    pub has_next: bool,
}

/// Up to `first` entries after `after` (from the oldest retained when `None`) that the viewer
/// may see, of `topics` (all when empty).
pub async fn page<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    after: Option<Cursor>,
    first: usize,
    topics: &[Topic],
) -> AppResult<EventPage> {
    let me = viewer.user()?;
    if let Some(after) = after {
        crate::platform::events::follow::check_retained(db, after).await?;
    }
    let after = after.unwrap_or(Cursor::START);
    let names: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
    let topic_filter = (!names.is_empty()).then_some(names.as_slice());
    let mut entries = Vec::new();
    let mut cursor = after;
    let mut scanned = 0;
    let mut end = None;
    loop {
        let batch = log::read_after(db, cursor, SCAN_BATCH, topic_filter).await?;
        let exhausted = (batch.entries.len() as u64) < SCAN_BATCH;
        for entry in batch.entries {
            if entries.len() == first || scanned == MAX_SCANNED {
                return Ok(EventPage {
                    entries,
                    end,
                    has_next: true,
                });
            }
            scanned += 1;
            cursor = entry.cursor;
            end = Some(entry.cursor);
            if visible_to(&entry, me) {
                entries.push(Arc::new(entry));
            }
        }
        if exhausted {
            return Ok(EventPage {
                entries,
                end,
                has_next: false,
            });
        }
    }
}
