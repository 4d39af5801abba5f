//! The approval engine over GraphQL: flows, approvals with progress and cycle time, decisions,
//! delegation.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{
    approval_decision, approval_delegation, approval_flow, approval_instance, approval_step,
};

use super::loaders::ApprovalLoaders;
use super::model::{ApproverRule, CompareOp, Condition, FlowId, InstanceId, NewFlow, NewStep};
use super::service;
use crate::domains::identity::graphql::{user_by_id, User};
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::model::{parse_name, UserId};
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};

async fn users(ctx: &Context<'_>, ids: Vec<uuid::Uuid>) -> Result<Vec<User>> {
    let loaders = ctx.loaders::<IdentityLoaders>()?;
    let found = loaders
        .users
        .load_many(ids.iter().copied())
        .await
        .map_err(loader_error)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned().map(User))
        .collect())
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ConditionOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl From<ConditionOp> for CompareOp {
    fn from(op: ConditionOp) -> Self {
        match op {
            ConditionOp::Gt => CompareOp::Gt,
            ConditionOp::Gte => CompareOp::Gte,
            ConditionOp::Lt => CompareOp::Lt,
            ConditionOp::Lte => CompareOp::Lte,
            ConditionOp::Eq => CompareOp::Eq,
        }
    }
}

impl From<CompareOp> for ConditionOp {
    fn from(op: CompareOp) -> Self {
        match op {
            CompareOp::Gt => ConditionOp::Gt,
            CompareOp::Gte => ConditionOp::Gte,
            CompareOp::Lt => ConditionOp::Lt,
            CompareOp::Lte => ConditionOp::Lte,
            CompareOp::Eq => ConditionOp::Eq,
        }
    }
}

/// `field op value`, such as `cashOutputValue GTE "10000"`; the value is exact decimal text.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "ApprovalConditionInput")]
pub struct ApprovalCondition {
    field: String,
    op: ConditionOp,
    value: String,
}

#[derive(InputObject)]
pub struct ApprovalStepInput {
    name: String,
    approver_user_id: Option<ID>,
    approver_role: Option<String>,
    #[graphql(default = false)]
    department_head: bool,
    approver_field: Option<String>,
    #[graphql(default = 1)]
    required_approvals: i32,
    condition: Option<ApprovalCondition>,
    sla_hours: Option<i32>,
}

#[derive(InputObject)]
pub struct CreateApprovalFlowInput {
    name: String,
    #[graphql(default = false)]
    allow_self_approval: bool,
    steps: Vec<ApprovalStepInput>,
}

fn parse_step(input: ApprovalStepInput) -> Result<NewStep, AppError> {
    let mut rules = Vec::new();
    if let Some(id) = &input.approver_user_id {
        rules.push(ApproverRule::User(UserId::parse("approverUserId", id)?.0));
    }
    if let Some(role) = &input.approver_role {
        rules.push(ApproverRule::Role(parse_name("approverRole", role, 200)?));
    }
    if input.department_head {
        rules.push(ApproverRule::DepartmentHead);
    }
    if let Some(field) = &input.approver_field {
        rules.push(ApproverRule::Field(parse_name(
            "approverField",
            field,
            100,
        )?));
    }
    let [rule] = <[ApproverRule; 1]>::try_from(rules).map_err(|_| {
        AppError::bad_field(
            "steps",
            "each step sets exactly one of approverUserId, approverRole, departmentHead, approverField",
        )
    })?;
    let condition = input
        .condition
        .map(|c| {
            Ok::<_, AppError>(Condition {
                field: parse_name("condition.field", &c.field, 100)?,
                op: c.op.into(),
                value: c
                    .value
                    .parse()
                    .map_err(|e| AppError::bad_field("condition.value", format!("{e}")))?,
            })
        })
        .transpose()?;
    Ok(NewStep {
        name: parse_name("name", &input.name, 200)?,
        rule,
        required_approvals: u32::try_from(input.required_approvals).map_err(|_| {
            AppError::bad_field("requiredApprovals", "requiredApprovals must be positive")
        })?,
        condition,
        sla_hours: input
            .sla_hours
            .map(|h| {
                u32::try_from(h)
                    .map_err(|_| AppError::bad_field("slaHours", "slaHours must be positive"))
            })
            .transpose()?,
    })
}

