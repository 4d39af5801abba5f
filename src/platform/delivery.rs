//! Delivering JSON to another system through [`Outbound`], for jobs: which failures are worth a
//! retry.

use std::time::Duration;

use super::outbound::{Outbound, OutboundError};

/// One attempt may take this long; the job's lease outlives it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver may accept later: network errors, timeouts, 429 and 5xx.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: a bad or refused URL, a redirect or another 4xx answer.
    #[error("{0}")]
    Permanent(String),
}

/// POSTs `body` with an `Idempotency-Key` header, so a receiver can drop the duplicates that
/// at-least-once delivery may bring. Returns the status on 2xx.
pub async fn post_json(
    outbound: &Outbound,
    url: &str,
    body: &serde_json::Value,
    idempotency_key: &str,
) -> Result<u16, DeliveryError> {
    let bytes = serde_json::to_vec(body).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("idempotency-key", idempotency_key.to_owned()),
    ];
    let response = outbound
        .post(url, &headers, bytes, ATTEMPT_TIMEOUT)
        .await
        .map_err(|err| match err {
            OutboundError::Refused(m) => DeliveryError::Permanent(m),
            OutboundError::Timeout | OutboundError::Network(_) => {
                DeliveryError::Retryable(format!("delivery failed: {err}"))
            }
        })?;
    let status = response.status;
    if (200..300).contains(&status) {
        Ok(status)
    } else if status == 429 || status >= 500 {
        Err(DeliveryError::Retryable(format!(
            "receiver answered {status}"
        )))
    } else if (300..400).contains(&status) {
        Err(DeliveryError::Permanent(format!(
            "receiver answered {status}; redirects are not followed"
        )))
    } else {
        Err(DeliveryError::Permanent(format!(
            "receiver answered {status}"
        )))
    }
}
