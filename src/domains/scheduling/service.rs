//! The operator's scheduler controls: every call needs `scheduler.manage` (or admin).

use chrono::Utc;
use entities::{job, job_queue, scheduler_node};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::model::OperatorJob;
use crate::auth::{Permission, Viewer};
use crate::error::{AppError, AppResult};
use crate::platform::events::bus::{signal, EventBus};
use crate::platform::scheduler::admin::{self, AdminError, Cancelled, JobFilter, QueueOverview};
use crate::platform::scheduler::{
    enqueue_in, EnqueueError, JobChange, JobChanges, JobState, KindSpec, NodeSettings,
    QueueChanged, Registry, Scheduler,
};
use crate::platform::work::Work;

fn require(viewer: &Viewer) -> AppResult<()> {
    viewer.user()?.require_global(Permission::SchedulerManage)
}

/// The live job feed shows what the scheduler reads show: to its operators only.
pub fn may_watch_jobs(viewer: &Viewer) -> AppResult<()> {
    require(viewer)
}

/// The job kinds this deployment runs, by name.
pub fn job_kinds<'r>(viewer: &Viewer, registry: &'r Registry) -> AppResult<Vec<&'r KindSpec>> {
    require(viewer)?;
    let mut kinds: Vec<&KindSpec> = registry.kinds().collect();
    kinds.sort_by(|a, b| a.kind.cmp(&b.kind));
    Ok(kinds)
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

/// Pauses or resumes a queue on every node: the flag is in the database; once it commits, the
/// caller signals `QueueChanged` so other nodes re-read it at once rather than at their next
/// refresh (within half a second).
pub async fn set_paused(
    work: &Work,
    viewer: &Viewer,
    queue: &str,
    paused: bool,
) -> AppResult<job_queue::Model> {
    require(viewer)?;
    Ok(admin::set_paused(work, queue, paused).await?)
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

/// Runs a dead-lettered or cancelled job again; the commit wakes this node's workers.
pub async fn retry(work: &Work, viewer: &Viewer, id: Uuid) -> AppResult<job::Model> {
    require(viewer)?;
    let row = admin::retry(work, id).await?;
    work.jobs_enqueued();
    work.emit(&JobChanges(vec![change_of(&row, "retried by an operator")]));
    Ok(row)
}

/// Tells every node, this one at once, that a queue's settings changed. A lost signal costs
/// only latency: nodes re-read queue settings on their own within half a second.
pub async fn queue_changed(scheduler: &Scheduler, bus: &dyn EventBus, queue: &job_queue::Model) {
    scheduler.queue_settings_changed();
    let change = QueueChanged {
        queue: queue.name.clone(),
    };
    if let Err(err) = signal(bus, &change).await {
        tracing::warn!(error = ?err, "signalling a queue change failed");
    }
}

/// What a committed cancellation sets off, outside its unit of work.
pub async fn after_cancel(
    scheduler: &Scheduler,
    bus: &dyn EventBus,
    outcome: Cancelled,
) -> job::Model {
    match outcome {
        Cancelled::Now(row) => {
            scheduler
                .registry()
                .notify_given_up(&row.kind, &row.args, CANCELLED_BY_OPERATOR)
                .await;
            row
        }
        Cancelled::Requested(row) => {
            if let Err(err) = signal(bus, &admin::cancel_signal(row.id)).await {
                // The node's next heartbeat sees the flag anyway.
                tracing::warn!(error = ?err, "signalling a cancellation failed");
            }
            row
        }
    }
}

/// Why an operator's cancellation ends a job, as its handler and the job feed hear it.
pub const CANCELLED_BY_OPERATOR: &str = "cancelled by an operator";

/// Cancels a waiting job, or flags a running one. What follows the commit is the caller's:
/// for `Now`, the kind's `given_up` hook (it writes in a unit of work of its own); for
/// `Requested`, the `CancelRequested` signal to the node running it (whose next heartbeat
/// sees the flag anyway).
pub async fn cancel(work: &Work, viewer: &Viewer, id: Uuid) -> AppResult<Cancelled> {
    require(viewer)?;
    let outcome = admin::cancel(work, id).await?;
    if let Cancelled::Now(row) = &outcome {
        work.emit(&JobChanges(vec![change_of(row, CANCELLED_BY_OPERATOR)]));
    }
    Ok(outcome)
}

/// Enqueues a kind an operator may start by hand, with its arguments checked against the
/// kind's schema first.
pub async fn enqueue_by_operator(
    work: &Work,
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
    let mut job = spec.job(input.args).priority(input.priority);
    if let Some(at) = input.run_at {
        job = job.run_at(at);
    }
    if let Some(key) = input.unique_key {
        job = job.unique(key);
    }
    if let Some(key) = input.affinity_key {
        job = job.affinity(key);
    }
    let id = enqueue_in(work, job).await?.id();
    Ok(admin::job(work, id).await?)
}