pub struct ApprovalFlow(pub approval_flow::Model);

#[Object]
impl ApprovalFlow {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn allow_self_approval(&self) -> bool {
        self.0.allow_self_approval
    }
    async fn steps(&self, ctx: &Context<'_>) -> Result<Vec<ApprovalStep>> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        Ok(loaders
            .steps
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(ApprovalStep)
            .collect())
    }
}

pub struct ApprovalStep(approval_step::Model);

#[Object]
impl ApprovalStep {
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn approver_user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.approver_user_id {
            Some(id) => user_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    async fn approver_role(&self) -> Option<&str> {
        self.0.approver_role.as_deref()
    }
    async fn department_head(&self) -> bool {
        self.0.department_head
    }
    async fn approver_field(&self) -> Option<&str> {
        self.0.approver_field.as_deref()
    }
    async fn required_approvals(&self) -> i32 {
        self.0.required_approvals
    }
    async fn condition(&self) -> Option<ApprovalCondition> {
        service::step_condition(&self.0).map(|c| ApprovalCondition {
            field: c.field,
            op: c.op.into(),
            value: c.value.to_string(),
        })
    }
    async fn sla_hours(&self) -> Option<i32> {
        self.0.sla_hours
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

#[derive(SimpleObject)]
pub struct ApprovalProgress {
    /// 1-based number of the current step (the last one once decided).
    step_number: i32,
    step_count: i32,
    current_step_name: Option<String>,
    pending_approvers: Vec<User>,
}

#[derive(SimpleObject)]
pub struct StepCycleTime {
    step_name: String,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    seconds: i64,
}

#[derive(SimpleObject)]
pub struct ApprovalCycleTime {
    steps: Vec<StepCycleTime>,
    /// From submission to the final decision; null while pending.
    total_seconds: Option<i64>,
}

/// One immutable review record: who decided what, when, and why.
pub struct ReviewRecord(pub approval_decision::Model);

#[Object]
impl ReviewRecord {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn step_name(&self) -> &str {
        &self.0.step_name
    }
    async fn approve(&self) -> bool {
        self.0.approve
    }
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    async fn decided_at(&self) -> DateTime<Utc> {
        self.0.decided_at
    }
    /// Who decided.
    async fn decided_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.decided_by).await
    }
    /// The approver the decision was made for, when a delegate decided in their place.
    async fn on_behalf_of(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        if self.0.accountable_user_id == self.0.decided_by {
            return Ok(None);
        }
        user_by_id(ctx, self.0.accountable_user_id).await
    }
}

pub struct Approval(pub approval_instance::Model);

#[Object]
impl Approval {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> ApprovalStatus {
        match super::model::InstanceStatus::parse(&self.0.status) {
            super::model::InstanceStatus::Pending => ApprovalStatus::Pending,
            super::model::InstanceStatus::Approved => ApprovalStatus::Approved,
            super::model::InstanceStatus::Rejected => ApprovalStatus::Rejected,
            super::model::InstanceStatus::Cancelled => ApprovalStatus::Cancelled,
        }
    }
    async fn subject_type(&self) -> &str {
        &self.0.subject_type
    }
    async fn subject_id(&self) -> ID {
        ID(self.0.subject_id.to_string())
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at
    }
    async fn flow(&self, ctx: &Context<'_>) -> Result<Option<ApprovalFlow>> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        Ok(loaders
            .flows
            .load_one(self.0.flow_id)
            .await
            .map_err(loader_error)?
            .map(ApprovalFlow))
    }
    async fn progress(&self, ctx: &Context<'_>) -> Result<ApprovalProgress> {
        let app = ctx.app()?;
        let view = service::progress(&app.db.conn, &self.0).await?;
        Ok(ApprovalProgress {
            step_number: view.step_number as i32,
            step_count: view.step_count as i32,
            current_step_name: view.current_step_name,
            pending_approvers: users(ctx, view.pending_approvers).await?,
        })
    }
    /// The review records, oldest first.
    async fn decisions(&self, ctx: &Context<'_>) -> Result<Vec<ReviewRecord>> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        Ok(loaders
            .decisions
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(ReviewRecord)
            .collect())
    }
    async fn cycle_time(&self, ctx: &Context<'_>) -> Result<ApprovalCycleTime> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        let decisions = loaders
            .decisions
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let (steps, total) = service::cycle_times(&self.0, &decisions);
        Ok(ApprovalCycleTime {
            steps: steps
                .into_iter()
                .map(|s| StepCycleTime {
                    step_name: s.step_name,
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                    seconds: s.seconds,
                })
                .collect(),
            total_seconds: total,
        })
    }
}

