//! The scheduler's handler for approvals: SLA escalation.

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

pub const SLA_ESCALATION: &str = SlaEscalationJob::KIND;

/// The scan takes no arguments: it looks at every step pending when it runs.
#[derive(Serialize, Deserialize)]
pub struct SlaEscalationJob {}

impl JobKind for SlaEscalationJob {
    const KIND: &'static str = "approvals.sla_escalation";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str = "Escalates approval steps pending past their SLA";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

pub struct SlaEscalation {
    pub db: Db,
}

#[async_trait]
impl JobHandler for SlaEscalation {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let now = Utc::now();
        let mut escalated = 0;
        for late in service::late_steps(&self.db.conn, now).await? {
            // One unit of work per step: one step's failure leaves the others escalated.
            if work::write(&self.db, async |work| {
                service::escalate_step(work, &late, now).await
            })
            .await?
            {
                escalated += 1;
            }
        }
        job.progress(100, &format!("{escalated} step(s) escalated"))
            .await
    }
}
