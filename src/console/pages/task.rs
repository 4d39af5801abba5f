//! One task: every seed field, labelled, and the actions the viewer may take on it.

use std::collections::HashMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use entities::{task, task_comment};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::names_of;
use super::work::{review_label, status_label};
use crate::console::layout::{self, token_field};
use crate::console::session::{FileForm, Form, Signed};
use crate::domains::approvals::model::InstanceId;
use crate::domains::approvals::service as approvals;
use crate::domains::tasks::model::{CommentId, ReviewStatus, TaskId, WorkStatus};
use crate::domains::tasks::service as tasks;
use crate::error::{AppError, AppResult};

/// Download links on the page last this long: a page left open for longer is reloaded.
const DOWNLOAD_LINK_SECS: i64 = 600;
/// Comments and activity entries shown on the page, newest last.
const CHILD_LIMIT: u64 = 100;

pub fn parse_task_id(raw: &str) -> AppResult<TaskId> {
    Uuid::parse_str(raw)
        .map(TaskId)
        .map_err(|_| AppError::not_found("task"))
}

struct Detail {
    task: task::Model,
    category: Option<entities::task_category::Model>,
    executors: Vec<crate::domains::identity::model::UserRecord>,
    names: HashMap<Uuid, String>,
    comments: Vec<task_comment::Model>,
    activity: Vec<entities::task_activity::Model>,
    subtasks: Vec<task::Model>,
    attachments: Vec<entities::task_attachment::Model>,
    merit: Vec<entities::merit_record::Model>,
    decisions: Vec<entities::approval_decision::Model>,
    /// The approval waiting on the viewer's decision, when there is one.
    my_pending_approval: Option<Uuid>,
    /// Whether the viewer may change this approved main task's people and deadline.
    may_restaff: bool,
}

async fn load(signed: &Signed, id: TaskId) -> AppResult<Detail> {
    let db = &signed.app.db.conn;
    let task = tasks::find_task(db, &signed.viewer, id).await?;
    let ids = [task.id];
    let category = tasks::find_category(
        db,
        crate::domains::tasks::model::CategoryId(task.category_id),
    )
    .await?;
    let executors = tasks::executors_by_task(db, &ids)
        .await?
        .remove(&task.id)
        .unwrap_or_default();
    let comments = tasks::comment_pages(db, &ids, CHILD_LIMIT, 0)
        .await?
        .remove(&task.id)
        .map(|p| p.items)
        .unwrap_or_default();
    let activity = tasks::activity_pages(db, &ids, CHILD_LIMIT, 0)
        .await?
        .remove(&task.id)
        .map(|p| p.items)
        .unwrap_or_default();
    let subtasks = tasks::subtask_pages(db, &ids, CHILD_LIMIT, 0)
        .await?
        .remove(&task.id)
        .map(|p| p.items)
        .unwrap_or_default();
    let attachments = tasks::attachments_by_task(db, &ids)
        .await?
        .remove(&task.id)
        .unwrap_or_default();
    let merit = tasks::merit_of_task(db, task.id).await?;
    let (decisions, my_pending_approval) = match task.approval_instance_id {
        Some(instance) => {
            let decisions =
                match approvals::find_instance(db, &signed.viewer, InstanceId(instance)).await {
                    Ok(_) => approvals::decisions_of(db, &[instance]).await?,
                    Err(AppError::NotFound(_) | AppError::Forbidden(_)) => Vec::new(),
                    Err(err) => return Err(err),
                };
            let mine = approvals::pending_for(db, &signed.viewer)
                .await?
                .iter()
                .any(|a| a.id == instance)
                .then_some(instance);
            (decisions, mine)
        }
        None => (Vec::new(), None),
    };
    let people = executors
        .iter()
        .map(|u| u.id)
        .chain([task.initiator_id])
        .chain(task.confirmer_id)
        .chain(comments.iter().map(|c| c.author_id))
        .chain(activity.iter().map(|a| a.actor_id))
        .chain(decisions.iter().map(|d| d.decided_by))
        .chain(merit.iter().map(|m| m.user_id))
        .collect::<Vec<_>>();
    let names = names_of(db, people).await?;
    let approved_main = task.parent_id.is_none()
        && ReviewStatus::parse(&task.review_status) == Some(ReviewStatus::Approved);
    let may_restaff = approved_main && tasks::may_restaff(db, &signed.me, &task).await?;
    Ok(Detail {
        may_restaff,
        task,
        category,
        executors,
        names,
        comments,
        activity,
        subtasks,
        attachments,
        merit,
        decisions,
        my_pending_approval,
    })
}