pub struct Delegation(approval_delegation::Model);

#[Object]
impl Delegation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    #[graphql(name = "fromUser")]
    async fn delegator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.from_user_id).await
    }
    #[graphql(name = "toUser")]
    async fn delegate(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.0.to_user_id).await
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
}

#[derive(InputObject)]
pub struct DelegateApprovalsInput {
    to_user_id: ID,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct ApprovalsQuery;

#[Object]
impl ApprovalsQuery {
    async fn approval_flows(&self, ctx: &Context<'_>) -> Result<Vec<ApprovalFlow>> {
        let app = ctx.app()?;
        Ok(service::list_flows(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(ApprovalFlow)
            .collect())
    }

    async fn approval_flow(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ApprovalFlow>> {
        let app = ctx.app()?;
        match service::find_flow(&app.db.conn, ctx.viewer()?, FlowId::parse("id", &id)?).await {
            Ok(flow) => Ok(Some(ApprovalFlow(flow))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn approval(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Approval>> {
        let app = ctx.app()?;
        match service::find_instance(&app.db.conn, ctx.viewer()?, InstanceId::parse("id", &id)?)
            .await
        {
            Ok(instance) => Ok(Some(Approval(instance))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Approvals whose current step waits on the signed-in user (or on someone who delegated to them).
    async fn approvals_pending_for_me(&self, ctx: &Context<'_>) -> Result<Vec<Approval>> {
        let app = ctx.app()?;
        Ok(service::pending_for(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(Approval)
            .collect())
    }

    /// Delegations the signed-in user gave or received.
    async fn my_delegations(&self, ctx: &Context<'_>) -> Result<Vec<Delegation>> {
        let app = ctx.app()?;
        Ok(service::my_delegations(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(Delegation)
            .collect())
    }
}

#[derive(Default)]
pub struct ApprovalsMutation;

#[Object]
impl ApprovalsMutation {
    /// Needs `task.configure`. Each step sets exactly one approver rule.
    async fn create_approval_flow(
        &self,
        ctx: &Context<'_>,
        input: CreateApprovalFlowInput,
    ) -> Result<ApprovalFlow> {
        let app = ctx.app()?;
        let flow = NewFlow {
            name: parse_name("name", &input.name, 200)?,
            allow_self_approval: input.allow_self_approval,
            steps: input
                .steps
                .into_iter()
                .map(parse_step)
                .collect::<Result<Vec<_>, _>>()?,
        };
        let viewer = ctx.viewer()?;
        let created = app
            .write(async |work| service::create_flow(work, viewer, flow).await)
            .await?;
        Ok(ApprovalFlow(created))
    }

    /// Approve or reject the current step. A rejection needs a comment: it becomes the reason.
    async fn decide_approval(
        &self,
        ctx: &Context<'_>,
        approval_id: ID,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Approval> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = InstanceId::parse("approvalId", &approval_id)?;
        let subjects = &app.approval_subjects;
        let decided = app
            .write(async |work| {
                service::decide(work, subjects, viewer, id, approve, comment.as_deref()).await
            })
            .await?;
        Ok(Approval(decided.instance))
    }

    /// Lets another user decide in your place between two moments (out of office).
    async fn delegate_approvals(
        &self,
        ctx: &Context<'_>,
        input: DelegateApprovalsInput,
    ) -> Result<Delegation> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let to_user = UserId::parse("toUserId", &input.to_user_id)?.0;
        let delegation = app
            .write(async |work| {
                service::delegate(work, viewer, to_user, input.starts_at, input.ends_at).await
            })
            .await?;
        Ok(Delegation(delegation))
    }

    async fn cancel_delegation(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let app = ctx.app()?;
        let id = super::model::DelegationId::parse("id", &id)?;
        let viewer = ctx.viewer()?;
        Ok(app
            .write(async |work| service::cancel_delegation(work, viewer, id.0).await)
            .await?)
    }
}
