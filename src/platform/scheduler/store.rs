//! The SQL of a job's life after enqueue: claiming, heartbeats, completion, failure and rescue.
//! Every write by a worker is conditional on its fencing token — the attempt number, together
//! with the node that holds the lease — so a worker whose lease was rescued changes nothing.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::{JobChange, JobChanges, JobState};
use crate::platform::db::{sql, Db};
use crate::platform::events::{log, NewEvent};

const WAITING: &str = "('SCHEDULED', 'AVAILABLE', 'RETRYABLE')";
/// Errors kept per job; older ones are dropped so a job that fails forever stays small.
const ERROR_HISTORY: usize = 20;

#[derive(Clone, Debug)]
pub struct ClaimedJob {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    pub priority: i32,
    pub attempt: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub errors: serde_json::Value,
    pub cancel_requested: bool,
}

const RETURNED: &str = "id, queue, kind, args, priority, attempt, max_attempts, run_at, errors, \
    cancel_requested";

impl ClaimedJob {
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get("", "id")?,
            queue: row.try_get("", "queue")?,
            kind: row.try_get("", "kind")?,
            args: row.try_get("", "args")?,
            priority: row.try_get("", "priority")?,
            attempt: row.try_get("", "attempt")?,
            max_attempts: row.try_get("", "max_attempts")?,
            run_at: row.try_get("", "run_at")?,
            errors: row.try_get("", "errors")?,
            cancel_requested: row.try_get("", "cancel_requested")?,
        })
    }
}

/// The worker's write was refused: its lease expired and the job was rescued (perhaps already
/// re-claimed), or it was cancelled and finished by an operator.
#[derive(Debug, thiserror::Error)]
#[error("lease lost on job {job_id} (attempt {attempt})")]
pub struct LeaseLost {
    pub job_id: Uuid,
    pub attempt: i32,
}

pub struct Claim<'a> {
    pub queue: &'a str,
    pub node: &'a str,
    pub limit: usize,
    pub lease_until: DateTime<Utc>,
    /// `Some` on `KEY_AFFINITY` queues: only jobs in these buckets (and jobs with no key).
    pub buckets: Option<&'a [i32]>,
}

/// Takes up to `limit` waiting jobs, highest priority first, then oldest `run_at`. On
/// PostgreSQL, `SKIP LOCKED` lets nodes claim side by side without waiting on each other; on
/// SQLite the single connection makes the one statement atomic.
pub async fn claim<C: ConnectionTrait>(db: &C, claim: Claim<'_>) -> Result<Vec<ClaimedJob>, DbErr> {
    if claim.limit == 0 {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let bucket_filter = match claim.buckets {
        Some([]) => "AND key_bucket IS NULL".to_owned(),
        Some(buckets) => {
            let list: Vec<String> = buckets.iter().map(i32::to_string).collect();
            format!(
                "AND (key_bucket IS NULL OR key_bucket IN ({}))",
                list.join(",")
            )
        }
        None => String::new(),
    };
    let now = Utc::now();
    let pick = format!(
        "SELECT id FROM jobs WHERE state IN {WAITING} AND queue = $1 AND run_at <= $2 \
         {bucket_filter} ORDER BY priority DESC, run_at, id LIMIT $3"
    );
    let text = match backend {
        DbBackend::Postgres => format!(
            "WITH next AS ({pick} FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET state = 'RUNNING', attempt = jobs.attempt + 1, lease_owner = $4, \
             lease_expires_at = $5, attempted_at = $2, updated_at = $2 \
             FROM next WHERE jobs.id = next.id RETURNING {}",
            RETURNED
                .split(", ")
                .map(|c| format!("jobs.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!(
            "UPDATE jobs SET state = 'RUNNING', attempt = attempt + 1, lease_owner = $4, \
             lease_expires_at = $5, attempted_at = $2, updated_at = $2 \
             WHERE id IN ({pick}) RETURNING {RETURNED}"
        ),
    };
    let rows = db
        .query_all(sql(
            backend,
            &text,
            [
                claim.queue.into(),
                now.into(),
                (claim.limit as i64).into(),
                claim.node.into(),
                claim.lease_until.into(),
            ],
        ))
        .await?;
    let mut jobs = rows
        .iter()
        .map(ClaimedJob::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    // RETURNING keeps no order; run in the order the claim chose.
    jobs.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_at.cmp(&b.run_at))
            .then(a.id.cmp(&b.id))
    });
    Ok(jobs)
}

/// Jobs running in `queue` on every node, for a global concurrency limit.
pub async fn running_in_queue<C: ConnectionTrait>(db: &C, queue: &str) -> Result<i64, DbErr> {
    let row = db
        .query_one(sql(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM jobs WHERE state = 'RUNNING' AND queue = $1",
            [queue.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    })
}

/// A fenced token: which attempt of which job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    pub job_id: Uuid,
    pub attempt: i32,
}

fn fence_list(fences: &[Fence], first: usize) -> (String, Vec<Value>) {
    let mut values = Vec::with_capacity(fences.len() * 2);
    let mut tuples = Vec::with_capacity(fences.len());
    for (i, fence) in fences.iter().enumerate() {
        let n = first + i * 2;
        tuples.push(format!("(${n}, ${})", n + 1));
        values.push(fence.job_id.into());
        values.push(fence.attempt.into());
    }
    (tuples.join(", "), values)
}

/// Marks jobs completed in one statement; returns the ids whose lease still held (the others
/// were rescued from this node and belong to someone else now).
pub async fn complete_batch<C: ConnectionTrait>(
    db: &C,
    node: &str,
    fences: &[Fence],
) -> Result<Vec<Uuid>, DbErr> {
    if fences.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let (list, mut values) = fence_list(fences, 3);
    let text = format!(
        "UPDATE jobs SET state = 'COMPLETED', progress = 100, finished_at = $1, updated_at = $1, \
         lease_owner = NULL, lease_expires_at = NULL \
         WHERE state = 'RUNNING' AND lease_owner = $2 AND (id, attempt) IN (VALUES {list}) \
         RETURNING id"
    );
    let mut params: Vec<Value> = vec![Utc::now().into(), node.into()];
    params.append(&mut values);
    let rows = db.query_all(sql(backend, &text, params)).await?;
    rows.iter().map(|r| r.try_get::<Uuid>("", "id")).collect()
}

/// One job's completion, refused with `LeaseLost` when the fence no longer holds.
pub async fn complete_fenced<C: ConnectionTrait>(
    db: &C,
    node: &str,
    fence: Fence,
) -> Result<Result<(), LeaseLost>, DbErr> {
    let done = complete_batch(db, node, &[fence]).await?;
    Ok(if done.is_empty() {
        Err(LeaseLost {
            job_id: fence.job_id,
            attempt: fence.attempt,
        })
    } else {
        Ok(())
    })
}

/// What a failed attempt leads to.
pub struct Failure<'a> {
    pub fence: Fence,
    pub node: &'a str,
    pub next: JobState,
    pub retry_at: DateTime<Utc>,
    pub error: &'a str,
    pub history: &'a serde_json::Value,
}

