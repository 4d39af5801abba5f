//! Recurring task templates over GraphQL: a cron expression that creates main tasks.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::recurring_task;

use crate::domains::identity::model::UserId;
use crate::domains::tasks::model::{CategoryId, RecurringTaskId};
use crate::domains::tasks::service::{self, NewRecurringTask};
use crate::error::AppError;
use crate::graphql::context::ContextExt;

#[derive(SimpleObject)]
pub struct RecurringTask {
    id: ID,
    category_id: ID,
    title: String,
    key_points: String,
    initiator_id: ID,
    executor_ids: Vec<ID>,
    /// Five fields, or six with seconds first; evaluated in UTC.
    cron: String,
    deadline_after_hours: Option<i32>,
    active: bool,
    created_at: DateTime<Utc>,
}

impl From<recurring_task::Model> for RecurringTask {
    fn from(t: recurring_task::Model) -> Self {
        let executors: Vec<uuid::Uuid> = serde_json::from_value(t.executor_ids).unwrap_or_default();
        Self {
            id: ID(t.id.to_string()),
            category_id: ID(t.category_id.to_string()),
            title: t.title,
            key_points: t.key_points,
            initiator_id: ID(t.initiator_id.to_string()),
            executor_ids: executors.into_iter().map(|e| ID(e.to_string())).collect(),
            cron: t.cron,
            deadline_after_hours: t.deadline_after_hours,
            active: t.active,
            created_at: t.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateRecurringTaskInput {
    category_id: ID,
    title: String,
    #[graphql(default)]
    key_points: String,
    #[graphql(default)]
    executor_ids: Vec<ID>,
    cron: String,
    /// Each created task is due this many hours after its slot.
    deadline_after_hours: Option<i32>,
}

impl TryFrom<CreateRecurringTaskInput> for NewRecurringTask {
    type Error = AppError;

    fn try_from(input: CreateRecurringTaskInput) -> Result<Self, AppError> {
        // Refused before the ids are read: a huge list is not worth parsing.
        service::ensure_executor_cap(input.executor_ids.len())?;
        let executor_ids = input
            .executor_ids
            .iter()
            .map(|id| UserId::parse("executorIds", id).map(|u| u.0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NewRecurringTask {
            category_id: CategoryId::parse("categoryId", &input.category_id)?,
            title: input.title,
            key_points: input.key_points,
            executor_ids,
            cron: input.cron,
            deadline_after_hours: input.deadline_after_hours,
        })
    }
}

#[derive(Default)]
pub struct RecurringTasksQuery;

#[Object]
impl RecurringTasksQuery {
    /// The caller's recurring task templates (all of them for administrators).
    async fn recurring_tasks(&self, ctx: &Context<'_>) -> Result<Vec<RecurringTask>> {
        let caller = ctx.caller()?;
        let rows = service::recurring_tasks(caller.db(), caller.viewer).await?;
        Ok(rows.into_iter().map(RecurringTask::from).collect())
    }
}

#[derive(Default)]
pub struct RecurringTasksMutation;

#[Object]
impl RecurringTasksMutation {
    /// A template that creates a main task, as the caller, on every slot of `cron`.
    async fn create_recurring_task(
        &self,
        ctx: &Context<'_>,
        input: CreateRecurringTaskInput,
    ) -> Result<RecurringTask> {
        let (caller, new) = (ctx.caller()?, input.try_into()?);
        let created = caller
            .write(async |work| service::create_recurring_task(work, caller.viewer, new).await)
            .await?;
        Ok(created.into())
    }

    async fn set_recurring_task_active(
        &self,
        ctx: &Context<'_>,
        id: ID,
        active: bool,
    ) -> Result<RecurringTask> {
        let (caller, id) = (ctx.caller()?, RecurringTaskId::parse("id", &id)?);
        let template = caller
            .write(async |work| {
                service::set_recurring_task_active(work, caller.viewer, id.0, active).await
            })
            .await?;
        Ok(template.into())
    }
}
