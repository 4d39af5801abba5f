//! Task API types, mapped from entities; relations resolve through the per-request loaders.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{
    ComplexObject, Context, Enum, InputObject, MaybeUndefined, Object, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use entities::{task, task_activity, task_attachment, task_category, task_comment};

use crate::domains::approvals::graphql::{Approval, ApprovalFlow, ReviewRecord};
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::approvals::service as approvals;
use crate::domains::identity::graphql::{department_by_id, user_by_id, Department, User};
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::tasks::loaders::{PageKey, TaskLoaders};
use crate::domains::tasks::model::{
    self, AssignmentStrategy as Strategy, ReviewStatus as Review, WorkStatus as Work,
};
use crate::domains::tasks::service;
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::pagination::{page_size, TotalCount};
use crate::graphql::scalars::{Json, Money};
use crate::platform::money::{currency_exponent, Decimal};

macro_rules! mirror_enum {
    ($api:ident, $model:ident { $($variant:ident),+ }) => {
        #[derive(Enum, Copy, Clone, Eq, PartialEq)]
        pub enum $api { $($variant),+ }

        impl From<$model> for $api {
            fn from(value: $model) -> Self {
                match value { $($model::$variant => Self::$variant),+ }
            }
        }

        impl From<$api> for $model {
            fn from(value: $api) -> Self {
                match value { $($api::$variant => Self::$variant),+ }
            }
        }
    };
}

mirror_enum!(
    ReviewStatus,
    Review {
        Draft,
        Pending,
        Approved,
        Rejected
    }
);
mirror_enum!(
    TaskStatus,
    Work {
        Open,
        InProgress,
        Done,
        Cancelled
    }
);
mirror_enum!(
    AssignmentStrategy,
    Strategy {
        Manual,
        RoundRobin,
        LeastLoaded
    }
);

pub use crate::graphql::pagination::{connection, decode_cursor, encode_cursor};

pub fn money(minor: Option<i64>, currency: &str) -> Option<Money> {
    minor.map(|m| Money(Decimal::from_minor(m, currency_exponent(currency))))
}

pub struct TaskCategory(pub task_category::Model);

#[derive(SimpleObject)]
pub struct AssignmentPool {
    department: Option<Department>,
    role: Option<String>,
}

#[Object]
impl TaskCategory {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn default_priority(&self) -> i32 {
        self.0.default_priority
    }
    async fn assignment_strategy(&self) -> AssignmentStrategy {
        service::strategy_of(&self.0).into()
    }
    async fn assignment_pool(&self, ctx: &Context<'_>) -> Result<Option<AssignmentPool>> {
        let department = match self.0.pool_department_id {
            Some(id) => ctx
                .loaders::<IdentityLoaders>()?
                .departments
                .load_one(id)
                .await
                .map_err(loader_error)?
                .map(Department),
            None => None,
        };
        if department.is_none() && self.0.pool_role.is_none() {
            return Ok(None);
        }
        Ok(Some(AssignmentPool {
            department,
            role: self.0.pool_role.clone(),
        }))
    }
    async fn custom_fields_schema(&self) -> Option<Json> {
        self.0.custom_fields_schema.clone().map(async_graphql::Json)
    }
    async fn approval_flow(&self, ctx: &Context<'_>) -> Result<Option<ApprovalFlow>> {
        let Some(id) = self.0.approval_flow_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .flows
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(ApprovalFlow))
    }
}

pub struct Task(pub task::Model);

