//! PLACEHOLDER for the `outbound` branch's SSRF-safe client (same public API); replaced on merge.

use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
}

pub struct OutboundResponse {
    pub status: u16,
    pub body: bytes::Bytes,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Refused(String),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Network(String),
}

impl OutboundError {
    pub fn public_reason(&self) -> String {
        match self {
            Self::Refused(m) => m.clone(),
            Self::Timeout => "timed out".into(),
            Self::Network(_) => "could not connect".into(),
        }
    }
}

impl Outbound {
    pub fn new_placeholder() -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()?,
        })
    }

    pub async fn vet(&self, raw: &str) -> Result<reqwest::Url, String> {
        crate::platform::delivery::check_url(raw)
    }

    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<OutboundResponse, OutboundError> {
        let url = self.vet(url).await.map_err(OutboundError::Refused)?;
        let started = Instant::now();
        let mut request = self.client.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                OutboundError::Timeout
            } else {
                OutboundError::Network(e.to_string())
            }
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        Ok(OutboundResponse {
            status,
            body,
            elapsed: started.elapsed(),
        })
    }
}
