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
    if first == 0 {
        return Ok(EventPage {
            entries: Vec::new(),
            end: Some(after),
            has_next: !log::read_after(db, after, 1).await?.entries.is_empty(),
        });
    }
    // Topics are picked out here, not in SQL: the log's index is in cursor order, and a rare
    // topic filtered in the database would have it walk the whole log for one page.
    let wanted = |entry: &Envelope| {
        topics.is_empty() || Topic::parse(&entry.topic).is_some_and(|t| topics.contains(&t))
    };
    let mut entries = Vec::new();
    let mut cursor = after;
    let mut scanned = 0;
    let mut end = None;
    loop {
        let batch = log::read_after(db, cursor, SCAN_BATCH).await?;
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
            if wanted(&entry) && visible_to(&entry, me) {
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
