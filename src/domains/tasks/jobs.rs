//! The scheduler's handlers for tasks: each lists its candidates, then runs the service's
//! command for each in a unit of work of its own, so one item's failure or retry leaves the
//! others committed.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::service;
use crate::platform::db::Db;
use crate::platform::scheduler::{JobContext, JobError, JobHandler};
use crate::platform::work;

pub const DEADLINE_REMINDERS: &str = "tasks.deadline_reminders";
pub const OVERDUE_ESCALATION: &str = "tasks.overdue_escalation";
pub const RECURRING_TASKS: &str = "tasks.recurring";

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
