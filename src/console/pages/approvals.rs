//! The approvals inbox: what waits on my decision, what it is about, deciding from the list,
//! and my delegations.

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::names_of;
use crate::console::layout::{self, token_field};
use crate::console::session::{local_path, Form, Signed};
use crate::domains::approvals::model::InstanceId;
use crate::domains::approvals::service as approvals;
use crate::domains::tasks::model::SUBJECT_KIND as TASK_SUBJECT_KIND;
use crate::error::{AppError, AppResult};

async fn render(signed: &Signed, err: Option<AppError>) -> Response {
    let db = &signed.app.db.conn;
    let loaded = async {
        let pending = approvals::pending_for(db, &signed.viewer).await?;
        let subjects: Vec<(String, Uuid)> = pending
            .iter()
            .map(|a| (a.subject_type.clone(), a.subject_id))
            .collect();
        let titles = signed
            .app
            .approval_subjects
            .titles(db, &signed.viewer, &subjects)
            .await?;
        let delegations = approvals::my_delegations(db, &signed.viewer).await?;
        let names = names_of(
            db,
            pending.iter().map(|a| a.initiator_id).chain(
                delegations
                    .iter()
                    .flat_map(|d| [d.from_user_id, d.to_user_id]),
            ),
        )
        .await?;
        AppResult::Ok((pending, titles, delegations, names))
    };
    let (pending, titles, delegations, names) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let locale = signed.locale;
    let content = html! {
        (layout::alert(t, err.as_ref()))
        section aria-labelledby="pending-h" {
            h2 id="pending-h" { (t.pending_decisions) }
            div id="inbox" data-live="" {
                @if pending.is_empty() {
                    p class="empty" { (t.no_pending) }
                } @else {
                    ul class="cards" {
                        @for approval in &pending {
                            @let title = titles.get(&(approval.subject_type.clone(), approval.subject_id)).cloned().unwrap_or_else(|| approval.subject_type.clone());
                            li class="card approval" {
                                @if approval.subject_type == TASK_SUBJECT_KIND {
                                    a href=(format!("/tasks/{}", approval.subject_id)) { (title) }
                                } @else {
                                    span class="subject" { (title) }
                                }
                                div class="meta" {
                                    span { (t.initiator) ": " (names.get(&approval.initiator_id).cloned().unwrap_or_default()) }
                                    span { (t.started) " " (locale.date_time(approval.started_at)) }
                                }
                                form method="post" action=(format!("/approvals/{}/decide", approval.id)) class="stack decide" {
                                    (token_field(&signed.form_token))
                                    div class="field" {
                                        label for=(format!("c-{}", approval.id)) { (t.reason) }
                                        input id=(format!("c-{}", approval.id)) name="comment" type="text" maxlength="500";
                                    }
                                    div class="action-row" {
                                        button type="submit" name="decision" value="approve" class="primary" { (t.approve) }
                                        button type="submit" name="decision" value="reject" class="danger" { (t.reject) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="delegations-h" {
            h2 id="delegations-h" { (t.delegations) }
            @if delegations.is_empty() {
                p class="empty" { (t.no_delegations) }
            } @else {
                div class="table-wrap" tabindex="0" role="region" aria-label=(t.delegations) {
                    table {
                        thead { tr { th scope="col" { (t.delegate_from) } th scope="col" { (t.delegate_to) } th scope="col" { (t.start) } th scope="col" { (t.delegate_until) } } }
                        tbody {
                            @for d in &delegations {
                                tr {
                                    td { (names.get(&d.from_user_id).cloned().unwrap_or_default()) }
                                    td { (names.get(&d.to_user_id).cloned().unwrap_or_default()) }
                                    td { (locale.date_time(d.starts_at)) }
                                    td { (locale.date_time(d.ends_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut response = layout::page(signed, t.approvals, content).await;
    if let Some(err) = &err {
        *response.status_mut() = layout::status_of(err);
    }
    response
}

pub async fn inbox(signed: Signed) -> Response {
    render(&signed, None).await
}

#[derive(Deserialize)]
pub struct Decision {
    decision: String,
    comment: Option<String>,
    back: Option<String>,
}

pub async fn decide(
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<Decision>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id).map(InstanceId) else {
        return layout::not_found(signed.locale);
    };
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return layout::bad_form(signed.locale),
    };
    let comment = form
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let decided = signed
        .app
        .write(async |work| {
            approvals::decide(
                work,
                &signed.app.approval_subjects,
                &signed.viewer,
                id,
                approve,
                comment,
            )
            .await
        })
        .await;
    let back = local_path(form.back.as_deref().or(Some("/approvals")));
    match decided {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render(&signed, Some(err)).await,
    }
}
