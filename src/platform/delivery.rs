//! Delivering JSON to another system over HTTP, for jobs: which failures are worth a retry.

use std::time::Duration;

/// One attempt may take this long; the job's lease outlives it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The receiver may accept later: network errors, timeouts, 429 and 5xx.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: a bad URL or a 4xx answer.
    #[error("{0}")]
    Permanent(String),
}

/// An HTTP client for deliveries: bounded time, no redirects (a redirect could point anywhere).
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("interlink/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// Only absolute http(s) URLs are delivered to.
pub fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("only http and https URLs with a host are delivered to".into());
    }
    Ok(url)
}

/// POSTs `body` with an `Idempotency-Key` header, so a receiver can drop the duplicates that
/// at-least-once delivery may bring. Returns the status on 2xx.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    idempotency_key: &str,
) -> Result<u16, DeliveryError> {
    let url = check_url(url).map_err(DeliveryError::Permanent)?;
    let response = client
        .post(url)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .map_err(|e| DeliveryError::Retryable(format!("delivery failed: {e}")))?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else if status.as_u16() == 429 || status.is_server_error() {
        Err(DeliveryError::Retryable(format!(
            "receiver answered {status}"
        )))
    } else {
        Err(DeliveryError::Permanent(format!(
            "receiver answered {status}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_pass() {
        assert!(check_url("https://partner.example/hook").is_ok());
        assert!(check_url("http://127.0.0.1:9000/x").is_ok());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("ftp://x/y").is_err());
        assert!(check_url("not a url").is_err());
    }
}
