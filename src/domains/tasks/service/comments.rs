//! Comments on a task: anyone who can see the task may comment; authors edit and delete their own.

use chrono::Utc;
use entities::{task, task_comment};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use super::{emit, ensure_visible, executors_of, record};
use crate::auth::Viewer;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service as notifications;
use crate::domains::tasks::model::{Audience, CommentId, TaskEventKind, TaskId, SUBJECT_KIND};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

fn parse_body(body: &str) -> AppResult<String> {
    let body = body.trim();
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(AppError::bad_field(
            "body",
            "a comment has 1–10000 characters",
        ));
    }
    Ok(body.to_owned())
}

pub async fn add_comment(
    work: &Work,
    viewer: &Viewer,
    task_id: TaskId,
    body: &str,
) -> AppResult<task_comment::Model> {
    let me = viewer.user()?;
    let body = parse_body(body)?;
    let task = task::Entity::find_by_id(task_id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    let audience = ensure_visible(work, me, &task).await?;
    let now = Utc::now();
    let comment = task_comment::ActiveModel {
        id: Set(Uuid::now_v7()),
        task_id: Set(task.id),
        author_id: Set(me.id),
        body: Set(body),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
    .insert(work)
    .await?;
    record(
        work,
        task.id,
        me.id,
        "commented",
        None,
        None,
        Some(comment.id.to_string()),
    )
    .await?;
    let mut recipients = vec![task.initiator_id];
    recipients.extend(executors_of(work, task.id).await?);
    recipients.extend(task.confirmer_id);
    notifications::notify(
        work,
        &recipients,
        Some(me.id),
        notifications::Notice {
            kind: NotificationKind::Commented,
            title: "New comment on your task",
            body: &task.title,
            subject: Some(Subject {
                kind: SUBJECT_KIND,
                id: task.id,
            }),
        },
    )
    .await?;
    emit(work, TaskEventKind::CommentAdded, &task, me.id, &audience);
    Ok(comment)
}

/// The viewer's own live comment, with its task and who may see it.
async fn own_comment<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: CommentId,
) -> AppResult<(task_comment::Model, task::Model, Audience)> {
    let me = viewer.user()?;
    let comment = task_comment::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("comment"))?;
    let task = task::Entity::find_by_id(comment.task_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("comment"))?;
    let audience = ensure_visible(db, me, &task)
        .await
        .map_err(|_| AppError::not_found("comment"))?;
    if comment.author_id != me.id {
        return Err(AppError::Forbidden(
            "only the author changes a comment".into(),
        ));
    }
    Ok((comment, task, audience))
}

pub async fn edit_comment(
    work: &Work,
    viewer: &Viewer,
    id: CommentId,
    body: &str,
) -> AppResult<task_comment::Model> {
    let body = parse_body(body)?;
    let (comment, task, audience) = own_comment(work, viewer, id).await?;
    let mut active: task_comment::ActiveModel = comment.clone().into();
    active.body = Set(body.clone());
    active.updated_at = Set(Utc::now());
    let updated = active.update(work).await?;
    record(
        work,
        comment.task_id,
        comment.author_id,
        "comment_edited",
        Some("body"),
        Some(comment.body),
        Some(body),
    )
    .await?;
    emit(
        work,
        TaskEventKind::CommentEdited,
        &task,
        comment.author_id,
        &audience,
    );
    Ok(updated)
}

/// Soft delete: the comment disappears from lists; the activity log keeps that it existed.
pub async fn delete_comment(work: &Work, viewer: &Viewer, id: CommentId) -> AppResult<bool> {
    let (comment, task, audience) = own_comment(work, viewer, id).await?;
    let mut active: task_comment::ActiveModel = comment.clone().into();
    active.deleted_at = Set(Some(Utc::now()));
    active.update(work).await?;
    record(
        work,
        comment.task_id,
        comment.author_id,
        "comment_deleted",
        None,
        Some(comment.id.to_string()),
        None,
    )
    .await?;
    emit(
        work,
        TaskEventKind::CommentDeleted,
        &task,
        comment.author_id,
        &audience,
    );
    Ok(true)
}
