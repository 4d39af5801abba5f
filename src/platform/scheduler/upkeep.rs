//! A node's upkeep: heartbeats and lease renewal, cancellation and queue signals, rescue of
//! expired leases, pruning, cron ticks and the PostgreSQL wake-up listener.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::ConnectionTrait;

use super::affinity::owned_buckets;
use super::cron::{due_slot, fire_slot, last_fired};
use super::handler::Signal;
use super::node::NodeShared;
use super::store::{self, Fence};
use super::{CancelRequested, JobChange, QueueChanged, WAKE_CHANNEL};
use crate::platform::db::sql;
use crate::platform::events::bus::signals;

pub(super) async fn heartbeat(shared: &NodeShared) -> anyhow::Result<()> {
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

pub(super) async fn heartbeat_loop(shared: Arc<NodeShared>) {
    let every = shared.settings.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let checked_at = Instant::now();
        if let Err(err) = heartbeat(&shared).await {
            tracing::warn!(error = ?err, "node heartbeat failed");
            continue;
        }
        let until = Utc::now() + shared.settings.lease;
        // Only what this node still tracks: a job it gave up on (after a failed write, say) is
        // left to expire and be rescued, not kept alive forever.
        let tracked: Vec<Fence> = shared.in_flight.lock().keys().copied().collect();
        let renewed =
            store::renew_leases(&shared.db.conn, &shared.settings.node_id, &tracked, until).await;
        let held = match renewed {
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
        for (fence, job) in shared.in_flight.lock().iter() {
            match held.get(fence) {
                Some(true) => {
                    job.ask_to_cancel();
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

pub(super) async fn cancel_listener(shared: Arc<NodeShared>) {
    let mut requests = Box::pin(signals::<CancelRequested>(shared.bus.as_ref()));
    while let Some(CancelRequested { job_id }) = requests.next().await {
        let in_flight = shared.in_flight.lock();
        for (_, job) in in_flight.iter().filter(|(f, _)| f.job_id == job_id) {
            job.ask_to_cancel();
        }
    }
}

pub(super) async fn queue_listener(shared: Arc<NodeShared>) {
    let mut changes = Box::pin(signals::<QueueChanged>(shared.bus.as_ref()));
    while changes.next().await.is_some() {
        shared.queues.write().1 = None;
        shared.wake.notify_one();
    }
}

pub(super) async fn maintenance_loop(shared: Arc<NodeShared>) {
    let every = (shared.settings.lease / 4).max(Duration::from_millis(100));
    let mut last_prune = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match store::rescue_expired(&shared.db.conn).await {
            Ok(rescued) if !rescued.is_empty() => {
                tracing::warn!(count = rescued.len(), "rescued jobs whose lease expired");
                for job in rescued.iter().filter(|r| r.state.is_finished()) {
                    shared
                        .registry
                        .notify_given_up(
                            &job.kind,
                            &job.args,
                            "lease expired with no attempts left",
                        )
                        .await;
                }
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
                store::announce(&shared.db, changes).await;
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
    // Bounded batches, as many as it takes, so a busy cluster's history cannot outgrow pruning.
    for _ in 0..1000 {
        match store::prune_finished(&shared.db.conn, before).await {
            Ok(deleted) if deleted == store::PRUNE_BATCH => continue,
            Ok(_) => break,
            Err(err) => {
                tracing::warn!(error = %err, "pruning finished jobs failed");
                break;
            }
        }
    }
    let db = &shared.db.conn;
    for statement in [
        // A schedule's newest slot stays: it is how the schedule knows what already fired.
        "DELETE FROM cron_fires WHERE fired_at < $1 AND slot < \
         (SELECT MAX(f.slot) FROM cron_fires f WHERE f.schedule = cron_fires.schedule)",
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

pub(super) async fn cron_loop(shared: Arc<NodeShared>) {
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
pub(super) async fn wake_listener(shared: Arc<NodeShared>) {
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
