//! The scheduler's handler for approvals: SLA escalation.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::service;
use crate::platform::events::EventBus;
use crate::platform::scheduler::{JobContext, JobError, JobHandler};

pub const SLA_ESCALATION: &str = "approvals.sla_escalation";

pub struct SlaEscalation {
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
}

#[async_trait]
impl JobHandler for SlaEscalation {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let escalated =
            service::escalate_overdue_steps(&self.db, self.bus.as_ref(), Utc::now()).await?;
        job.progress(100, &format!("{escalated} step(s) escalated"))
            .await
    }
}
