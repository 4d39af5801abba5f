//! Task API inputs, and their parsing into the model's types: rules stay in the model and the
//! service, a resolver only converts.

use async_graphql::{Enum, InputObject, MaybeUndefined, Result, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domains::approvals::model::FlowId;
use crate::domains::identity::model::{parse_name, DepartmentId, UserId};
use crate::domains::tasks::model::{
    AssignmentPool as Pool, CashOutputChange, CashOutputInput, CategoryChanges, CategoryId,
    NewCategory, TaskFields, TaskId,
};
use crate::domains::tasks::service::{self, NewTask, TaskChanges};
use crate::error::AppError;
use crate::graphql::ids::{maybe_id, optional_id};
use crate::graphql::scalars::{Json, Money};

use super::types::{AssignmentStrategy, ReviewStatus, TaskStatus};

#[derive(InputObject)]
pub struct AssignmentPoolInput {
    pub department_id: Option<ID>,
    pub role: Option<String>,
}

#[derive(InputObject)]
pub struct CreateTaskCategoryInput {
    pub code: String,
    pub name: String,
    #[graphql(default = 3)]
    pub default_priority: i32,
    pub approval_flow_id: Option<ID>,
    #[graphql(default_with = "AssignmentStrategy::Manual")]
    pub assignment_strategy: AssignmentStrategy,
    pub assignment_pool: Option<AssignmentPoolInput>,
    pub custom_fields_schema: Option<Json>,
}

/// Fields left out stay as they are; `null` clears the flow, the pool or the schema.
#[derive(InputObject)]
pub struct UpdateTaskCategoryInput {
    pub code: Option<String>,
    pub name: Option<String>,
    pub default_priority: Option<i32>,
    pub approval_flow_id: MaybeUndefined<ID>,
    pub assignment_strategy: Option<AssignmentStrategy>,
    pub assignment_pool: MaybeUndefined<AssignmentPoolInput>,
    pub custom_fields_schema: MaybeUndefined<Json>,
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    /// Required for a main task; a subtask defaults to its parent's category.
    pub category_id: Option<ID>,
    /// Set to create a subtask of this (approved) main task.
    pub parent_id: Option<ID>,
    pub title: String,
    #[graphql(default)]
    pub key_points: String,
    /// Empty lets the category's assignment strategy choose.
    #[graphql(default)]
    pub executor_ids: Vec<ID>,
    #[graphql(default = false)]
    pub is_team_task: bool,
    pub confirmer_id: Option<ID>,
    #[graphql(default = false)]
    pub has_cash_output: bool,
    pub cash_output_value: Option<Money>,
    pub start_at: Option<DateTime<Utc>>,
    pub deadline: Option<DateTime<Utc>>,
    pub priority: Option<i32>,
    #[graphql(default = 0)]
    pub merit_points: i32,
    pub custom_fields: Option<Json>,
}

#[derive(InputObject)]
pub struct UpdateTaskInput {
    pub title: Option<String>,
    pub key_points: Option<String>,
    pub executor_ids: Option<Vec<ID>>,
    pub is_team_task: Option<bool>,
    pub confirmer_id: MaybeUndefined<ID>,
    pub has_cash_output: Option<bool>,
    pub cash_output_value: MaybeUndefined<Money>,
    pub start_at: MaybeUndefined<DateTime<Utc>>,
    pub deadline: MaybeUndefined<DateTime<Utc>>,
    pub priority: Option<i32>,
    pub merit_points: Option<i32>,
    pub custom_fields: Option<Json>,
}

#[derive(InputObject, Default)]
pub struct TaskFilter {
    pub category_id: Option<ID>,
    pub review_status: Option<ReviewStatus>,
    pub status: Option<TaskStatus>,
    pub executor_id: Option<ID>,
    pub initiator_id: Option<ID>,
    pub department_id: Option<ID>,
    /// Only the subtasks of this task.
    pub parent_id: Option<ID>,
    /// Only main tasks (ignored when `parentId` is set).
    #[graphql(default = false)]
    pub main_only: bool,
    pub deadline_from: Option<DateTime<Utc>>,
    pub deadline_to: Option<DateTime<Utc>>,
    pub overdue: Option<bool>,
    /// Case-insensitive text in the title.
    pub search: Option<String>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "service::TaskOrderField")]
pub enum TaskOrderField {
    Deadline,
    Priority,
    CreatedAt,
    Title,
    Progress,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OrderDirection {
    Asc,
    Desc,
}

#[derive(InputObject)]
pub struct TaskOrder {
    pub field: TaskOrderField,
    #[graphql(default_with = "OrderDirection::Asc")]
    pub direction: OrderDirection,
}

fn user_ids(field: &str, ids: &[ID]) -> Result<Vec<Uuid>, AppError> {
    ids.iter()
        .map(|id| UserId::parse(field, id).map(|u| u.0))
        .collect()
}

/// `undefined` leaves a field alone, `null` clears it, a value sets it.
fn maybe<T, U>(
    value: MaybeUndefined<T>,
    map: impl FnOnce(T) -> Result<U, AppError>,
) -> Result<Option<Option<U>>, AppError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => Ok(Some(Some(map(v)?))),
    }
}

impl TryFrom<AssignmentPoolInput> for Pool {
    type Error = AppError;

    fn try_from(pool: AssignmentPoolInput) -> Result<Self, AppError> {
        match (pool.department_id, pool.role) {
            (Some(department), None) => Ok(Pool::Department(
                DepartmentId::parse("assignmentPool", &department)?.0,
            )),
            (None, Some(role)) => Ok(Pool::Role(parse_name("assignmentPool", &role, 200)?)),
            _ => Err(AppError::bad_field(
                "assignmentPool",
                "a pool is either a departmentId or a role",
            )),
        }
    }
}

