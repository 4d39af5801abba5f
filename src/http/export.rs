//! `GET /export/{report}.csv`, and the status and download of background exports. The caller is
//! authenticated from headers exactly as on `/graphql` (never from the URL), charged to the
//! same rate limit, and read through the same services with the same viewer.
//!
//! The request timeout bounds only the time to the first byte (checks, the size count); the
//! body then streams under the export's own deadline (`INTERLINK_EXPORT_TIMEOUT_SECS`) and a
//! cap on exports streaming at once per node (`INTERLINK_EXPORT_MAX_CONCURRENT`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::client::Client;
use super::errors::{error_response, unavailable_response, RETRY_AFTER};
use super::graphql::viewer;
use super::rate_limit::{charge, client_key, too_many_requests};
use super::HttpState;
use crate::app::AppState;
use crate::auth::{Viewer, ViewerUser};
use crate::domains::exports::jobs::file_key;
use crate::domains::exports::model::{split_query, Params, Refused, Report};
use crate::domains::exports::service::{self, CsvOut, ExportJobView, CHANNEL_CHUNKS};
use crate::error::{unavailable_cause, AppError};

/// The usual error body, with `extensions.field` when the error names a parameter.
fn refusal(err: AppError) -> Response {
    let status = match &err {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden(_) => StatusCode::FORBIDDEN,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::BadUserInput { .. } | AppError::CursorExpired(_) => StatusCode::BAD_REQUEST,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::Internal(cause) if unavailable_cause(cause) => {
            tracing::warn!(error = ?cause, "database unavailable during an export");
            return unavailable_response();
        }
        AppError::Internal(cause) => {
            tracing::error!(error = ?cause, "export failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut extensions = json!({ "code": err.code() });
    if let AppError::BadUserInput {
        field: Some(field), ..
    } = &err
    {
        extensions["field"] = json!(field);
    }
    let body = json!({ "errors": [{ "message": err.public_message(), "extensions": extensions }] });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The signed-in caller, charged one request; or the response refusing them.
async fn caller(
    state: &HttpState,
    headers: &HeaderMap,
    client: crate::platform::rate_limit::ClientAddr,
) -> Result<std::sync::Arc<ViewerUser>, Response> {
    let viewer = viewer(state, headers).await.map_err(|r| *r)?;
    if let Err(wait) = charge(state, &client_key(&viewer, client), 1).await {
        return Err(too_many_requests(wait));
    }
    match viewer {
        Viewer::User(user) => Ok(user),
        Viewer::Anonymous => Err(refusal(AppError::Unauthenticated(
            "an export needs Authorization: Bearer <token> or X-Api-Key: <key>".into(),
        ))),
    }
}

fn csv_headers(response: &mut Response, filename: &str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
}

fn job_location(id: Uuid) -> String {
    format!("/export/jobs/{id}")
}

/// `GET /export/{report}.csv`.
pub async fn export(
    State(state): State<HttpState>,
    Client(client): Client,
    Path(file): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    // A credential in the URL is refused before anything else looks at it.
    let (common, rest) = match split_query(uri.query().unwrap_or_default()) {
        Ok(split) => split,
        Err(Refused::CredentialInUrl(name)) => {
            return refusal(AppError::bad_field(
                &name,
                "credentials go in the Authorization or X-Api-Key header, never in the URL",
            ))
        }
        Err(Refused::Bad(err)) => return refusal(err),
    };
    let me = match caller(&state, &headers, client).await {
        Ok(me) => me,
        Err(response) => return response,
    };
    let Some(report) = Report::from_file(&file) else {
        return refusal(AppError::NotFound(format!(
            "no report {file:?}; the reports are {}",
            Report::file_list()
        )));
    };
    match start(&state.app, me, report, common, &rest).await {
        Ok(Exported::Streaming(response)) => response,
        Ok(Exported::Started(id)) => {
            let location = job_location(id);
            let mut response = (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "jobId": id, "status": location })),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Err(err) => refusal(err),
    }
}

/// How an export began: streaming now, or as a background job because it was asked for or is
/// larger than a direct download may be.
pub(crate) enum Exported {
    Streaming(Response),
    Started(Uuid),
}

/// Starts `report` for `me` (the API and the console alike): checks who may, parses the
/// report's own parameters from `rest`, and streams it or hands it to a job.
pub(crate) async fn start(
    app: &AppState,
    me: std::sync::Arc<ViewerUser>,
    report: Report,
    common: crate::domains::exports::model::Common,
    rest: &str,
) -> Result<Exported, AppError> {
    let db = &app.db.conn;
    let settings = &app.config.exports;
    service::may_export(&me, report)?;
    let params = Params::parse(report, rest)?;
    let viewer = Viewer::User(me.clone());
    let prepared = service::prepare(db, &viewer, params).await?;
    let limit = prepared.sync_row_limit(settings.max_sync_rows);
    let large = !common.background && prepared.rows(db, Some(limit)).await? > limit;
    if common.background || large {
        let id = service::start_export(db, &me, report, rest, common.bom).await?;
        app.scheduler.nudge();
        return Ok(Exported::Started(id));
    }
    let Ok(permit) = app.export_streams.clone().try_acquire_owned() else {
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "too many exports are streaming on this node; try again shortly, or ask with async=1",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER);
        return Ok(Exported::Streaming(response));
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let out = CsvOut::new(tx, common.bom);
    let producer = service::produce(
        db.clone(),
        prepared,
        app.config.currency.clone(),
        out,
        settings.timeout,
    );
    tokio::spawn(async move {
        let _ = producer.await;
        drop(permit);
    });
    let mut response = Body::from_stream(ReceiverStream::new(rx)).into_response();
    csv_headers(&mut response, &report.filename(Utc::now().date_naive()));
    Ok(Exported::Streaming(response))
}

fn job_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).map_err(|_| AppError::not_found("export job"))
}

async fn find_job(state: &HttpState, me: &ViewerUser, id: &str) -> Result<ExportJobView, AppError> {
    let app = &state.app;
    service::export_job(&app.db.conn, me, job_id(id)?, app.config.exports.file_ttl).await
}

/// `GET /export/jobs/{id}`: state, progress and, once written, the download link.
pub async fn status(
    State(state): State<HttpState>,
    Client(client): Client,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let me = match caller(&state, &headers, client).await {
        Ok(me) => me,
        Err(response) => return response,
    };
    let job = match find_job(&state, &me, &id).await {
        Ok(job) => job,
        Err(err) => return refusal(err),
    };
    let download = job
        .downloadable(Utc::now())
        .then(|| format!("{}/download", job_location(job.id)));
    let mut response = axum::Json(json!({
        "jobId": job.id,
        "report": job.report.slug(),
        "state": job.state,
        "progress": job.progress,
        "rowsWritten": job.rows_written,
        "error": job.error,
        "createdAt": job.created_at,
        "finishedAt": job.finished_at,
        "expiresAt": job.expires_at,
        "download": download,
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// `GET /export/jobs/{id}/download`: the finished file, streamed from the file store.
pub async fn download(
    State(state): State<HttpState>,
    Client(client): Client,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let me = match caller(&state, &headers, client).await {
        Ok(me) => me,
        Err(response) => return response,
    };
    let job = match find_job(&state, &me, &id).await {
        Ok(job) => job,
        Err(err) => return refusal(err),
    };
    match job_file(&state.app, &job).await {
        Ok(response) => response,
        Err(err) => refusal(err),
    }
}

/// A finished export's file, streamed from the file store; `NOT_FOUND` before it is written
/// and after it expires.
pub(crate) async fn job_file(app: &AppState, job: &ExportJobView) -> Result<Response, AppError> {
    if !job.downloadable(Utc::now()) {
        let why = if job.expires_at.is_some() {
            "the export's file has expired"
        } else {
            "the export has not finished"
        };
        return Err(AppError::NotFound(why.into()));
    }
    let stream = match app.files.stream(&file_key(job.id)).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::warn!(error = ?err, job = %job.id, "an export's file is missing");
            return Err(AppError::NotFound("the export's file is gone".into()));
        }
    };
    let mut response = Body::from_stream(stream).into_response();
    csv_headers(
        &mut response,
        &job.report.filename(job.created_at.date_naive()),
    );
    Ok(response)
}
