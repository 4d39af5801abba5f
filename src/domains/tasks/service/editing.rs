//! Editing a task: every changed field checked, saved under optimistic concurrency, and logged.

use chrono::Utc;
use entities::{task, task_category};
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use super::{audience_of, emit, executors_of, record};
use crate::auth::{Permission, Viewer, ViewerUser};
use crate::domains::approvals::service as approvals;
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::NotificationKind;
use crate::domains::notifications::service as notifications;
use crate::domains::tasks::model::{
    CashOutputChange, ReviewStatus, TaskEventKind, TaskFields, TaskId, WorkStatus,
};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

use super::lifecycle::{
    check_custom_fields, check_people, load_for_change, money_text, save_versioned, set_executors,
    subject,
};

#[derive(Default)]
pub struct TaskChanges {
    pub title: Option<String>,
    pub key_points: Option<String>,
    pub executor_ids: Option<Vec<Uuid>>,
    pub is_team_task: Option<bool>,
    pub confirmer_id: Option<Option<Uuid>>,
    /// Parsed in the task's own currency.
    pub cash_output: CashOutputChange,
    pub start_at: Option<Option<chrono::DateTime<Utc>>>,
    pub deadline: Option<Option<chrono::DateTime<Utc>>>,
    pub priority: Option<i32>,
    pub merit_points: Option<i32>,
    pub custom_fields: Option<serde_json::Value>,
}

impl TaskChanges {
    /// The first field given that an approved task keeps as it was approved.
    fn locked_after_approval(&self) -> Option<&'static str> {
        let given = [
            ("title", self.title.is_some()),
            ("keyPoints", self.key_points.is_some()),
            ("isTeamTask", self.is_team_task.is_some()),
            (
                "cashOutputValue",
                self.cash_output.has.is_some() || self.cash_output.value.is_some(),
            ),
            ("startAt", self.start_at.is_some()),
            ("priority", self.priority.is_some()),
            ("meritPoints", self.merit_points.is_some()),
            ("customFields", self.custom_fields.is_some()),
        ];
        given
            .into_iter()
            .find(|(_, set)| *set)
            .map(|(field, _)| field)
    }
}

/// Who may change an approved task's people and deadline: its initiator, an administrator, or
/// a holder of `task.configure` over the task's department (global when it has none).
pub async fn may_restaff<C: ConnectionTrait>(
    db: &C,
    me: &ViewerUser,
    task: &task::Model,
) -> AppResult<bool> {
    if task.initiator_id == me.id || me.is_admin() {
        return Ok(true);
    }
    Ok(match task.department_id {
        Some(id) => match identity::department_path_of(db, id).await? {
            Some(path) => me.has_in(Permission::TaskConfigure, &path),
            None => me.has_global(Permission::TaskConfigure),
        },
        None => me.has_global(Permission::TaskConfigure),
    })
}

async fn require_restaff(work: &Work, me: &ViewerUser, task: &task::Model) -> AppResult<()> {
    if may_restaff(work, me, task).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only the initiator or task.configure over its department changes an approved \
             task's people and deadline"
                .into(),
        ))
    }
}

