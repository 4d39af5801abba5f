//! The scheduler's handlers for routed business transactions: delivery and processing.

use async_trait::async_trait;
use sea_orm::DatabaseConnection;

use super::service::{self, RoutedArgs, RoutedError};
use crate::platform::scheduler::{JobContext, JobError, JobHandler};

/// A permanent failure dead-letters the job at once; `given_up` then fails the transaction.
fn settle(outcome: Result<(), RoutedError>) -> Result<(), JobError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(RoutedError::Retry(message)) => Err(JobError::Retry(message)),
        Err(RoutedError::Permanent(message)) => Err(JobError::Discard(message)),
    }
}

pub struct ForwardTransaction {
    pub db: DatabaseConnection,
    pub http: reqwest::Client,
}

#[async_trait]
impl JobHandler for ForwardTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: RoutedArgs = job.args()?;
        settle(service::forward(&self.db, &self.http, &args).await)
    }

    async fn given_up(&self, args: &serde_json::Value, reason: &str) {
        fail_transaction(&self.db, args, reason).await;
    }
}

/// The transaction fails with the job, so it never waits on a job that will not come back.
async fn fail_transaction(db: &DatabaseConnection, args: &serde_json::Value, reason: &str) {
    let Ok(args) = serde_json::from_value::<RoutedArgs>(args.clone()) else {
        return;
    };
    if let Err(err) = service::give_up(db, &args, reason).await {
        tracing::error!(transaction = %args.transaction_id, error = ?err, "could not fail a transaction whose job gave up");
    }
}

pub struct ProcessTransaction {
    pub db: DatabaseConnection,
}

#[async_trait]
impl JobHandler for ProcessTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: RoutedArgs = job.args()?;
        settle(service::process(&self.db, &args).await)
    }

    async fn given_up(&self, args: &serde_json::Value, reason: &str) {
        fail_transaction(&self.db, args, reason).await;
    }
}
