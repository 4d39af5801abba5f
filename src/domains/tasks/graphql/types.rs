//! Task API types, built from the entities; relations resolve through the per-request loaders.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{task, task_activity, task_attachment, task_category, task_comment};
use uuid::Uuid;

use crate::domains::approvals::graphql::{Approval, ApprovalFlow, ReviewRecord};
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::approvals::service as approvals;
use crate::domains::identity::graphql::{department_by_id, user_by_id, Department, User};
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::tasks::loaders::{PageKey, TaskLoaders};
use crate::domains::tasks::model::{self, TaskId};
use crate::domains::tasks::service::{self};
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::pagination::{page_size, TotalCount};
use crate::graphql::scalars::{Json, Money};
use crate::platform::money::{currency_exponent, Decimal};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "model::ReviewStatus")]
pub enum ReviewStatus {
    Draft,
    Pending,
    Approved,
    Rejected,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "model::WorkStatus")]
pub enum TaskStatus {
    Open,
    InProgress,
    Done,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "model::AssignmentStrategy")]
pub enum AssignmentStrategy {
    Manual,
    RoundRobin,
    LeastLoaded,
}

pub use crate::graphql::pagination::{connection, decode_cursor, encode_cursor};

pub fn money(minor: Option<i64>, currency: &str) -> Option<Money> {
    minor.map(|m| Money(Decimal::from_minor(m, currency_exponent(currency))))
}

/// Rows whose stored text does not decode are a server fault, not the client's.
fn corrupt(what: &str) -> AppError {
    AppError::internal(anyhow::anyhow!("bad {what}"))
}

/// Builds the API values for a list of rows, failing on the first corrupt one.
pub fn all<M, T: TryFrom<M, Error = AppError>>(rows: Vec<M>) -> Result<Vec<T>, AppError> {
    rows.into_iter().map(T::try_from).collect()
}

/// A user relation placed, by `#[graphql(flatten)]`, at its place in the SDL: fields of a
/// `ComplexObject` would otherwise all come after the plain ones.
macro_rules! user_field {
    ($name:ident, $field:ident) => {
        pub struct $name(Uuid);

        #[Object]
        impl $name {
            async fn $field(&self, ctx: &Context<'_>) -> Result<Option<User>> {
                user_by_id(ctx, self.0).await
            }
        }
    };
}

user_field!(CommentAuthor, author);
user_field!(ActivityActor, actor);

#[derive(SimpleObject)]
pub struct AssignmentPool {
    department: Option<Department>,
    role: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TaskCategory {
    id: ID,
    code: String,
    name: String,
    default_priority: i32,
    assignment_strategy: AssignmentStrategy,
    /// An archived category takes no new tasks; its tasks stay as they are.
    archived: bool,
    #[graphql(skip)]
    pool_department_id: Option<Uuid>,
    #[graphql(skip)]
    pool_role: Option<String>,
    #[graphql(skip)]
    schema: Option<serde_json::Value>,
    #[graphql(skip)]
    approval_flow_id: Option<Uuid>,
}

impl From<task_category::Model> for TaskCategory {
    fn from(c: task_category::Model) -> Self {
        Self {
            id: ID(c.id.to_string()),
            assignment_strategy: service::strategy_of(&c).into(),
            archived: c.archived_at.is_some(),
            code: c.code,
            name: c.name,
            default_priority: c.default_priority,
            pool_department_id: c.pool_department_id,
            pool_role: c.pool_role,
            schema: c.custom_fields_schema,
            approval_flow_id: c.approval_flow_id,
        }
    }
}

#[ComplexObject]
impl TaskCategory {
    async fn assignment_pool(&self, ctx: &Context<'_>) -> Result<Option<AssignmentPool>> {
        let department = match self.pool_department_id {
            Some(id) => ctx
                .loaders::<IdentityLoaders>()?
                .departments
                .load_one(id)
                .await
                .map_err(loader_error)?
                .map(Department::from),
            None => None,
        };
        if department.is_none() && self.pool_role.is_none() {
            return Ok(None);
        }
        Ok(Some(AssignmentPool {
            department,
            role: self.pool_role.clone(),
        }))
    }
    // A getter rather than a field: the SDL lists it between the pool and the flow.
    async fn custom_fields_schema(&self) -> Option<Json> {
        self.schema.clone().map(async_graphql::Json)
    }
    async fn approval_flow(&self, ctx: &Context<'_>) -> Result<Option<ApprovalFlow>> {
        let Some(id) = self.approval_flow_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .flows
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(ApprovalFlow::from))
    }
}

