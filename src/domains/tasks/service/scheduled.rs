//! The work the scheduler does for tasks: deadline reminders, overdue escalation and recurring
//! tasks. Each is idempotent — a marker row or a conditional update decides who acts — so a
//! rerun or a second node changes nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::{recurring_task, task, task_reminder};
use sea_orm::prelude::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::queries::open_statuses;
use super::{audience_of, executors_of, push_event, record, NewTask};
use crate::auth::Viewer;
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::NotificationKind;
use crate::domains::notifications::service::{self as notifications, Notice};
use crate::domains::tasks::model::{CategoryId, TaskEventKind, TaskFields};
use crate::error::{AppError, AppResult};
use crate::platform::events::{EventBus, Pending};
use crate::platform::scheduler::{due_slot, parse_cron, MissedSlots};

/// Tasks one scan handles; the next scan takes the rest.
const SCAN_BATCH: u64 = 500;
/// The actor recorded for what the system does on its own.
const SYSTEM: Uuid = Uuid::nil();

/// Reminds the executors of open tasks whose deadline falls within `lead` of `now`, once per
/// task and deadline (a moved deadline earns a new reminder). Returns how many were reminded.
pub async fn send_deadline_reminders<C>(
    db: &C,
    bus: &dyn EventBus,
    now: DateTime<Utc>,
    lead: Duration,
) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    let horizon = now + lead;
    let due = task::Entity::find()
        .filter(task::Column::Deadline.gt(now))
        .filter(task::Column::Deadline.lte(horizon))
        .filter(task::Column::Status.is_in(open_statuses()))
        // Reminded ones drop out here, so a large backlog cannot hide newer deadlines.
        .filter(Expr::cust(
            "NOT EXISTS (SELECT 1 FROM task_reminders r \
             WHERE r.task_id = tasks.id AND r.deadline = tasks.deadline)",
        ))
        .order_by_asc(task::Column::Deadline)
        .limit(SCAN_BATCH)
        .all(db)
        .await?;
    let mut reminded = 0;
    for task in due {
        let Some(deadline) = task.deadline else {
            continue;
        };
        let txn = db.begin().await?;
        let marked = task_reminder::Entity::insert(task_reminder::ActiveModel {
            task_id: Set(task.id),
            deadline: Set(deadline),
            sent_at: Set(now),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        if !matches!(marked, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
            continue;
        }
        let mut pending = Pending::default();
        let executors = executors_of(&txn, task.id).await?;
        let body = format!("due {}", deadline.format("%Y-%m-%d %H:%M UTC"));
        notifications::notify(
            &txn,
            &mut pending,
            &executors,
            None,
            Notice {
                kind: NotificationKind::DeadlineApproaching,
                title: &task.title,
                body: &body,
                subject: super::lifecycle::subject(task.id),
            },
        )
        .await?;
        txn.commit().await?;
        pending.publish(bus).await;
        reminded += 1;
    }
    Ok(reminded)
}

/// Marks open tasks past their deadline overdue and tells the initiator and the head of the
/// task's department. Returns how many tasks turned overdue.
pub async fn escalate_overdue<C>(db: &C, bus: &dyn EventBus, now: DateTime<Utc>) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    let late = task::Entity::find()
        .filter(task::Column::Deadline.lte(now))
        .filter(task::Column::Overdue.eq(false))
        .filter(task::Column::Status.is_in(open_statuses()))
        .order_by_asc(task::Column::Deadline)
        .limit(SCAN_BATCH)
        .all(db)
        .await?;
    let mut escalated = 0;
    for task in late {
        let txn = db.begin().await?;
        let turned = task::Entity::update_many()
            .col_expr(task::Column::Overdue, true.into())
            .filter(task::Column::Id.eq(task.id))
            .filter(task::Column::Overdue.eq(false))
            .exec(&txn)
            .await?;
        if turned.rows_affected == 0 {
            continue;
        }
        record(
            &txn,
            task.id,
            SYSTEM,
            "overdue",
            Some("overdue"),
            Some("false".into()),
            Some("true".into()),
        )
        .await?;
        let mut recipients = vec![task.initiator_id];
        recipients.extend(identity::department_head_for(&txn, task.department_id).await?);
        let mut pending = Pending::default();
        let body = match task.deadline {
            Some(deadline) => format!("was due {}", deadline.format("%Y-%m-%d %H:%M UTC")),
            None => "is past its deadline".to_owned(),
        };
        notifications::notify(
            &txn,
            &mut pending,
            &recipients,
            None,
            Notice {
                kind: NotificationKind::Overdue,
                title: &task.title,
                body: &body,
                subject: super::lifecycle::subject(task.id),
            },
        )
        .await?;
        let updated = task::Model {
            overdue: true,
            ..task
        };
        let audience = audience_of(&txn, &updated).await?;
        push_event(
            &mut pending,
            TaskEventKind::StatusChanged,
            &updated,
            SYSTEM,
            &audience,
        );
        txn.commit().await?;
        pending.publish(bus).await;
        escalated += 1;
    }
    Ok(escalated)
}

pub struct NewRecurringTask {
    pub category_id: CategoryId,
    pub title: String,
    pub key_points: String,
    pub executor_ids: Vec<Uuid>,
    pub cron: String,
    pub deadline_after_hours: Option<i32>,
}

