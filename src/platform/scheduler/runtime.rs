//! A node's scheduler at run time: the fetcher that claims within bounds, the runner, the
//! batching completer, heartbeats, the rescuer, the cron ticker and the wake-up listener.
//!
//! Memory is bounded by construction: a node holds at most `capacity` running jobs plus
//! `prefetch` claimed ones, and claims only when a permit is free, so a backlog of any size
//! stays in the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};
use sea_orm::{ConnectionTrait, TransactionTrait};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::affinity::owned_buckets;
use super::cron::{due_slot, fire_slot, last_fired};
use super::handler::{JobContext, JobError, Registry, Signal};
use super::store::{self, Claim, ClaimedJob, Failure, Fence};
use super::{
    backoff, CancelRequested, JobChange, JobChanges, JobState, NodeSettings, QueueChanged,
    Strategy, WAKE_CHANNEL,
};
use crate::platform::db::{lock_in_transaction, sql, Db};
use crate::platform::events::{publish, subscribe, EventBus, Received};
use crate::platform::metrics::SchedulerMetrics;

/// How stale a queue's pause flag may be on this node.
const QUEUE_REFRESH: Duration = Duration::from_millis(500);
/// Jobs one completion statement records.
const COMPLETION_BATCH: usize = 500;

struct InFlight {
    attempt: i32,
    signal: watch::Sender<Signal>,
    claimed: Instant,
}

#[derive(Clone, Debug)]
struct QueueState {
    name: String,
    paused: bool,
    strategy: Strategy,
    tag: Option<String>,
    per_node: usize,
    global: Option<usize>,
}

pub(crate) struct NodeShared {
    pub db: Db,
    pub bus: Arc<dyn EventBus>,
    pub settings: NodeSettings,
    pub registry: Registry,
    pub metrics: SchedulerMetrics,
    wake: Notify,
    room: Notify,
    in_flight: Mutex<HashMap<Uuid, InFlight>>,
    per_queue: Mutex<HashMap<String, usize>>,
    buckets: RwLock<Vec<i32>>,
    queues: RwLock<(Vec<QueueState>, Option<Instant>)>,
}

/// One node's scheduler. Cloning shares it.
#[derive(Clone)]
pub struct Scheduler(Arc<NodeShared>);

impl Scheduler {
    pub fn new(
        db: Db,
        bus: Arc<dyn EventBus>,
        settings: NodeSettings,
        registry: Registry,
        metrics: SchedulerMetrics,
    ) -> Self {
        Self(Arc::new(NodeShared {
            db,
            bus,
            settings,
            registry,
            metrics,
            wake: Notify::new(),
            room: Notify::new(),
            in_flight: Mutex::new(HashMap::new()),
            per_queue: Mutex::new(HashMap::new()),
            buckets: RwLock::new(Vec::new()),
            queues: RwLock::new((Vec::new(), None)),
        }))
    }

    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    pub fn settings(&self) -> &NodeSettings {
        &self.0.settings
    }

    pub fn db(&self) -> &Db {
        &self.0.db
    }

    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.0.bus
    }

    /// Wakes this node's fetcher now, after a local commit (SQLite has no `NOTIFY`).
    pub fn nudge(&self) {
        self.0.wake.notify_one();
    }

    /// Makes this node re-read queue settings (a pause, say) before its next claim.
    pub fn queue_settings_changed(&self) {
        self.0.queues.write().1 = None;
        self.0.wake.notify_one();
    }

    /// Jobs this node holds: claimed and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.lock().len()
    }

    /// Creates the queues' rows, registers the node and starts its loops.
    pub async fn start(&self) -> anyhow::Result<SchedulerHandle> {
        let shared = self.0.clone();
        sync_queues(&shared).await?;
        heartbeat(&shared).await?;
        let (shutdown, stop) = watch::channel(false);
        let slots = shared.settings.capacity.max(1) + shared.settings.prefetch;
        let (claimed_tx, claimed_rx) = mpsc::channel::<(ClaimedJob, OwnedSemaphorePermit)>(slots);
        let (done_tx, done_rx) = mpsc::channel::<Done>(slots);
        let permits = Arc::new(Semaphore::new(slots));
        let mut background = vec![
            tokio::spawn(heartbeat_loop(shared.clone())),
            tokio::spawn(maintenance_loop(shared.clone())),
            tokio::spawn(cron_loop(shared.clone())),
            tokio::spawn(cancel_listener(shared.clone())),
            tokio::spawn(queue_listener(shared.clone())),
        ];
        if shared.db.postgres_pool().is_some() {
            background.push(tokio::spawn(wake_listener(shared.clone())));
        }
        let fetcher = tokio::spawn(fetch_loop(
            shared.clone(),
            permits,
            claimed_tx,
            stop.clone(),
        ));
        let runner = tokio::spawn(run_loop(shared.clone(), claimed_rx, done_tx, stop));
        let completer = tokio::spawn(complete_loop(shared.clone(), done_rx));
        Ok(SchedulerHandle {
            shared,
            shutdown,
            fetcher: Some(fetcher),
            runner: Some(runner),
            completer: Some(completer),
            background,
        })
    }
}

