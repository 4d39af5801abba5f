//! The operator's scheduler controls: every call needs `scheduler.manage` (or admin).

use chrono::Utc;
use entities::{job, job_queue, scheduler_node};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::model::OperatorJob;
use crate::auth::{Permission, Viewer};
use crate::error::{AppError, AppResult};
use crate::platform::events::{publish, EventBus};
use crate::platform::scheduler::admin::{self, AdminError, Cancelled, JobFilter, QueueOverview};
use crate::platform::scheduler::{
    enqueue, EnqueueError, JobChange, JobChanges, JobState, NewJob, NodeSettings, QueueChanged,
    Registry,
};

fn require(viewer: &Viewer) -> AppResult<()> {
    viewer.user()?.require_global(Permission::SchedulerManage)
}

impl From<AdminError> for AppError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::NotFound(what) => AppError::not_found(what),
            AdminError::Conflict(message) => AppError::Conflict(message),
            AdminError::Db(db) => AppError::from(db),
        }
    }
}

impl From<EnqueueError> for AppError {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Db(db) => AppError::from(db),
            invalid => AppError::bad_field("args", invalid.to_string()),
        }
    }
}

pub async fn queues<C: ConnectionTrait>(db: &C, viewer: &Viewer) -> AppResult<Vec<QueueOverview>> {
    require(viewer)?;
    Ok(admin::queues(db).await?)
}

pub async fn jobs<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: &JobFilter,
    before: Option<Uuid>,
    first: u64,
) -> AppResult<(Vec<job::Model>, u64)> {
    require(viewer)?;
    Ok(admin::jobs(db, filter, before, first).await?)
}

pub async fn job<C: ConnectionTrait>(db: &C, viewer: &Viewer, id: Uuid) -> AppResult<job::Model> {
    require(viewer)?;
    Ok(admin::job(db, id).await?)
}

/// Every node seen recently; a node is live while its heartbeat is younger than one lease.
pub async fn nodes<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    settings: &NodeSettings,
) -> AppResult<Vec<(scheduler_node::Model, bool)>> {
    require(viewer)?;
    Ok(admin::nodes(db, Utc::now() - settings.lease).await?)
}

/// Pauses or resumes a queue on every node: the flag is in the database, and the other nodes
/// hear of the change over the bus at once (or at their next refresh, within half a second).
pub async fn set_paused<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    queue: &str,
    paused: bool,
) -> AppResult<job_queue::Model> {
    require(viewer)?;
    let row = admin::set_paused(db, queue, paused).await?;
    let change = QueueChanged {
        queue: row.name.clone(),
    };
    if let Err(err) = publish(bus, &change).await {
        tracing::warn!(error = ?err, "publishing a queue change failed");
    }
    Ok(row)
}

fn change_of(row: &job::Model, message: &str) -> JobChange {
    JobChange {
        job_id: row.id,
        queue: row.queue.clone(),
        kind: row.kind.clone(),
        state: JobState::parse(&row.state).unwrap_or(JobState::Available),
        attempt: row.attempt,
        progress: row.progress,
        message: Some(message.to_owned()),
        node: None,
    }
}

async fn announce(bus: &dyn EventBus, row: &job::Model, message: &str) {
    if let Err(err) = publish(bus, &JobChanges(vec![change_of(row, message)])).await {
        tracing::warn!(error = ?err, "publishing a job change failed");
    }
}

pub async fn retry<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    id: Uuid,
) -> AppResult<job::Model> {
    require(viewer)?;
    let row = admin::retry(db, id).await?;
    announce(bus, &row, "retried by an operator").await;
    Ok(row)
}

pub async fn cancel<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    registry: &Registry,
    viewer: &Viewer,
    id: Uuid,
) -> AppResult<job::Model> {
    require(viewer)?;
    match admin::cancel(db, id).await? {
        Cancelled::Now(row) => {
            registry
                .notify_given_up(&row.kind, &row.args, "cancelled by an operator")
                .await;
            announce(bus, &row, "cancelled by an operator").await;
            Ok(row)
        }
        Cancelled::Requested(row) => {
            if let Err(err) = publish(bus, &admin::cancel_signal(id)).await {
                // The node's next heartbeat sees the flag anyway.
                tracing::warn!(error = ?err, "publishing a cancellation failed");
            }
            Ok(row)
        }
    }
}

/// Enqueues a kind an operator may start by hand, with its arguments checked against the
/// kind's schema first.
pub async fn enqueue_by_operator<C: ConnectionTrait>(
    db: &C,
    registry: &Registry,
    viewer: &Viewer,
    input: OperatorJob,
) -> AppResult<job::Model> {
    require(viewer)?;
    let spec = registry
        .kind_spec(&input.kind)
        .filter(|spec| spec.operator_enqueue)
        .ok_or_else(|| {
            AppError::bad_field("kind", "no job kind of that name can be enqueued by hand")
        })?;
    if let Some(schema) = &spec.args_schema {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| AppError::internal(anyhow::anyhow!("kind schema: {e}")))?;
        let first_error = validator
            .iter_errors(&input.args)
            .next()
            .map(|error| error.to_string());
        if let Some(error) = first_error {
            return Err(AppError::bad_field(
                "args",
                format!("arguments do not fit {}: {error}", spec.kind),
            ));
        }
    }
    let mut job = NewJob::new(&spec.queue, &spec.kind, input.args)
        .priority(input.priority)
        .max_attempts(spec.max_attempts);
    if let Some(at) = input.run_at {
        job = job.run_at(at);
    }
    if let Some(key) = input.unique_key {
        job = job.unique(key);
    }
    if let Some(key) = input.affinity_key {
        job = job.affinity(key);
    }
    let id = enqueue(db, job).await?.id();
    Ok(admin::job(db, id).await?)
}
