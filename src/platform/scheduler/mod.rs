//! The durable job scheduler: jobs as database rows, claimed under leases fenced by the attempt
//! number, retried with backoff, fired by cron, and spread over nodes by per-queue strategy.
//!
//! The database is the system of record; Redis (through the event bus) only carries job events
//! and cancellation signals, and PostgreSQL `NOTIFY` wakes idle nodes. A lost wake-up or event
//! costs latency, never a job: every node also polls.

pub mod admin;
mod affinity;
mod cron;
mod enqueue;
mod handler;
mod kind;
mod node;
mod runtime;
mod store;
mod upkeep;
mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use affinity::{bucket_of, owned_buckets, BUCKETS};
pub use cron::{
    claim_slot, due_slot, fire_slot, last_fired, parse_cron, CronSchedule, MissedSlots,
};
pub use enqueue::{
    enqueue, enqueue_in, enqueue_many, EnqueueError, Enqueued, NewJob, MAX_ARGS_BYTES,
};
pub use handler::{JobContext, JobError, JobHandler, KindSpec, Registry};
pub use kind::{no_arguments, JobKind, MAINTENANCE_QUEUE};
pub use runtime::{Scheduler, SchedulerHandle};
pub use store::{
    claim, complete_fenced, fail, rescue_expired, Claim, ClaimedJob, Failure, Fence, LeaseLost,
};

/// The PostgreSQL channel that wakes idle nodes when a job commits.
pub const WAKE_CHANNEL: &str = "interlink_jobs";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Waiting for its `run_at`.
    Scheduled,
    Available,
    Running,
    /// Failed; waits for its backoff to pass.
    Retryable,
    Completed,
    /// Out of attempts (or failed permanently): the dead-letter state.
    Discarded,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        Self::Scheduled,
        Self::Available,
        Self::Running,
        Self::Retryable,
        Self::Completed,
        Self::Discarded,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Available => "AVAILABLE",
            Self::Running => "RUNNING",
            Self::Retryable => "RETRYABLE",
            Self::Completed => "COMPLETED",
            Self::Discarded => "DISCARDED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Discarded | Self::Cancelled)
    }
}

/// Which nodes may run a queue's jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    /// Any live node pulls.
    Any,
    /// Only nodes carrying the queue's tag.
    Tagged,
    /// Jobs with the same affinity key go to the same live node (rendezvous hashing).
    KeyAffinity,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "ANY",
            Self::Tagged => "TAGGED",
            Self::KeyAffinity => "KEY_AFFINITY",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Any, Self::Tagged, Self::KeyAffinity]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A queue as the code declares it. Its row is created on start; the paused flag (and any
/// operator change to the limits) lives in the row, so it holds across nodes and restarts.
#[derive(Clone, Debug)]
pub struct QueueSpec {
    pub name: String,
    pub strategy: Strategy,
    pub tag: Option<String>,
    pub per_node_concurrency: u32,
    pub global_concurrency: Option<u32>,
}

impl QueueSpec {
    pub fn any(name: &str, per_node_concurrency: u32) -> Self {
        Self {
            name: name.to_owned(),
            strategy: Strategy::Any,
            tag: None,
            per_node_concurrency,
            global_concurrency: None,
        }
    }
}

/// How this node takes part.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub node_id: String,
    pub tags: Vec<String>,
    /// Jobs this node runs at once.
    pub capacity: usize,
    /// Jobs claimed ahead of a free worker; they hold a lease while they wait.
    pub prefetch: usize,
    /// How long a claim lasts without a heartbeat. Heartbeats run at a third of it.
    pub lease: Duration,
    /// The safety-net poll when no wake-up arrives.
    pub poll_interval: Duration,
    pub cron_tick: Duration,
    /// Finished jobs are deleted after this long.
    pub retention: Duration,
    /// Most jobs one claim statement takes.
    pub claim_batch: usize,
}

impl NodeSettings {
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            tags: Vec::new(),
            capacity: 16,
            prefetch: 16,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            cron_tick: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
            claim_batch: 100,
        }
    }

    /// A node's default id: unique per process, readable in the `nodes` list.
    pub fn default_node_id() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".to_owned());
        let suffix = Uuid::now_v7().simple().to_string();
        format!(
            "{host}-{}-{}",
            std::process::id(),
            &suffix[suffix.len() - 6..]
        )
    }
}

/// A job's change of state or progress, as published on the bus.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobChange {
    pub job_id: Uuid,
    pub queue: String,
    pub kind: String,
    pub state: JobState,
    pub attempt: i32,
    pub progress: i32,
    pub message: Option<String>,
    pub node: Option<String>,
}

/// Job changes travel in batches: one bus message per claim or completion batch, not per job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobChanges(pub Vec<JobChange>);

impl crate::platform::events::Event for JobChanges {
    const TOPIC: &'static str = "jobs";

    fn head(&self) -> crate::platform::events::EventHead {
        let single = match self.0.as_slice() {
            [change] => Some(change.job_id),
            _ => None,
        };
        let mut queues: Vec<&str> = self.0.iter().map(|c| c.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        crate::platform::events::EventHead {
            kind: "JOB_CHANGES".to_owned(),
            subject_kind: "job",
            subject_id: single,
            actor_id: None,
            audience: serde_json::json!({ "queues": queues }),
        }
    }
}

/// Asks whichever node runs a job to cancel it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelRequested {
    pub job_id: Uuid,
}

impl crate::platform::events::bus::SignalKind for CancelRequested {
    const TOPIC: &'static str = "scheduler.cancel";
}

/// A queue was paused, resumed or reconfigured: nodes re-read queue settings now rather than
/// at their next refresh.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueChanged {
    pub queue: String,
}

impl crate::platform::events::bus::SignalKind for QueueChanged {
    const TOPIC: &'static str = "scheduler.queue";
}

/// Retry delay after `attempt` failures: exponential from `base`, capped at an hour, with
/// ±25 % jitter so a burst of failures does not retry in lockstep.
pub fn backoff(base: Duration, attempt: i32, jitter: f64) -> Duration {
    let exponent = attempt.clamp(1, 30) as u32 - 1;
    let raw = base.as_secs_f64() * 2f64.powi(exponent as i32);
    let capped = raw.min(3600.0);
    let factor = 1.0 + (jitter.clamp(-1.0, 1.0) * 0.25);
    Duration::from_secs_f64((capped * factor).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_know_when_they_are_final() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert!(JobState::Discarded.is_finished());
        assert!(!JobState::Retryable.is_finished());
        assert_eq!(JobState::parse("running"), None);
    }

    #[test]
    fn backoff_doubles_is_capped_and_jitters_within_a_quarter() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(base, 4, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(base, 30, 0.0), Duration::from_secs(3600));
        assert_eq!(backoff(base, 3, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(base, 3, -1.0), Duration::from_secs(3));
    }
}
