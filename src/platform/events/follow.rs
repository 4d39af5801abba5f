//! A subscriber's view of the log: history after a cursor, then live entries, in cursor order,
//! each once.
//!
//! The bus is subscribed to before the log is read, so nothing published during the replay is
//! lost; live entries at or before the last cursor delivered are dropped. Each live entry
//! names the one the relay published before it: when that is newer than what this subscriber
//! has seen (Redis dropped a message, or this subscriber fell behind its buffer), the gap is
//! read from the log instead of being reported as lost; so is everything after the last entry
//! seen when the node's Redis subscription comes back after a loss. Memory stays bounded by the bus buffer
//! and one page of the log.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::broadcast::{self, error::RecvError};

use super::bus::Message;
use super::{log, Cursor, Envelope, EventBus};

const PAGE: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The entries right after the cursor were pruned: resuming from it would hide a gap.
    #[error("cursor {0} is older than the event log's retention")]
    Expired(Cursor),
    #[error(transparent)]
    Db(#[from] DbErr),
}

struct State {
    db: DatabaseConnection,
    live: broadcast::Receiver<Arc<Message>>,
    seen: Cursor,
    /// For a subscriber that asked for no history: which transactions had committed when it
    /// started. Their entries past `seen` (held back then by an older open transaction) are
    /// not news, and are skipped.
    started: Option<log::Snapshot>,
    ready: VecDeque<Arc<Envelope>>,
    /// Reading the log: up to this cursor, or (`None`) as far as it goes.
    catching_up: Option<Option<Cursor>>,
}

/// Entries after `after`, then live ones; with no cursor, only what commits from now on.
pub async fn follow(
    db: &DatabaseConnection,
    bus: &dyn EventBus,
    after: Option<Cursor>,
) -> Result<impl Stream<Item = Arc<Envelope>> + Send + 'static, FollowError> {
    let live = bus.subscribe();
    let (seen, started, catching_up) = match after {
        Some(after) => {
            check_retained(db, after).await?;
            (after, None, Some(None))
        }
        None => {
            let (head, started) = log::now(db).await?;
            (head, started, None)
        }
    };
    let state = State {
        db: db.clone(),
        live,
        seen,
        started,
        ready: VecDeque::new(),
        catching_up,
    };
    Ok(futures_util::stream::unfold(state, next))
}

/// Refuses a cursor whose successors were pruned.
pub async fn check_retained<C: sea_orm::ConnectionTrait>(
    db: &C,
    after: Cursor,
) -> Result<(), FollowError> {
    if after < log::pruned_through(db).await? {
        return Err(FollowError::Expired(after));
    }
    Ok(())
}

impl State {
    fn is_old_news(&self, entry: &Envelope) -> bool {
        self.started
            .as_ref()
            .is_some_and(|started| started.had_ended(entry.cursor.tx))
    }
}

async fn next(mut state: State) -> Option<(Arc<Envelope>, State)> {
    loop {
        if let Some(entry) = state.ready.pop_front() {
            if state.is_old_news(&entry) {
                continue;
            }
            return Some((entry, state));
        }
        if let Some(until) = state.catching_up {
            catch_up(&mut state, until).await;
            continue;
        }
        match state.live.recv().await {
            Ok(message) => {
                let entry = match message.as_ref() {
                    Message::Event(entry) => entry,
                    Message::Reattached => {
                        state.catching_up = Some(None);
                        continue;
                    }
                    Message::Signal(_) => continue,
                };
                if entry.cursor <= state.seen {
                    continue;
                }
                if entry.prev.is_some_and(|prev| prev > state.seen) {
                    state.catching_up = Some(Some(entry.cursor));
                    continue;
                }
                state.seen = entry.cursor;
                if state.is_old_news(entry) {
                    continue;
                }
                return Some((entry.clone(), state));
            }
            Err(RecvError::Lagged(_)) => state.catching_up = Some(None),
            Err(RecvError::Closed) => return None,
        }
    }
}

/// Reads one page of the log after what was seen; stops catching up at `until` or at the end.
async fn catch_up(state: &mut State, until: Option<Cursor>) {
    match log::read_after(&state.db, state.seen, PAGE).await {
        Ok(batch) => {
            let read = batch.entries.len() as u64;
            let mut reached = false;
            for entry in batch.entries {
                state.seen = entry.cursor;
                reached = until.is_some_and(|until| entry.cursor >= until);
                state.ready.push_back(Arc::new(entry));
                if reached {
                    break;
                }
            }
            // Whatever the log cannot show yet reaches us live, after what we have read.
            if reached || read < PAGE {
                state.catching_up = None;
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "reading the event log for a subscriber failed");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
