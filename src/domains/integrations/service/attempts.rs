//! One attempt of a webhook delivery: what it sends, and its outcome, recorded in the unit of
//! work that completes the attempt's job.
//!
//! **Attempts at least once.** An attempt is a scheduler job (lease, fencing). The HTTP call
//! runs outside any transaction; its record, the delivery's new state, the next attempt's job
//! and the job's completion then commit together, so a node that dies mid-attempt leaves the
//! job to be rescued and sent again with the same `webhook-id`, never lost.

use chrono::{DateTime, Utc};
use entities::{app, webhook_attempt, webhook_delivery, webhook_endpoint};
use sea_orm::prelude::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::config::WebhooksConfig;
use crate::domains::integrations::model::webhooks::{
    outcome_of, short_error, status_error, AttemptArgs, DeliveryStatus, Outcome,
};
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service::{notify, Notice};
use crate::error::{AppError, AppResult};
use crate::platform::outbound::{OutboundError, OutboundResponse};
use crate::platform::webhook_signature::SigningSecret;
use crate::platform::work::Work;

use super::delivery::{after, attempt_job, enqueue_jobs, jitter, settle_transaction, Settled};

/// What an attempt needs, read before the HTTP call.
pub struct Prepared {
    pub delivery: webhook_delivery::Model,
    pub endpoint: webhook_endpoint::Model,
    pub secrets: Vec<SigningSecret>,
}

pub enum Step {
    Send(Box<Prepared>),
    /// Nothing to send: superseded by a newer chain, already settled, or gone.
    Nothing,
    /// The endpoint or its app is disabled: the delivery stops here.
    Disabled(Uuid),
}

