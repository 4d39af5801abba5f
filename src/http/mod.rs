//! The HTTP edge: routes, body and time limits, request ids, tracing and metrics.

mod client;
mod errors;
pub(crate) mod export;
mod files;
mod graphiql;
mod graphql;
mod health;
mod multipart;
mod operation;
mod rate_limit;
mod shedding;
mod ws;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{schema_builder, AppSchema, Callers};
use crate::app::AppState;

pub use client::client_addr;
pub use errors::error_body;

impl axum::extract::FromRef<HttpState> for AppState {
    fn from_ref(state: &HttpState) -> Self {
        state.app.clone()
    }
}

#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    /// For partner apps and websockets: checks every field against the app's scopes.
    pub schema: AppSchema,
    /// For people and anonymous requests over HTTP (see `api::Callers`).
    pub people_schema: AppSchema,
}

impl HttpState {
    /// The schema instance that serves `viewer`.
    pub fn schema_for(&self, viewer: &crate::auth::Viewer) -> &AppSchema {
        match viewer {
            crate::auth::Viewer::User(user) if user.app.is_some() => &self.schema,
            _ => &self.people_schema,
        }
    }
}

fn is_websocket_upgrade(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `GET /graphql`: a websocket upgrade goes to graphql-transport-ws, anything else is a query.
async fn get_or_upgrade(State(state): State<HttpState>, request: Request) -> Response {
    if is_websocket_upgrade(request.headers()) {
        ws::upgrade(state, request).await
    } else {
        graphql::get(state, request).await
    }
}

pub fn build_router(app: AppState) -> Router {
    let schema_for = |callers| {
        schema_builder(&app.config.limits, app.config.dev_tools_enabled(), callers)
            .data(app.clone())
            .finish()
    };
    let limits = app.config.limits.clone();
    let state = HttpState {
        app: app.clone(),
        schema: schema_for(Callers::Apps),
        people_schema: schema_for(Callers::People),
    };

    // Health and metrics are never shed: an overloaded node must still say how it is.
    let shed = shedding::Shedder::new(limits.max_concurrent_requests, limits.queue_timeout);
    let work = Router::new()
        .route("/graphql", get(get_or_upgrade).post(graphql::post))
        .route("/files/{id}", get(files::download))
        // Shed and timed like /graphql up to the first byte; the CSV body then streams under
        // the export's own deadline and concurrency cap (see `export`).
        .route("/export/{file}", get(export::export))
        .route("/export/jobs/{id}", get(export::status))
        .route("/export/jobs/{id}/download", get(export::download))
        .merge(crate::console::routes())
        .route("/graphiql", get(graphiql::page))
        .route("/graphiql/app.js", get(graphiql::script))
        .route("/graphiql/style.css", get(graphiql::style))
        .route_layer(middleware::from_fn_with_state(shed, shedding::shed));
    // Plain HTTP routes get a deadline; the websocket lives as long as its client.
    let timed = Router::new()
        .merge(work)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::map_response(errors::json_for_bare_statuses))
                // A multipart upload carries a file and its form: the sum of both limits. The
                // JSON path holds plain requests to `max_body_bytes` itself, and the multipart
                // reader holds the form's fields to it too.
                .layer(middleware::from_fn_with_state(
                    limits.max_body_bytes + limits.max_upload_bytes,
                    errors::refuse_declared_oversize,
                ))
                .layer(RequestBodyLimitLayer::new(
                    limits.max_body_bytes + limits.max_upload_bytes,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                )),
        )
        .with_state(state);

    let request_id = header::HeaderName::from_static("x-request-id");
    let timed = match cors(&app.config.cors_origins, &request_id) {
        Some(cors) => timed.layer(cors),
        None => timed,
    };
    timed.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::HeaderName::from_static("x-api-key"),
            ]))
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }),
            )
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(CatchPanicLayer::custom(errors::panic_response)),
    )
}

/// Cross-origin access for the configured origins only. Bearer tokens and API keys travel in
/// headers, never in cookies, so credentials stay off: a page elsewhere can call the API only
/// with a token it already holds.
fn cors(origins: &[String], request_id: &header::HeaderName) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("x-api-key"),
                request_id.clone(),
            ])
            // What a client acts on: backing off, naming a download, following an export job.
            .expose_headers([
                request_id.clone(),
                header::RETRY_AFTER,
                header::CONTENT_DISPOSITION,
                header::LOCATION,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

async fn track_metrics(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let metrics = &state.app.metrics;
    metrics
        .http_requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    metrics
        .http_latency
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}
