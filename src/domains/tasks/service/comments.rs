//! Comments on a task: anyone who can see the task may comment; authors edit and delete their own.

use chrono::Utc;
use entities::{task, task_comment};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set, TransactionTrait};
use uuid::Uuid;

use super::{ensure_visible, executors_of, push_event, record};
use crate::auth::Viewer;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service as notifications;
use crate::domains::tasks::model::{CommentId, TaskEventKind, TaskId, SUBJECT_KIND};
use crate::error::{AppError, AppResult};
use crate::platform::events::{EventBus, Pending};

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

pub async fn add_comment<C>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    task_id: TaskId,
    body: &str,
) -> AppResult<task_comment::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    let body = parse_body(body)?;
    let txn = db.begin().await?;
    let task = task::Entity::find_by_id(task_id.0)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    let audience = ensure_visible(&txn, me, &task).await?;
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
    .insert(&txn)
    .await?;
    record(
        &txn,
        task.id,
        me.id,
        "commented",
        None,
        None,
        Some(comment.id.to_string()),
    )
    .await?;
    let mut pending = Pending::default();
    let mut recipients = vec![task.initiator_id];
    recipients.extend(executors_of(&txn, task.id).await?);
    recipients.extend(task.confirmer_id);
    notifications::notify(
        &txn,
        &mut pending,
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
    push_event(
        &mut pending,
        TaskEventKind::CommentAdded,
        &task,
        me.id,
        &audience,
    );
    txn.commit().await?;
    pending.publish(bus).await;
    Ok(comment)
}

async fn own_comment<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: CommentId,
) -> AppResult<task_comment::Model> {
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
    ensure_visible(db, me, &task)
        .await
        .map_err(|_| AppError::not_found("comment"))?;
    if comment.author_id != me.id {
        return Err(AppError::Forbidden(
            "only the author changes a comment".into(),
        ));
    }
    Ok(comment)
}

pub async fn edit_comment<C>(
    db: &C,
    viewer: &Viewer,
    id: CommentId,
    body: &str,
) -> AppResult<task_comment::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let body = parse_body(body)?;
    let txn = db.begin().await?;
    let comment = own_comment(&txn, viewer, id).await?;
    let mut active: task_comment::ActiveModel = comment.clone().into();
    active.body = Set(body.clone());
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    record(
        &txn,
        comment.task_id,
        comment.author_id,
        "comment_edited",
        Some("body"),
        Some(comment.body),
        Some(body),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Soft delete: the comment disappears from lists; the activity log keeps that it existed.
pub async fn delete_comment<C>(db: &C, viewer: &Viewer, id: CommentId) -> AppResult<bool>
where
    C: ConnectionTrait + TransactionTrait,
{
    let txn = db.begin().await?;
    let comment = own_comment(&txn, viewer, id).await?;
    let mut active: task_comment::ActiveModel = comment.clone().into();
    active.deleted_at = Set(Some(Utc::now()));
    active.update(&txn).await?;
    record(
        &txn,
        comment.task_id,
        comment.author_id,
        "comment_deleted",
        None,
        Some(comment.id.to_string()),
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}
