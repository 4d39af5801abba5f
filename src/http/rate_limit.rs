//! The per-client request budget in front of GraphQL: over it, HTTP answers 429 with
//! `Retry-After` before anything parses further or executes.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use crate::auth::Viewer;
use crate::error::retry_after_secs;
use crate::platform::rate_limit::ClientAddr;

/// The signed-in user wherever they connect from, a partner app across all its keys; an
/// anonymous caller by address.
pub(super) fn client_key(viewer: &Viewer, client: ClientAddr) -> String {
    match viewer {
        Viewer::User(user) => match &user.app {
            Some(app) => format!("app:{}", app.app_id),
            None => format!("user:{}", user.id),
        },
        Viewer::Anonymous => client.key(),
    }
}

/// Charges `cost` operations (a batch costs one per operation) to the client's bucket; the
/// wait until they would fit when they do not.
pub(super) async fn charge(state: &HttpState, key: &str, cost: usize) -> Result<(), Duration> {
    let Some(bucket) = &state.app.limiters.requests else {
        return Ok(());
    };
    let cost = u32::try_from(cost).unwrap_or(u32::MAX);
    bucket.take(key, cost).await.inspect_err(|_| {
        state
            .app
            .metrics
            .rate_limited
            .with_label_values(&["requests"])
            .inc();
    })
}

/// `429 Too Many Requests` with `Retry-After` (whole seconds, rounded up) and the same number
/// as `extensions.retryAfter` in the usual error body.
pub(super) fn too_many_requests(wait: Duration) -> Response {
    let secs = retry_after_secs(wait);
    let body = json!({ "errors": [{
        "message": "too many requests; slow down",
        "extensions": { "code": "RATE_LIMITED", "retryAfter": secs }
    }] });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The websocket's `error` message for a refused `subscribe`.
pub(super) fn refused_subscription(id: &str, wait: Duration) -> String {
    json!({
        "id": id,
        "type": "error",
        "payload": [{
            "message": "too many requests; slow down",
            "extensions": { "code": "RATE_LIMITED", "retryAfter": retry_after_secs(wait) }
        }]
    })
    .to_string()
}