fn row(label: &str, value: Markup) -> Markup {
    html! { div class="row" { dt { (label) } dd { (value) } } }
}

fn custom_fields(value: &serde_json::Value) -> Markup {
    html! {
        @if let Some(fields) = value.as_object().filter(|o| !o.is_empty()) {
            dl class="inner" {
                @for (key, value) in fields {
                    dt { (key) }
                    dd { @match value {
                        serde_json::Value::String(text) => (text),
                        other => (other.to_string()),
                    } }
                }
            }
        } @else {
            "—"
        }
    }
}

fn fields(signed: &Signed, d: &Detail) -> Markup {
    let t = signed.t();
    let task = &d.task;
    let locale = signed.locale;
    let name = |id: &Uuid| d.names.get(id).cloned().unwrap_or_else(|| id.to_string());
    let when = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or("—".to_owned(), |at| locale.date_time(at))
    };
    let cash = tasks::money_text(task.cash_output_minor, &task.currency).map_or_else(
        || t.none.to_owned(),
        |amount| locale.money(&amount, &task.currency),
    );
    let confirmer = task.confirmer_id.unwrap_or(task.initiator_id);
    let merit_total: i64 = d.merit.iter().map(|m| i64::from(m.points)).sum();
    html! {
        dl class="fields" {
            (row(t.status, html! { (status_label(t, &task.status)) }))
            (row(t.review_status, html! { span id="review-status" data-status=(task.review_status) { (review_label(t, &task.review_status)) } }))
            @if let Some(reason) = &task.rejection_reason {
                (row(t.rejection_reason, html! { (reason) }))
            }
            (row(t.category, html! { (d.category.as_ref().map_or("—", |c| c.name.as_str())) }))
            (row(t.key_points, html! { p class="prose" { (task.key_points) } }))
            (row(t.initiator, html! { a href=(format!("/people/{}", task.initiator_id)) { (name(&task.initiator_id)) } }))
            (row(t.executors, html! {
                @if d.executors.is_empty() { "—" }
                @for (i, user) in d.executors.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href=(format!("/people/{}", user.id)) { (user.name) }
                }
            }))
            (row(t.team_task, html! { (if task.is_team_task { t.yes } else { t.no }) }))
            (row(t.cash_output, html! { (cash) }))
            (row(t.start, html! { (when(task.start_at)) }))
            (row(t.deadline, html! {
                (when(task.deadline))
                @if task.overdue { " " span class="tag late" { (t.overdue) } }
            }))
            (row(t.priority, html! { (task.priority) }))
            (row(t.progress, html! {
                progress max="100" value=(task.progress) aria-label=(t.progress) { (task.progress) "%" }
                " " (task.progress) "%"
                @if let Some(reported) = task.reported_progress {
                    " · " (t.reported_progress) ": " (reported) "%"
                }
            }))
            (row(t.confirmer, html! { a href=(format!("/people/{confirmer}")) { (name(&confirmer)) } }))
            (row(t.merit, html! {
                (task.merit_points)
                @if !d.merit.is_empty() {
                    " · " (t.merit_total) ": " span id="merit-awarded" { (merit_total) }
                }
            }))
            (row(t.custom_fields, custom_fields(&task.custom_fields)))
        }
    }
}

