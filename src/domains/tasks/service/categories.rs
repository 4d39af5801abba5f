//! Task categories: configured by `task.configure` holders, and how a category assigns executors.

use chrono::Utc;
use entities::{task, task_category, task_executor};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::auth::{Permission, Viewer};
use crate::domains::approvals::service as approvals;
use crate::domains::identity::service as identity;
use crate::domains::tasks::model::{
    AssignmentPool, AssignmentStrategy, CategoryChanges, CategoryId, NewCategory, WorkStatus,
};
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

pub async fn create_category(
    work: &Work,
    viewer: &Viewer,
    input: NewCategory,
) -> AppResult<task_category::Model> {
    viewer.user()?.require_global(Permission::TaskConfigure)?;
    input.validate()?;
    let (pool_department, pool_role) = checked_references(work, &input).await?;
    let now = Utc::now();
    task_category::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(input.code.clone()),
        name: Set(input.name),
        default_priority: Set(input.default_priority),
        custom_fields_schema: Set(input.custom_fields_schema),
        approval_flow_id: Set(input.approval_flow_id),
        assignment_strategy: Set(input.strategy.as_str().to_owned()),
        pool_department_id: Set(pool_department),
        pool_role: Set(pool_role),
        round_robin_counter: Set(0),
        archived_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await
    .map_err(|e| code_taken(e, &input.code))
}

/// Tasks already filed keep their category's new rules from their next edit on: the custom
/// fields are checked against the schema in force when they are written.
pub async fn update_category(
    work: &Work,
    viewer: &Viewer,
    id: CategoryId,
    changes: CategoryChanges,
) -> AppResult<task_category::Model> {
    viewer.user()?.require_global(Permission::TaskConfigure)?;
    let current = category_or_not_found(work, id).await?;
    let edited = changes.apply_to(as_new(&current));
    edited.validate()?;
    let (pool_department, pool_role) = checked_references(work, &edited).await?;
    let mut row: task_category::ActiveModel = current.into();
    row.code = Set(edited.code.clone());
    row.name = Set(edited.name);
    row.default_priority = Set(edited.default_priority);
    row.custom_fields_schema = Set(edited.custom_fields_schema);
    row.approval_flow_id = Set(edited.approval_flow_id);
    row.assignment_strategy = Set(edited.strategy.as_str().to_owned());
    row.pool_department_id = Set(pool_department);
    row.pool_role = Set(pool_role);
    row.updated_at = Set(Utc::now());
    row.update(work)
        .await
        .map_err(|e| code_taken(e, &edited.code))
}

/// Archiving twice keeps the first date; the category's tasks are untouched.
pub async fn set_category_archived(
    work: &Work,
    viewer: &Viewer,
    id: CategoryId,
    archived: bool,
) -> AppResult<task_category::Model> {
    viewer.user()?.require_global(Permission::TaskConfigure)?;
    let current = category_or_not_found(work, id).await?;
    if current.archived_at.is_some() == archived {
        return Ok(current);
    }
    let now = Utc::now();
    let mut row: task_category::ActiveModel = current.into();
    row.archived_at = Set(archived.then_some(now));
    row.updated_at = Set(now);
    Ok(row.update(work).await?)
}

fn code_taken(err: sea_orm::DbErr, code: &str) -> AppError {
    AppError::from_unique_violation(err, format!("a category with code {code:?} exists"))
}

async fn category_or_not_found(work: &Work, id: CategoryId) -> AppResult<task_category::Model> {
    task_category::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("task category"))
}

fn as_new(category: &task_category::Model) -> NewCategory {
    let pool = match (category.pool_department_id, &category.pool_role) {
        (Some(department), _) => Some(AssignmentPool::Department(department)),
        (None, Some(role)) => Some(AssignmentPool::Role(role.clone())),
        (None, None) => None,
    };
    NewCategory {
        code: category.code.clone(),
        name: category.name.clone(),
        default_priority: category.default_priority,
        approval_flow_id: category.approval_flow_id,
        strategy: strategy_of(category),
        pool,
        custom_fields_schema: category.custom_fields_schema.clone(),
    }
}

/// The approval flow and pool a category names must exist; returns the pool as its two columns.
async fn checked_references(
    work: &Work,
    input: &NewCategory,
) -> AppResult<(Option<Uuid>, Option<String>)> {
    if let Some(flow) = input.approval_flow_id {
        if !approvals::flow_exists(work, flow).await? {
            return Err(AppError::bad_field(
                "approvalFlowId",
                "no such approval flow",
            ));
        }
    }
    match &input.pool {
        Some(AssignmentPool::Department(id)) => {
            if identity::department_path_of(work, *id).await?.is_none() {
                return Err(AppError::bad_field("assignmentPool", "no such department"));
            }
            Ok((Some(*id), None))
        }
        Some(AssignmentPool::Role(name)) => {
            if identity::role_named(work, name).await?.is_none() {
                return Err(AppError::bad_field(
                    "assignmentPool",
                    format!("no role named {name:?}"),
                ));
            }
            Ok((None, Some(name.clone())))
        }
        None => Ok((None, None)),
    }
}