/// The running loops of one node. Dropping it stops them abruptly, as a crash would.
pub struct SchedulerHandle {
    shared: Arc<NodeShared>,
    shutdown: watch::Sender<bool>,
    fetcher: Option<JoinHandle<()>>,
    runner: Option<JoinHandle<()>>,
    completer: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl SchedulerHandle {
    /// Stops claiming, gives back jobs that never started, lets running ones finish for up to
    /// `drain` (the rest are rescued after their lease), and marks the node stopped.
    pub async fn stop(mut self, drain: Duration) {
        let _ = self.shutdown.send(true);
        self.shared.wake.notify_one();
        self.shared.room.notify_one();
        if let Some(fetcher) = self.fetcher.take() {
            let _ = fetcher.await;
        }
        if let Some(runner) = self.runner.take() {
            if tokio::time::timeout(drain + Duration::from_secs(1), runner)
                .await
                .is_err()
            {
                tracing::warn!("scheduler runner did not stop in time");
            }
        }
        if let Some(completer) = self.completer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), completer).await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        let stopped = self
            .shared
            .db
            .conn
            .execute(sql(
                self.shared.db.conn.get_database_backend(),
                "UPDATE scheduler_nodes SET stopped_at = $1 WHERE id = $2",
                [
                    Utc::now().into(),
                    self.shared.settings.node_id.clone().into(),
                ],
            ))
            .await;
        if let Err(err) = stopped {
            tracing::warn!(error = %err, "could not mark the node stopped");
        }
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        for task in [
            self.fetcher.take(),
            self.runner.take(),
            self.completer.take(),
        ]
        .into_iter()
        .flatten()
        .chain(self.background.drain(..))
        {
            task.abort();
        }
    }
}

