//! Tasks over GraphQL: thin resolvers that parse input into model types and call the service.

mod inputs;
mod prime;
mod recurring;
mod types;

pub use recurring::{RecurringTasksMutation, RecurringTasksQuery};

pub use inputs::*;
pub use types::*;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, Object, Result, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::auth::ViewerUser;
use crate::domains::identity::graphql::{user_by_id, User};
use crate::domains::tasks::model::{self, CategoryId, CommentId, TaskId};
use crate::domains::tasks::service;
use crate::error::AppError;
use crate::graphql::context::{Caller, ContextExt};
use crate::graphql::ids::optional_id;
use crate::graphql::live;
use crate::graphql::pagination::{page_size, TotalCount};
use crate::platform::events::Envelope;

/// The bytes of an uploaded file, at most one past `max` (so an oversized file is refused by
/// the service rather than read whole).
async fn read_upload(
    ctx: &Context<'_>,
    file: &async_graphql::Upload,
    max: usize,
) -> Result<service::Upload, AppError> {
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
    Ok(service::Upload::new(filename, bytes.into()))
}

/// Attaches in one unit of work; bytes already stored by a failed one are removed after it.
async fn attach(
    caller: Caller<'_>,
    id: TaskId,
    upload: &service::Upload,
    max: usize,
) -> Result<entities::task_attachment::Model, AppError> {
    let files = &caller.app.files;
    let attached = caller
        .write(async |work| service::attach(work, files, caller.viewer, id, upload, max).await)
        .await;
    if attached.is_err() {
        service::discard_upload(files, id, upload).await;
    }
    attached
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
    /// The entry as a `TaskEvent` when it is one about `only` (any task when `None`) that
    /// `viewer` may see now.
    fn deliver(envelope: &Envelope, only: Option<uuid::Uuid>, viewer: &ViewerUser) -> Option<Self> {
        let event = envelope.decode_if::<model::TaskEvent>(|e| {
            only.is_none_or(|id| id == e.task.id) && e.audience.admits(viewer)
        })?;
        Some(Self {
            cursor: envelope.cursor.to_string(),
            kind: event.kind.into(),
            at: event.at,
            // A task row that does not decode is dropped like one the viewer may not see.
            task: Task::try_from(event.task).ok()?,
            actor_id: event.actor_id,
        })
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
    /// Archived categories only with `includeArchived`.
    async fn task_categories(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_archived: bool,
    ) -> Result<Vec<TaskCategory>> {
        let caller = ctx.caller()?;
        let categories =
            service::list_categories(caller.db(), caller.viewer, include_archived).await?;
        Ok(categories.into_iter().map(TaskCategory::from).collect())
    }

    /// A category, archived or not; null when there is none.
    async fn task_category(&self, ctx: &Context<'_>, id: ID) -> Result<Option<TaskCategory>> {
        let caller = ctx.caller()?;
        let id = CategoryId::parse("id", &id)?;
        let category = service::category_for(caller.db(), caller.viewer, id).await?;
        Ok(category.map(TaskCategory::from))
    }

    /// A task the viewer may see; null otherwise (an invisible task does not exist).
    async fn task(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Task>> {
        let caller = ctx.caller()?;
        let id = TaskId::parse("id", &id)?;
        let Some(task) = service::find_visible_task(caller.db(), caller.viewer, id).await? else {
            return Ok(None);
        };
        // One task's relations are read now, not after the loaders' batching delay.
        prime::prime(ctx, &[ctx.look_ahead()], &[prime::PrimeKey::from(&task)]).await?;
        Ok(Some(Task::try_from(task)?))
    }

    /// The viewer's visible tasks, filtered and ordered (ties broken by id).
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        order_by: Option<Vec<TaskOrder>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Task, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let (first, offset) = (page_size(first)?, decode_cursor(after.as_deref())?);
        let filter = filter.unwrap_or_default().try_into()?;
        let orders: Vec<service::TaskOrder> =
            order_by.into_iter().flatten().map(Into::into).collect();
        let page =
            service::list_tasks(caller.db(), caller.viewer, filter, &orders, offset, first).await?;
        prime::prime(ctx, &prime::nodes(ctx), &prime::keys_of(&page.tasks)).await?;
        Ok(connection(all(page.tasks)?, page.total, offset))
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
        let (caller, new) = (ctx.caller()?, input.try_into()?);
        let created = caller
            .write(async |work| service::create_category(work, caller.viewer, new).await)
            .await?;
        Ok(created.into())
    }

    /// Needs `task.configure`; validated as `createTaskCategory` is.
    async fn update_task_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTaskCategoryInput,
    ) -> Result<TaskCategory> {
        let (caller, changes) = (ctx.caller()?, input.try_into()?);
        let id = CategoryId::parse("id", &id)?;
        let updated = caller
            .write(async |work| service::update_category(work, caller.viewer, id, changes).await)
            .await?;
        Ok(updated.into())
    }

    /// Needs `task.configure`. The category's tasks stay; it takes no new ones.
    async fn archive_task_category(&self, ctx: &Context<'_>, id: ID) -> Result<TaskCategory> {
        let (caller, id) = (ctx.caller()?, CategoryId::parse("id", &id)?);
        let archived = caller
            .write(async |work| service::set_category_archived(work, caller.viewer, id, true).await)
            .await?;
        Ok(archived.into())
    }

    /// Needs `task.configure`.
    async fn restore_task_category(&self, ctx: &Context<'_>, id: ID) -> Result<TaskCategory> {
        let (caller, id) = (ctx.caller()?, CategoryId::parse("id", &id)?);
        let restored = caller
            .write(async |work| {
                service::set_category_archived(work, caller.viewer, id, false).await
            })
            .await?;
        Ok(restored.into())
    }

    /// With `parentId`, creates a subtask of an approved main task.
    async fn create_task(&self, ctx: &Context<'_>, input: CreateTaskInput) -> Result<Task> {
        let (caller, new) = (ctx.caller()?, input.try_into()?);
        let currency = &caller.app.config.currency;
        let task = caller
            .write(async |work| service::create_task(work, caller.viewer, currency, new).await)
            .await?;
        Ok(task.try_into()?)
    }

    /// Only the initiator edits; `version` must be the task's current version.
    async fn update_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        version: i32,
        input: UpdateTaskInput,
    ) -> Result<Task> {
        let (caller, changes) = (ctx.caller()?, input.try_into()?);
        let id = TaskId::parse("id", &id)?;
        let task = caller
            .write(async |work| {
                service::update_task(work, caller.viewer, id, version, changes).await
            })
            .await?;
        Ok(task.try_into()?)
    }

    /// Sends a draft or rejected main task into its category's approval flow.
    async fn submit_task(&self, ctx: &Context<'_>, id: ID) -> Result<Task> {
        let (caller, id) = (ctx.caller()?, TaskId::parse("id", &id)?);
        let task = caller
            .write(async |work| service::submit_task(work, caller.viewer, id).await)
            .await?;
        Ok(task.try_into()?)
    }

    /// Executors only.
    async fn report_task_progress(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        progress: i32,
        note: Option<String>,
    ) -> Result<Task> {
        let (caller, id) = (ctx.caller()?, TaskId::parse("taskId", &task_id)?);
        let task = caller
            .write(async |work| {
                service::report_progress(work, caller.viewer, id, progress, note.as_deref()).await
            })
            .await?;
        Ok(task.try_into()?)
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
        let (caller, id) = (ctx.caller()?, TaskId::parse("taskId", &task_id)?);
        let task = caller
            .write(async |work| {
                service::confirm_progress(work, caller.viewer, id, progress, note.as_deref()).await
            })
            .await?;
        Ok(task.try_into()?)
    }

    /// The initiator cancels an unfinished task.
    async fn cancel_task(&self, ctx: &Context<'_>, id: ID, reason: Option<String>) -> Result<Task> {
        let (caller, id) = (ctx.caller()?, TaskId::parse("id", &id)?);
        let task = caller
            .write(async |work| {
                service::cancel_task(work, caller.viewer, id, reason.as_deref()).await
            })
            .await?;
        Ok(task.try_into()?)
    }

    async fn add_task_comment(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        body: String,
    ) -> Result<TaskComment> {
        let (caller, id) = (ctx.caller()?, TaskId::parse("taskId", &task_id)?);
        let comment = caller
            .write(async |work| service::add_comment(work, caller.viewer, id, &body).await)
            .await?;
        Ok(comment.into())
    }

    /// Attaches a file (GraphQL multipart request). People on the task only; the type is
    /// sniffed from the bytes and must be an accepted document or image kind.
    async fn upload_task_attachment(
        &self,
        ctx: &Context<'_>,
        task_id: ID,
        file: async_graphql::Upload,
    ) -> Result<TaskAttachment> {
        let caller = ctx.caller()?;
        let max = caller.app.config.limits.max_upload_bytes;
        let upload = read_upload(ctx, &file, max).await?;
        let id = TaskId::parse("taskId", &task_id)?;
        let attached = attach(caller, id, &upload, max).await?;
        Ok(attached.into())
    }

    /// Authors only.
    async fn edit_task_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        body: String,
    ) -> Result<TaskComment> {
        let (caller, id) = (ctx.caller()?, CommentId::parse("id", &id)?);
        let comment = caller
            .write(async |work| service::edit_comment(work, caller.viewer, id, &body).await)
            .await?;
        Ok(comment.into())
    }

    /// Authors only; the comment is hidden, its existence stays in the activity log.
    async fn delete_task_comment(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let (caller, id) = (ctx.caller()?, CommentId::parse("id", &id)?);
        Ok(caller
            .write(async |work| service::delete_comment(work, caller.viewer, id).await)
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
        let viewer = live::subscriber(ctx.caller()?.viewer)?;
        let only = optional_id("taskId", task_id.as_ref(), TaskId::parse)?.map(|t| t.0);
        let log = live::follow(ctx, after.as_deref()).await?;
        Ok(log.filter_map(move |envelope| {
            std::future::ready(TaskEvent::deliver(&envelope, only, &viewer))
        }))
    }
}
