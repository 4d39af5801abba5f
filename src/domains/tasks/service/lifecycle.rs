//! A task's life before work starts: creation (with assignment), editing with optimistic
//! concurrency, submission for review, and the review verdict.

use async_trait::async_trait;
use chrono::Utc;
use entities::{task, task_category, task_executor};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use super::{audience_of, emit, ensure_visible, executors_of, record};
use crate::auth::{Permission, Viewer, ViewerUser};
use crate::domains::approvals::model::{SubjectFacts, SubjectRef, Verdict};
use crate::domains::approvals::service::{self as approvals, ApprovalSubject};
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service as notifications;
use crate::domains::tasks::model::{
    CashOutputInput, CategoryId, ReviewStatus, TaskEventKind, TaskFields, TaskId, WorkStatus,
    SUBJECT_KIND,
};
use crate::error::{AppError, AppResult};
use crate::platform::money::{currency_exponent, Decimal};
use crate::platform::work::Work;

pub struct NewTask {
    pub category_id: Option<CategoryId>,
    pub parent_id: Option<TaskId>,
    pub fields: TaskFields,
    /// The cash output as the client stated it, parsed in the task's currency into
    /// `fields.cash_output_minor`; `None` for callers that already hold minor units there.
    pub cash_output: Option<CashOutputInput>,
}

pub(super) fn subject(task_id: Uuid) -> Option<Subject> {
    Some(Subject {
        kind: SUBJECT_KIND,
        id: task_id,
    })
}

/// Custom fields must satisfy the category's JSON Schema; the error names the failing path.
pub(super) fn check_custom_fields(
    category: &task_category::Model,
    fields: &serde_json::Value,
) -> AppResult<()> {
    let Some(schema) = &category.custom_fields_schema else {
        return Ok(());
    };
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored schema invalid: {e}")))?;
    if let Some(error) = validator.iter_errors(fields).next() {
        let path = error.instance_path().to_string();
        return Err(AppError::bad_field(
            "customFields",
            format!(
                "custom field {} is invalid: {error}",
                if path.is_empty() { "/".into() } else { path }
            ),
        ));
    }
    Ok(())
}

pub(super) async fn check_people<C: ConnectionTrait>(db: &C, fields: &TaskFields) -> AppResult<()> {
    let wanted = fields.executor_ids.clone();
    if identity::active_users(db, wanted.clone()).await?.len() != wanted.len() {
        return Err(AppError::bad_field(
            "executorIds",
            "an executor is not an active user",
        ));
    }
    if let Some(confirmer) = fields.confirmer_id {
        if identity::active_users(db, vec![confirmer])
            .await?
            .is_empty()
        {
            return Err(AppError::bad_field(
                "confirmerId",
                "the confirmer is not an active user",
            ));
        }
    }
    Ok(())
}

