//! The one list of built-in queues, job kinds and cron schedules.

use std::time::Duration;

use super::jobs::{webhook_args_schema, WebhookDelivery, WEBHOOK_DELIVERY};
use crate::domains::approvals::jobs::{SlaEscalation, SLA_ESCALATION};
use crate::domains::business::jobs::{ForwardTransaction, ProcessTransaction};
use crate::domains::business::service::{
    DELIVERY_QUEUE, FORWARD_KIND, PROCESSING_QUEUE, PROCESS_KIND,
};
use crate::domains::tasks::jobs::{
    DeadlineReminders, OverdueEscalation, RecurringTasks, DEADLINE_REMINDERS, OVERDUE_ESCALATION,
    RECURRING_TASKS,
};
use crate::platform::db::Db;
use crate::platform::events::retention::{PruneEventLog, PRUNE_KIND};
use crate::platform::scheduler::{
    CronSchedule, KindSpec, MissedSlots, NewJob, QueueSpec, Registry,
};

pub const MAINTENANCE_QUEUE: &str = "maintenance";

/// What the built-in handlers need.
pub struct JobDeps {
    pub db: Db,
    pub currency: String,
    pub reminder_lead: Duration,
    pub http: reqwest::Client,
    /// When the periodic scans run.
    pub scan_cron: String,
    pub event_retention: Duration,
}

fn scan(kind: &str, description: &str) -> KindSpec {
    KindSpec {
        max_attempts: 3,
        timeout: Duration::from_secs(600),
        operator_enqueue: true,
        args_schema: Some(serde_json::json!({ "type": "object", "maxProperties": 0 })),
        description: description.to_owned(),
        ..KindSpec::new(kind, MAINTENANCE_QUEUE)
    }
}

fn routed(kind: &str, queue: &str, description: &str) -> KindSpec {
    KindSpec {
        max_attempts: 8,
        timeout: Duration::from_secs(60),
        backoff_base: Duration::from_secs(2),
        description: description.to_owned(),
        ..KindSpec::new(kind, queue)
    }
}

pub fn registry(deps: JobDeps) -> anyhow::Result<Registry> {
    let mut registry = Registry::default()
        .queue(QueueSpec::any(MAINTENANCE_QUEUE, 2))
        .queue(QueueSpec::any(DELIVERY_QUEUE, 8))
        .queue(QueueSpec::any(PROCESSING_QUEUE, 4))
        .kind(
            scan(
                DEADLINE_REMINDERS,
                "Reminds executors of deadlines coming up",
            ),
            DeadlineReminders {
                db: deps.db.clone(),
                lead: deps.reminder_lead,
            },
        )
        .kind(
            scan(
                OVERDUE_ESCALATION,
                "Marks late tasks overdue and tells the initiator and department head",
            ),
            OverdueEscalation {
                db: deps.db.clone(),
            },
        )
        .kind(
            scan(
                RECURRING_TASKS,
                "Creates the tasks of recurring templates whose slot has come",
            ),
            RecurringTasks {
                db: deps.db.clone(),
                currency: deps.currency.clone(),
            },
        )
        .kind(
            scan(
                SLA_ESCALATION,
                "Escalates approval steps pending past their SLA",
            ),
            SlaEscalation {
                db: deps.db.clone(),
            },
        )
        .kind(
            routed(
                FORWARD_KIND,
                DELIVERY_QUEUE,
                "Delivers an APP_FORWARD business transaction",
            ),
            ForwardTransaction {
                db: deps.db.clone(),
                http: deps.http.clone(),
            },
        )
        .kind(
            routed(
                PROCESS_KIND,
                PROCESSING_QUEUE,
                "Processes a DATA_PROCESS business transaction",
            ),
            ProcessTransaction {
                db: deps.db.clone(),
            },
        )
        .kind(
            KindSpec {
                operator_enqueue: true,
                args_schema: Some(webhook_args_schema()),
                ..routed(
                    WEBHOOK_DELIVERY,
                    DELIVERY_QUEUE,
                    "POSTs a JSON payload to a URL until it is accepted",
                )
            },
            WebhookDelivery { http: deps.http },
        )
        .kind(
            scan(PRUNE_KIND, "Deletes event log entries past their retention"),
            PruneEventLog {
                db: deps.db.clone(),
                retention: deps.event_retention,
            },
        );
    registry = registry.schedule(CronSchedule::new(
        PRUNE_KIND,
        "0 17 * * * *",
        NewJob::new(MAINTENANCE_QUEUE, PRUNE_KIND, serde_json::json!({})).max_attempts(3),
        MissedSlots::FireOnce,
    )?);
    for kind in [
        DEADLINE_REMINDERS,
        OVERDUE_ESCALATION,
        RECURRING_TASKS,
        SLA_ESCALATION,
    ] {
        registry = registry.schedule(CronSchedule::new(
            kind,
            &deps.scan_cron,
            NewJob::new(MAINTENANCE_QUEUE, kind, serde_json::json!({})).max_attempts(3),
            // The scans catch up on everything at once, so one run after an outage suffices.
            MissedSlots::FireOnce,
        )?);
    }
    Ok(registry)
}
