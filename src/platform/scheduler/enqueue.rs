//! Putting jobs in: inside the caller's transaction, so a job exists if and only if its cause
//! committed.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};
use uuid::Uuid;

use super::affinity::bucket_of;
use super::kind::JobKind;
use super::{JobState, WAKE_CHANNEL};
use crate::platform::db::sql;

/// Arguments are a job's instructions, not its data: large payloads belong in their own rows.
pub const MAX_ARGS_BYTES: usize = 64 * 1024;
const MAX_NAME_LEN: usize = 128;
const MAX_KEY_LEN: usize = 256;
/// Rows per multi-row INSERT: 14 parameters each stays under both backends' limits.
const INSERT_CHUNK: usize = 1000;

#[derive(Clone, Debug)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    /// Higher runs first within the queue.
    pub priority: i32,
    /// Not before this time; `None` means now.
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: i32,
    /// While a job with this key is live (not finished), another enqueue with it is a no-op.
    pub unique_key: Option<String>,
    /// For `KEY_AFFINITY` queues: jobs with the same key run on the same node.
    pub affinity_key: Option<String>,
}

impl NewJob {
    /// A job of a declared kind: its queue and attempts come from the kind.
    pub fn of<K: JobKind>(args: &K) -> Result<Self, EnqueueError> {
        let args = serde_json::to_value(args)?;
        Ok(Self::new(K::QUEUE, K::KIND, args).max_attempts(K::MAX_ATTEMPTS))
    }

    /// A job of any kind, named by hand: for operators' enqueues (see `KindSpec::job`), tests
    /// and benchmarks.
    pub fn new(queue: &str, kind: &str, args: serde_json::Value) -> Self {
        Self {
            queue: queue.to_owned(),
            kind: kind.to_owned(),
            args,
            priority: 0,
            run_at: None,
            max_attempts: 5,
            unique_key: None,
            affinity_key: None,
        }
    }

    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts;
        self
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn affinity(mut self, key: impl Into<String>) -> Self {
        self.affinity_key = Some(key.into());
        self
    }

