//! The scheduler's handler for approvals: SLA escalation.

use async_trait::async_trait;
use chrono::Utc;

use super::service;
use crate::platform::db::Db;
use crate::platform::scheduler::{JobContext, JobError, JobHandler};
use crate::platform::work;

pub const SLA_ESCALATION: &str = "approvals.sla_escalation";

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
