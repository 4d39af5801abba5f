//! The scheduler's handlers for routed business transactions: delivery and processing.

use async_trait::async_trait;

use super::service::{self, RoutedArgs, RoutedError};
use crate::platform::db::Db;
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
    pub http: reqwest::Client,
}

impl ForwardTransaction {
    /// The delivery runs outside any transaction; only its outcome is written.
    async fn forward(&self, args: &RoutedArgs) -> Result<(), RoutedError> {
        let Some((row, kind)) = service::routed_transaction(&self.db.conn, args).await? else {
            return Ok(());
        };
        let result = service::forward(&self.http, &row, &kind).await?;
        write(&self.db, async |work| {
            service::finish(work, row, &kind.code, Ok(result)).await
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl JobHandler for ForwardTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: RoutedArgs = job.args()?;
        settle(self.forward(&args).await)
    }

    async fn given_up(&self, args: &serde_json::Value, reason: &str) {
        fail_transaction(&self.db, args, reason).await;
    }
}

/// The transaction fails with the job, so it never waits on a job that will not come back.
async fn fail_transaction(db: &Db, args: &serde_json::Value, reason: &str) {
    let Ok(args) = serde_json::from_value::<RoutedArgs>(args.clone()) else {
        return;
    };
    if let Err(err) = write(db, async |work| service::give_up(work, &args, reason).await).await {
        tracing::error!(transaction = %args.transaction_id, error = ?err, "could not fail a transaction whose job gave up");
    }
}

pub struct ProcessTransaction {
    pub db: Db,
}

impl ProcessTransaction {
    async fn process(&self, args: &RoutedArgs) -> Result<(), RoutedError> {
        let Some((row, kind)) = service::routed_transaction(&self.db.conn, args).await? else {
            return Ok(());
        };
        let result = service::process(&row)?;
        write(&self.db, async |work| {
            service::finish(work, row, &kind.code, Ok(result)).await
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl JobHandler for ProcessTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: RoutedArgs = job.args()?;
        settle(self.process(&args).await)
    }

    async fn given_up(&self, args: &serde_json::Value, reason: &str) {
        fail_transaction(&self.db, args, reason).await;
    }
}
