//! The scheduler's handlers for reports: the incremental rollup refresh and the nightly
//! reconcile that rewrites every day.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::service;
use crate::platform::db::Db;
use crate::platform::scheduler::{
    no_arguments, JobContext, JobError, JobHandler, JobKind, MAINTENANCE_QUEUE,
};
use crate::platform::work;

pub const REFRESH: &str = RefreshReportsJob::KIND;
pub const RECONCILE: &str = ReconcileReportsJob::KIND;

/// Rewrites the rollup days touched since the last refresh.
#[derive(Serialize, Deserialize)]
pub struct RefreshReportsJob {}

impl JobKind for RefreshReportsJob {
    const KIND: &'static str = "reports.refresh";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str =
        "Refreshes the daily report rollups touched since the last run";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

/// Rewrites every rollup day from the base tables, fixing any drift.
#[derive(Serialize, Deserialize)]
pub struct ReconcileReportsJob {}

impl JobKind for ReconcileReportsJob {
    const KIND: &'static str = "reports.reconcile";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(3600);
    const DESCRIPTION: &'static str = "Rebuilds every daily report rollup from the base tables";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

pub struct RefreshReports {
    pub db: Db,
    pub full: bool,
}

#[async_trait]
impl JobHandler for RefreshReports {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        // One unit of work: the state row's lock is held until every day is rewritten, so a
        // second node's run waits and then finds nothing new.
        let full = self.full;
        let refreshed = work::write(&self.db, async |work| {
            service::refresh(work, Utc::now(), full).await
        })
        .await?;
        job.progress(100, &format!("{} day(s) rewritten", refreshed.days))
            .await
    }
}
