//! The relay: one per cluster publishes committed log entries to the bus, in cursor order.
//!
//! On PostgreSQL the relay that holds a session advisory lock leads; the others stand by and
//! take over when the leader's connection ends (its node died or stopped). Delivery is at least
//! once: a new leader resumes from the last cursor the old one recorded, so a few entries may
//! go out twice, and subscribers drop cursors they have seen. Embedded, or on PostgreSQL
//! without Redis (a bus of one node), every node's relay leads for its own subscribers.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::Connection;

use super::bus::Message;
use super::{log, EventBus};
use crate::platform::db::Db;

/// Entries published per read of the log.
const BATCH: u64 = 500;
/// The key of the advisory lock the leading relay holds (per database).
const RELAY_LOCK: i64 = 0x1e7e_e7e1;
/// How often a standby relay tries to lead, and a leader checks its lock and polls.
const POLL: Duration = Duration::from_millis(500);
/// How often, at most, a busy leader records how far it has published.
const RECORD_EVERY: Duration = Duration::from_millis(200);
/// How soon a leader looks again when an open transaction held entries back.
const HELD_BACK_RETRY: Duration = Duration::from_millis(2);

/// Runs the relay until dropped.
pub struct Relay {
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub fn start(db: Db, bus: Arc<dyn EventBus>) -> Self {
        Self {
            task: tokio::spawn(run(db, bus)),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(db: Db, bus: Arc<dyn EventBus>) {
    loop {
        let outcome = match db.postgres_pool().cloned() {
            Some(pool) => lead_on_postgres(&db, bus.as_ref(), &pool).await,
            None => lead(&db, bus.as_ref(), None, None).await,
        };
        if let Err(err) = outcome {
            tracing::warn!(error = %err, "event relay stopped leading; retrying");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn lead_on_postgres(db: &Db, bus: &dyn EventBus, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    // A bus of this node alone (no Redis): every node relays the whole log to its own
    // subscribers, so none waits on a leader it cannot hear.
    if !bus.spans_nodes() {
        let mut listener = listen(pool).await?;
        return lead(db, bus, None, Some(&mut listener)).await;
    }
    // A connection of its own: the lock lives as long as it does, and ends with the node.
    let mut lock = pool.acquire().await?.detach();
    loop {
        let leading: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut lock)
            .await?;
        if leading {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::info!("this node relays the event log");
    // Listening only once leading: a standby's wake-ups would pile up unread.
    let mut listener = listen(pool).await?;
    let outcome = lead(db, bus, Some(&mut lock), Some(&mut listener)).await;
    let _ = lock.close().await;
    outcome
}

async fn listen(pool: &sqlx::PgPool) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(log::WAKE_CHANNEL).await?;
    Ok(listener)
}

/// Publishes from the recorded cursor on, then whenever entries commit, until an error.
async fn lead(
    db: &Db,
    bus: &dyn EventBus,
    mut lock: Option<&mut sqlx::PgConnection>,
    mut listener: Option<&mut PgListener>,
) -> anyhow::Result<()> {
    let conn = db.uncounted();
    let mut last = log::relayed_through(&conn).await?;
    let mut recorded = last;
    let mut recorded_at = std::time::Instant::now();
    let mut held_back_retry = HELD_BACK_RETRY;
    let mut pinged_at = std::time::Instant::now();
    loop {
        let batch = log::read_after(&conn, last, BATCH).await?;
        let full = batch.entries.len() as u64 == BATCH;
        let progressed = !batch.entries.is_empty();
        for mut entry in batch.entries {
            entry.prev = Some(last);
            let cursor = entry.cursor;
            publish(bus, Arc::new(entry)).await;
            last = cursor;
        }
        // Recorded now and then, not per batch: a successor resumes from here and re-sends at
        // most that much, which subscribers drop by cursor.
        let going_idle = !full && !batch.held_back;
        if last != recorded && (going_idle || recorded_at.elapsed() >= RECORD_EVERY) {
            log::set_relayed_through(&conn, last).await?;
            (recorded, recorded_at) = (last, std::time::Instant::now());
        }
        if full {
            continue;
        }
        // Held back: an older transaction is still open. Its end is announced only if it logged
        // events, so look again at the next commit or shortly, whichever comes first; sooner
        // while entries keep coming, later while one long transaction holds everything back.
        held_back_retry = if progressed {
            HELD_BACK_RETRY
        } else {
            (held_back_retry * 2).min(POLL)
        };
        let idle = if batch.held_back {
            held_back_retry
        } else {
            POLL
        };
        // The lock is checked on a clock, busy or not: a leader that lost it must notice.
        if let Some(lock) = lock.as_deref_mut() {
            if pinged_at.elapsed() >= POLL {
                lock.ping().await?;
                pinged_at = std::time::Instant::now();
            }
        }
        let woken = async {
            match listener.as_deref_mut() {
                Some(listener) => listener.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = woken => {
                received?;
                // One read covers every commit announced so far: drop the wake-ups already
                // queued, or a busy node would read once per commit and fall behind.
                if let Some(listener) = listener.as_deref_mut() {
                    while listener.next_buffered().is_some() {}
                }
            }
            () = db.commits().events.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
}

/// Retries until the bus takes the entry: the order of what reaches other nodes must hold.
async fn publish(bus: &dyn EventBus, entry: Arc<super::Envelope>) {
    let mut backoff = Duration::from_millis(50);
    while let Err(err) = bus.publish(Message::Event(entry.clone())).await {
        tracing::warn!(error = %err, cursor = %entry.cursor, "publishing an event failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
