//! The work the scheduler does for tasks: deadline reminders, overdue escalation and recurring
//! tasks. Each is a read listing the candidates and a command for one of them, which the job
//! runs in a unit of work of its own. Each command is idempotent — a marker row, a conditional
//! update or a claimed slot decides who acts — so a rerun or a second node changes nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entities::{recurring_task, task, task_reminder};
use sea_orm::prelude::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::queries::open_statuses;
use super::{audience_of, emit, executors_of, record, NewTask};
use crate::auth::Viewer;
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::NotificationKind;
use crate::domains::notifications::service::{self as notifications, Notice};
use crate::domains::tasks::model::{CategoryId, TaskEventKind, TaskFields};
use crate::error::{AppError, AppResult};
use crate::platform::scheduler::{due_slot, parse_cron, MissedSlots};
use crate::platform::work::Work;

/// Tasks one scan lists; the next scan takes the rest.
const SCAN_BATCH: u64 = 500;
/// The actor recorded for what the system does on its own.
const SYSTEM: Uuid = Uuid::nil();

/// Open tasks whose deadline falls within `lead` of `now` and whose executors were not yet
/// reminded of that deadline (a moved deadline earns a new reminder), soonest first.
pub async fn deadline_reminder_candidates(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lead: Duration,
) -> AppResult<Vec<task::Model>> {
    let horizon = now + lead;
    Ok(task::Entity::find()
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
        .await?)
}

