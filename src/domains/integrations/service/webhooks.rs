//! Webhook endpoints and their deliveries: managing them, reading them, redelivery and replay.
//! Every call is authorised through the endpoint's app (`managed_app`).

use std::collections::HashMap;

use chrono::Utc;
use entities::{webhook_attempt, webhook_delivery, webhook_endpoint};
use sea_orm::prelude::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use uuid::Uuid;

use super::delivery;
use super::managed_app;
use crate::auth::Viewer;
use crate::config::WebhooksConfig;
use crate::domains::integrations::model::webhooks::{
    DeliveryId, DeliveryStatus, EndpointId, Filters, MAX_REPLAY_EVENTS,
};
use crate::error::{AppError, AppResult};
use crate::platform::events::{follow, log, Cursor};
use crate::platform::outbound::Outbound;
use crate::platform::webhook_signature::SigningSecret;
use crate::platform::work::Work;

/// A new endpoint, parsed.
pub struct NewEndpoint {
    pub app_id: Uuid,
    pub url: String,
    pub filters: Filters,
    pub description: String,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub topics: Option<Vec<crate::domains::events::model::Topic>>,
    pub kinds: Option<Vec<String>>,
    pub transaction_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint (and forgets why it was disabled).
    pub active: Option<bool>,
}

async fn vetted(outbound: &Outbound, raw: &str) -> AppResult<String> {
    outbound
        .vet(raw.trim())
        .await
        .map(|url| url.to_string())
        .map_err(|reason| AppError::bad_field("url", reason))
}

/// Creates an endpoint and returns it with its signing secret, shown this once. It receives
/// what enters the log from now on.
pub async fn create_endpoint(
    work: &Work,
    viewer: &Viewer,
    outbound: &Outbound,
    input: NewEndpoint,
) -> AppResult<(webhook_endpoint::Model, String)> {
    managed_app(work, viewer, input.app_id).await?;
    let url = vetted(outbound, &input.url).await?;
    let secret = SigningSecret::generate().to_text();
    let start = log::head(work).await?;
    let now = Utc::now();
    let row = webhook_endpoint::ActiveModel {
        id: Set(Uuid::now_v7()),
        app_id: Set(input.app_id),
        url: Set(url),
        topics: Set(input.filters.topics_json()),
        kinds: Set(input.filters.kinds_json()),
        transaction_types: Set(input.filters.transaction_types_json()),
        description: Set(input.description),
        active: Set(true),
        disabled_reason: Set(None),
        secret: Set(secret.clone()),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        failing_since: Set(None),
        start_tx: Set(start.tx),
        start_position: Set(start.position),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await?;
    Ok((row, secret))
}

/// The endpoint, for a viewer who may manage its app; `NOT_FOUND` otherwise.
pub async fn managed_endpoint(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: EndpointId,
) -> AppResult<webhook_endpoint::Model> {
    let row = webhook_endpoint::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("webhook endpoint"))?;
    managed_app(db, viewer, row.app_id).await?;
    Ok(row)
}

pub async fn update_endpoint(
    work: &Work,
    viewer: &Viewer,
    outbound: &Outbound,
    id: EndpointId,
    changes: EndpointChanges,
) -> AppResult<webhook_endpoint::Model> {
    let row = managed_endpoint(work, viewer, id).await?;
    let current = Filters::stored(&row.topics, &row.kinds, &row.transaction_types);
    let filters = Filters::parse(
        changes.topics.unwrap_or(current.topics),
        changes.kinds.unwrap_or(current.kinds),
        changes
            .transaction_types
            .unwrap_or(current.transaction_types),
    )?;
    let mut active: webhook_endpoint::ActiveModel = row.clone().into();
    if let Some(url) = changes.url {
        active.url = Set(vetted(outbound, &url).await?);
    }
    active.topics = Set(filters.topics_json());
    active.kinds = Set(filters.kinds_json());
    active.transaction_types = Set(filters.transaction_types_json());
    if let Some(description) = changes.description {
        active.description = Set(description);
    }
    match changes.active {
        Some(true) if !row.active => {
            active.active = Set(true);
            active.disabled_reason = Set(None);
            active.failing_since = Set(None);
        }
        Some(false) if row.active => {
            active.active = Set(false);
            active.disabled_reason = Set(Some("disabled by its owner".into()));
        }
        _ => {}
    }
    active.updated_at = Set(Utc::now());
    Ok(active.update(work).await?)
}

