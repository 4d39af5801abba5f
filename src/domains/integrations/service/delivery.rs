//! Webhook delivery: the fan-out from the event log into delivery rows (attempts are in
//! `attempts`).
//!
//! **Fan-out exactly once.** One dispatch cursor (`webhook_dispatch_state`) says how far the
//! log has been turned into deliveries. A round reads the log after it (below the commit
//! horizon), then locks the cursor row (`FOR UPDATE` on PostgreSQL; SQLite has one writer) and
//! goes on only if nobody moved it meanwhile; it creates the round's deliveries with their
//! first attempt jobs and moves the cursor in the same transaction. So any number of nodes may
//! run rounds: each entry is fanned out by exactly one committed round, and the unique
//! (endpoint, message id) index is the backstop.

use chrono::{DateTime, Utc};
use entities::{webhook_delivery, webhook_endpoint};
use sea_orm::prelude::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::app_viewer;
use crate::auth::ViewerUser;
use crate::config::WebhooksConfig;
use crate::domains::events::model::visible_to;
use crate::domains::integrations::model::webhooks::{
    event_body, event_type, forward_body, message_id, transaction_message_id, AttemptArgs,
    DeliveryStatus, Filters, FORWARDED_TYPE,
};
use crate::error::{AppError, AppResult};
use crate::platform::db::sql;
use crate::platform::events::{log, Cursor, Envelope};
use crate::platform::scheduler::{enqueue_many, EnqueueError, JobKind, NewJob};
use crate::platform::work::Work;

/// Log entries one fan-out round reads.
pub const DISPATCH_BATCH: u64 = 500;

/// One attempt of one delivery.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SendWebhook(pub AttemptArgs);

impl JobKind for SendWebhook {
    const KIND: &'static str = "webhook.send";
    const QUEUE: &'static str = WEBHOOK_QUEUE;
    /// Attempts of the job itself: a crash or a lost lease. The receiver's failures are the
    /// retry schedule's business (each is a job of its own).
    const MAX_ATTEMPTS: i32 = 5;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
    const BACKOFF_BASE: std::time::Duration = std::time::Duration::from_secs(1);
    const DESCRIPTION: &'static str = "Sends one signed attempt of a webhook delivery";
}

pub const WEBHOOK_QUEUE: &str = "webhooks";

/// An endpoint ready to match entries: its filters and its app's Viewer.
pub struct Target {
    pub endpoint: webhook_endpoint::Model,
    filters: Filters,
    viewer: ViewerUser,
}

impl Target {
    /// `None` when the endpoint's app is inactive or gone.
    pub async fn of(
        db: &impl ConnectionTrait,
        endpoint: &webhook_endpoint::Model,
    ) -> AppResult<Option<Self>> {
        let Some(viewer) = app_viewer(db, endpoint.app_id).await? else {
            return Ok(None);
        };
        Ok(Some(Self {
            filters: Filters::stored(
                &endpoint.topics,
                &endpoint.kinds,
                &endpoint.transaction_types,
            ),
            endpoint: endpoint.clone(),
            viewer,
        }))
    }

    /// Whether the endpoint asked for this entry and its app may see it.
    pub fn takes(&self, entry: &Envelope) -> bool {
        // Job changes are the scheduler's own chatter, and every delivery is a job: sending
        // them would feed itself.
        // Webhooks are a subscription: they need its scope, like the socket.
        self.viewer.allows(crate::auth::AppScope::EventsSubscribe)
            && entry.topic != crate::domains::events::model::Topic::Jobs.as_str()
            && self.filters.wants(&entry.topic, &entry.kind)
            && visible_to(entry, &self.viewer)
    }

    fn start(&self) -> Cursor {
        Cursor::new(self.endpoint.start_tx, self.endpoint.start_position)
    }
}

fn enqueue_error(err: EnqueueError) -> AppError {
    match err {
        EnqueueError::Db(db) => AppError::from(db),
        other => AppError::internal(anyhow::anyhow!("{other}")),
    }
}

pub(super) fn after(delay: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::zero())
}

pub(super) fn jitter() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}

pub(super) fn attempt_job(args: AttemptArgs, run_at: DateTime<Utc>) -> AppResult<NewJob> {
    Ok(NewJob::of(&SendWebhook(args))
        .map_err(enqueue_error)?
        .run_at(run_at))
}

pub(super) async fn enqueue_jobs(work: &Work, jobs: &[NewJob]) -> AppResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    enqueue_many(work, jobs).await.map_err(enqueue_error)?;
    work.jobs_enqueued();
    Ok(())
}

