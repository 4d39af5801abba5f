//! The scheduler's handlers for tasks: each lists its candidates, then runs the service's
//! command for each in a unit of work of its own, so one item's failure or retry leaves the
//! others committed.

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

pub const DEADLINE_REMINDERS: &str = DeadlineRemindersJob::KIND;
pub const OVERDUE_ESCALATION: &str = OverdueEscalationJob::KIND;
pub const RECURRING_TASKS: &str = RecurringTasksJob::KIND;

/// The scans take no arguments: they look at everything that is due when they run.
#[derive(Serialize, Deserialize)]
pub struct DeadlineRemindersJob {}

impl JobKind for DeadlineRemindersJob {
    const KIND: &'static str = "tasks.deadline_reminders";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str = "Reminds executors of deadlines coming up";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

#[derive(Serialize, Deserialize)]
pub struct OverdueEscalationJob {}

impl JobKind for OverdueEscalationJob {
    const KIND: &'static str = "tasks.overdue_escalation";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str =
        "Marks late tasks overdue and tells the initiator and department head";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

#[derive(Serialize, Deserialize)]
pub struct RecurringTasksJob {}

impl JobKind for RecurringTasksJob {
    const KIND: &'static str = "tasks.recurring";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str =
        "Creates the tasks of recurring templates whose slot has come";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

pub struct DeadlineReminders {
    pub db: Db,
    pub lead: Duration,
}

#[async_trait]
impl JobHandler for DeadlineReminders {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let now = Utc::now();
        let mut sent = 0;
        for task in service::deadline_reminder_candidates(&self.db.conn, now, self.lead).await? {
            let reminded = work::write(&self.db, async |work| {
                service::send_deadline_reminder(work, &task, now).await
            })
            .await?;
            sent += u64::from(reminded);
        }
        job.progress(100, &format!("{sent} task(s) reminded")).await
    }
}

pub struct OverdueEscalation {
    pub db: Db,
}

#[async_trait]
impl JobHandler for OverdueEscalation {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let mut late = 0;
        for task in service::overdue_candidates(&self.db.conn, Utc::now()).await? {
            let turned = work::write(&self.db, async |work| {
                service::escalate_overdue_task(work, &task).await
            })
            .await?;
            late += u64::from(turned);
        }
        job.progress(100, &format!("{late} task(s) turned overdue"))
            .await
    }
}

pub struct RecurringTasks {
    pub db: Db,
    pub currency: String,
}

#[async_trait]
impl JobHandler for RecurringTasks {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let mut created = 0;
        for (template, slot) in service::due_recurring_slots(&self.db.conn, Utc::now()).await? {
            let made = work::write(&self.db, async |work| {
                service::create_recurring_slot(work, &self.currency, &template, slot).await
            })
            .await?;
            created += u64::from(made);
        }
        job.progress(100, &format!("{created} task(s) created"))
            .await
    }
}