pub async fn fail<C: ConnectionTrait>(
    db: &C,
    failure: Failure<'_>,
) -> Result<Result<(), LeaseLost>, DbErr> {
    let now = Utc::now();
    let mut history: Vec<serde_json::Value> =
        failure.history.as_array().cloned().unwrap_or_default();
    history.push(serde_json::json!({
        "attempt": failure.fence.attempt,
        "at": now,
        "error": failure.error,
    }));
    let excess = history.len().saturating_sub(ERROR_HISTORY);
    history.drain(..excess);
    let finished: Option<DateTime<Utc>> = failure.next.is_finished().then_some(now);
    let result = db
        .execute(sql(
            db.get_database_backend(),
            // A cancellation requested meanwhile wins over a retry.
            "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'CANCELLED' ELSE $1 END, \
             run_at = $2, last_error = $3, errors = $4, \
             finished_at = CASE WHEN cancel_requested THEN $6 ELSE $5 END, updated_at = $6, \
             lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $7 AND attempt = $8 AND lease_owner = $9 AND state = 'RUNNING'",
            [
                failure.next.as_str().into(),
                failure.retry_at.into(),
                failure.error.into(),
                Value::Json(Some(Box::new(serde_json::Value::Array(history)))),
                finished.into(),
                now.into(),
                failure.fence.job_id.into(),
                failure.fence.attempt.into(),
                failure.node.into(),
            ],
        ))
        .await?;
    Ok(if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(LeaseLost {
            job_id: failure.fence.job_id,
            attempt: failure.fence.attempt,
        })
    })
}

/// A running job's progress, 0–100 with a message; fenced like completion.
pub async fn record_progress<C: ConnectionTrait>(
    db: &C,
    node: &str,
    fence: Fence,
    percent: i32,
    message: Option<&str>,
) -> Result<Result<(), LeaseLost>, DbErr> {
    let result = db
        .execute(sql(
            db.get_database_backend(),
            "UPDATE jobs SET progress = $1, progress_message = $2, updated_at = $3 \
             WHERE id = $4 AND attempt = $5 AND lease_owner = $6 AND state = 'RUNNING'",
            [
                percent.clamp(0, 100).into(),
                message
                    .map(|m| m.chars().take(500).collect::<String>())
                    .into(),
                Utc::now().into(),
                fence.job_id.into(),
                fence.attempt.into(),
                node.into(),
            ],
        ))
        .await?;
    Ok(if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(LeaseLost {
            job_id: fence.job_id,
            attempt: fence.attempt,
        })
    })
}

/// A lease this node still holds, after a heartbeat renewed it.
pub struct Held {
    pub fence: Fence,
    pub cancel_requested: bool,
}

