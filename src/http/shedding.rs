//! Load shedding: a bounded number of HTTP requests run at once, and one that cannot start
//! within a short wait is answered 503 with `Retry-After` instead of joining a pile-up.
//!
//! A semaphore rather than tower's `ConcurrencyLimit` + `LoadShed`: those shed at once when no
//! slot is free (no wait at all, so a burst of a few milliseconds is refused), or wait without
//! a bound; what is wanted is a short, bounded wait in line.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use super::errors::{drain, error_response, RETRY_AFTER};

#[derive(Clone)]
pub struct Shedder {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
}

impl Shedder {
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            queue_timeout,
        }
    }
}

/// How long a shed request's unread body is read and thrown away for, so the client hears the
/// 503 rather than a reset connection.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

pub async fn shed(State(shedder): State<Shedder>, request: Request, next: Next) -> Response {
    // Websockets are long-lived and have caps of their own (see `ws`).
    if super::is_websocket_upgrade(request.headers()) {
        return next.run(request).await;
    }
    let waited = tokio::time::timeout(shedder.queue_timeout, shedder.permits.acquire_owned()).await;
    match waited {
        Ok(Ok(_permit)) => next.run(request).await,
        _ => {
            let _ = tokio::time::timeout(DRAIN_WAIT, drain(request.into_body())).await;
            let mut response = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the server is busy; try again shortly",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER);
            response
        }
    }
}
