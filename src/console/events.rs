//! `GET /console/events`: the event log as Server-Sent Events, each entry the viewer may see
//! once, in cursor order. An entry's id is its log cursor, so a browser that reconnects sends
//! it back as `Last-Event-ID` and resumes with no gap.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::layout;
use super::session::Signed;
use crate::domains::events::model::visible_to;
use crate::error::AppError;
use crate::platform::events::follow;
use crate::platform::events::{Cursor, Envelope};

const SESSION_RECHECK: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
pub struct Resume {
    after: Option<String>,
}

/// Where to start: the browser's `Last-Event-ID` after a reconnect, else the page's own cursor
/// (the log's head when it was rendered), else from now.
fn start_cursor(headers: &HeaderMap, query: &Resume) -> Result<Option<Cursor>, AppError> {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    match resumed.or(query.after.as_deref()) {
        Some(text) => Cursor::parse(text)
            .map(Some)
            .ok_or_else(|| AppError::bad_field("after", "not an event cursor")),
        None => Ok(None),
    }
}

fn message(entry: &Envelope) -> Option<Event> {
    let data = serde_json::json!({
        "topic": entry.topic,
        "kind": entry.kind,
        "subjectId": entry.subject_id,
    });
    Event::default()
        .id(entry.cursor.to_string())
        .json_data(data)
        .ok()
}

pub async fn stream(signed: Signed, headers: HeaderMap, Query(resume): Query<Resume>) -> Response {
    let after = match start_cursor(&headers, &resume) {
        Ok(after) => after,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    // This node, or this person, is at the cap for now: a refused EventSource is closed for good,
    // so the console's module opens it again later (see `followEvents`).
    let Some(permit) = signed.app.live.admit() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let Some(user_slot) = signed.app.live.admit_user(signed.me.id) else {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    };
    let entries = match follow::follow(&signed.app.db.conn, signed.app.bus.as_ref(), after).await {
        Ok(entries) => entries,
        Err(err) => return layout::error_response(signed.locale, &AppError::from(err)),
    };
    let viewer = Arc::clone(&signed.me);
    let events = entries.filter_map(move |entry: Arc<Envelope>| {
        let _held = (&permit, &user_slot);
        let event = visible_to(&entry, &viewer)
            .then(|| message(&entry))
            .flatten();
        async move { event.map(Ok::<_, Infallible>) }
    });
    // A stream ends now and then so the browser reconnects through the session check: a
    // session signed out elsewhere stops receiving within this time.
    let events = events.take_until(tokio::time::sleep(SESSION_RECHECK));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
        .into_response()
}
