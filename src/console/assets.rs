//! The console's one style sheet and one script module, embedded in the binary.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub const STYLE_PATH: &str = "/console/assets/console.css";
pub const SCRIPT_PATH: &str = "/console/assets/console.js";

const STYLE: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// Validators for the embedded files: a browser revalidates and gets 304 until the binary
/// changes, so pages after the first cost only their HTML.
static STYLE_TAG: LazyLock<String> = LazyLock::new(|| tag_of(STYLE));
static SCRIPT_TAG: LazyLock<String> = LazyLock::new(|| tag_of(SCRIPT));

fn tag_of(body: &str) -> String {
    format!("\"{:08x}\"", crc32fast::hash(body.as_bytes()))
}

fn asset(
    headers: &HeaderMap,
    tag: &str,
    content_type: &'static str,
    body: &'static str,
) -> Response {
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = body.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    response
}

pub async fn style(headers: HeaderMap) -> Response {
    asset(&headers, &STYLE_TAG, "text/css; charset=utf-8", STYLE)
}

pub async fn script(headers: HeaderMap) -> Response {
    asset(
        &headers,
        &SCRIPT_TAG,
        "text/javascript; charset=utf-8",
        SCRIPT,
    )
}
