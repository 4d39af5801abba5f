//! Webhook delivery: POST a JSON payload to a URL, retried with backoff until it is accepted.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domains::business::service::DELIVERY_QUEUE;
use crate::platform::delivery::{post_json, DeliveryError};
use crate::platform::outbound::Outbound;
use crate::platform::scheduler::{JobContext, JobError, JobHandler, JobKind};

pub const WEBHOOK_DELIVERY: &str = WebhookArgs::KIND;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookArgs {
    pub url: String,
    pub payload: serde_json::Value,
}

impl JobKind for WebhookArgs {
    const KIND: &'static str = "webhook.deliver";
    const QUEUE: &'static str = DELIVERY_QUEUE;
    const MAX_ATTEMPTS: i32 = 8;
    const TIMEOUT: Duration = Duration::from_secs(60);
    const BACKOFF_BASE: Duration = Duration::from_secs(2);
    const DESCRIPTION: &'static str = "POSTs a JSON payload to a URL until it is accepted";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(webhook_args_schema())
    }
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
    pub outbound: Outbound,
}

#[async_trait]
impl JobHandler for WebhookDelivery {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args = job.args::<WebhookArgs>()?;
        let key = job.id.to_string();
        let delivery = post_json(&self.outbound, &args.url, &args.payload, &key);
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
