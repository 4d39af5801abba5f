//! Writing to inboxes (inside the caller's transaction) and reading and clearing one's own.

use chrono::Utc;
use entities::notification;
use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::model::{NotificationEvent, NotificationKind, Subject};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

/// What to tell the recipients.
pub struct Notice<'a> {
    pub kind: NotificationKind,
    pub title: &'a str,
    pub body: &'a str,
    pub subject: Option<Subject>,
}

/// Adds one notification per distinct recipient, skipping `except` (the person who acted).
pub async fn notify(
    work: &Work,
    recipients: &[Uuid],
    except: Option<Uuid>,
    notice: Notice<'_>,
) -> AppResult<()> {
    let Notice {
        kind,
        title,
        body,
        subject,
    } = notice;
    let mut seen = std::collections::HashSet::new();
    let now = Utc::now();
    let rows: Vec<notification::ActiveModel> = recipients
        .iter()
        .copied()
        .filter(|r| Some(*r) != except && seen.insert(*r))
        .map(|user_id| notification::ActiveModel {
            id: sea_orm::Set(Uuid::now_v7()),
            user_id: sea_orm::Set(user_id),
            kind: sea_orm::Set(kind.as_str().to_owned()),
            title: sea_orm::Set(title.to_owned()),
            body: sea_orm::Set(body.to_owned()),
            subject_type: sea_orm::Set(subject.map(|s| s.kind.to_owned())),
            subject_id: sea_orm::Set(subject.map(|s| s.id)),
            created_at: sea_orm::Set(now),
            read_at: sea_orm::Set(None),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    for row in &rows {
        if let (sea_orm::ActiveValue::Set(id), sea_orm::ActiveValue::Set(user_id)) =
            (&row.id, &row.user_id)
        {
            work.emit(&NotificationEvent {
                id: *id,
                user_id: *user_id,
                kind,
                title: title.to_owned(),
                body: body.to_owned(),
                subject_type: subject.map(|s| s.kind.to_owned()),
                subject_id: subject.map(|s| s.id),
                at: now,
            });
        }
    }
    notification::Entity::insert_many(rows).exec(work).await?;
    Ok(())
}

pub struct Inbox {
    pub items: Vec<notification::Model>,
    pub has_next: bool,
    pub total: u64,
}

pub async fn inbox<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    unread_only: bool,
    before: Option<Uuid>,
    first: u64,
) -> AppResult<Inbox> {
    let me = viewer.user()?;
    let mut query = notification::Entity::find().filter(notification::Column::UserId.eq(me.id));
    if unread_only {
        query = query.filter(notification::Column::ReadAt.is_null());
    }
    let total = query.clone().count(db).await?;
    if let Some(before) = before {
        query = query.filter(notification::Column::Id.lt(before));
    }
    let mut items = query
        .order_by_desc(notification::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(Inbox {
        items,
        has_next,
        total,
    })
}

pub async fn unread_count<C: ConnectionTrait>(db: &C, viewer: &Viewer) -> AppResult<u64> {
    let me = viewer.user()?;
    Ok(notification::Entity::find()
        .filter(notification::Column::UserId.eq(me.id))
        .filter(notification::Column::ReadAt.is_null())
        .count(db)
        .await?)
}

/// How many ids one call may mark, so a single request cannot hold a huge `IN` list.
pub const MARK_READ_MAX: usize = 500;

/// Marks the caller's own notifications read (all of them when `ids` is `None`); ids of anyone
/// else's are silently not touched.
pub async fn mark_read(work: &Work, viewer: &Viewer, ids: Option<Vec<Uuid>>) -> AppResult<u64> {
    if ids.as_ref().is_some_and(|ids| ids.len() > MARK_READ_MAX) {
        return Err(AppError::bad_field("ids", "at most 500 ids at once"));
    }
    let me = viewer.user()?;
    let mut update = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
        .filter(notification::Column::UserId.eq(me.id))
        .filter(notification::Column::ReadAt.is_null());
    if let Some(ids) = ids {
        update = update.filter(notification::Column::Id.is_in(ids));
    }
    Ok(update.exec(work).await?.rows_affected)
}