fn actions(signed: &Signed, d: &Detail) -> Markup {
    let t = signed.t();
    let task = &d.task;
    let me = signed.me.id;
    let base = format!("/tasks/{}", task.id);
    let is_initiator = task.initiator_id == me;
    let is_executor = d.executors.iter().any(|u| u.id == me);
    let is_confirmer = task.confirmer_id.unwrap_or(task.initiator_id) == me;
    let review = ReviewStatus::parse(&task.review_status);
    let status = WorkStatus::parse(&task.status);
    let open = matches!(status, Some(WorkStatus::Open | WorkStatus::InProgress));
    let approved = review == Some(ReviewStatus::Approved);
    let may_submit = is_initiator
        && task.parent_id.is_none()
        && matches!(review, Some(ReviewStatus::Draft | ReviewStatus::Rejected))
        && open;
    html! {
        section class="actions" aria-labelledby="actions-h" {
            h2 id="actions-h" { (t.actions) }
            div class="action-row" {
                @if may_submit {
                    (layout::button_form(signed, &format!("{base}/submit"), t.submit_for_approval, "primary"))
                }
                @if open && (is_initiator || d.may_restaff) {
                    a class="button" href=(format!("{base}/edit")) { (t.edit_task) }
                }
                @if open && (is_executor || is_initiator) && task.parent_id.is_none() {
                    a class="button" href=(format!("/tasks/new?parent={}", task.id)) { (t.create_subtask) }
                }
            }
            @if let Some(approval) = d.my_pending_approval {
                form method="post" action=(format!("/approvals/{approval}/decide")) class="stack decide" {
                    (token_field(&signed.form_token))
                    input type="hidden" name="back" value=(base);
                    div class="field" {
                        label for="decision-comment" { (t.reason) }
                        textarea id="decision-comment" name="comment" rows="2" {}
                    }
                    div class="action-row" {
                        button type="submit" name="decision" value="approve" class="primary" { (t.approve) }
                        button type="submit" name="decision" value="reject" class="danger" { (t.reject) }
                    }
                }
            }
            @if is_executor && open && (approved || task.parent_id.is_some()) {
                form method="post" action=(format!("{base}/progress")) class="stack" {
                    (token_field(&signed.form_token))
                    div class="field" {
                        label for="progress-value" { (t.progress) " (%)" }
                        input id="progress-value" name="progress" type="number" min="0" max="100" step="1"
                            required value=(task.reported_progress.unwrap_or(task.progress));
                    }
                    div class="field" {
                        label for="progress-note" { (t.note) }
                        input id="progress-note" name="note" type="text" maxlength="500";
                    }
                    button type="submit" class="primary" { (t.report_progress) }
                }
            }
            @if is_confirmer && open {
                @if let Some(reported) = task.reported_progress {
                    form method="post" action=(format!("{base}/confirm")) class="stack" {
                        (token_field(&signed.form_token))
                        input type="hidden" name="progress" value=(reported);
                        div class="field" {
                            label for="confirm-note" { (t.note) }
                            input id="confirm-note" name="note" type="text" maxlength="500";
                        }
                        button type="submit" class="primary" { (t.confirm_progress) " (" (reported) "%)" }
                    }
                }
            }
            @if (is_initiator || signed.me.is_admin()) && open {
                form method="post" action=(format!("{base}/cancel")) class="stack" {
                    (token_field(&signed.form_token))
                    div class="field" {
                        label for="cancel-reason" { (t.reason) }
                        input id="cancel-reason" name="reason" type="text" maxlength="500";
                    }
                    button type="submit" class="danger" { (t.cancel_task) }
                }
            }
        }
    }
}

