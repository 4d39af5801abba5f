//! The approval engine over GraphQL: flows, approvals with progress and cycle time, decisions,
//! delegation.

use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{
    approval_decision, approval_delegation, approval_flow, approval_instance, approval_step,
};

use uuid::Uuid;

use super::loaders::ApprovalLoaders;
use super::model::{
    ApproverRule, CompareOp, Condition, DelegationId, FlowChanges, FlowId, InstanceId,
    InstanceStatus, NewFlow, NewStep,
};
use super::service;
use crate::domains::identity::graphql::{user_by_id, User};
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::model::{parse_name, UserId};
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::found;

async fn users(ctx: &Context<'_>, ids: Vec<Uuid>) -> Result<Vec<User>> {
    let loaders = ctx.loaders::<IdentityLoaders>()?;
    let found = loaders
        .users
        .load_many(ids.iter().copied())
        .await
        .map_err(loader_error)?;
    Ok(ids
        .iter()
        .filter_map(|id| found.get(id).cloned().map(User::from))
        .collect())
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "CompareOp")]
pub enum ConditionOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// `field op value`, such as `cashOutputValue GTE "10000"`; the value is exact decimal text.
#[derive(InputObject, SimpleObject, Clone)]
#[graphql(input_name = "ApprovalConditionInput")]
pub struct ApprovalCondition {
    field: String,
    op: ConditionOp,
    value: String,
}

impl From<Condition> for ApprovalCondition {
    fn from(c: Condition) -> Self {
        Self {
            field: c.field,
            op: c.op.into(),
            value: c.value.to_string(),
        }
    }
}

impl TryFrom<ApprovalCondition> for Condition {
    type Error = AppError;

    fn try_from(c: ApprovalCondition) -> Result<Self, AppError> {
        Ok(Condition {
            field: parse_name("condition.field", &c.field, 100)?,
            op: c.op.into(),
            value: c
                .value
                .parse()
                .map_err(|e| AppError::bad_field("condition.value", format!("{e}")))?,
        })
    }
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

impl TryFrom<CreateApprovalFlowInput> for NewFlow {
    type Error = AppError;

    fn try_from(input: CreateApprovalFlowInput) -> Result<Self, AppError> {
        Ok(NewFlow {
            name: parse_name("name", &input.name, 200)?,
            allow_self_approval: input.allow_self_approval,
            steps: input
                .steps
                .into_iter()
                .map(NewStep::try_from)
                .collect::<Result<Vec<_>, _>>()?,
        })
    }
}

/// Fields left out stay; `steps`, when given, replace the steps of the new version.
#[derive(InputObject)]
pub struct UpdateApprovalFlowInput {
    name: Option<String>,
    allow_self_approval: Option<bool>,
    steps: Option<Vec<ApprovalStepInput>>,
}

impl TryFrom<UpdateApprovalFlowInput> for FlowChanges {
    type Error = AppError;

