//! The second half of `APP_FORWARD` and `DATA_PROCESS` transactions: the job enqueued with the
//! transaction delivers or processes it, then records the outcome on the transaction.
//!
//! Delivery is an HTTP call, so it happens outside any unit of work: the job handler reads the
//! transaction, delivers or processes it, and records the outcome in a work of its own.

use chrono::Utc;
use entities::{business_transaction, transaction_type};
use sea_orm::prelude::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{changed, with_status};
use crate::domains::business::model::{Route, Status, TransactionEventKind};
use crate::error::{AppError, AppResult};
use crate::platform::delivery::{post_json, DeliveryError};
use crate::platform::outbound::Outbound;
use crate::platform::scheduler::{enqueue_in, EnqueueError, JobKind, NewJob};
use crate::platform::work::Work;

pub const FORWARD_KIND: &str = ForwardJob::KIND;
pub const PROCESS_KIND: &str = ProcessJob::KIND;
pub const DELIVERY_QUEUE: &str = "delivery";
pub const PROCESSING_QUEUE: &str = "processing";

/// The job reads the transaction itself, so its id is all it carries. (Jobs enqueued by older
/// versions also carry an `outboxId`; it is ignored.)
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutedArgs {
    pub transaction_id: Uuid,
}

/// Delivers an `APP_FORWARD` transaction.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ForwardJob(pub RoutedArgs);

impl JobKind for ForwardJob {
    const KIND: &'static str = "business.forward";
    const QUEUE: &'static str = DELIVERY_QUEUE;
    const MAX_ATTEMPTS: i32 = 8;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
    const BACKOFF_BASE: std::time::Duration = std::time::Duration::from_secs(2);
    const DESCRIPTION: &'static str = "Delivers an APP_FORWARD business transaction";
}

/// Processes a `DATA_PROCESS` transaction.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ProcessJob(pub RoutedArgs);

impl JobKind for ProcessJob {
    const KIND: &'static str = "business.process";
    const QUEUE: &'static str = PROCESSING_QUEUE;
    const MAX_ATTEMPTS: i32 = 8;
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
    const BACKOFF_BASE: std::time::Duration = std::time::Duration::from_secs(2);
    const DESCRIPTION: &'static str = "Processes a DATA_PROCESS business transaction";
}

/// A transaction executes once, so it has one job.
fn once<K: JobKind>(job: &K, transaction_id: Uuid) -> Result<NewJob, EnqueueError> {
    Ok(NewJob::of(job)?.unique(format!("{}:{transaction_id}", K::KIND)))
}

/// Enqueues the job that finishes a routed transaction, in the caller's work.
pub(super) async fn enqueue(work: &Work, route: Route, transaction_id: Uuid) -> AppResult<Uuid> {
    let args = RoutedArgs { transaction_id };
    let job = match route {
        Route::AppForward => once(&ForwardJob(args), transaction_id),
        _ => once(&ProcessJob(args), transaction_id),
    };
    let enqueued = match job {
        Ok(job) => enqueue_in(work, job).await,
        Err(err) => Err(err),
    };
    enqueued.map(|e| e.id()).map_err(|err| match err {
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

/// The transaction a routed job finishes, with its type; `None` when an earlier attempt already
/// finished it (its completion recorded, the job's not): nothing is left to do.
pub async fn routed_transaction(
    db: &impl ConnectionTrait,
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

/// Delivers an `APP_FORWARD` transaction to its type's URL and returns the result to record.
/// The receiver sees the transaction id as the `Idempotency-Key`, so a repeated delivery can be
/// recognised.
pub async fn forward(
    outbound: &Outbound,
    row: &business_transaction::Model,
    kind: &transaction_type::Model,
) -> Result<serde_json::Value, RoutedError> {
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
    let status = post_json(outbound, url, &body, &row.id.to_string())
        .await
        .map_err(|err| match err {
            DeliveryError::Retryable(m) => RoutedError::Retry(m),
            DeliveryError::Permanent(m) => RoutedError::Permanent(m),
        })?;
    Ok(serde_json::json!({ "forwarded": { "status": status, "at": Utc::now() } }))
}

/// Processes a `DATA_PROCESS` transaction: fingerprints and measures its payload, for
/// downstream consumers to pick up by id once recorded.
pub fn process(row: &business_transaction::Model) -> Result<serde_json::Value, RoutedError> {
    let canonical =
        serde_json::to_vec(&row.payload).map_err(|e| RoutedError::Permanent(e.to_string()))?;
    let fields = row.payload.as_object().map_or(0, serde_json::Map::len);
    Ok(serde_json::json!({ "processed": {
        "sha256": hex::encode(Sha256::digest(&canonical)),
        "bytes": canonical.len(),
        "fields": fields,
        "at": Utc::now(),
    } }))
}

/// Records a routed transaction's end: COMPLETED with its result, or FAILED with the reason
/// (when its job gives up). Only an EXECUTING transaction changes, whichever attempt or path
/// gets there first, and only that one appends the event.
pub async fn finish(
    work: &Work,
    row: business_transaction::Model,
    type_code: &str,
    outcome: Result<serde_json::Value, String>,
) -> AppResult<()> {
    if Status::parse(&row.status) != Some(Status::Executing) {
        return Ok(());
    }
    let (status, kind, result, error) = match outcome {
        Ok(result) => (
            Status::Completed,
            TransactionEventKind::Completed,
            Some(result),
            None,
        ),
        Err(reason) => (
            Status::Failed,
            TransactionEventKind::Failed,
            row.result.clone(),
            Some(reason),
        ),
    };
    let now = Utc::now();
    let history = with_status(&row.history, status, error.as_deref());
    let changed_rows = business_transaction::Entity::update_many()
        .col_expr(
            business_transaction::Column::History,
            Expr::value(history.clone()),
        )
        .col_expr(
            business_transaction::Column::Status,
            Expr::value(status.as_str()),
        )
        .col_expr(
            business_transaction::Column::Result,
            Expr::value(result.clone()),
        )
        .col_expr(
            business_transaction::Column::Error,
            Expr::value(error.clone()),
        )
        .col_expr(business_transaction::Column::UpdatedAt, Expr::value(now))
        .filter(business_transaction::Column::Id.eq(row.id))
        .filter(business_transaction::Column::Status.eq(Status::Executing.as_str()))
        .exec(work)
        .await?;
    if changed_rows.rows_affected == 1 {
        let done = business_transaction::Model {
            history,
            status: status.as_str().to_owned(),
            result,
            error,
            updated_at: now,
            ..row
        };
        changed(work, &done, type_code, kind, None);
    }
    Ok(())
}

/// What the submitter reads when a routed transaction's job gives up. The job's own error
/// history (for `scheduler.manage`) keeps the detail: receiver answers, URLs, causes.
pub const DELIVERY_FAILED: &str = "delivery to the partner system failed";
pub const PROCESSING_FAILED: &str = "processing the transaction failed";

/// Marks the transaction FAILED once its job has run out of attempts, with a stable `reason`
/// meant for the submitter (one of the constants above), never the job's error text.
pub async fn give_up(work: &Work, args: &RoutedArgs, reason: &'static str) -> AppResult<()> {
    let Some(row) = business_transaction::Entity::find_by_id(args.transaction_id)
        .one(work)
        .await?
    else {
        return Ok(());
    };
    let type_code = super::type_of(work, row.type_id)
        .await?
        .map(|kind| kind.code)
        .unwrap_or_default();
    finish(work, row, &type_code, Err(reason.to_owned())).await
}