fn comments(signed: &Signed, d: &Detail) -> Markup {
    let t = signed.t();
    let base = format!("/tasks/{}", d.task.id);
    html! {
        section aria-labelledby="comments-h" {
            h2 id="comments-h" { (t.comments) }
            ul class="comments" id="comments" data-live="" {
                @for c in d.comments.iter().filter(|c| c.deleted_at.is_none()) {
                    li {
                        p class="meta" {
                            (d.names.get(&c.author_id).cloned().unwrap_or_default()) " · "
                            (signed.locale.date_time(c.created_at))
                        }
                        p class="prose" { (c.body) }
                        @if c.author_id == signed.me.id {
                            details {
                                summary { (t.edit) }
                                form method="post" action=(format!("{base}/comment-edit")) class="stack" {
                                    (token_field(&signed.form_token))
                                    input type="hidden" name="comment_id" value=(c.id);
                                    div class="field" {
                                        label for=(format!("edit-{}", c.id)) { (t.comment) }
                                        textarea id=(format!("edit-{}", c.id)) name="body" rows="2" required { (c.body) }
                                    }
                                    button type="submit" { (t.save) }
                                }
                            }
                            form method="post" action=(format!("{base}/comment-delete")) class="inline" {
                                (token_field(&signed.form_token))
                                input type="hidden" name="comment_id" value=(c.id);
                                button type="submit" class="link danger" { (t.delete) }
                            }
                        }
                    }
                }
            }
            form method="post" action=(format!("{base}/comment")) class="stack" {
                (token_field(&signed.form_token))
                div class="field" {
                    label for="new-comment" { (t.add_comment) }
                    textarea id="new-comment" name="body" rows="3" required {}
                }
                button type="submit" { (t.add_comment) }
            }
        }
    }
}

fn records(signed: &Signed, d: &Detail, err: Option<&AppError>) -> Markup {
    let t = signed.t();
    let locale = signed.locale;
    let name = |id: &Uuid| d.names.get(id).cloned().unwrap_or_default();
    let link = |file: &entities::task_attachment::Model| {
        signed
            .app
            .jwt
            .issue_download(file.id, signed.me.id, DOWNLOAD_LINK_SECS)
            .ok()
            .map(|token| format!("/files/{}?token={token}", file.id))
    };
    let me = signed.me.id;
    let on_task = d.task.initiator_id == me
        || d.task.confirmer_id == Some(me)
        || d.executors.iter().any(|u| u.id == me)
        || signed.me.is_admin();
    html! {
        section aria-labelledby="files-h" {
            h2 id="files-h" { (t.files) }
            @if d.attachments.is_empty() { p class="empty" { (t.none) } }
            ul id="files" data-live="" {
                @for file in &d.attachments {
                    li {
                        @if let Some(href) = link(file) {
                            a href=(href) download=(file.filename) { (file.filename) }
                        } @else {
                            (file.filename)
                        }
                        " (" (file.size_bytes) " B)"
                    }
                }
            }
            @if on_task {
                // The token goes first: the server checks it before it reads the file.
                form method="post" action=(format!("/tasks/{}/attachments", d.task.id))
                    enctype="multipart/form-data" class="stack" {
                    (token_field(&signed.form_token))
                    (layout::field(t.attach_file, "file", "file", err, html! {
                        input id="file" name="file" type="file" required;
                    }))
                    button type="submit" { (t.upload) }
                }
            }
        }
        section aria-labelledby="subtasks-h" {
            h2 id="subtasks-h" { (t.subtasks) }
            @if d.subtasks.is_empty() { p class="empty" { (t.none) } }
            ul {
                @for sub in &d.subtasks {
                    li { a href=(format!("/tasks/{}", sub.id)) { (sub.title) } " · " (status_label(t, &sub.status)) " · " (sub.progress) "%" }
                }
            }
        }
        section aria-labelledby="reviews-h" {
            h2 id="reviews-h" { (t.review_records) }
            @if d.decisions.is_empty() { p class="empty" { (t.none) } }
            ul id="review-records" data-live="" {
                @for decision in &d.decisions {
                    li {
                        (decision.step_name) ": " (if decision.approve { t.approve } else { t.reject })
                        " · " (name(&decision.decided_by)) " · " (locale.date_time(decision.decided_at))
                        @if let Some(comment) = &decision.comment { " — " (comment) }
                    }
                }
            }
        }
        section aria-labelledby="activity-h" {
            h2 id="activity-h" { (t.activity) }
            ol class="activity" id="activity" data-live="" {
                @for entry in &d.activity {
                    li {
                        (locale.date_time(entry.at)) " · " (name(&entry.actor_id)) " · " (entry.action)
                        @if let Some(field) = &entry.field { " " (field) }
                        @if let Some(new) = &entry.new_value { ": " (new) }
                    }
                }
            }
        }
    }
}