pub async fn update_task(
    work: &Work,
    viewer: &Viewer,
    id: TaskId,
    version: i32,
    changes: TaskChanges,
) -> AppResult<task::Model> {
    let me = viewer.user()?;
    let current = load_for_change(work, me, id).await?;
    let cash_output_minor = changes.cash_output.minor(&current.currency)?;
    if current.version != version {
        return Err(AppError::Conflict(format!(
            "the task is at version {}, not {version}; reload it and try again",
            current.version
        )));
    }
    let review = ReviewStatus::parse(&current.review_status);
    let status = WorkStatus::parse(&current.status);
    let restaffing = current.parent_id.is_none() && review == Some(ReviewStatus::Approved);
    if restaffing {
        // What reviewers approved must stay what is done; who does it, who confirms it and by
        // when may still change, by the initiator or whoever configures the department's tasks.
        if let Some(field) = changes.locked_after_approval() {
            return Err(AppError::Conflict(format!(
                "{field} cannot change once the task is approved: only executorIds, \
                 confirmerId and deadline can"
            )));
        }
        require_restaff(work, me, &current).await?;
        if let Some(instance) = current.approval_instance_id {
            let chose = approvals::fields_that_chose_approvers(work, instance).await?;
            let swapped = [
                ("executorIds", changes.executor_ids.is_some()),
                ("confirmerId", changes.confirmer_id.is_some()),
            ]
            .into_iter()
            .find(|(field, given)| *given && chose.iter().any(|c| c == field));
            if let Some((field, _)) = swapped {
                return Err(AppError::Conflict(format!(
                    "{field} chose approvers of this task, so who it names was approved: \
                     it cannot change after approval"
                )));
            }
        }
    } else {
        if current.initiator_id != me.id && !me.is_admin() {
            return Err(AppError::Forbidden(
                "only the initiator edits a task".into(),
            ));
        }
        // A main task changes freely only as a draft or after a rejection, and then goes
        // through review again.
        if current.parent_id.is_none()
            && !matches!(review, Some(ReviewStatus::Draft | ReviewStatus::Rejected))
        {
            return Err(AppError::Conflict(
                "a main task under review cannot be edited".into(),
            ));
        }
    }
    if !status.is_some_and(WorkStatus::is_open) {
        return Err(AppError::Conflict(
            "a finished task cannot be edited".into(),
        ));
    }
    let executors = executors_of(work, current.id).await?;
    let fields = TaskFields {
        title: changes
            .title
            .clone()
            .unwrap_or_else(|| current.title.clone()),
        key_points: changes
            .key_points
            .clone()
            .unwrap_or_else(|| current.key_points.clone()),
        executor_ids: changes
            .executor_ids
            .clone()
            .unwrap_or_else(|| executors.clone()),
        is_team_task: changes.is_team_task.unwrap_or(current.is_team_task),
        confirmer_id: changes.confirmer_id.unwrap_or(current.confirmer_id),
        cash_output_minor: cash_output_minor.unwrap_or(current.cash_output_minor),
        start_at: changes.start_at.unwrap_or(current.start_at),
        deadline: changes.deadline.unwrap_or(current.deadline),
        priority: Some(changes.priority.unwrap_or(current.priority)),
        merit_points: changes.merit_points.unwrap_or(current.merit_points),
        custom_fields: changes
            .custom_fields
            .clone()
            .unwrap_or_else(|| current.custom_fields.clone()),
    };
    fields.validate()?;
    let category = task_category::Entity::find_by_id(current.category_id)
        .one(work)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("task without category")))?;
    check_custom_fields(&category, &fields.custom_fields)?;
    check_people(work, &fields).await?;

    let mut active: task::ActiveModel = current.clone().into();
    let mut changed: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
    let text = |v: Option<chrono::DateTime<Utc>>| v.map(|d| d.to_rfc3339());
    if fields.title != current.title {
        changed.push((
            "title",
            Some(current.title.clone()),
            Some(fields.title.clone()),
        ));
        active.title = Set(fields.title.trim().to_owned());
    }
    if fields.key_points != current.key_points {
        changed.push((
            "keyPoints",
            Some(current.key_points.clone()),
            Some(fields.key_points.clone()),
        ));
        active.key_points = Set(fields.key_points.clone());
    }
    if fields.is_team_task != current.is_team_task {
        changed.push((
            "isTeamTask",
            Some(current.is_team_task.to_string()),
            Some(fields.is_team_task.to_string()),
        ));
        active.is_team_task = Set(fields.is_team_task);
    }
    if fields.confirmer_id != current.confirmer_id {
        changed.push((
            "confirmerId",
            current.confirmer_id.map(|u| u.to_string()),
            fields.confirmer_id.map(|u| u.to_string()),
        ));
        active.confirmer_id = Set(fields.confirmer_id);
    }
    if fields.cash_output_minor != current.cash_output_minor {
        changed.push((
            "cashOutputValue",
            money_text(current.cash_output_minor, &current.currency),
            money_text(fields.cash_output_minor, &current.currency),
        ));
        active.cash_output_minor = Set(fields.cash_output_minor);
        active.has_cash_output = Set(fields.cash_output_minor.is_some());
    }
    if fields.start_at != current.start_at {
        changed.push(("startAt", text(current.start_at), text(fields.start_at)));
        active.start_at = Set(fields.start_at);
    }
    if fields.deadline != current.deadline {
        changed.push(("deadline", text(current.deadline), text(fields.deadline)));
        active.deadline = Set(fields.deadline);
        // The overdue job flags a task once; a new deadline starts the watch again.
        let overdue = fields.deadline.is_some_and(|d| d <= Utc::now());
        if overdue != current.overdue {
            changed.push((
                "overdue",
                Some(current.overdue.to_string()),
                Some(overdue.to_string()),
            ));
            active.overdue = Set(overdue);
        }
    }
    let priority = fields.priority.unwrap_or(current.priority);
    if priority != current.priority {
        changed.push((
            "priority",
            Some(current.priority.to_string()),
            Some(priority.to_string()),
        ));
        active.priority = Set(priority);
    }
    if fields.merit_points != current.merit_points {
        changed.push((
            "meritPoints",
            Some(current.merit_points.to_string()),
            Some(fields.merit_points.to_string()),
        ));
        active.merit_points = Set(fields.merit_points);
    }
    if fields.custom_fields != current.custom_fields {
        changed.push((
            "customFields",
            Some(current.custom_fields.to_string()),
            Some(fields.custom_fields.to_string()),
        ));
        active.custom_fields = Set(fields.custom_fields.clone());
    }
    let executors_changed = fields.executor_ids != executors;
    if executors_changed {
        let show = |ids: &[Uuid]| {
            ids.iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        changed.push((
            "executorIds",
            Some(show(&executors)),
            Some(show(&fields.executor_ids)),
        ));
    }
    if changed.is_empty() {
        return Ok(current);
    }
    let updated = save_versioned(work, active, version).await?;
    if executors_changed {
        set_executors(work, updated.id, &fields.executor_ids).await?;
    }
    let notice = |kind, title| notifications::Notice {
        kind,
        title,
        body: &updated.title,
        subject: subject(updated.id),
    };
    let added: Vec<Uuid> = fields
        .executor_ids
        .iter()
        .copied()
        .filter(|e| !executors.contains(e))
        .collect();
    let assigned = notice(NotificationKind::Assigned, "You were assigned a task");
    notifications::notify(work, &added, Some(me.id), assigned).await?;
    let removed: Vec<Uuid> = executors
        .iter()
        .copied()
        .filter(|e| !fields.executor_ids.contains(e))
        .collect();
    let unassigned = notice(NotificationKind::Unassigned, "You were taken off a task");
    notifications::notify(work, &removed, Some(me.id), unassigned).await?;
    if fields.confirmer_id != current.confirmer_id {
        let confirming = notice(NotificationKind::Assigned, "You confirm a task's progress");
        let new: Vec<Uuid> = fields.confirmer_id.into_iter().collect();
        notifications::notify(work, &new, Some(me.id), confirming).await?;
        let released = notice(NotificationKind::Unassigned, "You no longer confirm a task");
        let old: Vec<Uuid> = current.confirmer_id.into_iter().collect();
        notifications::notify(work, &old, Some(me.id), released).await?;
    }
    // People already at work on an approved task plan around its deadline.
    if restaffing && fields.deadline != current.deadline {
        let staying: Vec<Uuid> = fields
            .executor_ids
            .iter()
            .copied()
            .filter(|e| executors.contains(e))
            .collect();
        let moved = notice(NotificationKind::DeadlineChanged, "A task's deadline moved");
        notifications::notify(work, &staying, Some(me.id), moved).await?;
    }
    for (field, old, new) in changed {
        record(work, updated.id, me.id, "updated", Some(field), old, new).await?;
    }
    let audience = audience_of(work, &updated).await?;
    emit(work, TaskEventKind::Updated, &updated, me.id, &audience);
    Ok(updated)
}
