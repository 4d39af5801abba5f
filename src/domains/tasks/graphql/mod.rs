//! Tasks over GraphQL: thin resolvers that parse input into model types and call the service.

mod prime;
mod recurring;
mod types;

pub use recurring::{RecurringTasksMutation, RecurringTasksQuery};

pub use types::*;

use async_graphql::{
    Context, Enum, MaybeUndefined, Object, Result, SimpleObject, Subscription, ID,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::domains::approvals::model::FlowId;
use crate::domains::identity::graphql::{user_by_id, User};
use crate::domains::identity::model::{parse_name, DepartmentId, UserId};
use crate::domains::tasks::model::{
    self, AssignmentPool as Pool, CategoryId, CommentId, NewCategory, TaskEvent as Event,
    TaskFields, TaskId,
};
use crate::domains::tasks::service::{self, NewTask, TaskChanges};
use crate::error::AppError;
use crate::graphql::context::ContextExt;
use crate::graphql::ids::optional_id;
use crate::graphql::pagination::{page_size, TotalCount};
use crate::graphql::scalars::Money;
use crate::platform::events::{self, Received};
use crate::platform::money::currency_exponent;

fn to_minor(value: Money, currency: &str) -> Result<i64, AppError> {
    value
        .0
        .to_minor(currency_exponent(currency))
        .map_err(|e| AppError::bad_field("cashOutputValue", format!("{e}")))
}

fn cash_output(has: bool, value: Option<Money>, currency: &str) -> Result<Option<i64>, AppError> {
    match (has, value) {
        (true, Some(value)) => Ok(Some(to_minor(value, currency)?)),
        (true, None) => Err(AppError::bad_field(
            "cashOutputValue",
            "a task with cash output needs its value",
        )),
        (false, Some(_)) => Err(AppError::bad_field(
            "cashOutputValue",
            "set hasCashOutput to give a cash output value",
        )),
        (false, None) => Ok(None),
    }
}

fn user_ids(field: &str, ids: &[ID]) -> Result<Vec<uuid::Uuid>, AppError> {
    ids.iter()
        .map(|id| UserId::parse(field, id).map(|u| u.0))
        .collect()
}

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

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TaskEventKind {
    Created,
    Updated,
    Submitted,
    ReviewDecided,
    ProgressReported,
    ProgressConfirmed,
    CommentAdded,
    StatusChanged,
}

impl From<model::TaskEventKind> for TaskEventKind {
    fn from(kind: model::TaskEventKind) -> Self {
        use model::TaskEventKind as K;
        match kind {
            K::Created => Self::Created,
            K::Updated => Self::Updated,
            K::Submitted => Self::Submitted,
            K::ReviewDecided => Self::ReviewDecided,
            K::ProgressReported => Self::ProgressReported,
            K::ProgressConfirmed => Self::ProgressConfirmed,
            K::CommentAdded => Self::CommentAdded,
            K::StatusChanged => Self::StatusChanged,
        }
    }
}

/// One live change to a task, with the task as it was at that moment.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TaskEvent {
    kind: TaskEventKind,
    at: DateTime<Utc>,
    task: Task,
    #[graphql(skip)]
    actor_id: uuid::Uuid,
}

#[async_graphql::ComplexObject]
impl TaskEvent {
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.actor_id).await
    }
}

#[derive(Default)]
pub struct TasksQuery;