/// Deletes the endpoint with its deliveries and their attempts; their queued attempts find
/// nothing and stop.
pub async fn delete_endpoint(work: &Work, viewer: &Viewer, id: EndpointId) -> AppResult<bool> {
    let row = managed_endpoint(work, viewer, id).await?;
    let deliveries = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::Id)
        .filter(webhook_delivery::Column::EndpointId.eq(row.id))
        .into_query();
    webhook_attempt::Entity::delete_many()
        .filter(webhook_attempt::Column::DeliveryId.in_subquery(deliveries))
        .exec(work)
        .await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::EndpointId.eq(row.id))
        .exec(work)
        .await?;
    webhook_endpoint::Entity::delete_by_id(row.id)
        .exec(work)
        .await?;
    Ok(true)
}

/// A new signing secret, shown this once. The one it replaces keeps signing beside it for
/// `overlap`, so a receiver can switch without missing a message.
pub async fn rotate_secret(
    work: &Work,
    viewer: &Viewer,
    settings: &WebhooksConfig,
    id: EndpointId,
) -> AppResult<(webhook_endpoint::Model, String)> {
    let row = managed_endpoint(work, viewer, id).await?;
    let secret = SigningSecret::generate().to_text();
    let now = Utc::now();
    let until = now
        + chrono::Duration::from_std(settings.secret_overlap)
            .unwrap_or_else(|_| chrono::Duration::days(1));
    let mut active: webhook_endpoint::ActiveModel = row.clone().into();
    active.previous_secret = Set(Some(row.secret));
    active.previous_secret_until = Set(Some(until));
    active.secret = Set(secret.clone());
    active.updated_at = Set(now);
    Ok((active.update(work).await?, secret))
}

pub async fn endpoints(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    app_id: Uuid,
) -> AppResult<Vec<webhook_endpoint::Model>> {
    managed_app(db, viewer, app_id).await?;
    Ok(webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::AppId.eq(app_id))
        .order_by_asc(webhook_endpoint::Column::CreatedAt)
        .order_by_asc(webhook_endpoint::Column::Id)
        .all(db)
        .await?)
}

pub struct DeliveryPage {
    pub items: Vec<(webhook_delivery::Model, Vec<webhook_attempt::Model>)>,
    pub total: u64,
}

/// An endpoint's deliveries, newest first, each with its attempts in order.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    endpoint: EndpointId,
    offset: u64,
    limit: u64,
) -> AppResult<DeliveryPage> {
    let endpoint = managed_endpoint(db, viewer, endpoint).await?;
    let query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id));
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(webhook_delivery::Column::CreatedAt)
        .order_by_desc(webhook_delivery::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    let mut attempts: HashMap<Uuid, Vec<webhook_attempt::Model>> = HashMap::new();
    if !rows.is_empty() {
        let found = webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.is_in(rows.iter().map(|r| r.id)))
            .order_by_asc(webhook_attempt::Column::At)
            .order_by_asc(webhook_attempt::Column::Id)
            .all(db)
            .await?;
        for attempt in found {
            attempts
                .entry(attempt.delivery_id)
                .or_default()
                .push(attempt);
        }
    }
    let items = rows
        .into_iter()
        .map(|row| {
            let mine = attempts.remove(&row.id).unwrap_or_default();
            (row, mine)
        })
        .collect();
    Ok(DeliveryPage { items, total })
}

