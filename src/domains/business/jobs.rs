//! The scheduler's handlers for routed business transactions: delivery and processing.

use async_trait::async_trait;
use sea_orm::DatabaseConnection;

use super::service::{self, RoutedArgs, RoutedError};
use crate::platform::scheduler::{JobContext, JobError, JobHandler};

/// On the last attempt a failure also fails the transaction, so it never waits forever.
async fn settle(
    db: &DatabaseConnection,
    job: &JobContext,
    args: &RoutedArgs,
    outcome: Result<(), RoutedError>,
) -> Result<(), JobError> {
    let (message, permanent) = match outcome {
        Ok(()) => return Ok(()),
        Err(RoutedError::Retry(message)) => (message, false),
        Err(RoutedError::Permanent(message)) => (message, true),
    };
    if permanent || job.is_last_attempt() {
        service::give_up(db, args, &message).await?;
        return Err(JobError::Discard(message));
    }
    Err(JobError::Retry(message))
}

pub struct ForwardTransaction {
    pub db: DatabaseConnection,
    pub http: reqwest::Client,
}

#[async_trait]
impl JobHandler for ForwardTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: RoutedArgs = job.args()?;
        let outcome = service::forward(&self.db, &self.http, &args).await;
        settle(&self.db, job, &args, outcome).await
    }
}

pub struct ProcessTransaction {
    pub db: DatabaseConnection,
}

#[async_trait]
impl JobHandler for ProcessTransaction {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args: RoutedArgs = job.args()?;
        let outcome = service::process(&self.db, &args).await;
        settle(&self.db, job, &args, outcome).await
    }
}
