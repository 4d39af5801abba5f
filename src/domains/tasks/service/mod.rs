//! Task rules. Every change runs in the caller's unit of work with its activity entries, and
//! appends its events to that work, so they are seen only once it commits.

mod attachments;
mod categories;
mod comments;
mod editing;
mod figures;
mod lifecycle;
mod progress;
mod queries;
mod scheduled;

pub use attachments::*;
pub use categories::*;
pub use comments::*;
pub use editing::*;
pub use figures::*;
pub use lifecycle::*;
pub use progress::*;
pub use queries::*;
pub use scheduled::*;

use chrono::Utc;
use entities::{task, task_activity, task_executor};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use super::model::{Audience, TaskEvent, TaskEventKind, SUBJECT_KIND};
use crate::auth::{Permission, ViewerUser};
use crate::domains::approvals::service as approvals;
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

/// Writes one activity entry: who did what to which field, from what to what. Values are kept
/// as excerpts (`activity_excerpt`), so no edit, of a long comment say, copies whole texts
/// into the log.
pub(crate) async fn record<C: ConnectionTrait>(
    db: &C,
    task_id: Uuid,
    actor: Uuid,
    action: &str,
    field: Option<&str>,
    old: Option<String>,
    new: Option<String>,
) -> AppResult<()> {
    task_activity::ActiveModel {
        id: Set(Uuid::now_v7()),
        task_id: Set(task_id),
        actor_id: Set(actor),
        action: Set(action.to_owned()),
        field: Set(field.map(str::to_owned)),
        old_value: Set(old.as_deref().map(super::model::activity_excerpt)),
        new_value: Set(new.as_deref().map(super::model::activity_excerpt)),
        at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

pub(crate) async fn executors_of<C: ConnectionTrait>(
    db: &C,
    task_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(task_executor::Entity::find()
        .filter(task_executor::Column::TaskId.eq(task_id))
        .order_by_asc(task_executor::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.user_id)
        .collect())
}

/// Everyone who may see `task`, read from storage.
pub(crate) async fn audience_of<C: ConnectionTrait>(
    db: &C,
    task: &task::Model,
) -> AppResult<Audience> {
    let mut people = vec![task.initiator_id];
    people.extend(executors_of(db, task.id).await?);
    people.extend(task.confirmer_id);
    if task.approval_instance_id.is_some() {
        people.extend(approvals::assignees_of_subject(db, SUBJECT_KIND, task.id).await?);
    }
    people.sort();
    people.dedup();
    let department_path = match task.department_id {
        Some(id) => identity::department_path_of(db, id).await?,
        None => None,
    };
    let parent = match task.parent_id {
        Some(parent_id) => match task::Entity::find_by_id(parent_id).one(db).await? {
            Some(parent) => Some(Box::new(Box::pin(audience_of(db, &parent)).await?)),
            None => None,
        },
        None => None,
    };
    Ok(Audience {
        people,
        department_path,
        parent,
    })
}

/// `NOT_FOUND` unless the viewer may see the task: a task one may not see does not exist.
pub(crate) async fn ensure_visible<C: ConnectionTrait>(
    db: &C,
    viewer: &ViewerUser,
    task: &task::Model,
) -> AppResult<Audience> {
    let audience = audience_of(db, task).await?;
    if audience.admits(viewer) {
        Ok(audience)
    } else {
        Err(AppError::not_found("task"))
    }
}

/// The same rule as `Audience::admits`, as SQL over `tasks`, so lists filter in the database.
pub fn visible_condition(viewer: &ViewerUser) -> Condition {
    if !super::model::sees_tasks(viewer) {
        return Condition::all().add(Expr::cust("1 = 0"));
    }
    if viewer.has_global(Permission::TaskRead) {
        return Condition::all();
    }
    let own = own_condition(viewer);
    let visible_parents = Query::select()
        .column(task::Column::Id)
        .from(task::Entity)
        .cond_where(own_condition(viewer))
        .to_owned();
    Condition::any()
        .add(own)
        .add(task::Column::ParentId.in_subquery(visible_parents))
}

fn own_condition(viewer: &ViewerUser) -> Condition {
    let as_executor = Query::select()
        .column(task_executor::Column::TaskId)
        .from(task_executor::Entity)
        .and_where(Expr::col(task_executor::Column::UserId).eq(viewer.id))
        .to_owned();
    let scopes: Vec<String> = super::model::task_subtrees(viewer)
        .map(str::to_owned)
        .collect();
    let mut any = Condition::any()
        .add(task::Column::InitiatorId.eq(viewer.id))
        .add(task::Column::ConfirmerId.eq(viewer.id))
        .add(task::Column::Id.in_subquery(as_executor))
        .add(
            task::Column::Id.in_subquery(approvals::subjects_assigned_to(SUBJECT_KIND, viewer.id)),
        );
    if !scopes.is_empty() {
        any =
            any.add(task::Column::DepartmentId.in_subquery(identity::departments_within(&scopes)));
    }
    any
}

pub(crate) fn event(
    kind: TaskEventKind,
    task: &task::Model,
    actor: Uuid,
    audience: &Audience,
) -> TaskEvent {
    TaskEvent {
        kind,
        task: task.clone(),
        actor_id: actor,
        at: Utc::now(),
        audience: audience.clone(),
    }
}

pub(crate) fn emit(
    work: &Work,
    kind: TaskEventKind,
    task: &task::Model,
    actor: Uuid,
    audience: &Audience,
) {
    work.emit(&event(kind, task, actor, audience));
}
