//! A node's scheduler at run time: start and stop. Its shared state lives in `node`, the loops
//! in `worker` (claim, run, complete) and `upkeep` (heartbeats, rescue, cron, signals).
//!
//! Memory is bounded by construction: a node holds at most `capacity` running jobs plus
//! `prefetch` claimed ones, and claims only when a permit is free, so a backlog of any size
//! stays in the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::handler::Registry;
use super::node::{sync_queues, NodeShared};
use super::store::ClaimedJob;
use super::upkeep::{
    cancel_listener, cron_loop, heartbeat, heartbeat_loop, maintenance_loop, queue_listener,
    wake_listener,
};
use super::worker::{complete_loop, fetch_loop, run_loop, Done};
use super::NodeSettings;
use crate::platform::db::{sql, Db};
use crate::platform::events::EventBus;
use crate::platform::metrics::SchedulerMetrics;

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
        Self(Arc::new(NodeShared::new(
            db, bus, settings, registry, metrics,
        )))
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
