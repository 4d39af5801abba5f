//! Error bodies at the HTTP level, shaped like GraphQL errors so clients parse one format.

use std::any::Any;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(error_body(code, message))).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What a client that is told to come back later waits, in seconds.
pub const RETRY_AFTER: HeaderValue = HeaderValue::from_static("1");

/// The database is out of reach: 503 with `Retry-After`; the code stays `INTERNAL` (the client
/// did nothing wrong, and there is nothing for it to fix).
pub fn unavailable_response() -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "INTERNAL",
        "internal error",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, RETRY_AFTER);
    response
}

/// Layers (body limit, timeout, routing) answer with bare statuses; clients get the same
/// JSON error shape from them as from everything else.
pub async fn json_for_bare_statuses<B>(response: axum::http::Response<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = response.map(Body::new);
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return response;
    }
    let (code, message) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("BAD_USER_INPUT", "request body is larger than the limit")
        }
        StatusCode::REQUEST_TIMEOUT => ("INTERNAL", "request timed out"),
        StatusCode::METHOD_NOT_ALLOWED => ("BAD_USER_INPUT", "method not allowed"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("BAD_USER_INPUT", "unsupported content type"),
        _ => return response,
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(error_body(code, message).to_string()))
}

/// A panic becomes a logged 500 with the usual error body; the node keeps serving.
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

/// How much of a refused body is read and thrown away before answering, so the client is
/// still listening for the 413 (closing on unread data would reset the connection first).
pub const DRAIN_CAP: usize = 2 * 1024 * 1024;

/// Reads and discards up to `DRAIN_CAP` bytes of a body that will not be used.
pub async fn drain(body: Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    while seen < DRAIN_CAP {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

/// A body whose declared length is over the limit is refused before any handler runs.
pub async fn refuse_declared_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        drain(request.into_body()).await;
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_USER_INPUT",
            "request body is larger than the limit",
        );
    }
    next.run(request).await
}