pub async fn prepare(db: &impl ConnectionTrait, args: &AttemptArgs) -> AppResult<Step> {
    let Some(delivery) = webhook_delivery::Entity::find_by_id(args.delivery_id)
        .one(db)
        .await?
    else {
        return Ok(Step::Nothing);
    };
    if delivery.chain != args.chain
        || DeliveryStatus::parse(&delivery.status) != Some(DeliveryStatus::Pending)
    {
        return Ok(Step::Nothing);
    }
    let Some(endpoint) = webhook_endpoint::Entity::find_by_id(delivery.endpoint_id)
        .one(db)
        .await?
    else {
        return Ok(Step::Nothing);
    };
    let app_active = app::Entity::find_by_id(endpoint.app_id)
        .one(db)
        .await?
        .is_some_and(|a| a.active);
    if !endpoint.active || !app_active {
        return Ok(Step::Disabled(delivery.id));
    }
    let mut secrets = vec![SigningSecret::parse(&endpoint.secret)
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored signing secret: {e}")))?];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
    {
        if until > Utc::now() {
            if let Ok(previous) = SigningSecret::parse(previous) {
                secrets.push(previous);
            }
        }
    }
    Ok(Step::Send(Box::new(Prepared {
        delivery,
        endpoint,
        secrets,
    })))
}

/// The headers of one attempt, signed at `timestamp`.
pub fn headers(prepared: &Prepared, timestamp: i64) -> Vec<(&'static str, String)> {
    let secrets: Vec<&SigningSecret> = prepared.secrets.iter().collect();
    let signature = crate::platform::webhook_signature::signature_header(
        &secrets,
        &prepared.delivery.message_id,
        timestamp,
        prepared.delivery.body.as_bytes(),
    );
    vec![
        ("content-type", "application/json".to_owned()),
        ("webhook-id", prepared.delivery.message_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

/// How an attempt went, as it is recorded.
pub struct Attempted {
    pub at: DateTime<Utc>,
    pub status: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
}

impl Attempted {
    pub fn of(
        at: DateTime<Utc>,
        measured: std::time::Duration,
        result: &Result<OutboundResponse, OutboundError>,
    ) -> Self {
        match result {
            Ok(response) => Self {
                at,
                status: Some(response.status),
                duration_ms: i64::try_from(response.elapsed.as_millis()).unwrap_or(i64::MAX),
                error: status_error(response.status),
            },
            Err(err) => Self {
                at,
                status: None,
                duration_ms: i64::try_from(measured.as_millis()).unwrap_or(i64::MAX),
                error: Some(short_error(&err.public_reason())),
            },
        }
    }
}

/// Records an attempt and what follows from it, in the work that completes the attempt's job:
/// the delivery's state, the next attempt's job, the endpoint's failure streak (disabling it
/// on 410 or after `disable_after` of failures, telling the app's owner).
pub async fn record(
    work: &Work,
    settings: &WebhooksConfig,
    prepared: &Prepared,
    args: &AttemptArgs,
    attempted: Attempted,
) -> AppResult<Settled> {
    let now = Utc::now();
    webhook_attempt::Entity::insert(webhook_attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        delivery_id: Set(prepared.delivery.id),
        at: Set(attempted.at),
        status_code: Set(attempted.status.map(i32::from)),
        duration_ms: Set(attempted.duration_ms),
        error: Set(attempted.error.clone()),
    })
    .exec(work)
    .await?;
    let outcome = outcome_of(attempted.status);
    let next = match outcome {
        Outcome::Failed => settings
            .retry_schedule
            .delay(args.step + 1, jitter())
            .map(after),
        _ => None,
    };
    let (status, settled) = match (&outcome, next) {
        (Outcome::Delivered, _) => (DeliveryStatus::Delivered, Settled::Delivered),
        (Outcome::Failed, Some(_)) => (DeliveryStatus::Pending, Settled::Retrying),
        _ => (DeliveryStatus::Failed, Settled::GaveUp),
    };
    let changed = webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Status,
            Expr::value(status.as_str()),
        )
        .col_expr(
            webhook_delivery::Column::AttemptCount,
            Expr::col(webhook_delivery::Column::AttemptCount).add(1),
        )
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(next))
        .col_expr(
            webhook_delivery::Column::DeliveredAt,
            Expr::value((status == DeliveryStatus::Delivered).then_some(now)),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::Id.eq(prepared.delivery.id))
        .filter(webhook_delivery::Column::Chain.eq(args.chain))
        .exec(work)
        .await?;
    if changed.rows_affected == 0 {
        // A redelivery superseded this chain while it was sending: only the attempt stays.
        return Ok(Settled::Retrying);
    }
    if let Some(run_at) = next {
        let job = attempt_job(
            AttemptArgs {
                delivery_id: args.delivery_id,
                chain: args.chain,
                step: args.step + 1,
            },
            run_at,
        )?;
        enqueue_jobs(work, &[job]).await?;
    }
    streak(work, settings, &prepared.endpoint, &outcome, now).await?;
    if let Some(transaction) = prepared.delivery.transaction_id {
        settle_transaction(work, transaction, &settled).await?;
    }
    Ok(settled)
}

/// The endpoint's failure streak: cleared by a success; a 410, or failures for longer than
/// `disable_after`, disable it.
async fn streak(
    work: &Work,
    settings: &WebhooksConfig,
    endpoint: &webhook_endpoint::Model,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let update = webhook_endpoint::Entity::update_many()
        .filter(webhook_endpoint::Column::Id.eq(endpoint.id));
    match outcome {
        Outcome::Delivered => {
            update
                .col_expr(
                    webhook_endpoint::Column::FailingSince,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(webhook_endpoint::Column::FailingSince.is_not_null())
                .exec(work)
                .await?;
        }
        Outcome::Gone => {
            disable(work, endpoint, "the receiver answered 410 Gone", now).await?;
        }
        Outcome::Failed => {
            let current = webhook_endpoint::Entity::find_by_id(endpoint.id)
                .one(work)
                .await?;
            let Some(current) = current else {
                return Ok(());
            };
            match current.failing_since {
                None => {
                    update
                        .col_expr(
                            webhook_endpoint::Column::FailingSince,
                            Expr::value(Some(now)),
                        )
                        .exec(work)
                        .await?;
                }
                Some(since)
                    if current.active
                        && (now - since).to_std().unwrap_or_default() >= settings.disable_after =>
                {
                    let reason = format!(
                        "every delivery failed since {}",
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    );
                    disable(work, &current, &reason, now).await?;
                    let owner = app::Entity::find_by_id(current.app_id)
                        .one(work)
                        .await?
                        .map(|a| a.owner_id);
                    if let Some(owner) = owner {
                        let body = format!(
                            "Webhook endpoint {} was disabled: {reason}. Fix the receiver, enable \
                             the endpoint again, and replay what it missed.",
                            current.url
                        );
                        notify(
                            work,
                            &[owner],
                            None,
                            Notice {
                                kind: NotificationKind::WebhookDisabled,
                                title: "A webhook endpoint was disabled",
                                body: &body,
                                subject: Some(Subject {
                                    kind: "webhook_endpoint",
                                    id: current.id,
                                }),
                            },
                        )
                        .await?;
                    }
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

async fn disable(
    work: &Work,
    endpoint: &webhook_endpoint::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Active, Expr::value(false))
        .col_expr(
            webhook_endpoint::Column::DisabledReason,
            Expr::value(Some(reason.to_owned())),
        )
        .col_expr(webhook_endpoint::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoint::Column::Id.eq(endpoint.id))
        .filter(webhook_endpoint::Column::Active.eq(true))
        .exec(work)
        .await?;
    Ok(())
}