async fn sync_queues(shared: &NodeShared) -> anyhow::Result<()> {
    let db = &shared.db.conn;
    for queue in shared.registry.queues() {
        db.execute(sql(
            db.get_database_backend(),
            "INSERT INTO job_queues (name, paused, strategy, tag, per_node_concurrency, \
             global_concurrency, updated_at) VALUES ($1, FALSE, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET strategy = excluded.strategy, tag = excluded.tag, \
             per_node_concurrency = excluded.per_node_concurrency, \
             global_concurrency = excluded.global_concurrency",
            [
                queue.name.clone().into(),
                queue.strategy.as_str().into(),
                queue.tag.clone().into(),
                (queue.per_node_concurrency as i32).into(),
                queue.global_concurrency.map(|g| g as i32).into(),
                Utc::now().into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// The queues this node may pull from now, refreshed at most every `QUEUE_REFRESH`.
async fn eligible_queues(shared: &NodeShared) -> Vec<QueueState> {
    let fresh = shared
        .queues
        .read()
        .1
        .is_some_and(|at| at.elapsed() < QUEUE_REFRESH);
    if !fresh {
        match load_queues(shared).await {
            Ok(queues) => *shared.queues.write() = (queues, Some(Instant::now())),
            Err(err) => tracing::warn!(error = %err, "reading queue settings failed"),
        }
    }
    let tags = &shared.settings.tags;
    shared
        .queues
        .read()
        .0
        .iter()
        .filter(|q| !q.paused)
        .filter(|q| match (q.strategy, &q.tag) {
            (Strategy::Tagged, Some(tag)) => tags.contains(tag),
            (Strategy::Tagged, None) => false,
            _ => true,
        })
        .cloned()
        .collect()
}

async fn load_queues(shared: &NodeShared) -> Result<Vec<QueueState>, sea_orm::DbErr> {
    use entities::job_queue;
    use sea_orm::EntityTrait;
    let known: HashSet<&str> = shared
        .registry
        .queues()
        .iter()
        .map(|q| q.name.as_str())
        .collect();
    let rows = job_queue::Entity::find().all(&shared.db.conn).await?;
    Ok(rows
        .into_iter()
        .filter(|row| known.contains(row.name.as_str()))
        .map(|row| QueueState {
            strategy: Strategy::parse(&row.strategy).unwrap_or(Strategy::Any),
            paused: row.paused,
            tag: row.tag,
            per_node: row.per_node_concurrency.max(0) as usize,
            global: row.global_concurrency.map(|g| g.max(0) as usize),
            name: row.name,
        })
        .collect())
}

async fn claim_from(
    shared: &NodeShared,
    queue: &QueueState,
    limit: usize,
) -> Result<Vec<ClaimedJob>, sea_orm::DbErr> {
    let lease_until = Utc::now() + shared.settings.lease;
    let buckets = (queue.strategy == Strategy::KeyAffinity).then(|| shared.buckets.read().clone());
    let claim = Claim {
        queue: &queue.name,
        node: &shared.settings.node_id,
        limit,
        lease_until,
        buckets: buckets.as_deref(),
    };
    match queue.global {
        None => store::claim(&shared.db.conn, claim).await,
        Some(global) => {
            // Counting and claiming under one lock per queue keeps the global limit exact.
            let txn = shared.db.conn.begin().await?;
            lock_in_transaction(&txn, &format!("jobs:queue:{}", queue.name)).await?;
            let running = store::running_in_queue(&txn, &queue.name).await?.max(0) as usize;
            let room = global.saturating_sub(running).min(limit);
            let jobs = store::claim(
                &txn,
                Claim {
                    limit: room,
                    ..claim
                },
            )
            .await?;
            txn.commit().await?;
            Ok(jobs)
        }
    }
}

async fn fetch_loop(
    shared: Arc<NodeShared>,
    permits: Arc<Semaphore>,
    claimed: mpsc::Sender<(ClaimedJob, OwnedSemaphorePermit)>,
    stop: watch::Receiver<bool>,
) {
    let mut backoff_on_error = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut took = 0usize;
        let mut full = false;
        let mut failed = false;
        for queue in eligible_queues(&shared).await {
            let free = permits.available_permits();
            if free == 0 {
                full = true;
                break;
            }
            let here = shared
                .per_queue
                .lock()
                .get(&queue.name)
                .copied()
                .unwrap_or(0);
            let limit = free
                .min(shared.settings.claim_batch)
                .min(queue.per_node.saturating_sub(here));
            if limit == 0 {
                continue;
            }
            let jobs = match claim_from(&shared, &queue, limit).await {
                Ok(jobs) => jobs,
                Err(err) => {
                    tracing::warn!(queue = %queue.name, error = %err, "claiming jobs failed");
                    failed = true;
                    continue;
                }
            };
            took += jobs.len();
            dispatch(&shared, &permits, &claimed, jobs).await;
        }
        if failed {
            tokio::time::sleep(backoff_on_error).await;
            backoff_on_error = (backoff_on_error * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff_on_error = Duration::from_millis(100);
        if took > 0 {
            continue;
        }
        let mut stop = stop.clone();
        let poll = shared.settings.poll_interval;
        tokio::select! {
            _ = stop.changed() => {}
            _ = shared.wake.notified(), if !full => {}
            _ = shared.room.notified(), if full => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn dispatch(
    shared: &NodeShared,
    permits: &Arc<Semaphore>,
    claimed: &mpsc::Sender<(ClaimedJob, OwnedSemaphorePermit)>,
    jobs: Vec<ClaimedJob>,
) {
    if jobs.is_empty() {
        return;
    }
    let now = Utc::now();
    let mut changes = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let (signal, _) = watch::channel(if job.cancel_requested {
            Signal::CancelRequested
        } else {
            Signal::Running
        });
        shared.in_flight.lock().insert(
            job.id,
            InFlight {
                attempt: job.attempt,
                signal,
                claimed: Instant::now(),
            },
        );
        *shared
            .per_queue
            .lock()
            .entry(job.queue.clone())
            .or_default() += 1;
        shared
            .metrics
            .running
            .with_label_values(&[&job.queue])
            .inc();
        shared
            .metrics
            .pickup_latency
            .with_label_values(&[&job.queue])
            .observe(
                (now - job.run_at)
                    .to_std()
                    .unwrap_or_default()
                    .as_secs_f64(),
            );
        changes.push(change_of(
            job,
            JobState::Running,
            Some(&shared.settings.node_id),
        ));
    }
    announce(shared, changes).await;
    for job in jobs {
        // Only this loop takes permits and it counted them before claiming, so one is free.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match permits.clone().acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        if claimed.send((job, permit)).await.is_err() {
            return;
        }
    }
}

fn change_of(job: &ClaimedJob, state: JobState, node: Option<&str>) -> JobChange {
    JobChange {
        job_id: job.id,
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        state,
        attempt: job.attempt,
        progress: if state == JobState::Completed { 100 } else { 0 },
        message: None,
        node: node.map(str::to_owned),
    }
}

async fn announce(shared: &NodeShared, changes: Vec<JobChange>) {
    if changes.is_empty() {
        return;
    }
    if let Err(err) = publish(shared.bus.as_ref(), &JobChanges(changes)).await {
        tracing::debug!(error = ?err, "publishing job changes failed");
    }
}

/// A finished handler's result, waiting to be recorded by the completer.
struct Done {
    job: ClaimedJob,
    _permit: OwnedSemaphorePermit,
}

async fn run_loop(
    shared: Arc<NodeShared>,
    mut claimed: mpsc::Receiver<(ClaimedJob, OwnedSemaphorePermit)>,
    done: mpsc::Sender<Done>,
    mut stop: watch::Receiver<bool>,
) {
    let workers = Arc::new(Semaphore::new(shared.settings.capacity.max(1)));
    let mut running = JoinSet::new();
    loop {
        let next = tokio::select! {
            next = claimed.recv() => next,
            _ = stop.changed() => None,
        };
        let Some((job, permit)) = next else { break };
        let Ok(worker) = workers.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let done = done.clone();
        running.spawn(async move {
            execute(&shared, job, permit, done).await;
            drop(worker);
        });
        while running.try_join_next().is_some() {}
    }
    // Shutting down: what was claimed but never started goes back at once.
    claimed.close();
    let mut unstarted = Vec::new();
    while let Some((job, _permit)) = claimed.recv().await {
        unstarted.push(job);
    }
    let fences: Vec<Fence> = unstarted
        .iter()
        .map(|j| Fence {
            job_id: j.id,
            attempt: j.attempt,
        })
        .collect();
    match store::release_unstarted(&shared.db.conn, &shared.settings.node_id, &fences).await {
        Ok(_) => {
            for job in &unstarted {
                forget(&shared, job.id, &job.queue);
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "releasing unstarted jobs failed; they will be rescued")
        }
    }
    while running.join_next().await.is_some() {}
}

async fn execute(
    shared: &Arc<NodeShared>,
    job: ClaimedJob,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<Done>,
) {
    let signal = match shared.in_flight.lock().get(&job.id) {
        Some(entry) => entry.signal.subscribe(),
        None => return,
    };
    let started = Instant::now();
    let outcome = match shared.registry.handler(&job.kind) {
        None => Err(JobError::Retry(format!(
            "no handler for kind {} on this node",
            job.kind
        ))),
        Some((spec, handler)) => {
            let context = JobContext {
                id: job.id,
                queue: job.queue.clone(),
                kind: job.kind.clone(),
                args: job.args.clone(),
                attempt: job.attempt,
                max_attempts: job.max_attempts,
                node: shared.clone(),
                signal,
            };
            if context.is_cancelled() {
                Err(JobError::Cancelled)
            } else {
                match tokio::time::timeout(spec.timeout, handler.run(&context)).await {
                    Ok(result) => result,
                    Err(_) => Err(JobError::Retry(format!(
                        "timed out after {:?}",
                        spec.timeout
                    ))),
                }
            }
        }
    };
    shared
        .metrics
        .run_time
        .with_label_values(&[&job.queue, &job.kind])
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(()) => {
            let _ = done
                .send(Done {
                    job,
                    _permit: permit,
                })
                .await;
        }
        Err(JobError::LeaseLost) => {
            tracing::info!(job = %job.id, attempt = job.attempt, "job lost its lease; its result is dropped");
            forget(shared, job.id, &job.queue);
        }
        Err(error) => {
            record_failure(shared, &job, error).await;
            forget(shared, job.id, &job.queue);
            drop(permit);
            shared.room.notify_one();
        }
    }
}

async fn record_failure(shared: &NodeShared, job: &ClaimedJob, error: JobError) {
    let cancel_requested = shared
        .in_flight
        .lock()
        .get(&job.id)
        .is_some_and(|f| *f.signal.borrow() == Signal::CancelRequested);
    let base = shared
        .registry
        .kind_spec(&job.kind)
        .map(|k| k.backoff_base)
        .unwrap_or(Duration::from_secs(1));
    let (next, retry_at) = match &error {
        JobError::Cancelled if cancel_requested => (JobState::Cancelled, Utc::now()),
        JobError::Discard(_) => (JobState::Discarded, Utc::now()),
        _ if cancel_requested => (JobState::Cancelled, Utc::now()),
        _ if job.attempt >= job.max_attempts => (JobState::Discarded, Utc::now()),
        _ => {
            let jitter = rand::random::<f64>() * 2.0 - 1.0;
            (
                JobState::Retryable,
                Utc::now() + backoff(base, job.attempt, jitter),
            )
        }
    };
    let message = match &error {
        JobError::Cancelled if !cancel_requested => "stopped: lease lost".to_owned(),
        other => other.to_string(),
    };
    let failure = Failure {
        fence: Fence {
            job_id: job.id,
            attempt: job.attempt,
        },
        node: &shared.settings.node_id,
        next,
        retry_at,
        error: &message,
        history: &job.errors,
    };
    match store::fail(&shared.db.conn, failure).await {
        Ok(Ok(())) => {
            shared
                .metrics
                .failed
                .with_label_values(&[&job.queue, next.as_str()])
                .inc();
            let mut change = change_of(job, next, Some(&shared.settings.node_id));
            change.message = Some(message);
            announce(shared, vec![change]).await;
        }
        Ok(Err(lost)) => tracing::info!(%lost, "failure not recorded: lease lost"),
        Err(err) => {
            tracing::warn!(job = %job.id, error = %err, "recording a failure failed; the lease will expire")
        }
    }
}

/// Drops a job from this node's books.
fn forget(shared: &NodeShared, id: Uuid, queue: &str) {
    if shared.in_flight.lock().remove(&id).is_some() {
        if let Some(count) = shared.per_queue.lock().get_mut(queue) {
            *count = count.saturating_sub(1);
        }
        shared.metrics.running.with_label_values(&[queue]).dec();
    }
}

async fn complete_loop(shared: Arc<NodeShared>, mut done: mpsc::Receiver<Done>) {
    let mut batch = Vec::with_capacity(COMPLETION_BATCH);
    while let Some(first) = done.recv().await {
        batch.push(first);
        while batch.len() < COMPLETION_BATCH {
            match done.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let fences: Vec<Fence> = batch
            .iter()
            .map(|d| Fence {
                job_id: d.job.id,
                attempt: d.job.attempt,
            })
            .collect();
        let mut attempts = 0;
        let accepted = loop {
            match store::complete_batch(&shared.db.conn, &shared.settings.node_id, &fences).await {
                Ok(ids) => break ids.into_iter().collect::<HashSet<Uuid>>(),
                Err(err) if attempts < 5 => {
                    attempts += 1;
                    tracing::warn!(error = %err, "recording completions failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "recording completions failed; leases will expire and the jobs rerun");
                    break HashSet::new();
                }
            }
        };
        let mut changes = Vec::with_capacity(batch.len());
        for item in batch.drain(..) {
            if accepted.contains(&item.job.id) {
                shared
                    .metrics
                    .completed
                    .with_label_values(&[&item.job.queue])
                    .inc();
                changes.push(change_of(
                    &item.job,
                    JobState::Completed,
                    Some(&shared.settings.node_id),
                ));
            } else {
                tracing::info!(job = %item.job.id, attempt = item.job.attempt, "completion refused: lease lost");
            }
            forget(&shared, item.job.id, &item.job.queue);
        }
        shared.room.notify_one();
        announce(&shared, changes).await;
    }
}

async fn heartbeat(shared: &NodeShared) -> anyhow::Result<()> {
    let db = &shared.db.conn;
    let now = Utc::now();
    db.execute(sql(
        db.get_database_backend(),
        "INSERT INTO scheduler_nodes (id, tags, capacity, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO UPDATE SET \
         heartbeat_at = excluded.heartbeat_at, tags = excluded.tags, \
         capacity = excluded.capacity, stopped_at = NULL",
        [
            shared.settings.node_id.clone().into(),
            sea_orm::Value::Json(Some(Box::new(serde_json::json!(shared.settings.tags)))),
            (shared.settings.capacity as i32).into(),
            now.into(),
        ],
    ))
    .await?;
    let alive_since = now - shared.settings.lease;
    let rows = db
        .query_all(sql(
            db.get_database_backend(),
            "SELECT id FROM scheduler_nodes WHERE stopped_at IS NULL AND heartbeat_at > $1",
            [alive_since.into()],
        ))
        .await?;
    let live: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "id").ok())
        .collect();
    *shared.buckets.write() = owned_buckets(&shared.settings.node_id, &live);
    Ok(())
}

async fn heartbeat_loop(shared: Arc<NodeShared>) {
    let every = shared.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let checked_at = Instant::now();
        if let Err(err) = heartbeat(&shared).await {
            tracing::warn!(error = ?err, "node heartbeat failed");
            continue;
        }
        let until = Utc::now() + shared.settings.lease;
        let held = match store::renew_leases(&shared.db.conn, &shared.settings.node_id, until).await
        {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(error = %err, "renewing leases failed");
                continue;
            }
        };
        let held: HashMap<Fence, bool> = held
            .into_iter()
            .map(|h| (h.fence, h.cancel_requested))
            .collect();
        for (id, job) in shared.in_flight.lock().iter() {
            let fence = Fence {
                job_id: *id,
                attempt: job.attempt,
            };
            match held.get(&fence) {
                Some(true) => {
                    job.signal.send_if_modified(|s| {
                        let changed = *s == Signal::Running;
                        if changed {
                            *s = Signal::CancelRequested;
                        }
                        changed
                    });
                }
                Some(false) => {}
                // Claimed before this renewal began and not renewed: rescued from us.
                None if job.claimed < checked_at => {
                    job.signal.send_replace(Signal::LeaseLost);
                }
                None => {}
            }
        }
    }
}

async fn cancel_listener(shared: Arc<NodeShared>) {
    let mut requests = Box::pin(subscribe::<CancelRequested>(shared.bus.as_ref()));
    while let Some(request) = requests.next().await {
        if let Received::Event(CancelRequested { job_id }) = request {
            if let Some(job) = shared.in_flight.lock().get(&job_id) {
                job.signal.send_if_modified(|s| {
                    let changed = *s == Signal::Running;
                    if changed {
                        *s = Signal::CancelRequested;
                    }
                    changed
                });
            }
        }
    }
}

async fn queue_listener(shared: Arc<NodeShared>) {
    let mut changes = Box::pin(subscribe::<QueueChanged>(shared.bus.as_ref()));
    while changes.next().await.is_some() {
        shared.queues.write().1 = None;
        shared.wake.notify_one();
    }
}

async fn maintenance_loop(shared: Arc<NodeShared>) {
    let every = (shared.settings.lease / 4).max(Duration::from_millis(100));
    let mut last_prune = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match store::rescue_expired(&shared.db.conn).await {
            Ok(rescued) if !rescued.is_empty() => {
                tracing::warn!(count = rescued.len(), "rescued jobs whose lease expired");
                let changes = rescued
                    .iter()
                    .map(|r| JobChange {
                        job_id: r.id,
                        queue: r.queue.clone(),
                        kind: r.kind.clone(),
                        state: r.state,
                        attempt: r.attempt,
                        progress: 0,
                        message: Some("lease expired".into()),
                        node: None,
                    })
                    .collect();
                announce(&shared, changes).await;
                shared.wake.notify_one();
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "rescuing expired leases failed"),
        }
        if let Err(err) = refresh_depth(&shared).await {
            tracing::debug!(error = %err, "reading queue depth failed");
        }
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = Instant::now();
            prune(&shared).await;
        }
    }
}

async fn refresh_depth(shared: &NodeShared) -> Result<(), sea_orm::DbErr> {
    let db = &shared.db.conn;
    let rows = db
        .query_all(sql(
            db.get_database_backend(),
            "SELECT queue, state, COUNT(*) AS n FROM jobs \
             WHERE state IN ('SCHEDULED', 'AVAILABLE', 'RUNNING', 'RETRYABLE') GROUP BY queue, state",
            [],
        ))
        .await?;
    shared.metrics.depth.reset();
    for row in rows {
        let queue: String = row.try_get("", "queue")?;
        let state: String = row.try_get("", "state")?;
        let n: i64 = row.try_get("", "n")?;
        shared
            .metrics
            .depth
            .with_label_values(&[&queue, &state])
            .set(n);
    }
    Ok(())
}

async fn prune(shared: &NodeShared) {
    let before = Utc::now() - shared.settings.retention;
    if let Err(err) = store::prune_finished(&shared.db.conn, before).await {
        tracing::warn!(error = %err, "pruning finished jobs failed");
    }
    let db = &shared.db.conn;
    for statement in [
        "DELETE FROM cron_fires WHERE fired_at < $1",
        "DELETE FROM scheduler_nodes WHERE heartbeat_at < $1",
    ] {
        if let Err(err) = db
            .execute(sql(db.get_database_backend(), statement, [before.into()]))
            .await
        {
            tracing::warn!(error = %err, "pruning scheduler history failed");
        }
    }
}

async fn cron_loop(shared: Arc<NodeShared>) {
    let tick = shared.settings.cron_tick;
    // A slot counts as due (not missed) for a few ticks, so a briefly slow node still fires it.
    let grace = (tick * 5).max(Duration::from_secs(5));
    loop {
        tokio::time::sleep(tick).await;
        for schedule in &shared.registry.schedules {
            let last = match last_fired(&shared.db.conn, &schedule.name).await {
                Ok(last) => last,
                Err(err) => {
                    tracing::warn!(schedule = %schedule.name, error = %err, "reading cron state failed");
                    continue;
                }
            };
            let Some(slot) = due_slot(&schedule.cron, last, Utc::now(), schedule.missed, grace)
            else {
                continue;
            };
            let job =
                schedule
                    .job
                    .clone()
                    .unique(format!("cron:{}:{}", schedule.name, slot.timestamp()));
            match fire_slot(&shared.db.conn, &schedule.name, slot, job).await {
                Ok(Some(_)) => shared.wake.notify_one(),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(schedule = %schedule.name, error = %err, "firing a cron slot failed")
                }
            }
        }
    }
}

/// PostgreSQL `LISTEN`: a committed enqueue anywhere wakes this node at once.
async fn wake_listener(shared: Arc<NodeShared>) {
    let Some(pool) = shared.db.postgres_pool().cloned() else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen(WAKE_CHANNEL).await {
                    tracing::warn!(error = %err, "LISTEN failed");
                } else {
                    backoff = Duration::from_millis(100);
                    // Anything committed while we were not listening is found by this poll.
                    shared.wake.notify_one();
                    loop {
                        match listener.recv().await {
                            Ok(_) => shared.wake.notify_one(),
                            Err(err) => {
                                tracing::warn!(error = %err, "job wake-up listener dropped");
                                break;
                            }
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot listen for job wake-ups"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
