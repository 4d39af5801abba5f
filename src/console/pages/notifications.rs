//! The notifications inbox; the header's unread count follows it live.

use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::account::Nothing;
use crate::console::layout::{self, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::notifications::service as notifications;
use crate::domains::tasks::model::SUBJECT_KIND as TASK_SUBJECT_KIND;

const PAGE: u64 = 50;

#[derive(Deserialize, Default)]
pub struct Page {
    before: Option<String>,
}

pub async fn inbox(signed: Signed, Query(page): Query<Page>) -> Response {
    let before = page.before.as_deref().and_then(|b| Uuid::parse_str(b).ok());
    let inbox = match notifications::inbox(&signed.app.db.conn, &signed.viewer, false, before, PAGE)
        .await
    {
        Ok(inbox) => inbox,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let content = html! {
        form method="post" action="/notifications/read" class="inline" {
            (token_field(&signed.form_token))
            button type="submit" { (t.mark_all_read) }
        }
        div id="notifications" data-live="" {
            @if inbox.items.is_empty() {
                p class="empty" { (t.no_notifications) }
            }
            ul class="cards" {
                @for n in &inbox.items {
                    li class=(if n.read_at.is_none() { "card unread" } else { "card" }) {
                        @match (n.subject_type.as_deref(), n.subject_id) {
                            (Some(kind), Some(id)) if kind == TASK_SUBJECT_KIND => {
                                a href=(format!("/tasks/{id}")) { (n.title) }
                            }
                            _ => { strong { (n.title) } }
                        }
                        p { (n.body) }
                        p class="meta" {
                            (signed.locale.date_time(n.created_at))
                            @if n.read_at.is_none() { " · " (t.unread) }
                        }
                    }
                }
            }
            @if inbox.has_next {
                @if let Some(last) = inbox.items.last() {
                    p { a href=(format!("/notifications?before={}", last.id)) { (t.next_page) } }
                }
            }
        }
    };
    layout::page(&signed, t.notifications, content).await
}

pub async fn mark_all_read(signed: Signed, Form(_): Form<Nothing>) -> Response {
    match signed
        .app
        .write(async |work| notifications::mark_read(work, &signed.viewer, None).await)
        .await
    {
        Ok(_) => Redirect::to("/notifications").into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}