#[Object]
impl Task {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn key_points(&self) -> &str {
        &self.0.key_points
    }
    async fn category(&self, ctx: &Context<'_>) -> Result<Option<TaskCategory>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .categories
            .load_one(self.0.category_id)
            .await
            .map_err(loader_error)?
            .map(TaskCategory))
    }
    /// The main task of a subtask, when the viewer may see it.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        let Some(parent) = self.0.parent_id else {
            return Ok(None);
        };
        let app = ctx.app()?;
        match service::find_task(&app.db.conn, ctx.viewer()?, model::TaskId(parent)).await {
            Ok(task) => Ok(Some(Task(task))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
    async fn initiator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.initiator_id).await
    }
    async fn executors(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .executors
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(User)
            .collect())
    }
    async fn is_team_task(&self) -> bool {
        self.0.is_team_task
    }
    /// Confirms reported progress; when unset, the initiator confirms.
    async fn confirmer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.confirmer_id else {
            return Ok(None);
        };
        user_by_id(ctx, id).await
    }
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.0.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    async fn has_cash_output(&self) -> bool {
        self.0.has_cash_output
    }
    async fn cash_output_value(&self) -> Option<Money> {
        money(self.0.cash_output_minor, &self.0.currency)
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn start_at(&self) -> Option<DateTime<Utc>> {
        self.0.start_at
    }
    async fn deadline(&self) -> Option<DateTime<Utc>> {
        self.0.deadline
    }
    /// Past its deadline and not finished.
    async fn overdue(&self) -> bool {
        self.0.overdue
            || (self.0.deadline.is_some_and(|d| d < Utc::now())
                && Work::parse(&self.0.status).is_some_and(Work::is_open))
    }
    async fn priority(&self) -> i32 {
        self.0.priority
    }
    /// Confirmed progress, 0–100.
    async fn progress(&self) -> i32 {
        self.0.progress
    }
    /// Progress an executor reported that awaits confirmation.
    async fn reported_progress(&self) -> Option<i32> {
        self.0.reported_progress
    }
    async fn merit_points(&self) -> i32 {
        self.0.merit_points
    }
    async fn review_status(&self) -> Result<ReviewStatus> {
        Ok(Review::parse(&self.0.review_status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad review status")))?
            .into())
    }
    async fn rejection_reason(&self) -> Option<&str> {
        self.0.rejection_reason.as_deref()
    }
    async fn status(&self) -> Result<TaskStatus> {
        Ok(Work::parse(&self.0.status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad status")))?
            .into())
    }
    async fn custom_fields(&self) -> Json {
        async_graphql::Json(self.0.custom_fields.clone())
    }
    /// Optimistic concurrency: pass it back to `updateTask`.
    async fn version(&self) -> i32 {
        self.0.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// The current (latest) review of the task.
    async fn approval(&self, ctx: &Context<'_>) -> Result<Option<Approval>> {
        let Some(id) = self.0.approval_instance_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .instances
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Approval))
    }
    /// Every review decision on the task, across resubmissions, oldest first.
    async fn review_records(&self, ctx: &Context<'_>) -> Result<Vec<ReviewRecord>> {
        let app = ctx.app()?;
        Ok(
            approvals::decisions_for_subject(&app.db.conn, model::SUBJECT_KIND, self.0.id)
                .await?
                .into_iter()
                .map(ReviewRecord)
                .collect(),
        )
    }
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
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
                parent: self.0.id,
                first,
                offset,
            })
            .await
            .map_err(loader_error)?;
        let (items, total) = page.map_or((Vec::new(), 0), |p| (p.items, p.total));
        Ok(connection(
            items.into_iter().map(Task).collect(),
            total,
            offset,
        ))
    }
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
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
                parent: self.0.id,
                first,
                offset,
            })
            .await
            .map_err(loader_error)?;
        let (items, total) = page.map_or((Vec::new(), 0), |p| (p.items, p.total));
        Ok(connection(
            items.into_iter().map(TaskComment).collect(),
            total,
            offset,
        ))
    }
    /// Every change to the task, newest first.
    async fn activity(&self, ctx: &Context<'_>) -> Result<Vec<TaskActivityEntry>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .activity
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(TaskActivityEntry)
            .collect())
    }
    async fn attachments(&self, ctx: &Context<'_>) -> Result<Vec<TaskAttachment>> {
        Ok(ctx
            .loaders::<TaskLoaders>()?
            .attachments
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(TaskAttachment)
            .collect())
    }
    /// Merit awarded on completion, per executor.
    async fn merit_awards(&self, ctx: &Context<'_>) -> Result<Vec<MeritAward>> {
        let app = ctx.app()?;
        Ok(service::merit_of_task(&app.db.conn, self.0.id)
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
    user_id: uuid::Uuid,
    points: i32,
}

#[ComplexObject]
impl MeritAward {
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.user_id).await
    }
}

pub struct TaskAttachment(pub task_attachment::Model);

/// How long a download link stays valid.
const DOWNLOAD_LINK_SECS: i64 = 600;

#[Object]
impl TaskAttachment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn filename(&self) -> &str {
        &self.0.filename
    }
    /// Sniffed from the bytes at upload.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }
    async fn size_bytes(&self) -> i64 {
        self.0.size_bytes
    }
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn uploaded_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.uploader_id).await
    }
    /// A link for the viewer, valid for ten minutes; the task's visibility is checked again
    /// when it is used.
    async fn download_url(&self, ctx: &Context<'_>) -> Result<String> {
        let app = ctx.app()?;
        let me = ctx.viewer()?.user()?;
        let token = app
            .jwt
            .issue_download(self.0.id, me.id, DOWNLOAD_LINK_SECS)?;
        Ok(format!("/files/{}?token={token}", self.0.id))
    }
}

pub struct TaskComment(pub task_comment::Model);

#[Object]
impl TaskComment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.author_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn edited(&self) -> bool {
        self.0.updated_at > self.0.created_at
    }
}

pub struct TaskActivityEntry(pub task_activity::Model);

#[Object]
impl TaskActivityEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.actor_id).await
    }
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }
    async fn old_value(&self) -> Option<&str> {
        self.0.old_value.as_deref()
    }
    async fn new_value(&self) -> Option<&str> {
        self.0.new_value.as_deref()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

// ---------------------------------------------------------------- inputs

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
