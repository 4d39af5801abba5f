//! The event table: appending inside a unit of work, and reading in cursor order.
//!
//! **Why cursors never skip a late commit.** On PostgreSQL a sequence hands out positions in
//! the order transactions *ask*, not the order they *commit*: a reader that saw position 11
//! could later find 10 committed behind it. So every entry also records its transaction id
//! (`pg_current_xact_id()`), cursors order by `(tx_id, position)`, and a reader only takes
//! entries whose transaction is older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`, the *horizon*). Every transaction below the
//! horizon has ended, so nothing can still commit there; every transaction that can still
//! commit has an id at or above it, so its entries sort after everything already read. The
//! cost is latency: a long transaction holds readers back until it ends, never out of order.
//! SQLite has one writer, so commit order is `position` order and `tx_id` stays 0.

use super::{Cursor, Envelope, NewEvent};
use crate::platform::db::sql;
use entities::event;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryTrait, Set};

/// The PostgreSQL channel that wakes the relay when entries commit.
pub const WAKE_CHANNEL: &str = "interlink_events";
/// Rows per multi-row INSERT: 11 parameters each stays under both backends' limits.
const INSERT_CHUNK: usize = 500;
const COLUMNS: &str =
    "position, tx_id, id, topic, kind, subject_kind, subject_id, actor_id, audience, payload, at";

/// Appends `events` through `db`, which must be the unit of work's transaction. On PostgreSQL
/// the same statement queues a wake-up for the relay, delivered only if the transaction commits.
pub async fn append<C: ConnectionTrait>(db: &C, events: Vec<NewEvent>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let rows: Vec<event::ActiveModel> = events
            .by_ref()
            .take(INSERT_CHUNK)
            .map(|e| event::ActiveModel {
                id: Set(e.id),
                topic: Set(e.topic.to_owned()),
                kind: Set(e.head.kind),
                subject_kind: Set(e.head.subject_kind.to_owned()),
                subject_id: Set(e.head.subject_id),
                actor_id: Set(e.head.actor_id),
                audience: Set(e.head.audience),
                payload: Set(e.payload),
                at: Set(e.at),
                ..Default::default()
            })
            .collect();
        let mut statement = event::Entity::insert_many(rows).build(backend);
        if backend == DbBackend::Postgres {
            statement.sql = format!(
                "WITH appended AS ({} RETURNING position) SELECT pg_notify('{WAKE_CHANNEL}', '')",
                statement.sql
            );
        }
        db.execute(statement).await?;
    }
    Ok(())
}

/// Entries after a cursor, as far as they can be read without skipping a late commit.
pub struct Batch {
    pub entries: Vec<Envelope>,
    /// Some committed entries were left out because an older transaction is still running;
    /// reading again shortly will get them.
    pub held_back: bool,
}

/// Up to `limit` entries after `after`, in cursor order. (Readers filter topics themselves: the
/// index is in cursor order, so a filter here could walk the whole log for a rare topic.)
pub async fn read_after<C: ConnectionTrait>(
    db: &C,
    after: Cursor,
    limit: u64,
) -> Result<Batch, DbErr> {
    let backend = db.get_database_backend();
    let values: Vec<sea_orm::Value> = vec![
        after.tx.into(),
        after.position.into(),
        (limit as i64).into(),
    ];
    let horizon = match backend {
        DbBackend::Postgres => ", pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon",
        _ => "",
    };
    let text = format!(
        "SELECT {COLUMNS}{horizon} FROM events WHERE (tx_id, position) > ($1, $2) \
         ORDER BY tx_id, position LIMIT $3"
    );
    let rows = db.query_all(sql(backend, &text, values)).await?;
    let mut entries = Vec::with_capacity(rows.len());
    let mut held_back = false;
    for row in rows {
        let model = event::Model::from_query_result(&row, "")?;
        if backend == DbBackend::Postgres {
            let horizon: i64 = row.try_get("", "horizon")?;
            if model.tx_id >= horizon {
                held_back = true;
                break;
            }
        }
        entries.push(Envelope::from_row(model));
    }
    Ok(Batch { entries, held_back })
}

/// Which transactions had ended at one moment, as PostgreSQL's snapshot says
/// (`xmin:xmax:xip,…`): those below `xmin`, and those below `xmax` not in `running`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    xmin: i64,
    xmax: i64,
    running: Vec<i64>,
}

impl Snapshot {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let running = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?,
        };
        Some(Self {
            xmin,
            xmax,
            running,
        })
    }

    /// Whether transaction `tx` had already ended (so its entries were in the log) then.
    pub fn had_ended(&self, tx: i64) -> bool {
        tx < self.xmin || (tx < self.xmax && !self.running.contains(&tx))
    }
}

