//! The scheduler over GraphQL: queues, jobs and nodes to look at, controls to steer them, and
//! a live feed of job changes. Everything here needs `scheduler.manage`.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use entities::{job, job_queue, scheduler_node};
use futures_util::{stream, Stream, StreamExt};
use uuid::Uuid;

use super::model::{self, JobId, OperatorJob};
use super::service;
use crate::error::AppResult;
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::graphql::pagination::{page_size, TotalCount};
use crate::graphql::scalars::Json;
use crate::platform::events::Envelope;
use crate::platform::scheduler::admin::{JobFilter as StoreFilter, QueueOverview};
use crate::platform::scheduler::{
    JobChange, JobChanges, JobState as StoreState, KindSpec, Strategy,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::platform::scheduler::JobState")]
pub enum JobState {
    Scheduled,
    Available,
    Running,
    Retryable,
    Completed,
    Discarded,
    Cancelled,
}

fn state_of(raw: &str) -> JobState {
    StoreState::parse(raw).map_or(JobState::Available, JobState::from)
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::platform::scheduler::Strategy")]
pub enum QueueStrategy {
    Any,
    Tagged,
    KeyAffinity,
}

#[derive(SimpleObject)]
pub struct JobCounts {
    scheduled: i64,
    available: i64,
    running: i64,
    retryable: i64,
    completed: i64,
    discarded: i64,
    cancelled: i64,
}

#[derive(SimpleObject)]
pub struct JobQueue {
    name: String,
    paused: bool,
    strategy: QueueStrategy,
    tag: Option<String>,
    per_node_concurrency: i32,
    global_concurrency: Option<i32>,
    /// Jobs in each state; finished ones are counted until they are pruned.
    counts: Option<JobCounts>,
}

impl JobQueue {
    fn new(queue: job_queue::Model, counts: Option<JobCounts>) -> Self {
        let strategy = Strategy::parse(&queue.strategy).map_or(QueueStrategy::Any, Into::into);
        Self {
            name: queue.name,
            paused: queue.paused,
            strategy,
            tag: queue.tag,
            per_node_concurrency: queue.per_node_concurrency,
            global_concurrency: queue.global_concurrency,
            counts,
        }
    }
}

impl From<QueueOverview> for JobQueue {
    fn from(overview: QueueOverview) -> Self {
        let count = |state: StoreState| {
            overview
                .counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n)
        };
        let counts = JobCounts {
            scheduled: count(StoreState::Scheduled),
            available: count(StoreState::Available),
            running: count(StoreState::Running),
            retryable: count(StoreState::Retryable),
            completed: count(StoreState::Completed),
            discarded: count(StoreState::Discarded),
            cancelled: count(StoreState::Cancelled),
        };
        Self::new(overview.queue, Some(counts))
    }
}

#[derive(SimpleObject)]
pub struct Job {
    id: ID,
    queue: String,
    kind: String,
    args: Json,
    priority: i32,
    state: JobState,
    /// How many times it was claimed; the current attempt's fencing token.
    attempt: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    affinity_key: Option<String>,
    unique_key: Option<String>,
    progress: i32,
    progress_message: Option<String>,
    last_error: Option<String>,
    /// Each failed attempt: `{attempt, at, error}`, oldest first.
    errors: Json,
    cancel_requested: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    attempted_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<job::Model> for Job {
    fn from(row: job::Model) -> Self {
        Self {
            id: ID(row.id.to_string()),
            state: state_of(&row.state),
            queue: row.queue,
            kind: row.kind,
            args: async_graphql::Json(row.args),
            priority: row.priority,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            lease_owner: row.lease_owner,
            lease_expires_at: row.lease_expires_at,
            affinity_key: row.affinity_key,
            unique_key: row.unique_key,
            progress: row.progress,
            progress_message: row.progress_message,
            last_error: row.last_error,
            errors: async_graphql::Json(row.errors),
            cancel_requested: row.cancel_requested,
            created_at: row.created_at,
            updated_at: row.updated_at,
            attempted_at: row.attempted_at,
            finished_at: row.finished_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct SchedulerNode {
    id: String,
    tags: Vec<String>,
    capacity: i32,
    started_at: DateTime<Utc>,
    heartbeat_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    /// Heartbeating within one lease and not stopped.
    live: bool,
}

impl From<(scheduler_node::Model, bool)> for SchedulerNode {
    fn from((node, live): (scheduler_node::Model, bool)) -> Self {
        Self {
            id: node.id,
            tags: serde_json::from_value(node.tags).unwrap_or_default(),
            capacity: node.capacity,
            started_at: node.started_at,
            heartbeat_at: node.heartbeat_at,
            stopped_at: node.stopped_at,
            live,
        }
    }
}

#[derive(SimpleObject)]
pub struct JobKind {
    kind: String,
    queue: String,
    max_attempts: i32,
    operator_enqueue: bool,
    description: String,
}

impl From<&KindSpec> for JobKind {
    fn from(spec: &KindSpec) -> Self {
        Self {
            kind: spec.kind.clone(),
            queue: spec.queue.clone(),
            max_attempts: spec.max_attempts,
            operator_enqueue: spec.operator_enqueue,
            description: spec.description.clone(),
        }
    }
}

#[derive(InputObject, Default)]
pub struct JobFilter {
    queue: Option<String>,
    state: Option<JobState>,
    kind: Option<String>,
}

impl From<JobFilter> for StoreFilter {
    fn from(filter: JobFilter) -> Self {
        Self {
            queue: filter.queue,
            state: filter.state.map(StoreState::from),
            kind: filter.kind,
        }
    }
}

#[derive(InputObject)]
pub struct EnqueueJobInput {
    kind: String,
    #[graphql(default_with = "async_graphql::Json(serde_json::json!({}))")]
    args: Json,
    #[graphql(default = 0)]
    priority: i32,
    run_at: Option<DateTime<Utc>>,
    unique_key: Option<String>,
    affinity_key: Option<String>,
}

impl From<EnqueueJobInput> for OperatorJob {
    fn from(input: EnqueueJobInput) -> Self {
        Self {
            kind: input.kind,
            args: input.args.0,
            priority: input.priority,
            run_at: input.run_at,
            unique_key: input.unique_key,
            affinity_key: input.affinity_key,
        }
    }
}

/// Jobs are paged by id, newest first: `after` is the last id seen.
fn jobs_before(after: Option<String>) -> AppResult<Option<Uuid>> {
    after
        .map(|a| JobId::parse("after", &a).map(|id| id.0))
        .transpose()
}

/// One page of `first` jobs, from rows fetched with one extra to tell whether more follow.
fn job_page(
    rows: Vec<job::Model>,
    total: u64,
    before: Option<Uuid>,
    first: u64,
) -> Connection<String, Job, TotalCount, EmptyFields> {
    let has_next = rows.len() as u64 > first;
    let mut connection = Connection::with_additional_fields(
        before.is_some(),
        has_next,
        TotalCount { total_count: total },
    );
    connection.edges.extend(
        rows.into_iter()
            .take(first as usize)
            .map(|row| Edge::new(row.id.to_string(), Job::from(row))),
    );
    connection
}

#[derive(SimpleObject)]
pub struct JobEvent {
    /// Pass it as `after` to resume right after this change. Changes logged together (one
    /// claim or completion batch) share it.
    cursor: String,
    job_id: ID,
    queue: String,
    kind: String,
    state: JobState,
    attempt: i32,
    progress: i32,
    message: Option<String>,
    node: Option<String>,
}

impl JobEvent {
    fn new(cursor: String, change: JobChange) -> Self {
        Self {
            cursor,
            job_id: ID(change.job_id.to_string()),
            queue: change.queue,
            kind: change.kind,
            state: change.state.into(),
            attempt: change.attempt,
            progress: change.progress,
            message: change.message,
            node: change.node,
        }
    }
}

#[derive(Default)]
pub struct SchedulingQuery;

#[Object]
impl SchedulingQuery {
    async fn queues(&self, ctx: &Context<'_>) -> Result<Vec<JobQueue>> {
        let caller = ctx.caller()?;
        let queues = service::queues(caller.db(), caller.viewer).await?;
        Ok(queues.into_iter().map(JobQueue::from).collect())
    }

    /// Newest first.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        filter: Option<JobFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Job, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let (first, before) = (page_size(first)?, jobs_before(after)?);
        let filter = StoreFilter::from(filter.unwrap_or_default());
        let (rows, total) =
            service::jobs(caller.db(), caller.viewer, &filter, before, first + 1).await?;
        Ok(job_page(rows, total, before, first))
    }

    async fn job(&self, ctx: &Context<'_>, id: ID) -> Result<Job> {
        let (caller, id) = (ctx.caller()?, JobId::parse("id", &id)?);
        Ok(service::job(caller.db(), caller.viewer, id.0).await?.into())
    }

    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<SchedulerNode>> {
        let caller = ctx.caller()?;
        let settings = caller.app.scheduler.settings();
        let nodes = service::nodes(caller.db(), caller.viewer, settings).await?;
        Ok(nodes.into_iter().map(SchedulerNode::from).collect())
    }

    /// The job kinds this deployment runs, and which of them an operator may enqueue.
    async fn job_kinds(&self, ctx: &Context<'_>) -> Result<Vec<JobKind>> {
        let caller = ctx.caller()?;
        let kinds = service::job_kinds(caller.viewer, caller.app.scheduler.registry())?;
        Ok(kinds.into_iter().map(JobKind::from).collect())
    }
}

#[derive(Default)]
pub struct SchedulingMutation;

#[Object]
impl SchedulingMutation {
    /// Stops every node from starting jobs of the queue; running ones finish.
    async fn pause_queue(&self, ctx: &Context<'_>, name: String) -> Result<JobQueue> {
        let caller = ctx.caller()?;
        let queue = caller
            .write(async |work| service::set_paused(work, caller.viewer, &name, true).await)
            .await?;
        service::queue_changed(&caller.app.scheduler, caller.app.bus.as_ref(), &queue).await;
        Ok(JobQueue::new(queue, None))
    }

    async fn resume_queue(&self, ctx: &Context<'_>, name: String) -> Result<JobQueue> {
        let caller = ctx.caller()?;
        let queue = caller
            .write(async |work| service::set_paused(work, caller.viewer, &name, false).await)
            .await?;
        service::queue_changed(&caller.app.scheduler, caller.app.bus.as_ref(), &queue).await;
        Ok(JobQueue::new(queue, None))
    }

    /// Runs a DISCARDED or CANCELLED job again now.
    async fn retry_job(&self, ctx: &Context<'_>, id: ID) -> Result<Job> {
        let (caller, id) = (ctx.caller()?, JobId::parse("id", &id)?);
        let row = caller
            .write(async |work| service::retry(work, caller.viewer, id.0).await)
            .await?;
        Ok(row.into())
    }

    /// Cancels a waiting job at once; a running one is asked to stop (`cancelRequested`).
    async fn cancel_job(&self, ctx: &Context<'_>, id: ID) -> Result<Job> {
        let (caller, id) = (ctx.caller()?, JobId::parse("id", &id)?);
        let outcome = caller
            .write(async |work| service::cancel(work, caller.viewer, id.0).await)
            .await?;
        Ok(
            service::after_cancel(&caller.app.scheduler, caller.app.bus.as_ref(), outcome)
                .await
                .into(),
        )
    }

    /// Enqueues a kind that operators may start by hand (see `jobKinds`).
    async fn enqueue_job(&self, ctx: &Context<'_>, input: EnqueueJobInput) -> Result<Job> {
        let (caller, job) = (ctx.caller()?, OperatorJob::from(input));
        let registry = caller.app.scheduler.registry();
        let row = caller
            .write(async |work| {
                service::enqueue_by_operator(work, registry, caller.viewer, job).await
            })
            .await?;
        Ok(row.into())
    }
}

#[derive(Default)]
pub struct SchedulingSubscription;

#[Subscription]
impl SchedulingSubscription {
    /// State changes and progress of jobs, from every node, optionally of one queue or job.
    /// With `after` (an event's `cursor`), first the changes after it, then live ones.
    async fn job_events(
        &self,
        ctx: &Context<'_>,
        queue: Option<String>,
        job_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = JobEvent>> {
        let viewer = ctx.viewer()?.clone();
        service::may_watch_jobs(&viewer)?;
        let job_id = job_id.map(|id| JobId::parse("jobId", &id)).transpose()?;
        let entries = live::follow(ctx, after.as_deref()).await?;
        Ok(entries.flat_map(move |entry: Arc<Envelope>| {
            let visible = viewer
                .user()
                .is_ok_and(|me| model::event_visible_to(&entry, me));
            let changes = match visible.then(|| entry.decode::<JobChanges>()).flatten() {
                Some(JobChanges(changes)) => changes,
                None => Vec::new(),
            };
            let events: Vec<JobEvent> = changes
                .into_iter()
                .filter(|c| queue.as_ref().is_none_or(|q| *q == c.queue))
                .filter(|c| job_id.is_none_or(|id| id.0 == c.job_id))
                .map(|c| JobEvent::new(entry.cursor.to_string(), c))
                .collect();
            stream::iter(events)
        }))
    }
}