/// A template that creates a main task, as its creator, on every slot of `cron`.
pub async fn create_recurring_task<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    input: NewRecurringTask,
) -> AppResult<recurring_task::Model> {
    let me = viewer.user()?;
    super::lifecycle::ensure_may_start_main(db, me).await?;
    parse_cron(&input.cron).map_err(|e| AppError::bad_field("cron", e.to_string()))?;
    if let Some(hours) = input.deadline_after_hours {
        if !(1..=24 * 366).contains(&hours) {
            return Err(AppError::bad_field(
                "deadlineAfterHours",
                "between 1 hour and a year",
            ));
        }
    }
    let fields = template_fields(&input.title, &input.key_points, &input.executor_ids, None);
    fields.validate()?;
    super::lifecycle::check_people(db, &fields).await?;
    if super::find_category(db, input.category_id).await?.is_none() {
        return Err(AppError::bad_field("categoryId", "no such task category"));
    }
    Ok(recurring_task::ActiveModel {
        id: Set(Uuid::now_v7()),
        category_id: Set(input.category_id.0),
        title: Set(input.title),
        key_points: Set(input.key_points),
        initiator_id: Set(me.id),
        executor_ids: Set(serde_json::json!(input.executor_ids)),
        cron: Set(input.cron),
        deadline_after_hours: Set(input.deadline_after_hours),
        active: Set(true),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

/// The viewer's own templates (everyone's for administrators), newest first.
pub async fn recurring_tasks<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<recurring_task::Model>> {
    let me = viewer.user()?;
    let mut query = recurring_task::Entity::find().order_by_desc(recurring_task::Column::Id);
    if !me.is_admin() {
        query = query.filter(recurring_task::Column::InitiatorId.eq(me.id));
    }
    Ok(query.all(db).await?)
}

pub async fn set_recurring_task_active<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: Uuid,
    active: bool,
) -> AppResult<recurring_task::Model> {
    let me = viewer.user()?;
    let template = recurring_task::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|t| t.initiator_id == me.id || me.is_admin())
        .ok_or_else(|| AppError::not_found("recurring task"))?;
    let mut active_model: recurring_task::ActiveModel = template.into();
    active_model.active = Set(active);
    Ok(active_model.update(db).await?)
}

fn template_fields(
    title: &str,
    key_points: &str,
    executors: &[Uuid],
    deadline: Option<DateTime<Utc>>,
) -> TaskFields {
    TaskFields {
        title: title.to_owned(),
        key_points: key_points.to_owned(),
        executor_ids: executors.to_vec(),
        is_team_task: executors.len() > 1,
        confirmer_id: None,
        cash_output_minor: None,
        start_at: None,
        deadline,
        priority: None,
        merit_points: 0,
        custom_fields: serde_json::json!({}),
    }
}

/// The schedule name under which a template's slots are recorded in `cron_fires`.
fn schedule_of(template: &recurring_task::Model) -> String {
    format!("recurring-task:{}", template.id)
}

/// Creates the tasks whose slot has come, each slot once across all nodes: the slot's
/// `cron_fires` row and the task commit together. Returns how many tasks were created.
pub async fn create_recurring_tasks<C>(
    db: &C,
    bus: &dyn EventBus,
    currency: &str,
    now: DateTime<Utc>,
) -> AppResult<u64>
where
    C: ConnectionTrait + TransactionTrait,
{
    let templates = recurring_task::Entity::find()
        .filter(recurring_task::Column::Active.eq(true))
        .all(db)
        .await?;
    let mut created = 0;
    for template in templates {
        let Ok(cron) = parse_cron(&template.cron) else {
            continue;
        };
        let schedule = schedule_of(&template);
        let last = crate::platform::scheduler::last_fired(db, &schedule)
            .await?
            .unwrap_or(template.created_at)
            .max(template.created_at);
        let Some(slot) = due_slot(
            &cron,
            Some(last),
            now,
            MissedSlots::FireOnce,
            Duration::ZERO,
        ) else {
            continue;
        };
        let txn = db.begin().await?;
        if !crate::platform::scheduler::claim_slot(&txn, &schedule, slot).await? {
            continue;
        }
        let outcome = create_from_template(&txn, bus, currency, &template, slot).await;
        match outcome {
            Ok(()) => created += 1,
            Err(AppError::Internal(cause)) => return Err(AppError::Internal(cause)),
            // The template no longer fits (an executor left, say): the slot is spent, the
            // reason logged, and the next slot tries again.
            Err(err) => {
                tracing::warn!(template = %template.id, error = ?err, "recurring task not created")
            }
        }
        txn.commit().await?;
    }
    Ok(created)
}

async fn create_from_template<C>(
    db: &C,
    bus: &dyn EventBus,
    currency: &str,
    template: &recurring_task::Model,
    slot: DateTime<Utc>,
) -> AppResult<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    let Some(initiator) = identity::viewer_for_user(db, template.initiator_id).await? else {
        return Err(AppError::bad_input(
            "the template's creator is no longer active",
        ));
    };
    let executors: Vec<Uuid> =
        serde_json::from_value(template.executor_ids.clone()).unwrap_or_default();
    let deadline = template
        .deadline_after_hours
        .map(|h| slot + chrono::Duration::hours(i64::from(h)));
    let viewer = Viewer::User(std::sync::Arc::new(initiator));
    super::create_task(
        db,
        bus,
        &viewer,
        currency,
        NewTask {
            category_id: Some(CategoryId(template.category_id)),
            parent_id: None,
            fields: template_fields(&template.title, &template.key_points, &executors, deadline),
        },
    )
    .await
    .map(|_| ())
}