#[Object]
impl TasksQuery {
    async fn task_categories(&self, ctx: &Context<'_>) -> Result<Vec<TaskCategory>> {
        let app = ctx.app()?;
        Ok(service::list_categories(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(TaskCategory)
            .collect())
    }

    /// A task the viewer may see; null otherwise (an invisible task does not exist).
    async fn task(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Task>> {
        let app = ctx.app()?;
        match service::find_task(&app.db.conn, ctx.viewer()?, TaskId::parse("id", &id)?).await {
            Ok(task) => Ok(Some(Task(task))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The viewer's visible tasks, filtered and ordered (ties broken by id).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        order_by: Option<Vec<TaskOrder>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<
        async_graphql::connection::Connection<
            String,
            Task,
            TotalCount,
            async_graphql::connection::EmptyFields,
        >,
    > {
        let app = ctx.app()?;
        let first = page_size(first)?;
        let offset = decode_cursor(after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = service::TaskFilter {
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
        };
        let orders: Vec<service::TaskOrder> = order_by
            .unwrap_or_default()
            .into_iter()
            .take(5)
            .map(|o| service::TaskOrder {
                field: match o.field {
                    TaskOrderField::Deadline => service::TaskOrderField::Deadline,
                    TaskOrderField::Priority => service::TaskOrderField::Priority,
                    TaskOrderField::CreatedAt => service::TaskOrderField::CreatedAt,
                    TaskOrderField::Title => service::TaskOrderField::Title,
                    TaskOrderField::Progress => service::TaskOrderField::Progress,
                },
                descending: o.direction == OrderDirection::Desc,
            })
            .collect();
        let page = service::list_tasks(&app.db.conn, ctx.viewer()?, filter, &orders, offset, first)
            .await?;
        prime::prime(ctx, &prime::nodes(ctx), &page.tasks).await?;
        Ok(connection(
            page.tasks.into_iter().map(Task).collect(),
            page.total,
            offset,
        ))
    }
}

#[derive(Default)]
pub struct TasksMutation;

#[Object]
impl TasksMutation {
    /// Needs `task.configure`.
    async fn create_task_category(
        &self,
        ctx: &Context<'_>,
        input: CreateTaskCategoryInput,
    ) -> Result<TaskCategory> {
        let app = ctx.app()?;
        let pool = match input.assignment_pool {
            None => None,
            Some(pool) => match (pool.department_id, pool.role) {
                (Some(department), None) => Some(Pool::Department(
                    DepartmentId::parse("assignmentPool", &department)?.0,
                )),
                (None, Some(role)) => Some(Pool::Role(parse_name("assignmentPool", &role, 200)?)),
                _ => {
                    return Err(AppError::bad_field(
                        "assignmentPool",
                        "a pool is either a departmentId or a role",
                    )
                    .into())
                }
            },
        };
        let category = NewCategory {
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
        };
        Ok(TaskCategory(
            service::create_category(&app.db.conn, ctx.viewer()?, category).await?,
        ))
    }

    /// With `parentId`, creates a subtask of an approved main task.
    async fn create_task(&self, ctx: &Context<'_>, input: CreateTaskInput) -> Result<Task> {
        let app = ctx.app()?;
        let currency = &app.config.currency;
        let new = NewTask {
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
                cash_output_minor: cash_output(
                    input.has_cash_output,
                    input.cash_output_value,
                    currency,
                )?,
                start_at: input.start_at,
                deadline: input.deadline,
                priority: input.priority,
                merit_points: input.merit_points,
                custom_fields: input
                    .custom_fields
                    .map_or_else(|| serde_json::json!({}), |j| j.0),
            },
        };
        Ok(Task(
            service::create_task(&app.db.conn, app.bus.as_ref(), ctx.viewer()?, currency, new)
                .await?,
        ))
    }

    /// Only the initiator edits; `version` must be the task's current version.
    async fn update_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        input: UpdateTaskInput,
    ) -> Result<Task> {
        let app = ctx.app()?;
        let currency = app.config.currency.clone();
        let cash_output_minor = match (input.has_cash_output, input.cash_output_value) {
            (Some(false), _) => Some(None),
            (_, MaybeUndefined::Value(v)) => Some(Some(to_minor(v, &currency)?)),
            (Some(true), MaybeUndefined::Null) | (None, MaybeUndefined::Null) => Some(None),
            (Some(true), MaybeUndefined::Undefined) => {
                return Err(AppError::bad_field(
                    "cashOutputValue",
                    "a task with cash output needs its value",
                )
                .into())
            }
            (None, MaybeUndefined::Undefined) => None,
        };
        let changes = TaskChanges {
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
            cash_output_minor,
            start_at: maybe(input.start_at, Ok)?,
            deadline: maybe(input.deadline, Ok)?,
            priority: input.priority,
            merit_points: input.merit_points,
            custom_fields: input.custom_fields.map(|j| j.0),
        };
        Ok(Task(
            service::update_task(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                TaskId::parse("id", &id)?,
                version,
                changes,
            )
            .await?,
        ))
    }

    /// Sends a draft or rejected main task into its category's approval flow.
    async fn submit_task(&self, ctx: &Context<'_>, id: ID) -> Result<Task> {
        let app = ctx.app()?;
        Ok(Task(
            service::submit_task(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                TaskId::parse("id", &id)?,
            )
            .await?,
        ))
    }

    /// Executors only.
    async fn report_task_progress(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        progress: i32,
        note: Option<String>,
    ) -> Result<Task> {
        let app = ctx.app()?;
        Ok(Task(
            service::report_progress(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                TaskId::parse("taskId", &task_id)?,
                progress,
                note.as_deref(),
            )
            .await?,
        ))
    }

    /// The progress confirmer only; confirming 100% completes the task.
    /// `progress`, when given, is the reported value being confirmed: a newer report since
    /// makes the confirmation fail with `CONFLICT` instead of confirming an unseen value.
    async fn confirm_task_progress(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        progress: Option<i32>,
        note: Option<String>,
    ) -> Result<Task> {
        let app = ctx.app()?;
        Ok(Task(
            service::confirm_progress(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                TaskId::parse("taskId", &task_id)?,
                progress,
                note.as_deref(),
            )
            .await?,
        ))
    }

    /// The initiator cancels an unfinished task.
    async fn cancel_task(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<Task> {
        let app = ctx.app()?;
        Ok(Task(
            service::cancel_task(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                TaskId::parse("id", &id)?,
                reason.as_deref(),
            )
            .await?,
        ))
    }

    async fn add_task_comment(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        body: String,
    ) -> Result<TaskComment> {
        let app = ctx.app()?;
        Ok(TaskComment(
            service::add_comment(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                TaskId::parse("taskId", &task_id)?,
                &body,
            )
            .await?,
        ))
    }

    /// Attaches a file (GraphQL multipart request). People on the task only; the type is
    /// sniffed from the bytes and must be an accepted document or image kind.
    async fn upload_task_attachment(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        file: async_graphql::Upload,
    ) -> Result<TaskAttachment> {
        let app = ctx.app()?;
        let max = app.config.limits.max_upload_bytes;
        let upload = file
            .value(ctx)
            .map_err(|_| AppError::bad_field("file", "no file in the request"))?;
        let filename = upload.filename.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut content = Vec::new();
            upload
                .into_read()
                .take(max as u64 + 1)
                .read_to_end(&mut content)
                .map(|_| content)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
        Ok(TaskAttachment(
            service::attach(
                &app.db.conn,
                &app.files,
                ctx.viewer()?,
                TaskId::parse("taskId", &task_id)?,
                service::Upload {
                    filename,
                    bytes: bytes.into(),
                },
                max,
            )
            .await?,
        ))
    }

    /// Authors only.
    async fn edit_task_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        body: String,
    ) -> Result<TaskComment> {
        let app = ctx.app()?;
        Ok(TaskComment(
            service::edit_comment(
                &app.db.conn,
                ctx.viewer()?,
                CommentId::parse("id", &id)?,
                &body,
            )
            .await?,
        ))
    }

    /// Authors only; the comment is hidden, its existence stays in the activity log.
    async fn delete_task_comment(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let app = ctx.app()?;
        Ok(
            service::delete_comment(&app.db.conn, ctx.viewer()?, CommentId::parse("id", &id)?)
                .await?,
        )
    }
}

#[derive(Default)]
pub struct TasksSubscription;

#[Subscription]
impl TasksSubscription {
    /// Changes to one task, or with no `taskId` to every task the subscriber may see, from every
    /// node. Each event is checked against the subscriber at delivery. A subscriber that falls
    /// behind receives an error saying how many events it missed, then continues.
    async fn task_events(
        &self,
        ctx: &Context<'_>,
        task_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<TaskEvent>>> {
        let app = ctx.app()?;
        let viewer = match ctx.viewer()? {
            crate::auth::Viewer::User(user) => user.clone(),
            crate::auth::Viewer::Anonymous => {
                return Err(AppError::Unauthenticated("sign in to subscribe".into()).into())
            }
        };
        let only = optional_id("taskId", task_id.as_ref(), TaskId::parse)?.map(|t| t.0);
        Ok(
            events::subscribe::<Event>(app.bus.as_ref()).filter_map(move |received| {
                let viewer = viewer.clone();
                async move {
                    match received {
                        Received::Event(event) => {
                            let wanted = only.is_none_or(|id| id == event.task.id);
                            (wanted && event.audience.admits(&viewer)).then(|| {
                                Ok(TaskEvent {
                                    kind: event.kind.into(),
                                    at: event.at,
                                    task: Task(event.task),
                                    actor_id: event.actor_id,
                                })
                            })
                        }
                        Received::Lagged(missed) => Some(Err(AppError::RateLimited(format!(
                            "this subscriber fell behind and missed {missed} events"
                        ))
                        .into())),
                    }
                }
            }),
        )
    }
}
