//! The scheduler's handlers for routed business transactions: delivery and processing.

use async_trait::async_trait;

use super::service::{self, ForwardJob, ProcessJob, RoutedArgs, RoutedError};
use crate::error::AppError;
use crate::platform::db::Db;
use crate::platform::outbound::Outbound;
use crate::platform::scheduler::{JobContext, JobError, JobHandler};
use crate::platform::work::write;

/// A permanent failure dead-letters the job at once; `given_up` then fails the transaction.
fn settle(outcome: Result<(), RoutedError>) -> Result<(), JobError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(RoutedError::Retry(message)) => Err(JobError::Retry(message)),
        Err(RoutedError::Permanent(message)) => Err(JobError::Discard(message)),
    }
}

pub struct ForwardTransaction {
    pub db: Db,
    pub outbound: Outbound,
}

/// Records the outcome and completes the job in one unit of work: the transaction is
/// COMPLETED exactly when its job is, so a crash between the two cannot run it again.
async fn finish_with_job(
    db: &Db,
    job: &JobContext,
    row: entities::business_transaction::Model,
    type_code: &str,
    result: serde_json::Value,
) -> Result<(), RoutedError> {
    write(db, async |work| {
        service::finish(work, row, type_code, Ok(result)).await?;
        job.complete_in(work)
            .await
            .map_err(|e| AppError::Conflict(format!("completing the job: {e}")))
    })
    .await?;
    Ok(())
}

impl ForwardTransaction {
    /// The delivery runs outside any transaction; only its outcome is written.
    async fn forward(&self, job: &JobContext, args: &RoutedArgs) -> Result<(), RoutedError> {
        let Some((row, kind)) = service::routed_transaction(&self.db.conn, args).await? else {
            return Ok(());
        };
        let result = service::forward(&self.outbound, &row, &kind).await?;
        finish_with_job(&self.db, job, row, &kind.code, result).await
    }
}

#[async_trait]
impl JobHandler for ForwardTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let ForwardJob(args) = job.args::<ForwardJob>()?;
        settle(self.forward(job, &args).await)
    }

    async fn given_up(&self, args: &serde_json::Value, reason: &str) {
        fail_transaction(&self.db, args, reason, service::DELIVERY_FAILED).await;
    }
}

/// The transaction fails with the job, so it never waits on a job that will not come back. It
/// records `public`, not the job's `detail`: the submitter reads the transaction, and the
/// detail (receiver answers, URLs, internal causes) stays with the job, for operators.
async fn fail_transaction(db: &Db, args: &serde_json::Value, detail: &str, public: &'static str) {
    let Ok(args) = serde_json::from_value::<RoutedArgs>(args.clone()) else {
        return;
    };
    tracing::warn!(transaction = %args.transaction_id, detail, "routed transaction failed");
    if let Err(err) = write(db, async |work| service::give_up(work, &args, public).await).await {
        tracing::error!(transaction = %args.transaction_id, error = ?err, "could not fail a transaction whose job gave up");
    }
}

pub struct ProcessTransaction {
    pub db: Db,
}

impl ProcessTransaction {
    async fn process(&self, job: &JobContext, args: &RoutedArgs) -> Result<(), RoutedError> {
        let Some((row, kind)) = service::routed_transaction(&self.db.conn, args).await? else {
            return Ok(());
        };
        let result = service::process(&row)?;
        finish_with_job(&self.db, job, row, &kind.code, result).await
    }
}

#[async_trait]
impl JobHandler for ProcessTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let ProcessJob(args) = job.args::<ProcessJob>()?;
        settle(self.process(job, &args).await)
    }

    async fn given_up(&self, args: &serde_json::Value, reason: &str) {
        fail_transaction(&self.db, args, reason, service::PROCESSING_FAILED).await;
    }
}