/// Queues one more attempt chain of a delivery, with the same `webhook-id` and body; a chain
/// still waiting for its next attempt is superseded.
pub async fn redeliver(
    work: &Work,
    viewer: &Viewer,
    settings: &WebhooksConfig,
    id: DeliveryId,
) -> AppResult<webhook_delivery::Model> {
    let row = webhook_delivery::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("webhook delivery"))?;
    let endpoint = managed_endpoint(work, viewer, EndpointId(row.endpoint_id)).await?;
    if !endpoint.active {
        return Err(AppError::Conflict(
            "the endpoint is disabled: enable it first".into(),
        ));
    }
    delivery::requeue(work, settings, &[row.id]).await?;
    webhook_delivery::Entity::find_by_id(row.id)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("webhook delivery"))
}

/// Queues again every event after `after` that the endpoint takes, with their original
/// `webhook-id`s: the deliveries that exist are queued anew, the missing ones (the endpoint
/// was disabled, say) are created. Returns how many were queued.
pub async fn replay(
    work: &Work,
    viewer: &Viewer,
    settings: &WebhooksConfig,
    endpoint: EndpointId,
    after: Cursor,
) -> AppResult<usize> {
    let endpoint = managed_endpoint(work, viewer, endpoint).await?;
    if !endpoint.active {
        return Err(AppError::Conflict(
            "the endpoint is disabled: enable it first".into(),
        ));
    }
    follow::check_retained(work, after).await?;
    let Some(target) = delivery::Target::of(work, &endpoint).await? else {
        return Err(AppError::Conflict("the endpoint's app is inactive".into()));
    };
    let mut cursor = after;
    let mut matched = Vec::new();
    let mut scanned = 0usize;
    loop {
        let batch = log::read_after(work, cursor, 500).await?;
        let read = batch.entries.len();
        for entry in batch.entries {
            scanned += 1;
            if scanned > MAX_REPLAY_EVENTS {
                return Err(AppError::bad_field(
                    "after",
                    format!(
                        "more than {MAX_REPLAY_EVENTS} events follow this cursor; replay in \
                         steps, from later cursors"
                    ),
                ));
            }
            cursor = entry.cursor;
            if target.takes(&entry) {
                matched.push(entry);
            }
        }
        if read < 500 {
            break;
        }
    }
    let message_ids: Vec<String> = matched
        .iter()
        .map(|e| crate::domains::integrations::model::webhooks::message_id(e.cursor))
        .collect();
    let existing: HashMap<String, Uuid> = if message_ids.is_empty() {
        HashMap::new()
    } else {
        let mut found = HashMap::new();
        for chunk in message_ids.chunks(500) {
            let rows = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id))
                .filter(webhook_delivery::Column::MessageId.is_in(chunk.iter().cloned()))
                .all(work)
                .await?;
            found.extend(rows.into_iter().map(|r| (r.message_id, r.id)));
        }
        found
    };
    let (old, new): (Vec<_>, Vec<_>) = matched.into_iter().partition(|entry| {
        existing.contains_key(&crate::domains::integrations::model::webhooks::message_id(
            entry.cursor,
        ))
    });
    let old_ids: Vec<Uuid> = old
        .iter()
        .filter_map(|e| {
            existing
                .get(&crate::domains::integrations::model::webhooks::message_id(
                    e.cursor,
                ))
                .copied()
        })
        .collect();
    delivery::requeue(work, settings, &old_ids).await?;
    let created = delivery::create_for_events(work, settings, &endpoint, &new).await?;
    Ok(old_ids.len() + created)
}

/// Marks a pending delivery of an endpoint that was disabled, so it reads as given up.
pub async fn settle_disabled(work: &Work, delivery_id: Uuid) -> AppResult<()> {
    webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook_delivery::Column::Id.eq(delivery_id))
        .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(work)
        .await?;
    let row = webhook_delivery::Entity::find_by_id(delivery_id)
        .one(work)
        .await?;
    if let Some(transaction) = row.and_then(|r| r.transaction_id) {
        delivery::settle_transaction(work, transaction, &delivery::Settled::GaveUp).await?;
    }
    Ok(())
}