/// A new delivery row and its first attempt.
pub struct NewDelivery {
    pub message_id: String,
    pub event_type: String,
    pub cursor: Option<String>,
    pub transaction_id: Option<Uuid>,
    pub body: String,
}

/// Creates the deliveries of `items` that `endpoint` does not have yet, each with its first
/// attempt queued; returns how many were created.
pub async fn create(
    work: &Work,
    settings: &WebhooksConfig,
    endpoint_id: Uuid,
    items: Vec<NewDelivery>,
) -> AppResult<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut existing = std::collections::HashSet::new();
    for chunk in items.chunks(500) {
        let rows = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::EndpointId.eq(endpoint_id))
            .filter(
                webhook_delivery::Column::MessageId
                    .is_in(chunk.iter().map(|i| i.message_id.clone())),
            )
            .all(work)
            .await?;
        existing.extend(rows.into_iter().map(|r| r.message_id));
    }
    let now = Utc::now();
    let first = settings
        .retry_schedule
        .delay(0, jitter())
        .unwrap_or_default();
    let run_at = after(first);
    let mut rows = Vec::new();
    let mut jobs = Vec::new();
    for item in items {
        if !existing.insert(item.message_id.clone()) {
            continue;
        }
        let id = Uuid::now_v7();
        let chain = Uuid::now_v7();
        rows.push(webhook_delivery::ActiveModel {
            id: Set(id),
            endpoint_id: Set(endpoint_id),
            message_id: Set(item.message_id),
            event_type: Set(item.event_type),
            cursor: Set(item.cursor),
            transaction_id: Set(item.transaction_id),
            body: Set(item.body),
            status: Set(DeliveryStatus::Pending.as_str().to_owned()),
            attempt_count: Set(0),
            chain: Set(chain),
            next_attempt_at: Set(Some(run_at)),
            delivered_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        });
        jobs.push(attempt_job(
            AttemptArgs {
                delivery_id: id,
                chain,
                step: 0,
            },
            run_at,
        )?);
    }
    let created = rows.len();
    for chunk in rows.chunks(200) {
        webhook_delivery::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    webhook_delivery::Column::EndpointId,
                    webhook_delivery::Column::MessageId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .do_nothing()
            .exec(work)
            .await?;
    }
    enqueue_jobs(work, &jobs).await?;
    Ok(created)
}

/// The deliveries of log entries for `endpoint` (already matched), created where missing.
pub async fn create_for_events(
    work: &Work,
    settings: &WebhooksConfig,
    endpoint: &webhook_endpoint::Model,
    entries: &[Envelope],
) -> AppResult<usize> {
    let items = entries
        .iter()
        .map(|entry| NewDelivery {
            message_id: message_id(entry.cursor),
            event_type: event_type(entry),
            cursor: Some(entry.cursor.to_string()),
            transaction_id: None,
            body: event_body(entry),
        })
        .collect();
    create(work, settings, endpoint.id, items).await
}

/// Delivers a business transaction of `type_code` to every active endpoint of an active app
/// that lists the type; returns how many deliveries were created (the same `webhook-id` on
/// each endpoint: one per transaction).
pub async fn forward_transaction(
    work: &Work,
    settings: &WebhooksConfig,
    row: &entities::business_transaction::Model,
    type_code: &str,
) -> AppResult<usize> {
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Active.eq(true))
        .all(work)
        .await?;
    let body = forward_body(row.id, type_code, &row.payload, &row.source_key, Utc::now());
    let mut created = 0;
    for endpoint in endpoints {
        let filters = Filters::stored(
            &endpoint.topics,
            &endpoint.kinds,
            &endpoint.transaction_types,
        );
        if !filters.transaction_types.iter().any(|t| t == type_code) {
            continue;
        }
        // The payload is the transaction itself: only an app that may read every transaction
        // receives it (one held to a department would see others' payloads).
        let reads = app_viewer(work, endpoint.app_id)
            .await?
            .is_some_and(|viewer| {
                crate::domains::business::model::reads_every_transaction(&viewer)
            });
        if !reads {
            continue;
        }
        let item = NewDelivery {
            message_id: transaction_message_id(row.id),
            event_type: FORWARDED_TYPE.to_owned(),
            cursor: None,
            transaction_id: Some(row.id),
            body: body.clone(),
        };
        created += create(work, settings, endpoint.id, vec![item]).await?;
    }
    Ok(created)
}

/// What became of the delivery, for the caller's after-steps (a forwarded transaction).
pub enum Settled {
    Delivered,
    Retrying,
    GaveUp,
}

