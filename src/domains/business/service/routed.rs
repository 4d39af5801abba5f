//! The second half of `APP_FORWARD` and `DATA_PROCESS` transactions: the job enqueued with the
//! transaction delivers or processes it, then records the outcome on the transaction.

use chrono::Utc;
use entities::{business_transaction, outbox, transaction_type};
use sea_orm::prelude::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::with_status;
use crate::domains::business::model::{Route, Status};
use crate::error::{AppError, AppResult};
use crate::platform::delivery::{post_json, DeliveryError};
use crate::platform::scheduler::{enqueue as enqueue_job, EnqueueError, NewJob};

pub const FORWARD_KIND: &str = "business.forward";
pub const PROCESS_KIND: &str = "business.process";
pub const DELIVERY_QUEUE: &str = "delivery";
pub const PROCESSING_QUEUE: &str = "processing";

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutedArgs {
    pub transaction_id: Uuid,
    pub outbox_id: Uuid,
}

/// Enqueues the job that finishes a routed transaction, in the caller's transaction.
pub(super) async fn enqueue<C: ConnectionTrait>(
    db: &C,
    route: Route,
    transaction_id: Uuid,
    outbox_id: Uuid,
) -> AppResult<Uuid> {
    let (queue, kind) = match route {
        Route::AppForward => (DELIVERY_QUEUE, FORWARD_KIND),
        _ => (PROCESSING_QUEUE, PROCESS_KIND),
    };
    let args = serde_json::to_value(RoutedArgs {
        transaction_id,
        outbox_id,
    })
    .map_err(AppError::internal)?;
    let job = NewJob::new(queue, kind, args)
        .max_attempts(8)
        .unique(format!("outbox:{outbox_id}"));
    enqueue_job(db, job)
        .await
        .map(|e| e.id())
        .map_err(|err| match err {
            EnqueueError::Db(db) => AppError::from(db),
            other => AppError::internal(anyhow::anyhow!("{other}")),
        })
}

/// Why a routed transaction could not finish (this time).
#[derive(Debug)]
pub enum RoutedError {
    Retry(String),
    Permanent(String),
}

impl From<AppError> for RoutedError {
    fn from(err: AppError) -> Self {
        Self::Retry(format!("{err:?}"))
    }
}

async fn load<C: ConnectionTrait>(
    db: &C,
    args: &RoutedArgs,
) -> Result<Option<(business_transaction::Model, transaction_type::Model)>, RoutedError> {
    let Some(row) = business_transaction::Entity::find_by_id(args.transaction_id)
        .one(db)
        .await
        .map_err(AppError::from)?
    else {
        return Err(RoutedError::Permanent(
            "the transaction no longer exists".into(),
        ));
    };
    // Already finished by an earlier attempt whose completion was not recorded: nothing to do.
    if Status::parse(&row.status) != Some(Status::Executing) {
        return Ok(None);
    }
    let kind = transaction_type::Entity::find_by_id(row.type_id)
        .one(db)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| RoutedError::Permanent("the transaction's type is gone".into()))?;
    Ok(Some((row, kind)))
}

/// Delivers an `APP_FORWARD` transaction to its type's URL. The receiver sees the transaction
/// id as the `Idempotency-Key`, so a repeated delivery can be recognised.
pub async fn forward<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    client: &reqwest::Client,
    args: &RoutedArgs,
) -> Result<(), RoutedError> {
    let Some((row, kind)) = load(db, args).await? else {
        return Ok(());
    };
    let url = kind
        .forward_url
        .as_deref()
        .ok_or_else(|| RoutedError::Permanent("the type has no forward URL".into()))?;
    let body = serde_json::json!({
        "transactionId": row.id,
        "type": kind.code,
        "idempotencyKey": row.idempotency_key,
        "payload": row.payload,
    });
    let status = post_json(client, url, &body, &row.id.to_string())
        .await
        .map_err(|err| match err {
            DeliveryError::Retryable(m) => RoutedError::Retry(m),
            DeliveryError::Permanent(m) => RoutedError::Permanent(m),
        })?;
    finish(
        db,
        row,
        args.outbox_id,
        Ok(serde_json::json!({ "forwarded": { "status": status, "at": Utc::now() } })),
    )
    .await?;
    Ok(())
}

/// Processes a `DATA_PROCESS` transaction: fingerprints and measures its payload and records
/// the result, for downstream consumers to pick up by id.
pub async fn process<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    args: &RoutedArgs,
) -> Result<(), RoutedError> {
    let Some((row, _)) = load(db, args).await? else {
        return Ok(());
    };
    let canonical =
        serde_json::to_vec(&row.payload).map_err(|e| RoutedError::Permanent(e.to_string()))?;
    let fields = row.payload.as_object().map_or(0, serde_json::Map::len);
    let result = serde_json::json!({ "processed": {
        "sha256": hex::encode(Sha256::digest(&canonical)),
        "bytes": canonical.len(),
        "fields": fields,
        "at": Utc::now(),
    } });
    finish(db, row, args.outbox_id, Ok(result)).await?;
    Ok(())
}

/// Records a routed transaction's end: COMPLETED with its result, or FAILED with the reason
/// (when its job gives up). Only an EXECUTING transaction changes, whichever attempt or path
/// gets there first; the outbox row is marked in the same transaction.
pub async fn finish<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    row: business_transaction::Model,
    outbox_id: Uuid,
    outcome: Result<serde_json::Value, String>,
) -> AppResult<()> {
    if Status::parse(&row.status) != Some(Status::Executing) {
        return Ok(());
    }
    let (status, result, error) = match outcome {
        Ok(result) => (Status::Completed, Some(result), None),
        Err(reason) => (Status::Failed, row.result.clone(), Some(reason)),
    };
    let now = Utc::now();
    let txn = db.begin().await?;
    let changed = business_transaction::Entity::update_many()
        .col_expr(
            business_transaction::Column::History,
            Expr::value(with_status(&row.history, status, error.as_deref())),
        )
        .col_expr(
            business_transaction::Column::Status,
            Expr::value(status.as_str()),
        )
        .col_expr(business_transaction::Column::Result, Expr::value(result))
        .col_expr(business_transaction::Column::Error, Expr::value(error))
        .col_expr(business_transaction::Column::UpdatedAt, Expr::value(now))
        .filter(business_transaction::Column::Id.eq(row.id))
        .filter(business_transaction::Column::Status.eq(Status::Executing.as_str()))
        .exec(&txn)
        .await?;
    if changed.rows_affected == 1 {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::ProcessedAt, Expr::value(Some(now)))
            .filter(outbox::Column::Id.eq(outbox_id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Marks the transaction FAILED once its job has run out of attempts.
pub async fn give_up<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    args: &RoutedArgs,
    reason: &str,
) -> AppResult<()> {
    if let Some(row) = business_transaction::Entity::find_by_id(args.transaction_id)
        .one(db)
        .await?
    {
        finish(db, row, args.outbox_id, Err(reason.to_owned())).await?;
    }
    Ok(())
}
