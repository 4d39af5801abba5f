//! The scheduled job that prunes the event log past its retention.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::log;
use crate::platform::db::Db;
use crate::platform::scheduler::{
    no_arguments, JobContext, JobError, JobHandler, JobKind, MAINTENANCE_QUEUE,
};

pub const PRUNE_KIND: &str = PruneEventLogJob::KIND;

/// The retention is the node's setting, not the job's, so the job carries nothing.
#[derive(Serialize, Deserialize)]
pub struct PruneEventLogJob {}

impl JobKind for PruneEventLogJob {
    const KIND: &'static str = "events.prune";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str = "Deletes event log entries past their retention";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}
/// Entries deleted per statement, so a large backlog never makes one long transaction.
const PRUNE_BATCH: u64 = 10_000;

pub struct PruneEventLog {
    pub db: Db,
    pub retention: Duration,
}

#[async_trait]
impl JobHandler for PruneEventLog {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let retention = chrono::Duration::from_std(self.retention)
            .map_err(|e| JobError::Discard(format!("retention out of range: {e}")))?;
        let before = chrono::Utc::now() - retention;
        let mut pruned = 0;
        loop {
            if job.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            let deleted = crate::platform::work::write(&self.db, async |work| {
                log::prune(work, before, PRUNE_BATCH).await
            })
            .await?;
            pruned += deleted;
            if deleted < PRUNE_BATCH {
                break;
            }
        }
        job.progress(100, &format!("{pruned} event(s) pruned"))
            .await
    }
}