/// A forwarded transaction follows its deliveries: COMPLETED once every one was delivered,
/// FAILED as soon as one is given up.
pub async fn settle_transaction(
    work: &Work,
    transaction_id: Uuid,
    settled: &Settled,
) -> AppResult<()> {
    use crate::domains::business::service as business;
    match settled {
        Settled::Retrying => Ok(()),
        Settled::GaveUp => {
            let args = business::RoutedArgs { transaction_id };
            business::give_up(work, &args, business::DELIVERY_FAILED).await
        }
        Settled::Delivered => {
            let all = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::TransactionId.eq(transaction_id))
                .all(work)
                .await?;
            let done = all
                .iter()
                .all(|d| DeliveryStatus::parse(&d.status) == Some(DeliveryStatus::Delivered));
            if !done {
                return Ok(());
            }
            let Some(row) = entities::business_transaction::Entity::find_by_id(transaction_id)
                .one(work)
                .await?
            else {
                return Ok(());
            };
            let type_code = business::type_of(work, row.type_id)
                .await?
                .map(|kind| kind.code)
                .unwrap_or_default();
            let result = serde_json::json!({ "forwarded": {
                "endpoints": all.len(),
                "webhookId": transaction_message_id(transaction_id),
                "at": Utc::now(),
            } });
            business::finish(work, row, &type_code, Ok(result)).await
        }
    }
}

/// Starts a new attempt chain for each delivery: PENDING again, first attempt queued; a chain
/// still running or waiting stops at its next step.
pub async fn requeue(work: &Work, settings: &WebhooksConfig, ids: &[Uuid]) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let chain = Uuid::now_v7();
    let first = settings
        .retry_schedule
        .delay(0, jitter())
        .unwrap_or_default();
    let run_at = after(first);
    for chunk in ids.chunks(500) {
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Chain, Expr::value(chain))
            .col_expr(
                webhook_delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending.as_str()),
            )
            .col_expr(
                webhook_delivery::Column::NextAttemptAt,
                Expr::value(Some(run_at)),
            )
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(webhook_delivery::Column::Id.is_in(chunk.iter().copied()))
            .exec(work)
            .await?;
    }
    let jobs = ids
        .iter()
        .map(|id| {
            attempt_job(
                AttemptArgs {
                    delivery_id: *id,
                    chain,
                    step: 0,
                },
                run_at,
            )
        })
        .collect::<AppResult<Vec<_>>>()?;
    enqueue_jobs(work, &jobs).await
}

async fn dispatch_cursor(work: &Work, lock: bool) -> AppResult<Cursor> {
    let backend = work.get_database_backend();
    let text = match (backend, lock) {
        (DbBackend::Postgres, true) => {
            "SELECT tx, position FROM webhook_dispatch_state WHERE id = 1 FOR UPDATE"
        }
        _ => "SELECT tx, position FROM webhook_dispatch_state WHERE id = 1",
    };
    let row = work
        .query_one(sql(backend, text, []))
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("webhook_dispatch_state has no row")))?;
    Ok(Cursor::new(
        row.try_get("", "tx")?,
        row.try_get("", "position")?,
    ))
}

/// What one fan-out round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// It read this many entries (fewer than a batch: caught up for now).
    Read(usize),
    /// Another node advanced the cursor first: go again.
    Raced,
}

/// One fan-out round (see the module comment), in `work`.
pub async fn dispatch(work: &Work, settings: &WebhooksConfig) -> AppResult<Round> {
    let seen = dispatch_cursor(work, false).await?;
    // Read before taking the lock: the lock gives this transaction an id, which would hold
    // back the commit horizon for what it reads.
    let batch = log::read_after(work, seen, DISPATCH_BATCH).await?;
    let Some(last) = batch.entries.last().map(|e| e.cursor) else {
        return Ok(Round::Read(0));
    };
    if dispatch_cursor(work, true).await? != seen {
        return Ok(Round::Raced);
    }
    let endpoints = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::Active.eq(true))
        .all(work)
        .await?;
    for endpoint in endpoints {
        // Entries before the endpoint existed are not its news.
        if Cursor::new(endpoint.start_tx, endpoint.start_position) >= last {
            continue;
        }
        let Some(target) = Target::of(work, &endpoint).await? else {
            continue;
        };
        let start = target.start();
        let taken: Vec<Envelope> = batch
            .entries
            .iter()
            .filter(|e| e.cursor > start && target.takes(e))
            .cloned()
            .collect();
        create_for_events(work, settings, &endpoint, &taken).await?;
    }
    let backend = work.get_database_backend();
    work.execute(sql(
        backend,
        "UPDATE webhook_dispatch_state SET tx = $1, position = $2 WHERE id = 1",
        [last.tx.into(), last.position.into()],
    ))
    .await?;
    Ok(Round::Read(batch.entries.len()))
}
