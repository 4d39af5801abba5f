//! A node's job flow: the fetcher claims within its bounds, the runner starts handlers on free
//! workers, and the completer records finished jobs in batches.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use sea_orm::TransactionTrait;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::handler::{JobContext, JobError, Signal};
use super::node::{eligible_queues, InFlight, NodeShared, QueueState};
use super::store::{self, Claim, ClaimedJob, Failure, Fence};
use super::{backoff, JobChange, JobState, Strategy};
use crate::platform::db::lock_in_transaction;

/// Jobs one completion statement records.
const COMPLETION_BATCH: usize = 500;

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

pub(super) async fn fetch_loop(
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
            _ = shared.db.commits().jobs.notified(), if !full => {}
            // A completion frees room in the node and in a queue's per-node limit alike.
            _ = shared.room.notified() => {}
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
            fence_of(job),
            InFlight {
                queue: job.queue.clone(),
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
    store::announce(&shared.db, changes).await;
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        // Only this loop takes permits and it counted them before claiming, so one is free.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match permits.clone().acquire_owned().await {
                Ok(permit) => permit,
                Err(_) => {
                    release(shared, std::iter::once(job).chain(jobs).collect()).await;
                    return;
                }
            },
        };
        if let Err(unsent) = claimed.send((job, permit)).await {
            let (job, _) = unsent.0;
            release(shared, std::iter::once(job).chain(jobs).collect()).await;
            return;
        }
    }
}

pub(super) fn fence_of(job: &ClaimedJob) -> Fence {
    Fence {
        job_id: job.id,
        attempt: job.attempt,
    }
}

/// Gives claimed jobs that will not run here back to the queue at once.
async fn release(shared: &NodeShared, jobs: Vec<ClaimedJob>) {
    if jobs.is_empty() {
        return;
    }
    let fences: Vec<Fence> = jobs.iter().map(fence_of).collect();
    match store::release_unstarted(&shared.db.conn, &shared.settings.node_id, &fences).await {
        Ok(_) => {
            for job in &jobs {
                forget(shared, fence_of(job));
            }
        }
        // Left in the books, heartbeats keep them; the next stop releases them, and if this
        // node dies they are rescued after the lease.
        Err(err) => tracing::warn!(error = %err, "releasing unstarted jobs failed"),
    }
}

