//! Webhooks at run time: the attempt job's handler, and the per-node loop that fans the event
//! log out into deliveries. Both are thin: the rules live in `service::delivery`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::model::webhooks::ATTEMPT_TIMEOUT;
use super::service::attempts::{self, Attempted, Step};
use super::service::delivery::{self, Round, SendWebhook, DISPATCH_BATCH};
use super::service::webhooks;
use crate::config::WebhooksConfig;
use crate::platform::db::Db;
use crate::platform::events::EventBus;
use crate::platform::outbound::Outbound;
use crate::platform::scheduler::{JobContext, JobError, JobHandler};
use crate::platform::work::write;

/// Sends one attempt of a delivery and records it with the job's completion.
pub struct SendWebhookHandler {
    pub db: Db,
    pub outbound: Outbound,
    pub settings: WebhooksConfig,
}

#[async_trait]
impl JobHandler for SendWebhookHandler {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let SendWebhook(args) = job.args::<SendWebhook>()?;
        let prepared = match attempts::prepare(&self.db.conn, &args).await? {
            Step::Nothing => return Ok(()),
            Step::Disabled(id) => {
                return write(&self.db, async |work| {
                    job.complete_in(work).await?;
                    webhooks::settle_disabled(work, id).await?;
                    Ok::<_, JobError>(())
                })
                .await;
            }
            Step::Send(prepared) => prepared,
        };
        let at = Utc::now();
        let headers = attempts::headers(&prepared, at.timestamp());
        let body = prepared.delivery.body.clone().into_bytes();
        let started = Instant::now();
        let post = self
            .outbound
            .post(&prepared.endpoint.url, &headers, body, ATTEMPT_TIMEOUT);
        // A cancelled job, or one whose lease was lost, stops waiting on a slow receiver.
        let result = tokio::select! {
            result = post => result,
            _ = job.cancelled() => return Err(JobError::Cancelled),
        };
        let attempted = Attempted::of(at, started.elapsed(), &result);
        write(&self.db, async |work| {
            job.complete_in(work).await?;
            attempts::record(work, &self.settings, &prepared, &args, attempted).await?;
            Ok::<_, JobError>(())
        })
        .await
    }
}

/// Fans the event log out into deliveries on this node, woken by every entry its bus carries
/// and by a poll; rounds on several nodes exclude each other (see `service::delivery`).
pub struct Dispatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Dispatcher {
    pub fn start(db: Db, bus: Arc<dyn EventBus>, settings: WebhooksConfig, poll: Duration) -> Self {
        Self {
            task: tokio::spawn(run(db, bus, settings, poll)),
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(db: Db, bus: Arc<dyn EventBus>, settings: WebhooksConfig, poll: Duration) {
    let mut live = bus.subscribe();
    loop {
        catch_up(&db, &settings).await;
        tokio::select! {
            received = live.recv() => {
                if matches!(received, Err(RecvError::Closed)) {
                    live = bus.subscribe();
                }
            }
            _ = tokio::time::sleep(poll) => {}
        }
        // Whatever else arrived meanwhile is read by the next round anyway.
        loop {
            match live.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => {
                    live = bus.subscribe();
                    break;
                }
            }
        }
    }
}

/// Rounds until the log is read as far as it can be for now.
async fn catch_up(db: &Db, settings: &WebhooksConfig) {
    for _ in 0..1_000 {
        let round = write(db, async |work| delivery::dispatch(work, settings).await).await;
        match round {
            Ok(Round::Read(read)) if read as u64 == DISPATCH_BATCH => {}
            Ok(Round::Read(_)) => return,
            Ok(Round::Raced) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(err) => {
                tracing::warn!(error = ?err, "fanning the event log out to webhooks failed");
                return;
            }
        }
    }
}