pub(super) async fn set_executors<C: ConnectionTrait>(
    db: &C,
    task_id: Uuid,
    executors: &[Uuid],
) -> AppResult<()> {
    task_executor::Entity::delete_many()
        .filter(task_executor::Column::TaskId.eq(task_id))
        .exec(db)
        .await?;
    if executors.is_empty() {
        return Ok(());
    }
    task_executor::Entity::insert_many(executors.iter().enumerate().map(|(position, user)| {
        task_executor::ActiveModel {
            task_id: Set(task_id),
            user_id: Set(*user),
            position: Set(position as i32),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// Main tasks are filed in their initiator's department: starting one needs
/// `task.create_main` there (or globally, for someone outside every department).
pub(super) async fn ensure_may_start_main<C: ConnectionTrait>(
    db: &C,
    me: &ViewerUser,
) -> AppResult<()> {
    let path = match me.department_id {
        Some(id) => identity::department_path_of(db, id).await?,
        None => None,
    };
    let allowed = match path {
        Some(path) => me.has_in(Permission::TaskCreateMain, &path),
        None => me.has_global(Permission::TaskCreateMain),
    };
    if !allowed {
        return Err(AppError::Forbidden(
            "starting a main task needs task.create_main".into(),
        ));
    }
    Ok(())
}

pub fn money_text(minor: Option<i64>, currency: &str) -> Option<String> {
    minor.map(|m| Decimal::from_minor(m, currency_exponent(currency)).to_string())
}

pub async fn create_task(
    work: &Work,
    viewer: &Viewer,
    currency: &str,
    input: NewTask,
) -> AppResult<task::Model> {
    let me = viewer.user()?;
    let mut fields = input.fields;
    if let Some(cash_output) = input.cash_output {
        fields.cash_output_minor = cash_output.minor(currency)?;
    }
    fields.validate()?;
    let (parent, category) = match input.parent_id {
        Some(parent_id) => {
            let parent = task::Entity::find_by_id(parent_id.0)
                .one(work)
                .await?
                .ok_or_else(|| AppError::bad_field("parentId", "no such task"))?;
            ensure_visible(work, me, &parent)
                .await
                .map_err(|_| AppError::bad_field("parentId", "no such task"))?;
            if parent.parent_id.is_some() {
                return Err(AppError::bad_field(
                    "parentId",
                    "subtasks cannot have subtasks",
                ));
            }
            if ReviewStatus::parse(&parent.review_status) != Some(ReviewStatus::Approved) {
                return Err(AppError::bad_field(
                    "parentId",
                    "subtasks can be added only once the main task is approved",
                ));
            }
            let parent_executors = executors_of(work, parent.id).await?;
            if parent.initiator_id != me.id && !parent_executors.contains(&me.id) {
                return Err(AppError::Forbidden(
                    "only the main task's initiator or an executor may add subtasks".into(),
                ));
            }
            if fields.cash_output_minor.is_some() || fields.merit_points != 0 {
                return Err(AppError::bad_field(
                    "meritPoints",
                    "merit and cash output belong to the reviewed main task, not its subtasks",
                ));
            }
            // Subtask progress is confirmed by whoever confirms the main task, never by the
            // subtask's own executors.
            if fields.confirmer_id.is_none() {
                fields.confirmer_id = Some(parent.confirmer_id.unwrap_or(parent.initiator_id));
            }
            let category_id = input.category_id.map_or(parent.category_id, |c| c.0);
            (Some(parent), category_id)
        }
        None => {
            let category = input
                .category_id
                .ok_or_else(|| AppError::bad_field("categoryId", "a main task needs a category"))?;
            (None, category.0)
        }
    };
    let category = super::category_for_new_task(work, category).await?;
    let department_id = match &parent {
        Some(parent) => parent.department_id,
        None => me.department_id,
    };
    if parent.is_none() {
        ensure_may_start_main(work, me).await?;
    }
    check_custom_fields(&category, &fields.custom_fields)?;
    check_people(work, &fields).await?;
    if fields.executor_ids.is_empty() {
        if let Some(assignee) = super::assign_executor(work, &category, department_id).await? {
            fields.executor_ids.push(assignee);
        }
    }
    let now = Utc::now();
    let review_status = if parent.is_some() {
        // A subtask is created under an approved main task by its own people: no second review.
        ReviewStatus::Approved
    } else {
        ReviewStatus::Draft
    };
    let created = task::ActiveModel {
        id: Set(Uuid::now_v7()),
        category_id: Set(category.id),
        parent_id: Set(parent.as_ref().map(|p| p.id)),
        title: Set(fields.title.trim().to_owned()),
        key_points: Set(fields.key_points.clone()),
        initiator_id: Set(me.id),
        department_id: Set(department_id),
        is_team_task: Set(fields.is_team_task),
        confirmer_id: Set(fields.confirmer_id),
        has_cash_output: Set(fields.cash_output_minor.is_some()),
        cash_output_minor: Set(fields.cash_output_minor),
        currency: Set(currency.to_owned()),
        start_at: Set(fields.start_at),
        deadline: Set(fields.deadline),
        priority: Set(fields.priority.unwrap_or(category.default_priority)),
        progress: Set(0),
        reported_progress: Set(None),
        merit_points: Set(fields.merit_points),
        review_status: Set(review_status.as_str().to_owned()),
        rejection_reason: Set(None),
        status: Set(WorkStatus::Open.as_str().to_owned()),
        custom_fields: Set(fields.custom_fields.clone()),
        version: Set(1),
        approval_instance_id: Set(None),
        overdue: Set(false),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await?;
    set_executors(work, created.id, &fields.executor_ids).await?;
    record(
        work,
        created.id,
        me.id,
        "created",
        None,
        None,
        Some(created.title.clone()),
    )
    .await?;
    notifications::notify(
        work,
        &fields.executor_ids,
        Some(me.id),
        notifications::Notice {
            kind: NotificationKind::Assigned,
            title: "You were assigned a task",
            body: &created.title,
            subject: subject(created.id),
        },
    )
    .await?;
    let audience = audience_of(work, &created).await?;
    emit(work, TaskEventKind::Created, &created, me.id, &audience);
    Ok(created)
}

/// Loads a task for a change: visible to `me`, or `NOT_FOUND`.
pub(super) async fn load_for_change(
    work: &impl ConnectionTrait,
    me: &ViewerUser,
    id: TaskId,
) -> AppResult<task::Model> {
    let task = task::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    ensure_visible(work, me, &task).await?;
    Ok(task)
}

/// Saves `active` only if the row is still at `version`; a concurrent change means `CONFLICT`.
pub(crate) async fn save_versioned(
    work: &impl ConnectionTrait,
    mut active: task::ActiveModel,
    version: i32,
) -> AppResult<task::Model> {
    active.version = Set(version + 1);
    active.updated_at = Set(Utc::now());
    let id = match &active.id {
        sea_orm::ActiveValue::Set(id) | sea_orm::ActiveValue::Unchanged(id) => *id,
        sea_orm::ActiveValue::NotSet => {
            return Err(AppError::internal(anyhow::anyhow!("task without id")))
        }
    };
    let updated = task::Entity::update_many()
        .set(active)
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::Version.eq(version))
        .exec(work)
        .await?;
    if updated.rows_affected == 0 {
        return Err(AppError::Conflict(
            "the task was changed by someone else; reload it and try again".into(),
        ));
    }
    task::Entity::find_by_id(id)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("task"))
}

/// Sends a draft or rejected main task into its category's approval flow (a category without
/// a flow approves at once). A resubmission starts a new approval; the old one stays as history.
pub async fn submit_task(work: &Work, viewer: &Viewer, id: TaskId) -> AppResult<task::Model> {
    let me = viewer.user()?;
    let current = load_for_change(work, me, id).await?;
    if current.parent_id.is_some() {
        return Err(AppError::bad_input("subtasks are not submitted for review"));
    }
    if current.initiator_id != me.id {
        return Err(AppError::Forbidden(
            "only the initiator submits a task".into(),
        ));
    }
    match ReviewStatus::parse(&current.review_status) {
        Some(ReviewStatus::Draft | ReviewStatus::Rejected) => {}
        _ => {
            return Err(AppError::Conflict(
                "only a draft or rejected task can be submitted".into(),
            ))
        }
    }
    let executors = executors_of(work, current.id).await?;
    if executors.is_empty() {
        return Err(AppError::bad_field(
            "executorIds",
            "choose an executor before submitting",
        ));
    }
    let category = task_category::Entity::find_by_id(current.category_id)
        .one(work)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("task without category")))?;
    let mut active: task::ActiveModel = current.clone().into();
    active.rejection_reason = Set(None);
    let status = match category.approval_flow_id {
        Some(flow) => {
            let facts = SubjectFacts {
                department_id: current.department_id,
                initiator_id: current.initiator_id,
                numbers: [
                    (
                        "cashOutputValue",
                        // A task without cash output spends nothing: zero, a known fact.
                        if current.has_cash_output {
                            money_text(current.cash_output_minor, &current.currency)
                        } else {
                            Some("0".to_owned())
                        },
                    ),
                    ("meritPoints", Some(current.merit_points.to_string())),
                    ("priority", Some(current.priority.to_string())),
                ]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                .collect(),
                users: [
                    ("initiatorId", vec![current.initiator_id]),
                    ("executorIds", executors.clone()),
                    ("confirmerId", current.confirmer_id.into_iter().collect()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            };
            let started = approvals::start(
                work,
                flow,
                SubjectRef {
                    kind: SUBJECT_KIND,
                    id: current.id,
                },
                facts,
            )
            .await?;
            active.approval_instance_id = Set(Some(started.instance.id));
            match started.status {
                crate::domains::approvals::model::InstanceStatus::Approved => {
                    ReviewStatus::Approved
                }
                _ => ReviewStatus::Pending,
            }
        }
        None => ReviewStatus::Approved,
    };
    active.review_status = Set(status.as_str().to_owned());
    let updated = save_versioned(work, active, current.version).await?;
    record(
        work,
        updated.id,
        me.id,
        "submitted",
        Some("reviewStatus"),
        Some(current.review_status.clone()),
        Some(updated.review_status.clone()),
    )
    .await?;
    let audience = audience_of(work, &updated).await?;
    emit(work, TaskEventKind::Submitted, &updated, me.id, &audience);
    Ok(updated)
}

/// The engine's callback for tasks: the verdict becomes the review status (a rejection's
/// comment the rejection reason), in the deciding unit of work.
pub struct TaskApprovals;

#[async_trait]
impl ApprovalSubject for TaskApprovals {
    fn kind(&self) -> &'static str {
        SUBJECT_KIND
    }

    async fn titles(
        &self,
        db: &sea_orm::DatabaseConnection,
        viewer: &Viewer,
        ids: &[Uuid],
    ) -> AppResult<std::collections::HashMap<Uuid, String>> {
        let Ok(me) = viewer.user() else {
            return Ok(Default::default());
        };
        Ok(task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .column(task::Column::Title)
            .filter(task::Column::Id.is_in(ids.iter().copied()))
            .filter(super::visible_condition(me))
            .into_tuple::<(Uuid, String)>()
            .all(db)
            .await?
            .into_iter()
            .collect())
    }

    async fn on_verdict(
        &self,
        work: &Work,
        subject_id: Uuid,
        verdict: &Verdict,
        decided_by: Uuid,
    ) -> AppResult<()> {
        let current = task::Entity::find_by_id(subject_id)
            .one(work)
            .await?
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("approved task {subject_id} is gone"))
            })?;
        let mut active: task::ActiveModel = current.clone().into();
        let (status, reason) = match verdict {
            Verdict::Approved => (ReviewStatus::Approved, None),
            Verdict::Rejected { reason } => (ReviewStatus::Rejected, Some(reason.clone())),
        };
        active.review_status = Set(status.as_str().to_owned());
        active.rejection_reason = Set(reason.clone());
        let updated = save_versioned(work, active, current.version).await?;
        record(
            work,
            updated.id,
            decided_by,
            "review_decided",
            Some("reviewStatus"),
            Some(current.review_status.clone()),
            Some(updated.review_status.clone()),
        )
        .await?;
        let mut recipients = vec![updated.initiator_id];
        recipients.extend(executors_of(work, updated.id).await?);
        let title = match &reason {
            None => "Your task was approved".to_owned(),
            Some(_) => "Your task was rejected".to_owned(),
        };
        notifications::notify(
            work,
            &recipients,
            Some(decided_by),
            notifications::Notice {
                kind: NotificationKind::ReviewDecided,
                title: &title,
                body: &reason.unwrap_or_else(|| updated.title.clone()),
                subject: subject(updated.id),
            },
        )
        .await?;
        let audience = audience_of(work, &updated).await?;
        emit(
            work,
            TaskEventKind::ReviewDecided,
            &updated,
            decided_by,
            &audience,
        );
        Ok(())
    }
}