/// Extends the leases of `fences` that `node` still holds, in one statement, and reports which
/// it still holds.
pub async fn renew_leases<C: ConnectionTrait>(
    db: &C,
    node: &str,
    fences: &[Fence],
    until: DateTime<Utc>,
) -> Result<Vec<Held>, DbErr> {
    if fences.is_empty() {
        return Ok(Vec::new());
    }
    let (list, mut values) = fence_list(fences, 3);
    let text = format!(
        "UPDATE jobs SET lease_expires_at = $1 WHERE lease_owner = $2 AND state = 'RUNNING' \
         AND (id, attempt) IN (VALUES {list}) RETURNING id, attempt, cancel_requested"
    );
    let mut params: Vec<Value> = vec![until.into(), node.into()];
    params.append(&mut values);
    let rows = db
        .query_all(sql(db.get_database_backend(), &text, params))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Held {
                fence: Fence {
                    job_id: row.try_get("", "id")?,
                    attempt: row.try_get("", "attempt")?,
                },
                cancel_requested: row.try_get("", "cancel_requested")?,
            })
        })
        .collect()
}

/// A job taken back from a lease that expired.
#[derive(Debug)]
pub struct Rescued {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    pub state: JobState,
    pub attempt: i32,
}

/// Returns jobs whose lease expired to the queue (at once: their node is presumed dead), or to
/// the dead letters when out of attempts, or to CANCELLED when cancellation was pending.
pub async fn rescue_expired<C: ConnectionTrait>(db: &C) -> Result<Vec<Rescued>, DbErr> {
    let now = Utc::now();
    let rows = db
        .query_all(sql(
            db.get_database_backend(),
            "UPDATE jobs SET \
               state = CASE WHEN cancel_requested THEN 'CANCELLED' \
                            WHEN attempt >= max_attempts THEN 'DISCARDED' \
                            ELSE 'RETRYABLE' END, \
               finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN $1 \
                                  ELSE NULL END, \
               last_error = 'lease expired on node ' || COALESCE(lease_owner, '?'), \
               run_at = $1, updated_at = $1, lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'RUNNING' AND lease_expires_at < $1 \
             RETURNING id, queue, kind, args, state, attempt",
            [now.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let state: String = row.try_get("", "state")?;
            Ok(Rescued {
                id: row.try_get("", "id")?,
                queue: row.try_get("", "queue")?,
                kind: row.try_get("", "kind")?,
                args: row.try_get("", "args")?,
                state: JobState::parse(&state).unwrap_or(JobState::Retryable),
                attempt: row.try_get("", "attempt")?,
            })
        })
        .collect()
}

/// Gives back jobs this node claimed but never started (shutdown), so they do not wait out a
/// lease. Their attempt is restored: no handler ever ran under it.
pub async fn release_unstarted<C: ConnectionTrait>(
    db: &C,
    node: &str,
    fences: &[Fence],
) -> Result<u64, DbErr> {
    if fences.is_empty() {
        return Ok(0);
    }
    let (list, mut values) = fence_list(fences, 3);
    let text = format!(
        "UPDATE jobs SET state = 'AVAILABLE', attempt = attempt - 1, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = $1 \
         WHERE state = 'RUNNING' AND lease_owner = $2 AND (id, attempt) IN (VALUES {list})"
    );
    let mut params: Vec<Value> = vec![Utc::now().into(), node.into()];
    params.append(&mut values);
    Ok(db
        .execute(sql(db.get_database_backend(), &text, params))
        .await?
        .rows_affected())
}

/// Rows one prune statement deletes at most.
pub const PRUNE_BATCH: u64 = 1000;

/// Deletes finished jobs older than `before`, one bounded batch (`PRUNE_BATCH`).
pub async fn prune_finished<C: ConnectionTrait>(
    db: &C,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(db
        .execute(sql(
            db.get_database_backend(),
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE state IN ('COMPLETED', 'DISCARDED', 'CANCELLED') AND finished_at < $1 LIMIT 1000)",
            [before.into()],
        ))
        .await?
        .rows_affected())
}

/// Logs job changes right after the change they report, not with it: the jobs table is the
/// record, and a claim or completion batch stays one statement. One entry per change (in one
/// INSERT), so that a subscriber resuming after a change's cursor gets every later one.
pub(super) async fn announce(db: &Db, changes: Vec<JobChange>) {
    if changes.is_empty() {
        return;
    }
    let entries: Result<Vec<NewEvent>, _> = changes
        .into_iter()
        .map(|change| NewEvent::of(&JobChanges(vec![change])))
        .collect();
    let appended = match entries {
        Ok(entries) => log::append(&db.conn, entries).await,
        Err(err) => Err(sea_orm::DbErr::Custom(err.to_string())),
    };
    match appended {
        Ok(()) => db.commits().events.notify_one(),
        Err(err) => tracing::warn!(error = %err, "logging job changes failed"),
    }
}
