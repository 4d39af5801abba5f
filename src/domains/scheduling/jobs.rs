//! Webhook delivery: POST a JSON payload to a URL, retried with backoff until it is accepted.

use async_trait::async_trait;
use serde::Deserialize;

use crate::platform::delivery::{post_json, DeliveryError};
use crate::platform::scheduler::{JobContext, JobError, JobHandler};

pub const WEBHOOK_DELIVERY: &str = "webhook.deliver";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookArgs {
    url: String,
    payload: serde_json::Value,
}

/// The arguments an operator must give, checked before the job is accepted.
pub fn webhook_args_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["url", "payload"],
        "additionalProperties": false,
        "properties": {
            "url": { "type": "string", "pattern": "^https?://", "maxLength": 2048 },
            "payload": {}
        }
    })
}

pub struct WebhookDelivery {
    pub http: reqwest::Client,
}

#[async_trait]
impl JobHandler for WebhookDelivery {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: WebhookArgs = job.args()?;
        let key = job.id.to_string();
        let delivery = post_json(&self.http, &args.url, &args.payload, &key);
        // A cancelled delivery stops waiting on a slow receiver.
        tokio::select! {
            result = delivery => match result {
                Ok(status) => job.progress(100, &format!("delivered: HTTP {status}")).await,
                Err(DeliveryError::Retryable(m)) => Err(JobError::Retry(m)),
                Err(DeliveryError::Permanent(m)) => Err(JobError::Discard(m)),
            },
            _ = job.cancelled() => Err(JobError::Cancelled),
        }
    }
}