// The relations that sit between plain fields live in the flattened `TaskLinks` and
// `TaskOversight`: fields of a `ComplexObject` would all come after the plain ones, reordering
// the SDL. (Not a doc comment: that would become the type's description.)
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Task {
    id: ID,
    title: String,
    key_points: String,
    #[graphql(flatten)]
    links: TaskLinks,
    is_team_task: bool,
    #[graphql(flatten)]
    oversight: TaskOversight,
    has_cash_output: bool,
    cash_output_value: Option<Money>,
    currency: String,
    start_at: Option<DateTime<Utc>>,
    deadline: Option<DateTime<Utc>>,
    /// Past its deadline and not finished.
    overdue: bool,
    priority: i32,
    /// Confirmed progress, 0–100.
    progress: i32,
    /// Progress an executor reported that awaits confirmation.
    reported_progress: Option<i32>,
    merit_points: i32,
    review_status: ReviewStatus,
    rejection_reason: Option<String>,
    status: TaskStatus,
    custom_fields: Json,
    /// Optimistic concurrency: pass it back to `updateTask`.
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    approval_instance_id: Option<Uuid>,
}

impl TryFrom<task::Model> for Task {
    type Error = AppError;

    fn try_from(t: task::Model) -> Result<Self, AppError> {
        let status = model::WorkStatus::parse(&t.status).ok_or_else(|| corrupt("status"))?;
        let review_status =
            model::ReviewStatus::parse(&t.review_status).ok_or_else(|| corrupt("review status"))?;
        Ok(Self {
            id: ID(t.id.to_string()),
            links: TaskLinks {
                id: t.id,
                category_id: t.category_id,
                parent_id: t.parent_id,
                initiator_id: t.initiator_id,
            },
            oversight: TaskOversight {
                confirmer_id: t.confirmer_id,
                department_id: t.department_id,
            },
            overdue: model::is_overdue(t.overdue, t.deadline, status, Utc::now()),
            cash_output_value: money(t.cash_output_minor, &t.currency),
            review_status: review_status.into(),
            status: status.into(),
            custom_fields: async_graphql::Json(t.custom_fields),
            title: t.title,
            key_points: t.key_points,
            is_team_task: t.is_team_task,
            has_cash_output: t.has_cash_output,
            currency: t.currency,
            start_at: t.start_at,
            deadline: t.deadline,
            priority: t.priority,
            progress: t.progress,
            reported_progress: t.reported_progress,
            merit_points: t.merit_points,
            rejection_reason: t.rejection_reason,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
            completed_at: t.completed_at,
            approval_instance_id: t.approval_instance_id,
        })
    }
}

pub struct TaskLinks {
    id: Uuid,
    category_id: Uuid,
    parent_id: Option<Uuid>,
    initiator_id: Uuid,
}

#[Object]
impl TaskLinks {
    async fn category(&self, ctx: &Context<'_>) -> Result<Option<TaskCategory>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .categories
            .load_one(self.category_id)
            .await
            .map_err(loader_error)?
            .map(TaskCategory::from))
    }
    /// The main task of a subtask, when the viewer may see it.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        let Some(parent) = self.parent_id else {
            return Ok(None);
        };
        let caller = ctx.caller()?;
        let task = service::find_visible_task(caller.db(), caller.viewer, TaskId(parent)).await?;
        Ok(task.map(Task::try_from).transpose()?)
    }
    async fn initiator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.initiator_id).await
    }
    async fn executors(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .executors
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(User::from)
            .collect())
    }
}

pub struct TaskOversight {
    confirmer_id: Option<Uuid>,
    department_id: Option<Uuid>,
}

#[Object]
impl TaskOversight {
    /// Confirms reported progress; when unset, the initiator confirms.
    async fn confirmer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.confirmer_id else {
            return Ok(None);
        };
        user_by_id(ctx, id).await
    }
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
}

