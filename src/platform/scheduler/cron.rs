//! Cron schedules. Every node ticks every schedule; the primary key of `cron_fires`
//! (schedule, slot) lets exactly one of them fire each slot, so no leader is needed.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use uuid::Uuid;

use super::enqueue::{enqueue, EnqueueError, NewJob};
use super::kind::JobKind;
use crate::platform::db::sql;

/// What to do with slots that passed while no node was ticking (all nodes down, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissedSlots {
    /// Fire the latest missed slot once on recovery.
    FireOnce,
    /// Fire only slots that are due now; missed ones are dropped.
    Skip,
}

#[derive(Clone, Debug)]
pub struct CronSchedule {
    pub name: String,
    pub expression: String,
    pub cron: Cron,
    pub job: NewJob,
    pub missed: MissedSlots,
}

impl CronSchedule {
    pub fn new(
        name: &str,
        expression: &str,
        job: NewJob,
        missed: MissedSlots,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            expression: expression.to_owned(),
            cron: parse_cron(expression)?,
            job,
            missed,
        })
    }

    /// A schedule of a declared kind, named after it.
    pub fn of<K: JobKind>(expression: &str, args: &K, missed: MissedSlots) -> anyhow::Result<Self> {
        Self::new(K::KIND, expression, NewJob::of(args)?, missed)
    }
}

/// Five fields, or six with seconds first.
pub fn parse_cron(expression: &str) -> anyhow::Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expression)
        .map_err(|e| anyhow::anyhow!("invalid cron expression {expression:?}: {e}"))
}

/// The slot to fire now, if any: the latest slot at or before `now` that is later than `last`.
/// `grace` is how late a slot may be and still count as due rather than missed.
pub fn due_slot(
    cron: &Cron,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    missed: MissedSlots,
    grace: Duration,
) -> Option<DateTime<Utc>> {
    // Slots are whole seconds; croner would otherwise hand back `now` itself, fractions and all.
    let now = now.with_nanosecond(0).unwrap_or(now);
    let latest = cron.find_previous_occurrence(&now, true).ok()?;
    if last.is_some_and(|last| latest <= last) {
        return None;
    }
    // Slots still within grace fire oldest first, one per tick: a tick that came late (a busy
    // node, or the one that fired last just died) must not pass over a slot that is still due.
    if let Some(next) = last.and_then(|last| cron.find_next_occurrence(&last, false).ok()) {
        if next <= now && (now - next).to_std().unwrap_or_default() <= grace {
            return Some(next);
        }
    }
    let late = (now - latest).to_std().unwrap_or_default() > grace;
    match (missed, last) {
        // A schedule seen for the first time does not fire its history.
        (_, None) if late => None,
        (MissedSlots::Skip, _) if late => None,
        _ => Some(latest),
    }
}

/// The latest slot of `schedule` that fired, on any node.
pub async fn last_fired<C: ConnectionTrait>(
    db: &C,
    schedule: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let row = db
        .query_one(sql(
            db.get_database_backend(),
            "SELECT slot FROM cron_fires WHERE schedule = $1 ORDER BY slot DESC LIMIT 1",
            [schedule.into()],
        ))
        .await?;
    row.map(|r| r.try_get::<DateTime<Utc>>("", "slot"))
        .transpose()
}

/// Records that `slot` of `schedule` fired; `false` when some node recorded it first. Run it
/// in the transaction that does the slot's work, so the two commit together.
pub async fn claim_slot<C: ConnectionTrait>(
    db: &C,
    schedule: &str,
    slot: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let claimed = db
        .execute(sql(
            db.get_database_backend(),
            "INSERT INTO cron_fires (schedule, slot, fired_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [schedule.into(), slot.into(), Utc::now().into()],
        ))
        .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Claims `slot` of `schedule` and enqueues its job in one transaction. `None` when another
/// node fired it first.
pub async fn fire_slot<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    schedule: &str,
    slot: DateTime<Utc>,
    job: NewJob,
) -> Result<Option<Uuid>, EnqueueError> {
    let txn = db.begin().await?;
    if !claim_slot(&txn, schedule, slot).await? {
        return Ok(None);
    }
    let id = enqueue(&txn, job).await?.id();
    txn.execute(sql(
        txn.get_database_backend(),
        "UPDATE cron_fires SET job_id = $1 WHERE schedule = $2 AND slot = $3",
        [id.into(), schedule.into(), slot.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, m, s)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn the_latest_slot_fires_once() -> anyhow::Result<()> {
        let cron = parse_cron("*/5 * * * *")?;
        let grace = Duration::from_secs(60);
        assert_eq!(
            due_slot(&cron, None, at(10, 5, 3), MissedSlots::FireOnce, grace),
            Some(at(10, 5, 0))
        );
        let every_second = parse_cron("* * * * * *")?;
        let now = at(10, 5, 3) + chrono::Duration::milliseconds(250);
        assert_eq!(
            due_slot(&every_second, None, now, MissedSlots::FireOnce, grace),
            Some(at(10, 5, 3))
        );
        assert_eq!(
            due_slot(
                &every_second,
                Some(at(10, 5, 3)),
                now,
                MissedSlots::FireOnce,
                grace
            ),
            None
        );
        assert_eq!(
            due_slot(
                &cron,
                Some(at(10, 5, 0)),
                at(10, 6, 0),
                MissedSlots::FireOnce,
                grace
            ),
            None
        );
        assert_eq!(
            due_slot(
                &cron,
                Some(at(10, 5, 0)),
                at(10, 10, 1),
                MissedSlots::FireOnce,
                grace
            ),
            Some(at(10, 10, 0))
        );
        Ok(())
    }

    #[test]
    fn slots_within_grace_fire_oldest_first() -> anyhow::Result<()> {
        let every_second = parse_cron("* * * * * *")?;
        let grace = Duration::from_secs(5);
        // The tick came three seconds late: 10:05:04 and :05 are still due, before :06.
        let now = at(10, 5, 6) + chrono::Duration::milliseconds(200);
        let mut last = at(10, 5, 3);
        for expected in [at(10, 5, 4), at(10, 5, 5), at(10, 5, 6)] {
            let slot = due_slot(&every_second, Some(last), now, MissedSlots::Skip, grace);
            assert_eq!(slot, Some(expected));
            last = expected;
        }
        assert_eq!(
            due_slot(&every_second, Some(last), now, MissedSlots::Skip, grace),
            None
        );
        Ok(())
    }

    #[test]
    fn missed_slots_fire_once_or_are_skipped_by_policy() -> anyhow::Result<()> {
        let cron = parse_cron("0 * * * *")?;
        let grace = Duration::from_secs(60);
        // Down from 10:00 to 13:30: three slots passed unseen.
        let last = Some(at(10, 0, 0));
        let now = at(13, 30, 0);
        assert_eq!(
            due_slot(&cron, last, now, MissedSlots::FireOnce, grace),
            Some(at(13, 0, 0))
        );
        assert_eq!(due_slot(&cron, last, now, MissedSlots::Skip, grace), None);
        // A brand-new schedule never fires its past.
        assert_eq!(
            due_slot(&cron, None, now, MissedSlots::FireOnce, grace),
            None
        );
        Ok(())
    }

    #[test]
    fn seconds_are_optional_and_nonsense_is_refused() {
        assert!(parse_cron("*/2 * * * * *").is_ok());
        assert!(parse_cron("not a cron").is_err());
        assert!(parse_cron("61 * * * *").is_err());
    }
}
