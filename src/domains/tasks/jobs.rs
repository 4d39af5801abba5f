//! The scheduler's handlers for tasks: each parses nothing (the scans take no arguments) and
//! calls one service function.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::service;
use crate::platform::events::EventBus;
use crate::platform::scheduler::{JobContext, JobError, JobHandler};

pub const DEADLINE_REMINDERS: &str = "tasks.deadline_reminders";
pub const OVERDUE_ESCALATION: &str = "tasks.overdue_escalation";
pub const RECURRING_TASKS: &str = "tasks.recurring";

pub struct DeadlineReminders {
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
    pub lead: Duration,
}

#[async_trait]
impl JobHandler for DeadlineReminders {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let sent =
            service::send_deadline_reminders(&self.db, self.bus.as_ref(), Utc::now(), self.lead)
                .await?;
        job.progress(100, &format!("{sent} task(s) reminded")).await
    }
}

pub struct OverdueEscalation {
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
}

#[async_trait]
impl JobHandler for OverdueEscalation {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let late = service::escalate_overdue(&self.db, self.bus.as_ref(), Utc::now()).await?;
        job.progress(100, &format!("{late} task(s) turned overdue"))
            .await
    }
}

pub struct RecurringTasks {
    pub db: DatabaseConnection,
    pub bus: Arc<dyn EventBus>,
    pub currency: String,
}

#[async_trait]
impl JobHandler for RecurringTasks {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let created = service::create_recurring_tasks(
            &self.db,
            self.bus.as_ref(),
            &self.currency,
            Utc::now(),
        )
        .await?;
        job.progress(100, &format!("{created} task(s) created"))
            .await
    }
}
