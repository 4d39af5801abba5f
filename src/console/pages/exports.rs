//! CSV downloads from the console: the same reports, checks and limits as `GET /export/...`
//! (see `http::export`), for the signed-in person. One too large to stream becomes a
//! background export with a page of its own that offers the file once it is written.

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use uuid::Uuid;

use crate::console::layout;
use crate::console::session::{Form, Signed, FORM_TOKEN_FIELD};
use crate::domains::exports::model::{split_query, Refused, Report};
use crate::domains::exports::service::{self as exports, ExportJobView};
use crate::error::AppError;
use crate::http::export::{job_file, start, Exported};

/// `POST /finance/export/{report}.csv`: the report's own parameters as form fields, named as
/// the API's query string names them.
pub async fn download(
    signed: Signed,
    Path(file): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(report) = Report::from_file(&file) else {
        return layout::not_found(signed.locale);
    };
    let asked: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(name, _)| name != FORM_TOKEN_FIELD)
        .collect();
    let query = serde_urlencoded::to_string(&asked).unwrap_or_default();
    let (common, rest) = match split_query(&query) {
        Ok(split) => split,
        Err(Refused::CredentialInUrl(name)) => {
            let err = AppError::bad_field(&name, "the console never takes credentials in a URL");
            return layout::error_response(signed.locale, &err);
        }
        Err(Refused::Bad(err)) => return layout::error_response(signed.locale, &err),
    };
    match start(&signed.app, signed.me.clone(), report, common, &rest).await {
        Ok(Exported::Streaming(response)) => response,
        Ok(Exported::Started(id)) => Redirect::to(&format!("/exports/{id}")).into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

async fn job_of(signed: &Signed, id: &str) -> Result<ExportJobView, AppError> {
    let id = Uuid::parse_str(id).map_err(|_| AppError::not_found("export job"))?;
    let app = &signed.app;
    exports::export_job(&app.db.conn, &signed.me, id, app.config.exports.file_ttl).await
}

/// `GET /exports/{id}`: a background export's state, and its file once written.
pub async fn job(signed: Signed, Path(id): Path<String>) -> Response {
    let job = match job_of(&signed, &id).await {
        Ok(job) => job,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let ready = job.downloadable(chrono::Utc::now());
    let content = html! {
        dl class="fields" {
            div class="row" { dt { (t.report) } dd { (job.report.slug()) } }
            div class="row" { dt { (t.status) } dd id="export-state" { (job.state) } }
            div class="row" { dt { (t.progress) } dd {
                progress max="100" value=(job.progress) aria-label=(t.progress) {}
                " " (job.progress) "%"
            } }
            @if let Some(rows) = job.rows_written {
                div class="row" { dt { (t.rows) } dd { (rows) } }
            }
            @if let Some(error) = &job.error {
                div class="row" { dt { (t.error) } dd { (error) } }
            }
        }
        @if ready {
            p { a class="button primary" href=(format!("/exports/{}/download", job.id)) download="" { (t.download_csv) } }
        } @else if job.error.is_none() {
            p { a href=(format!("/exports/{}", job.id)) { (t.refresh) } }
        }
    };
    layout::page(&signed, t.export, content).await
}

/// `GET /exports/{id}/download`.
pub async fn file(signed: Signed, Path(id): Path<String>) -> Response {
    let job = match job_of(&signed, &id).await {
        Ok(job) => job,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    match job_file(&signed.app, &job).await {
        Ok(response) => response,
        Err(err) => layout::error_response(signed.locale, &err),
    }
}
