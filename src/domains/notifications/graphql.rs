//! The inbox over GraphQL: list, count, mark read, and a live feed of one's own notifications.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, Result, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use entities::notification;
use futures_util::{Stream, StreamExt};

use super::model::{self, NotificationEvent, NotificationId};
use super::service;
use crate::error::AppError;
use crate::graphql::context::ContextExt;
use crate::graphql::live;
use crate::graphql::pagination::{page_size, TotalCount};
use crate::platform::events::Envelope;

#[derive(SimpleObject)]
pub struct Notification {
    id: ID,
    kind: String,
    title: String,
    body: String,
    subject_type: Option<String>,
    subject_id: Option<ID>,
    created_at: DateTime<Utc>,
    read: bool,
}

impl From<notification::Model> for Notification {
    fn from(n: notification::Model) -> Self {
        Self {
            id: ID(n.id.to_string()),
            kind: n.kind,
            title: n.title,
            body: n.body,
            subject_type: n.subject_type,
            subject_id: n.subject_id.map(|s| ID(s.to_string())),
            created_at: n.created_at,
            read: n.read_at.is_some(),
        }
    }
}

impl From<NotificationEvent> for Notification {
    fn from(n: NotificationEvent) -> Self {
        Self {
            id: ID(n.id.to_string()),
            kind: n.kind.as_str().to_owned(),
            title: n.title,
            body: n.body,
            subject_type: n.subject_type,
            subject_id: n.subject_id.map(|s| ID(s.to_string())),
            created_at: n.at,
            read: false,
        }
    }
}

/// A new notification as the live feed delivers it.
#[derive(SimpleObject)]
#[graphql(name = "NotificationEvent")]
pub struct LiveNotification {
    /// Pass it as `after` to resume right after this notification.
    cursor: String,
    #[graphql(flatten)]
    notification: Notification,
}

#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// The signed-in user's inbox, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Notification, TotalCount, EmptyFields>> {
        let app = ctx.app()?;
        let first = page_size(first)?;
        let before = after
            .map(|a| NotificationId::parse("after", &a).map(|id| id.0))
            .transpose()?;
        let inbox = service::inbox(&app.db.conn, ctx.viewer()?, unread_only, before, first).await?;
        let mut connection = Connection::with_additional_fields(
            before.is_some(),
            inbox.has_next,
            TotalCount {
                total_count: inbox.total,
            },
        );
        connection.edges.extend(
            inbox
                .items
                .into_iter()
                .map(|n| Edge::new(n.id.to_string(), Notification::from(n))),
        );
        Ok(connection)
    }

    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let app = ctx.app()?;
        Ok(service::unread_count(&app.db.conn, ctx.viewer()?).await?)
    }
}

#[derive(Default)]
pub struct NotificationsMutation;

#[Object]
impl NotificationsMutation {
    /// Marks the given notifications of the caller read; returns how many changed.
    async fn mark_notifications_read(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<u64> {
        let app = ctx.app()?;
        if ids.len() > 500 {
            return Err(AppError::bad_field("ids", "at most 500 ids at once").into());
        }
        let ids = ids
            .iter()
            .map(|id| NotificationId::parse("ids", id).map(|n| n.0))
            .collect::<Result<Vec<_>, _>>()?;
        let viewer = ctx.viewer()?;
        Ok(app
            .write(async |work| service::mark_read(work, viewer, Some(ids)).await)
            .await?)
    }

    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> Result<u64> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        Ok(app
            .write(async |work| service::mark_read(work, viewer, None).await)
            .await?)
    }
}

#[derive(Default)]
pub struct NotificationsSubscription;

#[Subscription]
impl NotificationsSubscription {
    /// New notifications of the signed-in user, from every node. With `after` (an event's
    /// `cursor`), first those after it, then live ones; the inbox keeps them all regardless.
    async fn notification_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = LiveNotification>> {
        let viewer = ctx.viewer()?.clone();
        // An inbox is personal: an anonymous subscriber is refused now, not starved.
        viewer.user()?;
        let entries = live::follow(ctx, after.as_deref()).await?;
        Ok(entries.filter_map(move |entry: Arc<Envelope>| {
            let live = entry
                .decode::<NotificationEvent>()
                .filter(|_| {
                    viewer
                        .user()
                        .is_ok_and(|me| model::event_visible_to(&entry, me))
                })
                .map(|event| LiveNotification {
                    cursor: entry.cursor.to_string(),
                    notification: Notification::from(event),
                });
            async move { live }
        }))
    }
}
