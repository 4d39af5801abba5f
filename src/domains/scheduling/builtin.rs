//! The one list of built-in queues, job kinds and cron schedules.

use std::time::Duration;

use super::jobs::{WebhookArgs, WebhookDelivery};
use crate::domains::approvals::jobs::{SlaEscalation, SlaEscalationJob};
use crate::domains::business::jobs::{ForwardTransaction, ProcessTransaction};
use crate::domains::business::service::{ForwardJob, ProcessJob, DELIVERY_QUEUE, PROCESSING_QUEUE};
use crate::domains::exports::jobs::{
    ExportCleanup, ExportCleanupJob, ExportJob, RunExport, EXPORT_QUEUE,
};
use crate::domains::integrations::jobs::SendWebhookHandler;
use crate::domains::integrations::service::delivery::{SendWebhook, WEBHOOK_QUEUE};
use crate::domains::reports::jobs::{ReconcileReportsJob, RefreshReports, RefreshReportsJob};
use crate::domains::tasks::jobs::{
    DeadlineReminders, DeadlineRemindersJob, OverdueEscalation, OverdueEscalationJob,
    RecurringTasks, RecurringTasksJob,
};
use crate::platform::db::Db;
use crate::platform::events::retention::{PruneEventLog, PruneEventLogJob};
use crate::platform::outbound::Outbound;
use crate::platform::scheduler::{CronSchedule, MissedSlots, QueueSpec, Registry};

pub use crate::platform::scheduler::MAINTENANCE_QUEUE;

/// What the built-in handlers need.
pub struct JobDeps {
    pub db: Db,
    pub currency: String,
    pub reminder_lead: Duration,
    /// Every outgoing request goes through it (see `platform::outbound`).
    pub outbound: Outbound,
    /// When the periodic scans run.
    pub scan_cron: String,
    pub event_retention: Duration,
    pub webhooks: crate::config::WebhooksConfig,
    /// Where background exports write their files.
    pub files: crate::platform::files::FileStore,
    pub exports: crate::config::ExportsConfig,
}

pub fn registry(deps: JobDeps) -> anyhow::Result<Registry> {
    let registry = Registry::default()
        .queue(QueueSpec::any(MAINTENANCE_QUEUE, 2))
        .queue(QueueSpec::any(DELIVERY_QUEUE, 8))
        .queue(QueueSpec::any(PROCESSING_QUEUE, 4))
        .queue(QueueSpec::any(WEBHOOK_QUEUE, 16))
        // Each export holds a database connection while it streams; two per node at most.
        .queue(QueueSpec::any(EXPORT_QUEUE, 2))
        .job::<ExportJob>(RunExport {
            db: deps.db.clone(),
            files: deps.files.clone(),
            currency: deps.currency.clone(),
            deadline: deps.exports.timeout,
        })
        .job::<ExportCleanupJob>(ExportCleanup {
            files: deps.files.clone(),
            file_ttl: deps.exports.file_ttl,
        })
        .job::<DeadlineRemindersJob>(DeadlineReminders {
            db: deps.db.clone(),
            lead: deps.reminder_lead,
        })
        .job::<OverdueEscalationJob>(OverdueEscalation {
            db: deps.db.clone(),
        })
        .job::<RecurringTasksJob>(RecurringTasks {
            db: deps.db.clone(),
            currency: deps.currency.clone(),
        })
        .job::<SlaEscalationJob>(SlaEscalation {
            db: deps.db.clone(),
        })
        .job::<ForwardJob>(ForwardTransaction {
            db: deps.db.clone(),
            outbound: deps.outbound.clone(),
            webhooks: deps.webhooks.clone(),
        })
        .job::<ProcessJob>(ProcessTransaction {
            db: deps.db.clone(),
        })
        .job::<WebhookArgs>(WebhookDelivery {
            outbound: deps.outbound.clone(),
        })
        .job::<SendWebhook>(SendWebhookHandler {
            db: deps.db.clone(),
            outbound: deps.outbound.clone(),
            settings: deps.webhooks.clone(),
        })
        .job::<PruneEventLogJob>(PruneEventLog {
            db: deps.db.clone(),
            retention: deps.event_retention,
        })
        .job::<RefreshReportsJob>(RefreshReports {
            db: deps.db.clone(),
            full: false,
        })
        .job::<ReconcileReportsJob>(RefreshReports {
            db: deps.db.clone(),
            full: true,
        })
        .schedule(CronSchedule::of(
            "0 17 * * * *",
            &PruneEventLogJob {},
            MissedSlots::FireOnce,
        )?)
        // Every five minutes; a refresh catches up on everything since its watermark.
        .schedule(CronSchedule::of(
            "0 */5 * * * *",
            &RefreshReportsJob {},
            MissedSlots::FireOnce,
        )?)
        .schedule(CronSchedule::of(
            "0 40 3 * * *",
            &ReconcileReportsJob {},
            MissedSlots::FireOnce,
        )?)
        .schedule(CronSchedule::of(
            "0 41 * * * *",
            &ExportCleanupJob {},
            MissedSlots::FireOnce,
        )?);
    // The scans catch up on everything at once, so one run after an outage suffices.
    let scan = &deps.scan_cron;
    Ok(registry
        .schedule(CronSchedule::of(
            scan,
            &DeadlineRemindersJob {},
            MissedSlots::FireOnce,
        )?)
        .schedule(CronSchedule::of(
            scan,
            &OverdueEscalationJob {},
            MissedSlots::FireOnce,
        )?)
        .schedule(CronSchedule::of(
            scan,
            &RecurringTasksJob {},
            MissedSlots::FireOnce,
        )?)
        .schedule(CronSchedule::of(
            scan,
            &SlaEscalationJob {},
            MissedSlots::FireOnce,
        )?))
}