impl TryFrom<CreateTaskCategoryInput> for NewCategory {
    type Error = AppError;

    fn try_from(input: CreateTaskCategoryInput) -> Result<Self, AppError> {
        let pool = input.assignment_pool.map(Pool::try_from).transpose()?;
        Ok(NewCategory {
            code: input.code.trim().to_owned(),
            name: parse_name("name", &input.name, 200)?,
            default_priority: input.default_priority,
            approval_flow_id: optional_id(
                "approvalFlowId",
                input.approval_flow_id.as_ref(),
                FlowId::parse,
            )?
            .map(|f| f.0),
            strategy: input.assignment_strategy.into(),
            pool,
            custom_fields_schema: input.custom_fields_schema.map(|j| j.0),
        })
    }
}

impl TryFrom<UpdateTaskCategoryInput> for CategoryChanges {
    type Error = AppError;

    fn try_from(input: UpdateTaskCategoryInput) -> Result<Self, AppError> {
        Ok(CategoryChanges {
            code: input.code.map(|code| code.trim().to_owned()),
            name: input
                .name
                .map(|name| parse_name("name", &name, 200))
                .transpose()?,
            default_priority: input.default_priority,
            approval_flow_id: maybe_id("approvalFlowId", input.approval_flow_id, FlowId::parse)?
                .map(|flow| flow.map(|f| f.0)),
            strategy: input.assignment_strategy.map(Into::into),
            pool: maybe(input.assignment_pool, Pool::try_from)?,
            custom_fields_schema: maybe(input.custom_fields_schema, |j| Ok(j.0))?,
        })
    }
}

impl TryFrom<CreateTaskInput> for NewTask {
    type Error = AppError;

    fn try_from(input: CreateTaskInput) -> Result<Self, AppError> {
        Ok(NewTask {
            category_id: optional_id("categoryId", input.category_id.as_ref(), CategoryId::parse)?,
            parent_id: optional_id("parentId", input.parent_id.as_ref(), TaskId::parse)?,
            fields: TaskFields {
                title: input.title,
                key_points: input.key_points,
                executor_ids: user_ids("executorIds", &input.executor_ids)?,
                is_team_task: input.is_team_task,
                confirmer_id: optional_id(
                    "confirmerId",
                    input.confirmer_id.as_ref(),
                    UserId::parse,
                )?
                .map(|u| u.0),
                cash_output_minor: None,
                start_at: input.start_at,
                deadline: input.deadline,
                priority: input.priority,
                merit_points: input.merit_points,
                custom_fields: input
                    .custom_fields
                    .map_or_else(|| serde_json::json!({}), |j| j.0),
            },
            cash_output: Some(CashOutputInput {
                has: input.has_cash_output,
                value: input.cash_output_value.map(|m| m.0),
            }),
        })
    }
}

impl TryFrom<UpdateTaskInput> for TaskChanges {
    type Error = AppError;

    fn try_from(input: UpdateTaskInput) -> Result<Self, AppError> {
        Ok(TaskChanges {
            title: input.title,
            key_points: input.key_points,
            executor_ids: input
                .executor_ids
                .map(|ids| user_ids("executorIds", &ids))
                .transpose()?,
            is_team_task: input.is_team_task,
            confirmer_id: maybe(input.confirmer_id, |id| {
                UserId::parse("confirmerId", &id).map(|u| u.0)
            })?,
            cash_output: CashOutputChange {
                has: input.has_cash_output,
                value: maybe(input.cash_output_value, |m| Ok(m.0))?,
            },
            start_at: maybe(input.start_at, Ok)?,
            deadline: maybe(input.deadline, Ok)?,
            priority: input.priority,
            merit_points: input.merit_points,
            custom_fields: input.custom_fields.map(|j| j.0),
        })
    }
}

impl TryFrom<TaskFilter> for service::TaskFilter {
    type Error = AppError;

    fn try_from(f: TaskFilter) -> Result<Self, AppError> {
        Ok(service::TaskFilter {
            category_id: optional_id("categoryId", f.category_id.as_ref(), CategoryId::parse)?
                .map(|c| c.0),
            review_status: f.review_status.map(Into::into),
            status: f.status.map(Into::into),
            executor_id: optional_id("executorId", f.executor_id.as_ref(), UserId::parse)?
                .map(|u| u.0),
            initiator_id: optional_id("initiatorId", f.initiator_id.as_ref(), UserId::parse)?
                .map(|u| u.0),
            department_id: optional_id(
                "departmentId",
                f.department_id.as_ref(),
                DepartmentId::parse,
            )?
            .map(|d| d.0),
            parent_id: optional_id("parentId", f.parent_id.as_ref(), TaskId::parse)?.map(|t| t.0),
            main_only: f.main_only,
            deadline_from: f.deadline_from,
            deadline_to: f.deadline_to,
            overdue: f.overdue,
            search: f.search,
            involving: None,
        })
    }
}

impl From<TaskOrder> for service::TaskOrder {
    fn from(o: TaskOrder) -> Self {
        service::TaskOrder {
            field: o.field.into(),
            descending: o.direction == OrderDirection::Desc,
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::*;

    /// The CSV export parses `order=` by the SDL names; they must stay the GraphQL enum's.
    #[test]
    fn order_fields_parse_by_their_sdl_names() {
        for item in TaskOrderField::items() {
            let field: service::TaskOrderField = item.value.into();
            assert_eq!(
                service::TaskOrderField::parse(item.name),
                Some(field),
                "{}",
                item.name
            );
        }
    }
}
