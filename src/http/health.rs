//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;

pub async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(state): State<HttpState>) -> Response {
    match state.app.check_ready().await {
        Ok(()) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(err) => {
            tracing::warn!(error = ?err, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}

pub async fn metrics(State(state): State<HttpState>) -> Response {
    let app = &state.app;
    let pool = app.db.pool_stats();
    app.metrics.db_pool_size.set(i64::from(pool.size));
    app.metrics.db_pool_idle.set(pool.idle as i64);
    app.metrics
        .db_statements
        .set(i64::try_from(app.db.statement_count()).unwrap_or(i64::MAX));
    app.metrics
        .db_round_trips
        .set(i64::try_from(app.db.round_trip_count()).unwrap_or(i64::MAX));
    app.metrics
        .event_subscribers
        .set(app.bus.subscriber_count() as i64);
    match app.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(err) => {
            tracing::error!(error = ?err, "rendering metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
