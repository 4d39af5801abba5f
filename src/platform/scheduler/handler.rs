//! What a job kind is: its handler, its queue and its retry policy, and the context a handler
//! runs in (arguments, progress, cancellation, lease loss).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use uuid::Uuid;

use super::enqueue::NewJob;
use super::kind::JobKind;
use super::store::{announce, record_progress, Fence};
use super::{CronSchedule, JobChange, JobState, QueueSpec};
use crate::platform::db::Db;

#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &JobContext) -> Result<(), JobError>;

    /// Called once a job of this kind ends without succeeding (dead-lettered, or cancelled),
    /// however that came about: a failed last attempt, a timeout, a rescue with no attempts
    /// left, or an operator. Work that waits on the job can be failed here.
    async fn given_up(&self, _args: &serde_json::Value, _reason: &str) {}
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Try again after a backoff, until attempts run out.
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help: straight to the dead letters.
    #[error("{0}")]
    Discard(String),
    /// The handler saw a cancellation request and stopped.
    #[error("cancelled")]
    Cancelled,
    /// The handler learned it no longer holds the lease; its result would be refused.
    #[error("lease lost")]
    LeaseLost,
}

impl From<anyhow::Error> for JobError {
    fn from(err: anyhow::Error) -> Self {
        Self::Retry(format!("{err:#}"))
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Retry(format!("database: {err}"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    Running,
    CancelRequested,
    LeaseLost,
}

/// A kind's registration.
#[derive(Clone, Debug)]
pub struct KindSpec {
    pub kind: String,
    pub queue: String,
    pub max_attempts: i32,
    /// An attempt that runs longer fails (and retries).
    pub timeout: Duration,
    pub backoff_base: Duration,
    /// Whether an operator may enqueue it by hand through the API.
    pub operator_enqueue: bool,
    /// Checked (JSON Schema) when an operator enqueues the kind by hand.
    pub args_schema: Option<serde_json::Value>,
    pub description: String,
}

impl KindSpec {
    pub fn new(kind: &str, queue: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            queue: queue.to_owned(),
            max_attempts: 5,
            timeout: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            operator_enqueue: false,
            args_schema: None,
            description: String::new(),
        }
    }

    /// A job of this kind with arguments given as JSON (an operator's): queue and attempts
    /// come from the registration.
    pub fn job(&self, args: serde_json::Value) -> NewJob {
        NewJob::new(&self.queue, &self.kind, args).max_attempts(self.max_attempts)
    }
}

/// Everything a node knows how to run: queues, kinds with their handlers, cron schedules.
#[derive(Default, Clone)]
pub struct Registry {
    pub(super) queues: Vec<QueueSpec>,
    pub(super) kinds: HashMap<String, (KindSpec, Arc<dyn JobHandler>)>,
    pub(super) schedules: Vec<CronSchedule>,
}

impl Registry {
    pub fn queue(mut self, spec: QueueSpec) -> Self {
        self.queues.retain(|q| q.name != spec.name);
        self.queues.push(spec);
        self
    }

    pub fn kind(mut self, spec: KindSpec, handler: impl JobHandler) -> Self {
        self.kinds
            .insert(spec.kind.clone(), (spec, Arc::new(handler)));
        self
    }

    /// Registers a declared kind: its registration is derived from the declaration.
    pub fn job<K: JobKind>(self, handler: impl JobHandler) -> Self {
        self.kind(K::spec(), handler)
    }

    pub fn schedule(mut self, schedule: CronSchedule) -> Self {
        self.schedules.push(schedule);
        self
    }

    pub fn kind_spec(&self, kind: &str) -> Option<&KindSpec> {
        self.kinds.get(kind).map(|(spec, _)| spec)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &KindSpec> {
        self.kinds.values().map(|(spec, _)| spec)
    }

    pub fn queues(&self) -> &[QueueSpec] {
        &self.queues
    }

    /// Tells a kind's handler that one of its jobs was given up.
    pub async fn notify_given_up(&self, kind: &str, args: &serde_json::Value, reason: &str) {
        if let Some((_, handler)) = self.kinds.get(kind) {
            handler.given_up(args, reason).await;
        }
    }

    pub(super) fn handler(&self, kind: &str) -> Option<(&KindSpec, Arc<dyn JobHandler>)> {
        self.kinds.get(kind).map(|(spec, h)| (spec, h.clone()))
    }
}

/// One attempt of one job, as its handler sees it.
pub struct JobContext {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    pub args: serde_json::Value,
    pub attempt: i32,
    pub max_attempts: i32,
    pub(super) db: Db,
    pub(super) node_id: Arc<str>,
    pub(super) signal: watch::Receiver<Signal>,
    /// Set once the handler completed the attempt inside its own unit of work.
    pub(super) completed_in_work: std::sync::atomic::AtomicBool,
}

impl JobContext {
    /// Completes this attempt inside `work`, fenced like every completion: the job is done
    /// exactly when the handler's effect commits, never one without the other. `LeaseLost`
    /// when another attempt owns the job now (the work must then not commit).
    pub async fn complete_in(&self, work: &crate::platform::work::Work) -> Result<(), JobError> {
        let fence = Fence {
            job_id: self.id,
            attempt: self.attempt,
        };
        match super::store::complete_fenced(work, &self.node_id, fence).await? {
            Ok(()) => {
                self.completed_in_work
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(_) => Err(JobError::LeaseLost),
        }
    }

    pub fn args<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.args.clone())
            .map_err(|e| JobError::Discard(format!("arguments do not fit {}: {e}", self.kind)))
    }

    /// Whether an operator asked to cancel this job (or the lease was lost).
    pub fn is_cancelled(&self) -> bool {
        *self.signal.borrow() != Signal::Running
    }

    /// Resolves once the job should stop: cancellation was requested or the lease was lost.
    pub async fn cancelled(&self) {
        let mut signal = self.signal.clone();
        let _ = signal.wait_for(|s| *s != Signal::Running).await;
    }

    /// Records progress (0–100) and publishes it live. `LeaseLost` means stop: the job
    /// belongs to another attempt now.
    pub async fn progress(&self, percent: i32, message: &str) -> Result<(), JobError> {
        let fence = Fence {
            job_id: self.id,
            attempt: self.attempt,
        };
        let db = &self.db.conn;
        match record_progress(db, &self.node_id, fence, percent, Some(message)).await? {
            Ok(()) => {
                let change = JobChange {
                    job_id: self.id,
                    queue: self.queue.clone(),
                    kind: self.kind.clone(),
                    state: JobState::Running,
                    attempt: self.attempt,
                    progress: percent.clamp(0, 100),
                    message: Some(message.to_owned()),
                    node: Some(self.node_id.to_string()),
                };
                announce(&self.db, vec![change]).await;
                Ok(())
            }
            Err(_) => Err(JobError::LeaseLost),
        }
    }
}