    fn try_from(input: UpdateApprovalFlowInput) -> Result<Self, AppError> {
        Ok(FlowChanges {
            name: input
                .name
                .map(|name| parse_name("name", &name, 200))
                .transpose()?,
            allow_self_approval: input.allow_self_approval,
            steps: input
                .steps
                .map(|steps| {
                    steps
                        .into_iter()
                        .map(NewStep::try_from)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?,
        })
    }
}

impl TryFrom<ApprovalStepInput> for NewStep {
    type Error = AppError;

    fn try_from(input: ApprovalStepInput) -> Result<Self, AppError> {
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
        Ok(NewStep {
            name: parse_name("name", &input.name, 200)?,
            rule,
            required_approvals: u32::try_from(input.required_approvals).map_err(|_| {
                AppError::bad_field("requiredApprovals", "requiredApprovals must be positive")
            })?,
            condition: input.condition.map(Condition::try_from).transpose()?,
            sla_hours: input
                .sla_hours
                .map(|h| {
                    u32::try_from(h)
                        .map_err(|_| AppError::bad_field("slaHours", "slaHours must be positive"))
                })
                .transpose()?,
        })
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ApprovalFlow {
    id: ID,
    name: String,
    allow_self_approval: bool,
    /// 1 when created, raised by every edit; `steps` are the newest version's.
    version: i32,
    #[graphql(skip)]
    flow_id: Uuid,
}

impl From<approval_flow::Model> for ApprovalFlow {
    fn from(flow: approval_flow::Model) -> Self {
        Self {
            id: ID(flow.id.to_string()),
            name: flow.name,
            allow_self_approval: flow.allow_self_approval,
            version: flow.version,
            flow_id: flow.id,
        }
    }
}

/// Other domains still build it the way they built the old newtype.
#[ComplexObject]
impl ApprovalFlow {
    async fn steps(&self, ctx: &Context<'_>) -> Result<Vec<ApprovalStep>> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        Ok(loaders
            .steps
            .load_one(self.flow_id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(ApprovalStep::from)
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct ApprovalStep {
    position: i32,
    name: String,
    // Flattened rather than a complex field, which would move it after the plain fields in the SDL.
    #[graphql(flatten)]
    approver_user: StepApproverUser,
    approver_role: Option<String>,
    department_head: bool,
    approver_field: Option<String>,
    required_approvals: i32,
    condition: Option<ApprovalCondition>,
    sla_hours: Option<i32>,
}

impl From<approval_step::Model> for ApprovalStep {
    fn from(step: approval_step::Model) -> Self {
        Self {
            condition: service::step_condition(&step).map(ApprovalCondition::from),
            position: step.position,
            name: step.name,
            approver_user: StepApproverUser(step.approver_user_id),
            approver_role: step.approver_role,
            department_head: step.department_head,
            approver_field: step.approver_field,
            required_approvals: step.required_approvals,
            sla_hours: step.sla_hours,
        }
    }
}

/// `ApprovalStep.approverUser`, loaded.
struct StepApproverUser(Option<Uuid>);

#[Object]
impl StepApproverUser {
    async fn approver_user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0 {
            Some(id) => user_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "InstanceStatus")]
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

impl From<service::StepCycle> for StepCycleTime {
    fn from(s: service::StepCycle) -> Self {
        Self {
            step_name: s.step_name,
            started_at: s.started_at,
            finished_at: s.finished_at,
            seconds: s.seconds,
        }
    }
}

#[derive(SimpleObject)]
pub struct ApprovalCycleTime {
    steps: Vec<StepCycleTime>,
    /// From submission to the final decision; null while pending.
    total_seconds: Option<i64>,
}

// One immutable review record: who decided what, when, and why. (A `///` here would become a
// type description the SDL does not have.)
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ReviewRecord {
    id: ID,
    step_name: String,
    approve: bool,
    comment: Option<String>,
    decided_at: DateTime<Utc>,
    #[graphql(skip)]
    decider: Uuid,
    #[graphql(skip)]
    accountable: Uuid,
}

impl From<approval_decision::Model> for ReviewRecord {
    fn from(d: approval_decision::Model) -> Self {
        Self {
            id: ID(d.id.to_string()),
            step_name: d.step_name,
            approve: d.approve,
            comment: d.comment,
            decided_at: d.decided_at,
            decider: d.decided_by,
            accountable: d.accountable_user_id,
        }
    }
}

/// Other domains still build it the way they built the old newtype.
#[ComplexObject]
impl ReviewRecord {
    /// Who decided.
    async fn decided_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.decider).await
    }
    /// The approver the decision was made for, when a delegate decided in their place.
    async fn on_behalf_of(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        if self.accountable == self.decider {
            return Ok(None);
        }
        user_by_id(ctx, self.accountable).await
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Approval {
    id: ID,
    status: ApprovalStatus,
    subject_type: String,
    subject_id: ID,
    started_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    /// Progress and cycle times are computed from the whole row.
    #[graphql(skip)]
    instance: approval_instance::Model,
}

impl From<approval_instance::Model> for Approval {
    fn from(instance: approval_instance::Model) -> Self {
        Self {
            id: ID(instance.id.to_string()),
            // A status that cannot be read shows as closed, never as awaiting a decision.
            status: InstanceStatus::parse(&instance.status)
                .unwrap_or(InstanceStatus::Rejected)
                .into(),
            subject_type: instance.subject_type.clone(),
            subject_id: ID(instance.subject_id.to_string()),
            started_at: instance.started_at,
            decided_at: instance.decided_at,
            instance,
        }
    }
}

/// Other domains still build it the way they built the old newtype.
#[ComplexObject]
impl Approval {
    /// What the approval is about, in a few words: the task's title, or the transaction's type.
    /// Null when the subject is gone, or when the viewer may not see the subject itself.
    async fn subject_title(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        Ok(loaders
            .subject_titles
            .load_one((self.instance.subject_type.clone(), self.instance.subject_id))
            .await
            .map_err(loader_error)?)
    }

    async fn flow(&self, ctx: &Context<'_>) -> Result<Option<ApprovalFlow>> {
        let loaders = ctx.loaders::<ApprovalLoaders>()?;
        Ok(loaders
            .flows
            .load_one(self.instance.flow_id)
            .await
            .map_err(loader_error)?
            .map(ApprovalFlow::from))
    }
    async fn progress(&self, ctx: &Context<'_>) -> Result<ApprovalProgress> {
        let caller = ctx.caller()?;
        let view = service::progress(caller.db(), &self.instance).await?;
        Ok(ApprovalProgress {
            step_number: view.step_number as i32,
            step_count: view.step_count as i32,
            current_step_name: view.current_step_name,
            pending_approvers: users(ctx, view.pending_approvers).await?,
        })
    }
    /// The review records, oldest first.
    async fn decisions(&self, ctx: &Context<'_>) -> Result<Vec<ReviewRecord>> {
        Ok(decisions_of(ctx, self.instance.id)
            .await?
            .into_iter()
            .map(ReviewRecord::from)
            .collect())
    }
    async fn cycle_time(&self, ctx: &Context<'_>) -> Result<ApprovalCycleTime> {
        let decisions = decisions_of(ctx, self.instance.id).await?;
        let (steps, total) = service::cycle_times(&self.instance, &decisions);
        Ok(ApprovalCycleTime {
            steps: steps.into_iter().map(StepCycleTime::from).collect(),
            total_seconds: total,
        })
    }
}

async fn decisions_of(
    ctx: &Context<'_>,
    instance_id: Uuid,
) -> Result<Vec<approval_decision::Model>> {
    Ok(ctx
        .loaders::<ApprovalLoaders>()?
        .decisions
        .load_one(instance_id)
        .await
        .map_err(loader_error)?
        .unwrap_or_default())
}

#[derive(SimpleObject)]
pub struct Delegation {
    id: ID,
    // Flattened rather than complex fields, which would move them after the dates in the SDL.
    #[graphql(flatten)]
    parties: DelegationParties,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl From<approval_delegation::Model> for Delegation {
    fn from(d: approval_delegation::Model) -> Self {
        Self {
            id: ID(d.id.to_string()),
            parties: DelegationParties {
                from: d.from_user_id,
                to: d.to_user_id,
            },
            starts_at: d.starts_at,
            ends_at: d.ends_at,
        }
    }
}

/// `Delegation.fromUser` and `toUser`, loaded.
struct DelegationParties {
    from: Uuid,
    to: Uuid,
}

#[Object]
impl DelegationParties {
    #[graphql(name = "fromUser")]
    async fn delegator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.from).await
    }
    #[graphql(name = "toUser")]
    async fn delegate(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.to).await
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
        let caller = ctx.caller()?;
        let flows = service::list_flows(caller.db(), caller.viewer).await?;
        Ok(flows.into_iter().map(ApprovalFlow::from).collect())
    }

    async fn approval_flow(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ApprovalFlow>> {
        let caller = ctx.caller()?;
        let flow = service::find_flow(caller.db(), caller.viewer, FlowId::parse("id", &id)?).await;
        Ok(found(flow)?.map(ApprovalFlow::from))
    }

    async fn approval(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Approval>> {
        let caller = ctx.caller()?;
        let id = InstanceId::parse("id", &id)?;
        let instance = service::find_instance(caller.db(), caller.viewer, id).await;
        Ok(found(instance)?.map(Approval::from))
    }

    /// Approvals whose current step waits on the signed-in user (or on someone who delegated to them).
    async fn approvals_pending_for_me(&self, ctx: &Context<'_>) -> Result<Vec<Approval>> {
        let caller = ctx.caller()?;
        let pending = service::pending_for(caller.db(), caller.viewer).await?;
        Ok(pending.into_iter().map(Approval::from).collect())
    }

    /// Delegations the signed-in user gave or received.
    async fn my_delegations(&self, ctx: &Context<'_>) -> Result<Vec<Delegation>> {
        let caller = ctx.caller()?;
        let delegations = service::my_delegations(caller.db(), caller.viewer).await?;
        Ok(delegations.into_iter().map(Delegation::from).collect())
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
        let caller = ctx.caller()?;
        let flow = NewFlow::try_from(input)?;
        let created = caller
            .write(async |work| service::create_flow(work, caller.viewer, flow).await)
            .await?;
        Ok(created.into())
    }

    /// Needs `task.configure`. Makes a new version: running approvals finish on the steps they
    /// started with, new ones use the new steps.
    async fn update_approval_flow(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateApprovalFlowInput,
    ) -> Result<ApprovalFlow> {
        let caller = ctx.caller()?;
        let (id, changes) = (FlowId::parse("id", &id)?, FlowChanges::try_from(input)?);
        let updated = caller
            .write(async |work| service::update_flow(work, caller.viewer, id, changes).await)
            .await?;
        Ok(updated.into())
    }

    /// Approve or reject the current step. A rejection needs a comment: it becomes the reason.
    async fn decide_approval(
        &self,
        ctx: &Context<'_>,
        approval_id: ID,
        approve: bool,
        comment: Option<String>,
    ) -> Result<Approval> {
        let caller = ctx.caller()?;
        let id = InstanceId::parse("approvalId", &approval_id)?;
        let comment = comment.as_deref();
        let decided = caller
            .write(async |work| {
                let subjects = &caller.app.approval_subjects;
                service::decide(work, subjects, caller.viewer, id, approve, comment).await
            })
            .await?;
        Ok(decided.instance.into())
    }

    /// Lets another user decide in your place between two moments (out of office).
    async fn delegate_approvals(
        &self,
        ctx: &Context<'_>,
        input: DelegateApprovalsInput,
    ) -> Result<Delegation> {
        let caller = ctx.caller()?;
        let to_user = UserId::parse("toUserId", &input.to_user_id)?.0;
        let (starts_at, ends_at) = (input.starts_at, input.ends_at);
        let delegation = caller
            .write(async |work| {
                service::delegate(work, caller.viewer, to_user, starts_at, ends_at).await
            })
            .await?;
        Ok(delegation.into())
    }

    async fn cancel_delegation(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = ctx.caller()?;
        let id = DelegationId::parse("id", &id)?;
        Ok(caller
            .write(async |work| service::cancel_delegation(work, caller.viewer, id.0).await)
            .await?)
    }
}