    fn check(&self) -> Result<(), EnqueueError> {
        let size = self.args.to_string().len();
        if size > MAX_ARGS_BYTES {
            return Err(EnqueueError::ArgsTooLarge(size));
        }
        if self.queue.is_empty() || self.queue.len() > 64 {
            return Err(EnqueueError::Invalid(
                "queue name must be 1 to 64 characters",
            ));
        }
        if self.kind.is_empty() || self.kind.len() > MAX_NAME_LEN {
            return Err(EnqueueError::Invalid("kind must be 1 to 128 characters"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(EnqueueError::Invalid("max attempts must be 1 to 100"));
        }
        if !(-100..=100).contains(&self.priority) {
            return Err(EnqueueError::Invalid("priority must be -100 to 100"));
        }
        for key in [&self.unique_key, &self.affinity_key].into_iter().flatten() {
            if key.is_empty() || key.len() > MAX_KEY_LEN {
                return Err(EnqueueError::Invalid("keys must be 1 to 256 characters"));
            }
        }
        Ok(())
    }

    fn values(&self, id: Uuid, now: DateTime<Utc>) -> [Value; 14] {
        let run_at = self.run_at.unwrap_or(now).max(now);
        let state = if run_at > now {
            JobState::Scheduled
        } else {
            JobState::Available
        };
        [
            id.into(),
            self.queue.clone().into(),
            self.kind.clone().into(),
            Value::Json(Some(Box::new(self.args.clone()))),
            self.priority.into(),
            state.as_str().into(),
            self.max_attempts.into(),
            run_at.into(),
            self.affinity_key.clone().into(),
            self.affinity_key.as_deref().map(bucket_of).into(),
            self.unique_key.clone().into(),
            Value::Json(Some(Box::new(serde_json::json!([])))),
            now.into(),
            now.into(),
        ]
    }
}

const COLUMNS: &str =
    "id, queue, kind, args, priority, state, max_attempts, run_at, affinity_key, \
    key_bucket, unique_key, errors, created_at, updated_at, attempt, progress, cancel_requested";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Created(Uuid),
    /// A live job already holds the unique key; this is its id.
    Duplicate(Uuid),
}

impl Enqueued {
    pub fn id(self) -> Uuid {
        match self {
            Self::Created(id) | Self::Duplicate(id) => id,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("job arguments are {0} bytes; the limit is {MAX_ARGS_BYTES}")]
    ArgsTooLarge(usize),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("job arguments do not serialize: {0}")]
    Args(#[from] serde_json::Error),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn placeholders(row: usize) -> String {
    let base = row * 14;
    let numbered: Vec<String> = (1..=14).map(|i| format!("${}", base + i)).collect();
    format!("({}, 0, 0, FALSE)", numbered.join(", "))
}

/// On PostgreSQL, queues a wake-up that is delivered only if the transaction commits.
async fn wake<C: ConnectionTrait>(db: &C, queue: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute(sql(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [WAKE_CHANNEL.into(), queue.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Adds one job through `db`, which may be (and usually should be) the caller's transaction.
pub async fn enqueue<C: ConnectionTrait>(db: &C, job: NewJob) -> Result<Enqueued, EnqueueError> {
    job.check()?;
    let backend = db.get_database_backend();
    let id = Uuid::now_v7();
    let insert = format!(
        "INSERT INTO jobs ({COLUMNS}) VALUES {} ON CONFLICT DO NOTHING",
        placeholders(0)
    );
    // Twice at most: a conflicting job may finish between our insert and our lookup.
    for _ in 0..2 {
        let inserted = db
            .execute(sql(backend, &insert, job.values(id, Utc::now())))
            .await?;
        if inserted.rows_affected() == 1 {
            wake(db, &job.queue).await?;
            return Ok(Enqueued::Created(id));
        }
        let Some(key) = &job.unique_key else {
            return Err(EnqueueError::Db(DbErr::Custom(
                "job insert was ignored without a unique key".into(),
            )));
        };
        let existing = db
            .query_one(sql(
                backend,
                "SELECT id FROM jobs WHERE unique_key = $1 \
                 AND state IN ('SCHEDULED', 'AVAILABLE', 'RUNNING', 'RETRYABLE')",
                [key.clone().into()],
            ))
            .await?;
        if let Some(row) = existing {
            return Ok(Enqueued::Duplicate(row.try_get::<Uuid>("", "id")?));
        }
    }
    Err(EnqueueError::Db(DbErr::Custom(
        "unique job key kept conflicting".into(),
    )))
}

/// Adds one job inside a unit of work, whose commit wakes this node's workers.
pub async fn enqueue_in(
    work: &crate::platform::work::Work,
    job: NewJob,
) -> Result<Enqueued, EnqueueError> {
    let enqueued = enqueue(work, job).await?;
    work.jobs_enqueued();
    Ok(enqueued)
}

/// Adds many jobs in multi-row inserts; jobs whose unique key is taken are skipped. Returns how
/// many were added.
pub async fn enqueue_many<C: ConnectionTrait>(
    db: &C,
    jobs: &[NewJob],
) -> Result<u64, EnqueueError> {
    // All or nothing: a bad job anywhere refuses the batch before a row is written.
    for job in jobs {
        job.check()?;
    }
    let backend = db.get_database_backend();
    let mut added = 0;
    let mut queues = std::collections::BTreeSet::new();
    for chunk in jobs.chunks(INSERT_CHUNK) {
        let now = Utc::now();
        let mut values = Vec::with_capacity(chunk.len() * 14);
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, job) in chunk.iter().enumerate() {
            values.extend(job.values(Uuid::now_v7(), now));
            rows.push(placeholders(i));
            queues.insert(job.queue.as_str());
        }
        let insert = format!(
            "INSERT INTO jobs ({COLUMNS}) VALUES {} ON CONFLICT DO NOTHING",
            rows.join(", ")
        );
        added += db
            .execute(sql(backend, &insert, values))
            .await?
            .rows_affected();
    }
    for queue in queues {
        wake(db, queue).await?;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_or_malformed_jobs_are_refused_before_the_database() {
        let big = serde_json::json!({ "blob": "x".repeat(MAX_ARGS_BYTES) });
        assert!(matches!(
            NewJob::new("q", "k", big).check(),
            Err(EnqueueError::ArgsTooLarge(_))
        ));
        assert!(NewJob::new("", "k", serde_json::json!({})).check().is_err());
        assert!(NewJob::new("q", "k", serde_json::json!({}))
            .max_attempts(0)
            .check()
            .is_err());
        assert!(NewJob::new("q", "k", serde_json::json!({}))
            .priority(1000)
            .check()
            .is_err());
        assert!(NewJob::new("q", "k", serde_json::json!({})).check().is_ok());
    }

    #[test]
    fn placeholders_number_rows_after_each_other() {
        assert!(placeholders(1).starts_with("($15, $16"));
        assert!(placeholders(0).ends_with("$14, 0, 0, FALSE)"));
    }
}
