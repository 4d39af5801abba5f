//! Downloads through a signed, short-lived link; the task's visibility is checked at use.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::errors::error_response;
use super::HttpState;
use crate::domains::identity::service as identity;
use crate::domains::tasks::service as tasks;
use crate::error::AppError;

#[derive(Deserialize)]
pub struct Link {
    token: String,
}

pub async fn download(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(link): Query<Link>,
) -> Response {
    match serve(&state, &id, &link.token).await {
        Ok(response) => response,
        Err(err) => {
            let status = match &err {
                AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                AppError::NotFound(_) | AppError::BadUserInput { .. } => StatusCode::NOT_FOUND,
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let code = err.code();
            let message = err.public_message().to_owned();
            if let AppError::Internal(cause) = err {
                tracing::error!(error = ?cause, "download failed");
            }
            error_response(status, code, &message)
        }
    }
}

async fn serve(state: &HttpState, id: &str, token: &str) -> Result<Response, AppError> {
    let app = &state.app;
    let claims = app.jwt.verify_download(token)?;
    let file = Uuid::parse_str(id).map_err(|_| AppError::not_found("file"))?;
    if claims.file != file.to_string() {
        return Err(AppError::Unauthenticated(
            "this link is for another file".into(),
        ));
    }
    let user =
        Uuid::parse_str(&claims.sub).map_err(|_| AppError::Unauthenticated("bad link".into()))?;
    let viewer = identity::viewer_for_user(&app.db.conn, user)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("the link's user is no longer active".into()))?;
    let (row, bytes) = tasks::read_attachment(&app.db.conn, &app.files, &viewer, file).await?;
    let ascii: String = row
        .filename
        .chars()
        .map(|c| {
            if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = row
        .filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    // RFC 6266: a plain ASCII fallback and the exact UTF-8 name.
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&row.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
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
    Ok(response)
}
