//! A node's scheduler at run time: its shared state, start and stop. The loops themselves live
//! in `worker` (claim, run, complete) and `upkeep` (heartbeats, rescue, cron, signals).
//!
//! Memory is bounded by construction: a node holds at most `capacity` running jobs plus
//! `prefetch` claimed ones, and claims only when a permit is free, so a backlog of any size
//! stays in the database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::{Mutex, RwLock};
use sea_orm::ConnectionTrait;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::handler::{Registry, Signal};
use super::store::{ClaimedJob, Fence};
use super::upkeep::{
    cancel_listener, cron_loop, heartbeat, heartbeat_loop, maintenance_loop, queue_listener,
    wake_listener,
};
use super::worker::{complete_loop, fetch_loop, run_loop, Done};
use super::{NodeSettings, Strategy};
use crate::platform::db::{sql, Db};
use crate::platform::events::EventBus;
use crate::platform::metrics::SchedulerMetrics;

/// How stale a queue's pause flag may be on this node.
const QUEUE_REFRESH: Duration = Duration::from_millis(500);

pub(super) struct InFlight {
    pub(super) queue: String,
    pub(super) signal: watch::Sender<Signal>,
    pub(super) claimed: Instant,
}

impl InFlight {
    /// Tells the handler to stop, unless it was already told (or lost its lease).
    pub(super) fn ask_to_cancel(&self) {
        self.signal.send_if_modified(|s| {
            let running = *s == Signal::Running;
            if running {
                *s = Signal::CancelRequested;
            }
            running
        });
    }
}

#[derive(Clone, Debug)]
pub(super) struct QueueState {
    pub(super) name: String,
    pub(super) paused: bool,
    pub(super) strategy: Strategy,
    pub(super) tag: Option<String>,
    pub(super) per_node: usize,
    pub(super) global: Option<usize>,
}

pub(crate) struct NodeShared {
    pub db: Db,
    pub bus: Arc<dyn EventBus>,
    pub settings: NodeSettings,
    pub registry: Registry,
    pub metrics: SchedulerMetrics,
    pub(super) wake: Notify,
    pub(super) room: Notify,
    /// Keyed by fence, not job id: a job rescued from this node may be claimed by it again
    /// while the stale attempt is still winding down.
    pub(super) in_flight: Mutex<HashMap<Fence, InFlight>>,
    pub(super) per_queue: Mutex<HashMap<String, usize>>,
    pub(super) buckets: RwLock<Vec<i32>>,
    pub(super) queues: RwLock<(Vec<QueueState>, Option<Instant>)>,
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
        if let Some(mut runner) = self.runner.take() {
            if tokio::time::timeout(drain + Duration::from_secs(1), &mut runner)
                .await
                .is_err()
            {
                // Aborting the runner drops its task set, which aborts the handlers still
                // running: their leases expire and other nodes rerun them.
                runner.abort();
                tracing::warn!("jobs still running after the drain were stopped");
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
pub(super) async fn eligible_queues(shared: &NodeShared) -> Vec<QueueState> {
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