#[ComplexObject]
impl Task {
    /// The current (latest) review of the task.
    async fn approval(&self, ctx: &Context<'_>) -> Result<Option<Approval>> {
        let Some(id) = self.approval_instance_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .instances
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Approval::from))
    }
    /// Every review decision on the task, across resubmissions, oldest first.
    async fn review_records(&self, ctx: &Context<'_>) -> Result<Vec<ReviewRecord>> {
        let caller = ctx.caller()?;
        let db = caller.db();
        Ok(
            approvals::decisions_for_subject(db, model::SUBJECT_KIND, self.links.id)
                .await?
                .into_iter()
                .map(ReviewRecord::from)
                .collect(),
        )
    }
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn subtasks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Task, TotalCount, EmptyFields>> {
        let first = page_size(first)?;
        let offset = decode_cursor(after.as_deref())?;
        let page = ctx
            .loaders::<TaskLoaders>()?
            .subtasks
            .load_one(PageKey {
                parent: self.links.id,
                first,
                offset,
            })
            .await
            .map_err(loader_error)?;
        let (items, total) = page.map_or((Vec::new(), 0), |p| (p.items, p.total));
        Ok(connection(all(items)?, total, offset))
    }
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, TaskComment, TotalCount, EmptyFields>> {
        let first = page_size(first)?;
        let offset = decode_cursor(after.as_deref())?;
        let page = ctx
            .loaders::<TaskLoaders>()?
            .comments
            .load_one(PageKey {
                parent: self.links.id,
                first,
                offset,
            })
            .await
            .map_err(loader_error)?;
        let (items, total) = page.map_or((Vec::new(), 0), |p| (p.items, p.total));
        Ok(connection(
            items.into_iter().map(TaskComment::from).collect(),
            total,
            offset,
        ))
    }
    /// Changes to the task, newest first, a page at a time.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, TaskActivityEntry, TotalCount, EmptyFields>> {
        let first = page_size(first)?;
        let offset = decode_cursor(after.as_deref())?;
        let page = ctx
            .loaders::<TaskLoaders>()?
            .activity
            .load_one(PageKey {
                parent: self.links.id,
                first,
                offset,
            })
            .await
            .map_err(loader_error)?;
        let (items, total) = page.map_or((Vec::new(), 0), |p| (p.items, p.total));
        Ok(connection(
            items.into_iter().map(TaskActivityEntry::from).collect(),
            total,
            offset,
        ))
    }
    async fn attachments(&self, ctx: &Context<'_>) -> Result<Vec<TaskAttachment>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .attachments
            .load_one(self.links.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(TaskAttachment::from)
            .collect())
    }
    /// Merit awarded on completion, per executor.
    async fn merit_awards(&self, ctx: &Context<'_>) -> Result<Vec<MeritAward>> {
        let caller = ctx.caller()?;
        let db = caller.db();
        Ok(service::merit_of_task(db, self.links.id)
            .await?
            .into_iter()
            .map(|m| MeritAward {
                user_id: m.user_id,
                points: m.points,
            })
            .collect())
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct MeritAward {
    #[graphql(skip)]
    user_id: Uuid,
    points: i32,
}

#[ComplexObject]
impl MeritAward {
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.user_id).await
    }
}

/// How long a download link stays valid.
const DOWNLOAD_LINK_SECS: i64 = 600;

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TaskAttachment {
    id: ID,
    filename: String,
    /// Sniffed from the bytes at upload.
    content_type: String,
    size_bytes: i64,
    sha256: String,
    created_at: DateTime<Utc>,
    #[graphql(skip)]
    attachment_id: Uuid,
    #[graphql(skip)]
    uploader_id: Uuid,
}

impl From<task_attachment::Model> for TaskAttachment {
    fn from(a: task_attachment::Model) -> Self {
        Self {
            id: ID(a.id.to_string()),
            filename: a.filename,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            created_at: a.created_at,
            attachment_id: a.id,
            uploader_id: a.uploader_id,
        }
    }
}

#[ComplexObject]
impl TaskAttachment {
    async fn uploaded_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.uploader_id).await
    }
    /// A link for the viewer, valid for ten minutes; the task's visibility is checked again
    /// when it is used.
    async fn download_url(&self, ctx: &Context<'_>) -> Result<String> {
        let caller = ctx.caller()?;
        let me = caller.viewer.user()?;
        let token = caller
            .app
            .jwt
            .issue_download(self.attachment_id, me.id, DOWNLOAD_LINK_SECS)?;
        Ok(format!("/files/{}?token={token}", self.attachment_id))
    }
}

#[derive(SimpleObject)]
pub struct TaskComment {
    id: ID,
    body: String,
    #[graphql(flatten)]
    author: CommentAuthor,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    edited: bool,
}

impl From<task_comment::Model> for TaskComment {
    fn from(c: task_comment::Model) -> Self {
        Self {
            id: ID(c.id.to_string()),
            body: c.body,
            author: CommentAuthor(c.author_id),
            edited: c.updated_at > c.created_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct TaskActivityEntry {
    id: ID,
    #[graphql(flatten)]
    actor: ActivityActor,
    action: String,
    field: Option<String>,
    old_value: Option<String>,
    new_value: Option<String>,
    at: DateTime<Utc>,
}

impl From<task_activity::Model> for TaskActivityEntry {
    fn from(a: task_activity::Model) -> Self {
        Self {
            id: ID(a.id.to_string()),
            actor: ActivityActor(a.actor_id),
            action: a.action,
            field: a.field,
            old_value: a.old_value,
            new_value: a.new_value,
            at: a.at,
        }
    }
}
