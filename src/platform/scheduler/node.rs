//! What one node's loops share: its settings, registry, in-flight jobs, queue view and wake-ups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::{Mutex, RwLock};
use sea_orm::ConnectionTrait;
use tokio::sync::{watch, Notify};

use super::handler::{Registry, Signal};
use super::store::Fence;
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

impl NodeShared {
    pub(super) fn new(
        db: Db,
        bus: Arc<dyn EventBus>,
        settings: NodeSettings,
        registry: Registry,
        metrics: SchedulerMetrics,
    ) -> Self {
        Self {
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
        }
    }
}

pub(super) async fn sync_queues(shared: &NodeShared) -> anyhow::Result<()> {
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