/// "Now" in the log, for a subscriber that wants only what commits from here on: the newest
/// entry readable now, and (PostgreSQL) which transactions had ended. Entries past the cursor
/// but of transactions that had already ended were committed before now and are not news.
pub async fn now<C: ConnectionTrait>(db: &C) -> Result<(Cursor, Option<Snapshot>), DbErr> {
    let head = head(db).await?;
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok((head, None));
    }
    let row = db
        .query_one(sql(
            DbBackend::Postgres,
            "SELECT pg_current_snapshot()::text AS snapshot",
            [],
        ))
        .await?;
    let snapshot = match row {
        Some(row) => Snapshot::parse(&row.try_get::<String>("", "snapshot")?),
        None => None,
    };
    Ok((head, snapshot))
}

/// The newest entry a reader can see now (everything before it has been read or never will be).
pub async fn head<C: ConnectionTrait>(db: &C) -> Result<Cursor, DbErr> {
    let backend = db.get_database_backend();
    let text = match backend {
        DbBackend::Postgres => {
            "SELECT tx_id, position FROM events \
             WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY tx_id DESC, position DESC LIMIT 1"
        }
        _ => "SELECT tx_id, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1",
    };
    let row = db.query_one(sql(backend, text, [])).await?;
    Ok(match row {
        Some(row) => Cursor::new(row.try_get("", "tx_id")?, row.try_get("", "position")?),
        None => Cursor::START,
    })
}

/// The cursor up to which entries were pruned: a reader resuming from an older one has lost
/// events and must be told so.
pub async fn pruned_through<C: ConnectionTrait>(db: &C) -> Result<Cursor, DbErr> {
    let state = entities::event_log_state::Entity::find_by_id(1i16)
        .one(db)
        .await?;
    Ok(state.map_or(Cursor::START, |s| {
        Cursor::new(s.pruned_tx, s.pruned_position)
    }))
}

/// How far the relay has published.
pub async fn relayed_through<C: ConnectionTrait>(db: &C) -> Result<Cursor, DbErr> {
    let state = entities::event_log_state::Entity::find_by_id(1i16)
        .one(db)
        .await?;
    Ok(state.map_or(Cursor::START, |s| {
        Cursor::new(s.relayed_tx, s.relayed_position)
    }))
}

pub async fn set_relayed_through<C: ConnectionTrait>(db: &C, cursor: Cursor) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute(sql(
        backend,
        "UPDATE event_log_state SET relayed_tx = $1, relayed_position = $2 \
         WHERE id = 1 AND (relayed_tx, relayed_position) < ($1, $2)",
        [cursor.tx.into(), cursor.position.into()],
    ))
    .await?;
    Ok(())
}

/// Deletes entries older than `before`, at most `batch` of them, and moves the pruned mark
/// to the newest one deleted. Returns how many went.
pub async fn prune<C: ConnectionTrait>(
    db: &C,
    before: chrono::DateTime<chrono::Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let newest = db
        .query_one(sql(
            backend,
            "SELECT tx_id, position FROM (SELECT tx_id, position FROM events WHERE at < $1 \
             ORDER BY tx_id, position LIMIT $2) oldest ORDER BY tx_id DESC, position DESC LIMIT 1",
            [before.into(), (batch as i64).into()],
        ))
        .await?;
    let Some(newest) = newest else {
        return Ok(0);
    };
    // Never past what the relay has published: an entry it has not sent yet (held back, or the
    // relay down longer than the retention) must still reach live subscribers.
    let newest = Cursor::new(
        newest.try_get("", "tx_id")?,
        newest.try_get("", "position")?,
    )
    .min(relayed_through(db).await?);
    if newest == Cursor::START {
        return Ok(0);
    }
    // The mark moves first, in the same transaction: a reader never finds entries missing
    // without also finding the mark that says so.
    db.execute(sql(
        backend,
        "UPDATE event_log_state SET pruned_tx = $1, pruned_position = $2 \
         WHERE id = 1 AND (pruned_tx, pruned_position) < ($1, $2)",
        [newest.tx.into(), newest.position.into()],
    ))
    .await?;
    let deleted = db
        .execute(sql(
            backend,
            "DELETE FROM events WHERE (tx_id, position) <= ($1, $2)",
            [newest.tx.into(), newest.position.into()],
        ))
        .await?;
    Ok(deleted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_tells_ended_transactions_from_running_and_future_ones() {
        let snapshot = Snapshot::parse("100:105:101,103").expect("parses");
        assert!(snapshot.had_ended(99));
        assert!(snapshot.had_ended(100));
        assert!(!snapshot.had_ended(101));
        assert!(snapshot.had_ended(102));
        assert!(!snapshot.had_ended(103));
        assert!(!snapshot.had_ended(105));
        assert_eq!(
            Snapshot::parse("7:7:"),
            Some(Snapshot {
                xmin: 7,
                xmax: 7,
                running: vec![]
            })
        );
        assert_eq!(Snapshot::parse("garbage"), None);
    }
}