pub(super) fn change_of(job: &ClaimedJob, state: JobState, node: Option<&str>) -> JobChange {
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

/// A finished handler's result, waiting to be recorded by the completer.
pub(super) struct Done {
    job: ClaimedJob,
    /// The handler completed the job in its own unit of work: nothing is left to record.
    recorded: bool,
    _permit: OwnedSemaphorePermit,
}

pub(super) async fn run_loop(
    shared: Arc<NodeShared>,
    mut claimed: mpsc::Receiver<(ClaimedJob, OwnedSemaphorePermit)>,
    done: mpsc::Sender<Done>,
    mut stop: watch::Receiver<bool>,
) {
    let workers = Arc::new(Semaphore::new(shared.settings.capacity.max(1)));
    let mut running = JoinSet::new();
    let mut unstarted = Vec::new();
    let mut stopping = false;
    // Reads until the fetcher has stopped and dropped its sender, so a claim in flight at
    // shutdown is released rather than lost; once stopping, nothing new starts.
    loop {
        let next = if stopping {
            claimed.recv().await
        } else {
            tokio::select! {
                next = claimed.recv() => next,
                _ = stop.changed() => {
                    stopping = true;
                    continue;
                }
            }
        };
        let Some((job, permit)) = next else { break };
        if stopping {
            unstarted.push(job);
            continue;
        }
        let worker = tokio::select! {
            worker = workers.clone().acquire_owned() => worker,
            _ = stop.changed() => {
                stopping = true;
                unstarted.push(job);
                continue;
            }
        };
        let Ok(worker) = worker else { break };
        let shared = shared.clone();
        let done = done.clone();
        running.spawn(async move {
            execute(&shared, job, permit, done).await;
            drop(worker);
        });
        while let Some(finished) = running.try_join_next() {
            if let Err(err) = finished {
                tracing::error!(error = %err, "a job task failed");
            }
        }
    }
    release(&shared, unstarted).await;
    while running.join_next().await.is_some() {}
}

fn queue_paused(shared: &NodeShared, queue: &str) -> bool {
    shared
        .queues
        .read()
        .0
        .iter()
        .any(|q| q.name == queue && q.paused)
}

async fn execute(
    shared: &Arc<NodeShared>,
    job: ClaimedJob,
    permit: OwnedSemaphorePermit,
    done: mpsc::Sender<Done>,
) {
    let tracked = shared
        .in_flight
        .lock()
        .get(&fence_of(&job))
        .map(|entry| entry.signal.subscribe());
    let signal = match tracked {
        Some(signal) => signal,
        None => {
            tracing::error!(job = %job.id, "a claimed job is missing from the node's books; releasing it");
            release(shared, vec![job]).await;
            return;
        }
    };
    // Prefetched before an operator paused the queue: give it back instead of starting it.
    if queue_paused(shared, &job.queue) {
        release(shared, vec![job]).await;
        drop(permit);
        shared.room.notify_one();
        return;
    }
    let started = Instant::now();
    let mut recorded = false;
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
                db: shared.db.clone(),
                node_id: shared.settings.node_id.as_str().into(),
                signal,
                completed_in_work: std::sync::atomic::AtomicBool::new(false),
            };
            if context.is_cancelled() {
                Err(JobError::Cancelled)
            } else {
                // A panicking handler fails its attempt; it must not take the node's
                // bookkeeping (or the job's lease) down with it.
                let run = std::panic::AssertUnwindSafe(handler.run(&context)).catch_unwind();
                let result = match tokio::time::timeout(spec.timeout, run).await {
                    Ok(Ok(result)) => result,
                    Ok(Err(_)) => Err(JobError::Retry("the handler panicked".into())),
                    Err(_) => Err(JobError::Retry(format!(
                        "timed out after {:?}",
                        spec.timeout
                    ))),
                };
                recorded = context
                    .completed_in_work
                    .load(std::sync::atomic::Ordering::SeqCst);
                result
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
                    recorded,
                    _permit: permit,
                })
                .await;
        }
        Err(JobError::LeaseLost) => {
            tracing::info!(job = %job.id, attempt = job.attempt, "job lost its lease; its result is dropped");
            forget(shared, fence_of(&job));
            drop(permit);
            shared.room.notify_one();
        }
        Err(error) => {
            record_failure(shared, &job, error).await;
            forget(shared, fence_of(&job));
            drop(permit);
            shared.room.notify_one();
        }
    }
}

async fn record_failure(shared: &NodeShared, job: &ClaimedJob, error: JobError) {
    let cancel_requested = shared
        .in_flight
        .lock()
        .get(&fence_of(job))
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
            if next.is_finished() {
                shared
                    .registry
                    .notify_given_up(&job.kind, &job.args, &message)
                    .await;
            }
            let mut change = change_of(job, next, Some(&shared.settings.node_id));
            change.message = Some(message);
            store::announce(&shared.db, vec![change]).await;
        }
        Ok(Err(lost)) => tracing::info!(%lost, "failure not recorded: lease lost"),
        Err(err) => {
            tracing::warn!(job = %job.id, error = %err, "recording a failure failed; the lease will expire")
        }
    }
}

/// Drops one attempt from this node's books.
fn forget(shared: &NodeShared, fence: Fence) {
    let Some(entry) = shared.in_flight.lock().remove(&fence) else {
        return;
    };
    if let Some(count) = shared.per_queue.lock().get_mut(&entry.queue) {
        *count = count.saturating_sub(1);
    }
    shared
        .metrics
        .running
        .with_label_values(&[&entry.queue])
        .dec();
}

pub(super) async fn complete_loop(shared: Arc<NodeShared>, mut done: mpsc::Receiver<Done>) {
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
            .filter(|d| !d.recorded)
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
            if item.recorded || accepted.contains(&item.job.id) {
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
            forget(&shared, fence_of(&item.job));
        }
        shared.room.notify_one();
        store::announce(&shared.db, changes).await;
    }
}
