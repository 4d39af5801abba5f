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

fn inbox_connection(
    inbox: service::Inbox,
    after: bool,
) -> Connection<String, Notification, TotalCount, EmptyFields> {
    let mut connection = Connection::with_additional_fields(
        after,
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
    connection
}

fn notification_ids(ids: &[ID]) -> Result<Vec<uuid::Uuid>, AppError> {
    ids.iter()
        .map(|id| NotificationId::parse("ids", id).map(|n| n.0))
        .collect()
}

#[derive(Default)]
pub struct NotificationsQuery;

#[Object]
impl NotificationsQuery {
    /// The signed-in user's inbox, newest first.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] unread_only: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Notification, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let first = page_size(first)?;
        let before = after
            .as_deref()
            .map(|a| NotificationId::parse("after", a).map(|id| id.0))
            .transpose()?;
        let inbox = service::inbox(caller.db(), caller.viewer, unread_only, before, first).await?;
        Ok(inbox_connection(inbox, before.is_some()))
    }

    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<u64> {
        let caller = ctx.caller()?;
        Ok(service::unread_count(caller.db(), caller.viewer).await?)
    }
}

#[derive(Default)]
pub struct NotificationsMutation;

#[Object]
impl NotificationsMutation {
    /// Marks the given notifications of the caller read; returns how many changed.
    async fn mark_notifications_read(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<u64> {
        let caller = ctx.caller()?;
        let ids = notification_ids(&ids)?;
        Ok(caller
            .write(async |work| service::mark_read(work, caller.viewer, Some(ids)).await)
            .await?)
    }

    async fn mark_all_notifications_read(&self, ctx: &Context<'_>) -> Result<u64> {
        let caller = ctx.caller()?;
        Ok(caller
            .write(async |work| service::mark_read(work, caller.viewer, None).await)
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
        let viewer = ctx.caller()?.viewer.clone();
        // An inbox is personal: an anonymous subscriber is refused now, not starved.
        viewer.user()?;
        let entries = live::follow(ctx, after.as_deref()).await?;
        Ok(entries.filter_map(move |entry: Arc<Envelope>| {
            let live = entry
                .decode_if::<NotificationEvent>(|_| {
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