pub async fn list_categories<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    include_archived: bool,
) -> AppResult<Vec<task_category::Model>> {
    viewer.user()?;
    let mut query = task_category::Entity::find();
    if !include_archived {
        query = query.filter(task_category::Column::ArchivedAt.is_null());
    }
    Ok(query
        .order_by_asc(task_category::Column::Code)
        .all(db)
        .await?)
}

/// Any signed-in person may read a category (archived ones too: old tasks still name them).
pub async fn category_for<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: CategoryId,
) -> AppResult<Option<task_category::Model>> {
    viewer.user()?;
    find_category(db, id).await
}

/// The category a new task (or a recurring template) is filed under: it must exist and be live.
pub async fn category_for_new_task<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> AppResult<task_category::Model> {
    let category = task_category::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_field("categoryId", "no such task category"))?;
    if category.archived_at.is_some() {
        return Err(AppError::bad_field(
            "categoryId",
            format!(
                "task category {} is archived: it takes no new tasks",
                category.code
            ),
        ));
    }
    Ok(category)
}

pub async fn find_category<C: ConnectionTrait>(
    db: &C,
    id: CategoryId,
) -> AppResult<Option<task_category::Model>> {
    Ok(task_category::Entity::find_by_id(id.0).one(db).await?)
}

pub fn strategy_of(category: &task_category::Model) -> AssignmentStrategy {
    AssignmentStrategy::parse(&category.assignment_strategy).unwrap_or(AssignmentStrategy::Manual)
}

async fn pool_members<C: ConnectionTrait>(
    db: &C,
    category: &task_category::Model,
    task_department: Option<Uuid>,
) -> AppResult<Vec<Uuid>> {
    let mut members = if let Some(department) = category.pool_department_id {
        identity::active_members_of(db, department).await?
    } else if let Some(role) = &category.pool_role {
        identity::active_holders_of_role(db, role, task_department).await?
    } else {
        Vec::new()
    };
    members.sort();
    Ok(members)
}

/// Picks the executor for a task the client left unassigned, by the category's strategy.
/// Safe under concurrent creation: round-robin advances its counter with one atomic UPDATE,
/// and least-loaded counts under a per-category lock held to the end of the transaction.
pub async fn assign_executor<C: ConnectionTrait>(
    db: &C,
    category: &task_category::Model,
    task_department: Option<Uuid>,
) -> AppResult<Option<Uuid>> {
    let strategy = strategy_of(category);
    if strategy == AssignmentStrategy::Manual {
        return Ok(None);
    }
    let pool = pool_members(db, category, task_department).await?;
    if pool.is_empty() {
        return Err(AppError::Conflict(format!(
            "category {} has nobody in its assignment pool",
            category.code
        )));
    }
    match strategy {
        AssignmentStrategy::RoundRobin => {
            let advanced = task_category::Entity::update_many()
                .col_expr(
                    task_category::Column::RoundRobinCounter,
                    Expr::col(task_category::Column::RoundRobinCounter).add(1),
                )
                .filter(task_category::Column::Id.eq(category.id))
                .exec_with_returning(db)
                .await?;
            let turn = advanced
                .first()
                .map(|c| c.round_robin_counter - 1)
                .ok_or_else(|| AppError::not_found("task category"))?;
            let index = usize::try_from(turn.rem_euclid(pool.len() as i64)).unwrap_or(0);
            Ok(pool.get(index).copied())
        }
        AssignmentStrategy::LeastLoaded => {
            lock_in_transaction(db, &format!("assign:{}", category.id)).await?;
            let open: Vec<(Uuid, i64)> = task_executor::Entity::find()
                .select_only()
                .column(task_executor::Column::UserId)
                .column_as(task_executor::Column::TaskId.count(), "open_tasks")
                .inner_join(task::Entity)
                .filter(task_executor::Column::UserId.is_in(pool.clone()))
                .filter(
                    task::Column::Status
                        .is_in([WorkStatus::Open.as_str(), WorkStatus::InProgress.as_str()]),
                )
                .group_by(task_executor::Column::UserId)
                .into_tuple()
                .all(db)
                .await?;
            let load = |user: &Uuid| open.iter().find(|(u, _)| u == user).map_or(0, |(_, n)| *n);
            Ok(pool.iter().copied().min_by_key(|user| (load(user), *user)))
        }
        AssignmentStrategy::Manual => Ok(None),
    }
}
