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
        let people = super::people_to_choose(db, &signed.viewer, PEOPLE_LIMIT).await?;
        let names = names_of(
            db,
            pending.iter().map(|a| a.initiator_id).chain(
                delegations
                    .iter()
                    .flat_map(|d| [d.from_user_id, d.to_user_id]),
            ),
        )
        .await?;
        AppResult::Ok((pending, titles, delegations, names, people))
    };
    let (pending, titles, delegations, names, people) = match loaded.await {
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
                        thead { tr {
                            th scope="col" { (t.delegate_from) } th scope="col" { (t.delegate_to) }
                            th scope="col" { (t.start) } th scope="col" { (t.delegate_until) }
                            th scope="col" { (t.actions) }
                        } }
                        tbody {
                            @for d in &delegations {
                                tr {
                                    td { (names.get(&d.from_user_id).cloned().unwrap_or_default()) }
                                    td { (names.get(&d.to_user_id).cloned().unwrap_or_default()) }
                                    td { (locale.date_time(d.starts_at)) }
                                    td { (locale.date_time(d.ends_at)) }
                                    td { @if d.from_user_id == signed.me.id {
                                        (layout::button_form(signed, &format!("/approvals/delegations/{}/end", d.id), t.cancel_delegation, "danger"))
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/approvals/delegations" class="stack" aria-labelledby="delegate-h" {
            h3 id="delegate-h" { (t.delegate_approvals) }
            (token_field(&signed.form_token))
            (layout::field(t.delegate_to, "delegate-to", "toUserId", err.as_ref(), html! {
                select id="delegate-to" name="to" required {
                    @for person in people.iter().filter(|p| p.id != signed.me.id) {
                        option value=(person.id) { (person.name) }
                    }
                }
            }))
            (layout::field(t.start, "delegate-start", "startsAt", err.as_ref(), html! {
                input id="delegate-start" name="starts" type="datetime-local" required;
            }))
            (layout::field(t.delegate_until, "delegate-until", "endsAt", err.as_ref(), html! {
                input id="delegate-until" name="ends" type="datetime-local" required;
            }))
            p class="hint" { (t.times_in_utc) }
            button type="submit" { (t.delegate_approvals) }
        }
    };
    layout::page_refusing(signed, t.approvals, content, err.as_ref()).await
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

/// Who the inbox offers as delegates.
const PEOPLE_LIMIT: u64 = 200;

#[derive(Deserialize)]
pub struct Delegation {
    #[serde(default)]
    to: String,
    #[serde(default)]
    starts: String,
    #[serde(default)]
    ends: String,
}

/// A `datetime-local` value (`2026-12-03T09:30`, seconds optional), read as UTC.
fn form_time(raw: &str, field: &str) -> AppResult<chrono::DateTime<chrono::Utc>> {
    let raw = raw.trim();
    chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc())
        .map_err(|_| AppError::bad_field(field, "a date and time"))
}

/// `POST /approvals/delegations`.
pub async fn delegate(signed: Signed, Form(form): Form<Delegation>) -> Response {
    let delegated = async {
        let to = Uuid::parse_str(form.to.trim())
            .map_err(|_| AppError::bad_field("toUserId", "no such active user"))?;
        let starts = form_time(&form.starts, "startsAt")?;
        let ends = form_time(&form.ends, "endsAt")?;
        signed
            .app
            .write(async |work| approvals::delegate(work, &signed.viewer, to, starts, ends).await)
            .await
    };
    match delegated.await {
        Ok(_) => Redirect::to("/approvals").into_response(),
        Err(err) => render(&signed, Some(err)).await,
    }
}

/// `POST /approvals/delegations/{id}/end`: only one's own delegations end here.
pub async fn end_delegation(
    signed: Signed,
    Path(id): Path<String>,
    Form(_): Form<super::account::Nothing>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    match signed
        .app
        .write(async |work| approvals::cancel_delegation(work, &signed.viewer, id).await)
        .await
    {
        Ok(_) => Redirect::to("/approvals").into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}