/// Reminds the executors of `task` of its deadline, once per task and deadline: the marker
/// row decides, so a rerun or a second node reminds nobody twice. Returns whether it reminded.
pub async fn send_deadline_reminder(
    work: &Work,
    task: &task::Model,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let Some(deadline) = task.deadline else {
        return Ok(false);
    };
    let marked = task_reminder::Entity::insert(task_reminder::ActiveModel {
        task_id: Set(task.id),
        deadline: Set(deadline),
        sent_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(work)
    .await?;
    if !matches!(marked, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok(false);
    }
    let executors = executors_of(work, task.id).await?;
    let body = format!("due {}", deadline.format("%Y-%m-%d %H:%M UTC"));
    notifications::notify(
        work,
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
    Ok(true)
}

/// Open tasks past their deadline not yet marked overdue, the longest late first.
pub async fn overdue_candidates(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> AppResult<Vec<task::Model>> {
    Ok(task::Entity::find()
        .filter(task::Column::Deadline.lte(now))
        .filter(task::Column::Overdue.eq(false))
        .filter(task::Column::Status.is_in(open_statuses()))
        .order_by_asc(task::Column::Deadline)
        .limit(SCAN_BATCH)
        .all(db)
        .await?)
}

/// Marks `task` overdue and tells the initiator and the head of the task's department; the
/// conditional update decides, so it turns overdue once. Returns whether it turned.
pub async fn escalate_overdue_task(work: &Work, task: &task::Model) -> AppResult<bool> {
    let turned = task::Entity::update_many()
        .col_expr(task::Column::Overdue, true.into())
        .filter(task::Column::Id.eq(task.id))
        .filter(task::Column::Overdue.eq(false))
        .exec(work)
        .await?;
    if turned.rows_affected == 0 {
        return Ok(false);
    }
    record(
        work,
        task.id,
        SYSTEM,
        "overdue",
        Some("overdue"),
        Some("false".into()),
        Some("true".into()),
    )
    .await?;
    let mut recipients = vec![task.initiator_id];
    recipients.extend(identity::department_head_for(work, task.department_id).await?);
    let body = match task.deadline {
        Some(deadline) => format!("was due {}", deadline.format("%Y-%m-%d %H:%M UTC")),
        None => "is past its deadline".to_owned(),
    };
    notifications::notify(
        work,
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
        ..task.clone()
    };
    let audience = audience_of(work, &updated).await?;
    emit(
        work,
        TaskEventKind::StatusChanged,
        &updated,
        SYSTEM,
        &audience,
    );
    Ok(true)
}

pub struct NewRecurringTask {
    pub category_id: CategoryId,
    pub title: String,
    pub key_points: String,
    pub executor_ids: Vec<Uuid>,
    pub cron: String,
    pub deadline_after_hours: Option<i32>,
}

/// Each slot assigns every executor of the template: the list stays short.
const MAX_TEMPLATE_EXECUTORS: usize = 50;

pub fn ensure_executor_cap(count: usize) -> AppResult<()> {
    if count > MAX_TEMPLATE_EXECUTORS {
        return Err(AppError::bad_field("executorIds", "at most 50 executors"));
    }
    Ok(())
}

/// A template that creates a main task, as its creator, on every slot of `cron`.
pub async fn create_recurring_task(
    work: &Work,
    viewer: &Viewer,
    input: NewRecurringTask,
) -> AppResult<recurring_task::Model> {
    ensure_executor_cap(input.executor_ids.len())?;
    let me = viewer.user()?;
    super::lifecycle::ensure_may_start_main(work, me).await?;
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
    super::lifecycle::check_people(work, &fields).await?;
    super::category_for_new_task(work, input.category_id.0).await?;
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
    .insert(work)
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

pub async fn set_recurring_task_active(
    work: &Work,
    viewer: &Viewer,
    id: Uuid,
    active: bool,
) -> AppResult<recurring_task::Model> {
    let me = viewer.user()?;
    let template = recurring_task::Entity::find_by_id(id)
        .one(work)
        .await?
        .filter(|t| t.initiator_id == me.id || me.is_admin())
        .ok_or_else(|| AppError::not_found("recurring task"))?;
    let mut active_model: recurring_task::ActiveModel = template.into();
    active_model.active = Set(active);
    Ok(active_model.update(work).await?)
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

/// The active templates whose next slot has come, each with that slot (one per template:
/// missed slots fire once).
pub async fn due_recurring_slots(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> AppResult<Vec<(recurring_task::Model, DateTime<Utc>)>> {
    let templates = recurring_task::Entity::find()
        .filter(recurring_task::Column::Active.eq(true))
        .all(db)
        .await?;
    let mut due = Vec::new();
    for template in templates {
        let Ok(cron) = parse_cron(&template.cron) else {
            continue;
        };
        let last = crate::platform::scheduler::last_fired(db, &schedule_of(&template))
            .await?
            .unwrap_or(template.created_at)
            .max(template.created_at);
        if let Some(slot) = due_slot(
            &cron,
            Some(last),
            now,
            MissedSlots::FireOnce,
            Duration::ZERO,
        ) {
            due.push((template, slot));
        }
    }
    Ok(due)
}

/// Creates the task of one slot of `template`, each slot once across all nodes: the slot's
/// `cron_fires` row and the task commit together. Returns whether a task was created.
///
/// A template that no longer fits (an executor left, say) still spends its slot: the reason is
/// logged, what the attempt wrote and emitted is rolled back, and the next slot tries again.
pub async fn create_recurring_slot(
    work: &Work,
    currency: &str,
    template: &recurring_task::Model,
    slot: DateTime<Utc>,
) -> AppResult<bool> {
    if !crate::platform::scheduler::claim_slot(work, &schedule_of(template), slot).await? {
        return Ok(false);
    }
    let outcome = work
        .attempt(async |step| create_from_template(step, currency, template, slot).await)
        .await;
    match outcome {
        Ok(()) => Ok(true),
        Err(AppError::Internal(cause)) => Err(AppError::Internal(cause)),
        Err(err) => {
            tracing::warn!(template = %template.id, error = ?err, "recurring task not created");
            Ok(false)
        }
    }
}

async fn create_from_template(
    work: &Work,
    currency: &str,
    template: &recurring_task::Model,
    slot: DateTime<Utc>,
) -> AppResult<()> {
    let Some(initiator) = identity::viewer_for_user(work, template.initiator_id).await? else {
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
        work,
        &viewer,
        currency,
        NewTask {
            category_id: Some(CategoryId(template.category_id)),
            parent_id: None,
            fields: template_fields(&template.title, &template.key_points, &executors, deadline),
            cash_output: None,
        },
    )
    .await
    .map(|_| ())
}
