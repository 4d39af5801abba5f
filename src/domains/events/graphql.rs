//! `events` over GraphQL: a page of the log, and a subscription that replays then goes live.

use std::sync::Arc;

use async_graphql::connection::PageInfo;
use async_graphql::{Context, Enum, Json, Object, Result, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::model::{self, Topic};
use super::service;
use crate::graphql::context::ContextExt;
use crate::graphql::live::{self, parse_cursor};
use crate::graphql::pagination::page_size;
use crate::platform::events::Envelope;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "EventTopic", remote = "Topic")]
pub enum EventTopic {
    Tasks,
    Approvals,
    Business,
    Finance,
    Identity,
    Jobs,
    Notifications,
}

/// One entry of the event log.
#[derive(SimpleObject)]
pub struct Event {
    /// Pass it as `after` to resume right after this event.
    cursor: String,
    topic: EventTopic,
    /// What happened, in the topic's terms (`PROGRESS_REPORTED`, `ENTRY_POSTED`, …).
    kind: String,
    /// What it happened to (`task`, `approval`, `business_transaction`, …) and its id.
    subject_kind: String,
    subject_id: Option<ID>,
    actor_id: Option<ID>,
    at: DateTime<Utc>,
    payload: Json<serde_json::Value>,
}

impl Event {
    fn of(envelope: &Envelope) -> Option<Self> {
        Some(Self {
            cursor: envelope.cursor.to_string(),
            topic: Topic::parse(&envelope.topic)?.into(),
            kind: envelope.kind.clone(),
            subject_kind: envelope.subject_kind.clone(),
            subject_id: envelope.subject_id.map(|id| ID(id.to_string())),
            actor_id: envelope
                .actor_id
                .filter(|id| !id.is_nil())
                .map(|id| ID(id.to_string())),
            at: envelope.at,
            payload: Json(model::public_payload(envelope)),
        })
    }
}

/// A page of the log (Relay-shaped). Its `endCursor` is where the next page starts, which may
/// be past the last edge: the page looked further than what the viewer may see.
#[derive(SimpleObject)]
pub struct EventConnection {
    edges: Vec<EventEdge>,
    page_info: PageInfo,
}

#[derive(SimpleObject)]
pub struct EventEdge {
    cursor: String,
    node: Event,
}

impl EventConnection {
    fn of(page: service::EventPage, after: bool) -> Self {
        let edges: Vec<EventEdge> = page
            .entries
            .iter()
            .filter_map(|entry| Event::of(entry))
            .map(|node| EventEdge {
                cursor: node.cursor.clone(),
                node,
            })
            .collect();
        Self {
            page_info: PageInfo {
                has_previous_page: after,
                has_next_page: page.has_next,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: page.end.map(|c| c.to_string()),
            },
            edges,
        }
    }
}

fn topics(topics: Option<Vec<EventTopic>>) -> Vec<Topic> {
    topics
        .unwrap_or_default()
        .into_iter()
        .map(Topic::from)
        .collect()
}

#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The log after `after` (from the oldest retained event without it), in order, filtered
    /// to what the viewer may see. A page may hold fewer than `first` events (even none) and
    /// still have a next page: keep going from `endCursor`. `CURSOR_EXPIRED` when `after` is
    /// older than the retention.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
        topics: Option<Vec<EventTopic>>,
    ) -> Result<EventConnection> {
        let caller = ctx.caller()?;
        let after = parse_cursor("after", after.as_deref())?;
        let first = page_size(first)? as usize;
        let topics = self::topics(topics);
        let page = service::page(caller.db(), caller.viewer, after, first, &topics).await?;
        Ok(EventConnection::of(page, after.is_some()))
    }
}

#[derive(Default)]
pub struct EventsSubscription;

#[Subscription]
impl EventsSubscription {
    /// Every event the subscriber may see, of `topics` (all when empty), from every node: with
    /// `after`, first those after it, then live, with no gap and no duplicate at the switch.
    /// Without `after`, from now on. Visibility is decided per event at delivery.
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        topics: Option<Vec<EventTopic>>,
    ) -> Result<impl Stream<Item = Event>> {
        let viewer = live::subscriber(ctx.caller()?.viewer)?;
        let wanted = self::topics(topics);
        let entries = live::follow(ctx, after.as_deref()).await?;
        Ok(entries.filter_map(move |entry: Arc<Envelope>| {
            let shown = Topic::parse(&entry.topic)
                .is_some_and(|t| wanted.is_empty() || wanted.contains(&t))
                && model::visible_to(&entry, &viewer);
            let event = if shown { Event::of(&entry) } else { None };
            async move { event }
        }))
    }
}