async fn render(signed: &Signed, id: TaskId, err: Option<AppError>) -> Response {
    let detail = match load(signed, id).await {
        Ok(detail) => detail,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let content = html! {
        (layout::alert(signed.t(), err.as_ref()))
        div id="task-summary" data-live="" { (fields(signed, &detail)) }
        div id="task-actions" data-live="" { (actions(signed, &detail)) }
        (comments(signed, &detail))
        (records(signed, &detail, err.as_ref()))
    };
    layout::page_refusing(signed, &detail.task.title, content, err.as_ref()).await
}

pub async fn detail(signed: Signed, Path(id): Path<String>) -> Response {
    match parse_task_id(&id) {
        Ok(id) => render(&signed, id, None).await,
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

#[derive(Deserialize, Default)]
pub struct ActionFields {
    progress: Option<String>,
    note: Option<String>,
    reason: Option<String>,
    body: Option<String>,
    comment_id: Option<String>,
}

fn blank_to_none(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|s| !s.is_empty())
}

fn progress_value(raw: Option<&str>) -> AppResult<i32> {
    raw.and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| AppError::bad_field("progress", "a whole number from 0 to 100"))
}

fn comment_id(raw: Option<&str>) -> AppResult<CommentId> {
    raw.and_then(|c| Uuid::parse_str(c).ok())
        .map(CommentId)
        .ok_or_else(|| AppError::not_found("comment"))
}

/// `POST /tasks/{id}/{action}`: one service call in one unit of work, then back to the task.
pub async fn act(
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(fields): Form<ActionFields>,
) -> Response {
    let id = match parse_task_id(&id) {
        Ok(id) => id,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let viewer = &signed.viewer;
    let note = blank_to_none(fields.note.as_deref());
    let done = signed
        .app
        .write(async |work| match action.as_str() {
            "submit" => tasks::submit_task(work, viewer, id).await.map(drop),
            "progress" => {
                let progress = progress_value(fields.progress.as_deref())?;
                tasks::report_progress(work, viewer, id, progress, note)
                    .await
                    .map(drop)
            }
            "confirm" => {
                let expected = progress_value(fields.progress.as_deref())?;
                tasks::confirm_progress(work, viewer, id, Some(expected), note)
                    .await
                    .map(drop)
            }
            "cancel" => {
                let reason = blank_to_none(fields.reason.as_deref());
                tasks::cancel_task(work, viewer, id, reason).await.map(drop)
            }
            "comment" => {
                let body = fields.body.as_deref().unwrap_or_default();
                tasks::add_comment(work, viewer, id, body).await.map(drop)
            }
            "comment-edit" => {
                let comment = comment_id(fields.comment_id.as_deref())?;
                let body = fields.body.as_deref().unwrap_or_default();
                tasks::edit_comment(work, viewer, comment, body)
                    .await
                    .map(drop)
            }
            "comment-delete" => {
                let comment = comment_id(fields.comment_id.as_deref())?;
                tasks::delete_comment(work, viewer, comment).await.map(drop)
            }
            _ => Err(AppError::not_found("action")),
        })
        .await;
    match done {
        Ok(()) => Redirect::to(&format!("/tasks/{}", id.0)).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render(&signed, id, Some(err)).await,
    }
}

/// `POST /tasks/{id}/attachments`: a file from the form, stored and recorded in one unit of
/// work; its bytes are removed again if that work fails.
pub async fn upload(signed: Signed, Path(id): Path<String>, file: FileForm) -> Response {
    let id = match parse_task_id(&id) {
        Ok(id) => id,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let app = &signed.app;
    let upload = tasks::Upload::new(file.filename, file.bytes);
    let max = app.config.limits.max_upload_bytes;
    let attached = app
        .write(async |work| tasks::attach(work, &app.files, &signed.viewer, id, &upload, max).await)
        .await;
    if attached.is_err() {
        tasks::discard_upload(&app.files, id, &upload).await;
    }
    match attached {
        Ok(_) => Redirect::to(&format!("/tasks/{}", id.0)).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render(&signed, id, Some(err)).await,
    }
}
