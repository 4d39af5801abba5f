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
    self, AssignmentPool as Pool, CashOutputChange, CashOutputInput, CategoryId, CommentId,
    NewCategory, TaskFields, TaskId,
};
use crate::domains::tasks::service::{self, NewTask, TaskChanges};
use crate::error::AppError;
use crate::graphql::context::ContextExt;
use crate::graphql::ids::optional_id;
use crate::graphql::live;
use crate::graphql::pagination::{page_size, TotalCount};
use crate::platform::events::Envelope;

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
#[graphql(remote = "model::TaskEventKind")]
pub enum TaskEventKind {
    Created,
    Updated,
    Submitted,
    ReviewDecided,
    ProgressReported,
    ProgressConfirmed,
    CommentAdded,
    CommentEdited,
    CommentDeleted,
    AttachmentAdded,
    StatusChanged,
}

/// One live change to a task, with the task as it was at that moment.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TaskEvent {
    /// Where this event sits in the event log: pass it as `after` to resume after it.
    cursor: String,
    kind: TaskEventKind,
    at: DateTime<Utc>,
    task: Task,
    #[graphql(skip)]
    actor_id: uuid::Uuid,
}

impl TaskEvent {
    fn new(envelope: &Envelope, event: model::TaskEvent) -> Self {
        Self {
            cursor: envelope.cursor.to_string(),
            kind: event.kind.into(),
            at: event.at,
            task: Task(event.task),
            actor_id: event.actor_id,
        }
    }
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
        let viewer = ctx.viewer()?;
        let created = app
            .write(async |work| service::create_category(work, viewer, category).await)
            .await?;
        Ok(TaskCategory(created))
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
        };
        let viewer = ctx.viewer()?;
        let task = app
            .write(async |work| service::create_task(work, viewer, currency, new).await)
            .await?;
        Ok(Task(task))
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
            cash_output: CashOutputChange {
                has: input.has_cash_output,
                value: maybe(input.cash_output_value, |m| Ok(m.0))?,
            },
            start_at: maybe(input.start_at, Ok)?,
            deadline: maybe(input.deadline, Ok)?,
            priority: input.priority,
            merit_points: input.merit_points,
            custom_fields: input.custom_fields.map(|j| j.0),
        };
        let (viewer, id) = (ctx.viewer()?, TaskId::parse("id", &id)?);
        let task = app
            .write(async |work| service::update_task(work, viewer, id, version, changes).await)
            .await?;
        Ok(Task(task))
    }

    /// Sends a draft or rejected main task into its category's approval flow.
    async fn submit_task(&self, ctx: &Context<'_>, id: ID) -> Result<Task> {
        let (app, viewer, id) = (ctx.app()?, ctx.viewer()?, TaskId::parse("id", &id)?);
        let task = app
            .write(async |work| service::submit_task(work, viewer, id).await)
            .await?;
        Ok(Task(task))
    }

    /// Executors only.
    async fn report_task_progress(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        progress: i32,
        note: Option<String>,
    ) -> Result<Task> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = TaskId::parse("taskId", &task_id)?;
        let task = app
            .write(async |work| {
                service::report_progress(work, viewer, id, progress, note.as_deref()).await
            })
            .await?;
        Ok(Task(task))
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
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = TaskId::parse("taskId", &task_id)?;
        let task = app
            .write(async |work| {
                service::confirm_progress(work, viewer, id, progress, note.as_deref()).await
            })
            .await?;
        Ok(Task(task))
    }

    /// The initiator cancels an unfinished task.
    async fn cancel_task(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<Task> {
        let (app, viewer, id) = (ctx.app()?, ctx.viewer()?, TaskId::parse("id", &id)?);
        let task = app
            .write(async |work| service::cancel_task(work, viewer, id, reason.as_deref()).await)
            .await?;
        Ok(Task(task))
    }

    async fn add_task_comment(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        body: String,
    ) -> Result<TaskComment> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = TaskId::parse("taskId", &task_id)?;
        let comment = app
            .write(async |work| service::add_comment(work, viewer, id, &body).await)
            .await?;
        Ok(TaskComment(comment))
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
        let (viewer, id) = (ctx.viewer()?, TaskId::parse("taskId", &task_id)?);
        let upload = service::Upload::new(filename, bytes.into());
        let attached = app
            .write(async |work| service::attach(work, &app.files, viewer, id, &upload, max).await)
            .await;
        if attached.is_err() {
            service::discard_upload(&app.files, id, &upload).await;
        }
        Ok(TaskAttachment(attached?))
    }

    /// Authors only.
    async fn edit_task_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        body: String,
    ) -> Result<TaskComment> {
        let (app, viewer, id) = (ctx.app()?, ctx.viewer()?, CommentId::parse("id", &id)?);
        let comment = app
            .write(async |work| service::edit_comment(work, viewer, id, &body).await)
            .await?;
        Ok(TaskComment(comment))
    }

    /// Authors only; the comment is hidden, its existence stays in the activity log.
    async fn delete_task_comment(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let (app, viewer, id) = (ctx.app()?, ctx.viewer()?, CommentId::parse("id", &id)?);
        Ok(app
            .write(async |work| service::delete_comment(work, viewer, id).await)
            .await?)
    }
}

#[derive(Default)]
pub struct TasksSubscription;

#[Subscription]
impl TasksSubscription {
    /// Changes to one task, or with no `taskId` to every task the subscriber may see, from every
    /// node, in log order. With `after` (an event's `cursor`), the events since then come first,
    /// so a client that reconnects misses nothing. Each event is checked against the subscriber
    /// at delivery.
    async fn task_events(
        &self,
        ctx: &Context<'_>,
        task_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = TaskEvent>> {
        let viewer = match ctx.viewer()? {
            crate::auth::Viewer::User(user) => user.clone(),
            crate::auth::Viewer::Anonymous => {
                return Err(AppError::Unauthenticated("sign in to subscribe".into()).into())
            }
        };
        let only = optional_id("taskId", task_id.as_ref(), TaskId::parse)?.map(|t| t.0);
        let log = live::follow(ctx, after.as_deref()).await?;
        Ok(log.filter_map(move |envelope| {
            let event = envelope
                .decode::<model::TaskEvent>()
                .filter(|e| only.is_none_or(|id| id == e.task.id) && e.audience.admits(&viewer));
            std::future::ready(event.map(|e| TaskEvent::new(&envelope, e)))
        }))
    }
}
