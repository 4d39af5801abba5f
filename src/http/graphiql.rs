//! The offline query page at `/graphiql`: a hand-written page and module embedded in the
//! binary, so it works on a machine with no internet (GraphiQL itself loads React from a CDN).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::HttpState;

const PAGE: &str = include_str!("graphiql/index.html");
const SCRIPT: &str = include_str!("graphiql/app.js");
const STYLE: &str = include_str!("graphiql/style.css");

/// Only this server: the page loads its own script and style and talks to `/graphql`.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn asset(state: &HttpState, content_type: &'static str, body: &'static str) -> Response {
    if !state.app.config.dev_tools_enabled() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn page(State(state): State<HttpState>) -> Response {
    asset(&state, "text/html; charset=utf-8", PAGE)
}

pub async fn script(State(state): State<HttpState>) -> Response {
    asset(&state, "text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style(State(state): State<HttpState>) -> Response {
    asset(&state, "text/css; charset=utf-8", STYLE)
}
