//! What an operator can see and steer: queues, jobs and nodes; pause, resume, retry, cancel.
//! Permission checks belong to the caller (the domain service); this module only keeps the
//! rules of the state machine.

use chrono::{DateTime, Utc};
use entities::{job, job_queue, scheduler_node};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{CancelRequested, JobState};
use crate::platform::db::sql;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub struct QueueOverview {
    pub queue: job_queue::Model,
    /// Live jobs by state, plus DISCARDED (the dead letters still kept).
    pub counts: Vec<(JobState, i64)>,
}

pub async fn queues<C: ConnectionTrait>(db: &C) -> Result<Vec<QueueOverview>, DbErr> {
    let queues = job_queue::Entity::find()
        .order_by_asc(job_queue::Column::Name)
        .all(db)
        .await?;
    let rows = db
        .query_all(sql(
            db.get_database_backend(),
            "SELECT queue, state, COUNT(*) AS n FROM jobs GROUP BY queue, state",
            [],
        ))
        .await?;
    let mut counts: Vec<(String, JobState, i64)> = Vec::new();
    for row in rows {
        let state: String = row.try_get("", "state")?;
        if let Some(state) = JobState::parse(&state) {
            counts.push((row.try_get("", "queue")?, state, row.try_get("", "n")?));
        }
    }
    Ok(queues
        .into_iter()
        .map(|queue| QueueOverview {
            counts: JobState::ALL
                .into_iter()
                .map(|state| {
                    let n = counts
                        .iter()
                        .find(|(q, s, _)| *q == queue.name && *s == state)
                        .map_or(0, |(_, _, n)| *n);
                    (state, n)
                })
                .collect(),
            queue,
        })
        .collect())
}

#[derive(Default)]
pub struct JobFilter {
    pub queue: Option<String>,
    pub state: Option<JobState>,
    pub kind: Option<String>,
}

/// Newest first, keyset-paged on the (time-ordered) id.
pub async fn jobs<C: ConnectionTrait>(
    db: &C,
    filter: &JobFilter,
    before: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<job::Model>, u64), DbErr> {
    let mut condition = Condition::all();
    if let Some(queue) = &filter.queue {
        condition = condition.add(job::Column::Queue.eq(queue.as_str()));
    }
    if let Some(state) = filter.state {
        condition = condition.add(job::Column::State.eq(state.as_str()));
    }
    if let Some(kind) = &filter.kind {
        condition = condition.add(job::Column::Kind.eq(kind.as_str()));
    }
    let total = job::Entity::find()
        .filter(condition.clone())
        .count(db)
        .await?;
    if let Some(before) = before {
        condition = condition.add(job::Column::Id.lt(before));
    }
    let rows = job::Entity::find()
        .filter(condition)
        .order_by_desc(job::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

pub async fn job<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<job::Model, AdminError> {
    job::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AdminError::NotFound("job"))
}

/// Nodes seen within `window`, newest heartbeat first; `live` tells whether each still counts.
pub async fn nodes<C: ConnectionTrait>(
    db: &C,
    live_after: DateTime<Utc>,
) -> Result<Vec<(scheduler_node::Model, bool)>, DbErr> {
    let rows = scheduler_node::Entity::find()
        .order_by_desc(scheduler_node::Column::HeartbeatAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|node| {
            let live = node.stopped_at.is_none() && node.heartbeat_at > live_after;
            (node, live)
        })
        .collect())
}

pub async fn set_paused<C: ConnectionTrait>(
    db: &C,
    queue: &str,
    paused: bool,
) -> Result<job_queue::Model, AdminError> {
    let changed = db
        .execute(sql(
            db.get_database_backend(),
            "UPDATE job_queues SET paused = $1, updated_at = $2 WHERE name = $3",
            [paused.into(), Utc::now().into(), queue.into()],
        ))
        .await?;
    if changed.rows_affected() == 0 {
        return Err(AdminError::NotFound("queue"));
    }
    job_queue::Entity::find_by_id(queue.to_owned())
        .one(db)
        .await?
        .ok_or(AdminError::NotFound("queue"))
}

/// Makes a dead-lettered or cancelled job available again now, with at least one attempt left.
/// Its attempt count is kept: the fencing token only ever grows.
pub async fn retry<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<job::Model, AdminError> {
    let current = job(db, id).await?;
    let changed = db
        .execute(sql(
            db.get_database_backend(),
            "UPDATE jobs SET state = 'AVAILABLE', run_at = $1, updated_at = $1, finished_at = NULL, \
             cancel_requested = FALSE, progress = 0, progress_message = NULL, \
             max_attempts = CASE WHEN max_attempts > attempt THEN max_attempts ELSE attempt + 1 END \
             WHERE id = $2 AND state IN ('DISCARDED', 'CANCELLED')",
            [Utc::now().into(), id.into()],
        ))
        .await
        .map_err(|err| match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => AdminError::Conflict(
                "another live job holds this job's unique key".into(),
            ),
            _ => AdminError::Db(err),
        })?;
    if changed.rows_affected() == 0 {
        return Err(AdminError::Conflict(format!(
            "only DISCARDED or CANCELLED jobs can be retried; this one is {}",
            current.state
        )));
    }
    job(db, id).await
}

pub enum Cancelled {
    /// It was waiting and will never run.
    Now(job::Model),
    /// It is running; its handler has been asked to stop.
    Requested(job::Model),
}

/// Cancels a waiting job outright, or asks the node running it to stop (cooperatively). Publish
/// `CancelRequested` after the caller's transaction commits when this returns `Requested`.
pub async fn cancel<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<Cancelled, AdminError> {
    let now = Utc::now();
    let waiting = db
        .execute(sql(
            db.get_database_backend(),
            "UPDATE jobs SET state = 'CANCELLED', finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND state IN ('SCHEDULED', 'AVAILABLE', 'RETRYABLE')",
            [now.into(), id.into()],
        ))
        .await?;
    if waiting.rows_affected() == 1 {
        return Ok(Cancelled::Now(job(db, id).await?));
    }
    let running = db
        .execute(sql(
            db.get_database_backend(),
            "UPDATE jobs SET cancel_requested = TRUE, updated_at = $1 WHERE id = $2 AND state = 'RUNNING'",
            [now.into(), id.into()],
        ))
        .await?;
    let current = job(db, id).await?;
    if running.rows_affected() == 1 {
        return Ok(Cancelled::Requested(current));
    }
    Err(AdminError::Conflict(format!(
        "the job is already {}",
        current.state
    )))
}

pub fn cancel_signal(id: Uuid) -> CancelRequested {
    CancelRequested { job_id: id }
}
