//! The approval engine's rules: flows, starting an approval for a subject, deciding, delegating,
//! and reading progress and cycle time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entities::{
    approval_assignment, approval_decision, approval_delegation, approval_flow, approval_instance,
    approval_step,
};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use super::model::{
    parse_decision_comment, ApprovalEvent, ApproverRule, Condition, FlowId, InstanceId,
    InstanceStatus, NewFlow, SubjectFacts, SubjectRef, Verdict,
};
use crate::auth::{Permission, Viewer};
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service as notifications;
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::events::{EventBus, Pending};

/// A domain whose records go through approval. The engine calls it, inside the deciding
/// transaction, when an approval ends; it returns the events to publish after commit.
#[async_trait]
pub trait ApprovalSubject: Send + Sync {
    fn kind(&self) -> &'static str;

    async fn on_verdict(
        &self,
        txn: &DatabaseTransaction,
        subject_id: Uuid,
        verdict: &Verdict,
        decided_by: Uuid,
    ) -> AppResult<Pending>;
}

/// The subjects the engine knows, by kind; assembled once in `app.rs`.
#[derive(Clone, Default)]
pub struct ApprovalSubjects(Arc<HashMap<&'static str, Arc<dyn ApprovalSubject>>>);

impl ApprovalSubjects {
    pub fn new(subjects: Vec<Arc<dyn ApprovalSubject>>) -> Self {
        Self(Arc::new(
            subjects.into_iter().map(|s| (s.kind(), s)).collect(),
        ))
    }

    fn get(&self, kind: &str) -> AppResult<&Arc<dyn ApprovalSubject>> {
        self.0.get(kind).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("no approval subject registered for {kind}"))
        })
    }
}

fn decode_positions(instance: &approval_instance::Model) -> Vec<i32> {
    serde_json::from_value(instance.step_positions.clone()).unwrap_or_default()
}

pub fn step_rule(step: &approval_step::Model) -> Option<ApproverRule> {
    if let Some(user) = step.approver_user_id {
        Some(ApproverRule::User(user))
    } else if let Some(role) = &step.approver_role {
        Some(ApproverRule::Role(role.clone()))
    } else if step.department_head {
        Some(ApproverRule::DepartmentHead)
    } else {
        step.approver_field.clone().map(ApproverRule::Field)
    }
}

pub fn step_condition(step: &approval_step::Model) -> Option<Condition> {
    let op = super::model::CompareOp::parse(step.condition_op.as_deref()?)?;
    Some(Condition {
        field: step.condition_field.clone()?,
        op,
        value: step.condition_value.as_deref()?.parse().ok()?,
    })
}

// ---------------------------------------------------------------- flows

pub async fn create_flow<C>(
    db: &C,
    viewer: &Viewer,
    flow: NewFlow,
) -> AppResult<approval_flow::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    viewer.user()?.require_global(Permission::TaskConfigure)?;
    flow.validate()?;
    let txn = db.begin().await?;
    for step in &flow.steps {
        match &step.rule {
            ApproverRule::User(id) => {
                if identity::active_users(&txn, vec![*id]).await?.is_empty() {
                    return Err(AppError::bad_field("approverUserId", "no such active user"));
                }
            }
            ApproverRule::Role(name) => {
                if identity::role_named(&txn, name).await?.is_none() {
                    return Err(AppError::bad_field(
                        "approverRole",
                        format!("no role named {name:?}"),
                    ));
                }
            }
            ApproverRule::DepartmentHead | ApproverRule::Field(_) => {}
        }
    }
    let now = Utc::now();
    let created = approval_flow::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(flow.name.clone()),
        allow_self_approval: Set(flow.allow_self_approval),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    for (position, step) in flow.steps.iter().enumerate() {
        approval_step::ActiveModel {
            id: Set(Uuid::now_v7()),
            flow_id: Set(created.id),
            position: Set(position as i32),
            name: Set(step.name.clone()),
            approver_user_id: Set(match &step.rule {
                ApproverRule::User(id) => Some(*id),
                _ => None,
            }),
            approver_role: Set(match &step.rule {
                ApproverRule::Role(name) => Some(name.clone()),
                _ => None,
            }),
            department_head: Set(step.rule == ApproverRule::DepartmentHead),
            approver_field: Set(match &step.rule {
                ApproverRule::Field(field) => Some(field.clone()),
                _ => None,
            }),
            required_approvals: Set(step.required_approvals as i32),
            condition_field: Set(step.condition.as_ref().map(|c| c.field.clone())),
            condition_op: Set(step.condition.as_ref().map(|c| c.op.as_str().to_owned())),
            condition_value: Set(step.condition.as_ref().map(|c| c.value.to_string())),
            sla_hours: Set(step.sla_hours.map(|h| h as i32)),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(created)
}

pub async fn find_flow<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: FlowId,
) -> AppResult<approval_flow::Model> {
    viewer.user()?;
    approval_flow::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("approval flow"))
}

pub async fn list_flows<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<approval_flow::Model>> {
    viewer.user()?;
    Ok(approval_flow::Entity::find()
        .order_by_asc(approval_flow::Column::Name)
        .all(db)
        .await?)
}

pub async fn steps_of<C: ConnectionTrait>(
    db: &C,
    flow_ids: &[Uuid],
) -> AppResult<Vec<approval_step::Model>> {
    Ok(approval_step::Entity::find()
        .filter(approval_step::Column::FlowId.is_in(flow_ids.iter().copied()))
        .order_by_asc(approval_step::Column::FlowId)
        .order_by_asc(approval_step::Column::Position)
        .all(db)
        .await?)
}

pub async fn flow_exists<C: ConnectionTrait>(db: &C, id: Uuid) -> AppResult<bool> {
    Ok(approval_flow::Entity::find_by_id(id)
        .one(db)
        .await?
        .is_some())
}

// ---------------------------------------------------------------- starting

async fn resolve_approvers<C: ConnectionTrait>(
    db: &C,
    rule: &ApproverRule,
    facts: &SubjectFacts,
) -> AppResult<Vec<Uuid>> {
    let candidates = match rule {
        ApproverRule::User(id) => vec![*id],
        ApproverRule::Role(name) => {
            identity::active_holders_of_role(db, name, facts.department_id).await?
        }
        ApproverRule::DepartmentHead => identity::department_head_for(db, facts.department_id)
            .await?
            .into_iter()
            .collect(),
        ApproverRule::Field(field) => facts.users.get(field).cloned().unwrap_or_default(),
    };
    identity::active_users(db, candidates).await
}

pub struct Started {
    pub instance: approval_instance::Model,
    pub status: InstanceStatus,
}

/// Starts an approval of `subject` under `flow_id`, inside the subject's transaction. Steps
/// whose condition fails are skipped; approvers of every remaining step are resolved now, so
/// a step that could never be approved is refused at submission, not discovered later.
pub async fn start(
    txn: &DatabaseTransaction,
    pending: &mut Pending,
    flow_id: Uuid,
    subject: SubjectRef,
    facts: SubjectFacts,
) -> AppResult<Started> {
    let flow = approval_flow::Entity::find_by_id(flow_id)
        .one(txn)
        .await?
        .ok_or_else(|| AppError::Conflict("the approval flow no longer exists".into()))?;
    let steps = steps_of(txn, &[flow.id]).await?;
    let mut positions = Vec::new();
    let mut approvers_by_index = Vec::new();
    for step in &steps {
        if step_condition(step).is_some_and(|c| !c.holds(&facts))
            || (step.condition_field.is_some() && step_condition(step).is_none())
        {
            continue;
        }
        let rule = step_rule(step)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("step {} has no rule", step.id)))?;
        let mut approvers = resolve_approvers(txn, &rule, &facts).await?;
        if !flow.allow_self_approval {
            approvers.retain(|a| *a != facts.initiator_id);
        }
        if approvers.len() < step.required_approvals as usize {
            return Err(AppError::Conflict(format!(
                "approval step {:?} has {} eligible approver(s) but needs {}",
                step.name,
                approvers.len(),
                step.required_approvals
            )));
        }
        positions.push(step.position);
        approvers_by_index.push(approvers);
    }
    let now = Utc::now();
    let status = if positions.is_empty() {
        InstanceStatus::Approved
    } else {
        InstanceStatus::Pending
    };
    let instance = approval_instance::ActiveModel {
        id: Set(Uuid::now_v7()),
        flow_id: Set(flow.id),
        subject_type: Set(subject.kind.to_owned()),
        subject_id: Set(subject.id),
        subject_department_id: Set(facts.department_id),
        initiator_id: Set(facts.initiator_id),
        status: Set(status.as_str().to_owned()),
        step_positions: Set(serde_json::json!(positions)),
        current_index: Set(0),
        facts: Set(serde_json::to_value(&facts).map_err(AppError::internal)?),
        started_at: Set(now),
        step_started_at: Set(now),
        decided_at: Set((status == InstanceStatus::Approved).then_some(now)),
    }
    .insert(txn)
    .await?;
    let rows: Vec<approval_assignment::ActiveModel> = approvers_by_index
        .iter()
        .enumerate()
        .flat_map(|(index, approvers)| {
            approvers
                .iter()
                .map(move |user| approval_assignment::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    instance_id: Set(instance.id),
                    step_index: Set(index as i32),
                    user_id: Set(*user),
                    created_at: Set(now),
                })
        })
        .collect();
    if !rows.is_empty() {
        approval_assignment::Entity::insert_many(rows)
            .exec(txn)
            .await?;
    }
    if let Some(first) = approvers_by_index.first() {
        notify_step(txn, pending, &instance, first, facts.initiator_id).await?;
    }
    Ok(Started { instance, status })
}

async fn notify_step<C: ConnectionTrait>(
    db: &C,
    pending: &mut Pending,
    instance: &approval_instance::Model,
    approvers: &[Uuid],
    actor: Uuid,
) -> AppResult<()> {
    notifications::notify(
        db,
        pending,
        approvers,
        Some(actor),
        notifications::Notice {
            kind: NotificationKind::ReviewRequested,
            title: "Your approval is requested",
            body: &format!(
                "A {} awaits your decision.",
                instance.subject_type.replace('_', " ")
            ),
            subject: Some(Subject {
                kind: subject_kind(&instance.subject_type),
                id: instance.subject_id,
            }),
        },
    )
    .await
}

fn subject_kind(raw: &str) -> &'static str {
    match raw {
        "task" => "task",
        "business_transaction" => "business_transaction",
        "journal_entry" => "journal_entry",
        _ => "approval",
    }
}

// ---------------------------------------------------------------- deciding

/// Users who have delegated their approvals to `delegate` for the moment `at`.
async fn delegators_of<C: ConnectionTrait>(
    db: &C,
    delegate: Uuid,
    at: DateTime<Utc>,
) -> AppResult<Vec<Uuid>> {
    Ok(approval_delegation::Entity::find()
        .filter(approval_delegation::Column::ToUserId.eq(delegate))
        .filter(approval_delegation::Column::StartsAt.lte(at))
        .filter(approval_delegation::Column::EndsAt.gt(at))
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.from_user_id)
        .collect())
}

async fn assignments_at<C: ConnectionTrait>(
    db: &C,
    instance_id: Uuid,
    index: i32,
) -> AppResult<Vec<Uuid>> {
    Ok(approval_assignment::Entity::find()
        .filter(approval_assignment::Column::InstanceId.eq(instance_id))
        .filter(approval_assignment::Column::StepIndex.eq(index))
        .order_by_asc(approval_assignment::Column::UserId)
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect())
}

pub async fn decisions_of<C: ConnectionTrait>(
    db: &C,
    instance_ids: &[Uuid],
) -> AppResult<Vec<approval_decision::Model>> {
    Ok(approval_decision::Entity::find()
        .filter(approval_decision::Column::InstanceId.is_in(instance_ids.iter().copied()))
        .order_by_asc(approval_decision::Column::DecidedAt)
        .order_by_asc(approval_decision::Column::Id)
        .all(db)
        .await?)
}

/// Whether the viewer may read this approval: administrators, the initiator, anyone assigned to
/// any of its steps, and delegates of those.
async fn can_see<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    instance: &approval_instance::Model,
) -> AppResult<bool> {
    let me = viewer.user()?;
    if me.is_admin() || instance.initiator_id == me.id {
        return Ok(true);
    }
    let assigned: HashSet<Uuid> = approval_assignment::Entity::find()
        .filter(approval_assignment::Column::InstanceId.eq(instance.id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    if assigned.contains(&me.id) {
        return Ok(true);
    }
    let delegators = delegators_of(db, me.id, Utc::now()).await?;
    Ok(delegators.iter().any(|d| assigned.contains(d)))
}

pub async fn find_instance<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: InstanceId,
) -> AppResult<approval_instance::Model> {
    let instance = approval_instance::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("approval"))?;
    if !can_see(db, viewer, &instance).await? {
        return Err(AppError::not_found("approval"));
    }
    Ok(instance)
}

pub struct Decided {
    pub instance: approval_instance::Model,
    pub decision: approval_decision::Model,
}

/// Records the viewer's decision on the current step. A rejection ends the approval; enough
/// approvals move it to the next step or, after the last, approve it. The subject's domain
/// hears the verdict inside the same transaction.
pub async fn decide<C>(
    db: &C,
    bus: &dyn EventBus,
    subjects: &ApprovalSubjects,
    viewer: &Viewer,
    id: InstanceId,
    approve: bool,
    comment: Option<&str>,
) -> AppResult<Decided>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    let comment = parse_decision_comment(approve, comment)?;
    let txn = db.begin().await?;
    lock_in_transaction(&txn, &format!("approval:{}", id.0)).await?;
    let instance = approval_instance::Entity::find_by_id(id.0)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("approval"))?;
    if !can_see(&txn, viewer, &instance).await? {
        return Err(AppError::not_found("approval"));
    }
    if InstanceStatus::parse(&instance.status) != InstanceStatus::Pending {
        return Err(AppError::Conflict(
            "this approval is already decided".into(),
        ));
    }
    let flow = approval_flow::Entity::find_by_id(instance.flow_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("approval without flow")))?;
    if !flow.allow_self_approval && me.id == instance.initiator_id {
        return Err(AppError::Forbidden(
            "this flow does not allow approving your own submission".into(),
        ));
    }
    let index = instance.current_index;
    let positions = decode_positions(&instance);
    let step = approval_step::Entity::find()
        .filter(approval_step::Column::FlowId.eq(flow.id))
        .filter(
            approval_step::Column::Position
                .eq(positions.get(index as usize).copied().unwrap_or(-1)),
        )
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("approval step missing")))?;
    let assigned = assignments_at(&txn, instance.id, index).await?;
    let decided: HashSet<Uuid> = decisions_of(&txn, &[instance.id])
        .await?
        .into_iter()
        .filter(|d| d.step_index == index)
        .map(|d| d.accountable_user_id)
        .collect();
    let now = Utc::now();
    let mut accountable_options = vec![me.id];
    accountable_options.extend(delegators_of(&txn, me.id, now).await?);
    let mine: Vec<Uuid> = accountable_options
        .iter()
        .copied()
        .filter(|u| assigned.contains(u))
        .collect();
    let Some(accountable) = mine.iter().copied().find(|u| !decided.contains(u)) else {
        return Err(if mine.is_empty() {
            AppError::Forbidden("you are not an approver of the current step".into())
        } else {
            AppError::Conflict("you have already decided this step".into())
        });
    };
    if !flow.allow_self_approval && accountable == instance.initiator_id {
        return Err(AppError::Forbidden(
            "this flow does not allow approving your own submission".into(),
        ));
    }
    let decision = approval_decision::ActiveModel {
        id: Set(Uuid::now_v7()),
        instance_id: Set(instance.id),
        step_index: Set(index),
        step_name: Set(step.name.clone()),
        accountable_user_id: Set(accountable),
        decided_by: Set(me.id),
        approve: Set(approve),
        comment: Set(comment.clone()),
        decided_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, "this step was already decided for that approver")
    })?;

    let approvals_here = decided.len() as i32 + 1;
    let mut pending = Pending::default();
    let mut active: approval_instance::ActiveModel = instance.clone().into();
    let verdict = if !approve {
        Some(Verdict::Rejected {
            reason: comment.clone().unwrap_or_default(),
        })
    } else if approvals_here >= step.required_approvals {
        if (index as usize) + 1 >= positions.len() {
            Some(Verdict::Approved)
        } else {
            active.current_index = Set(index + 1);
            active.step_started_at = Set(now);
            let next = assignments_at(&txn, instance.id, index + 1).await?;
            notify_step(&txn, &mut pending, &instance, &next, me.id).await?;
            None
        }
    } else {
        None
    };
    if let Some(verdict) = &verdict {
        active.status = Set(match verdict {
            Verdict::Approved => InstanceStatus::Approved,
            Verdict::Rejected { .. } => InstanceStatus::Rejected,
        }
        .as_str()
        .to_owned());
        active.decided_at = Set(Some(now));
    }
    let updated = active.update(&txn).await?;
    if let Some(verdict) = &verdict {
        let subject = subjects.get(&instance.subject_type)?;
        pending.append(
            subject
                .on_verdict(&txn, instance.subject_id, verdict, me.id)
                .await?,
        );
    }
    pending.push(&ApprovalEvent {
        instance_id: updated.id,
        subject_type: updated.subject_type.clone(),
        subject_id: updated.subject_id,
        decided_by: me.id,
        approve,
        status: updated.status.clone(),
        at: now,
    });
    txn.commit().await?;
    pending.publish(bus).await;
    Ok(Decided {
        instance: updated,
        decision,
    })
}

// ---------------------------------------------------------------- reading

pub struct ProgressView {
    /// 1-based number of the current step; equals `step_count` once decided.
    pub step_number: usize,
    pub step_count: usize,
    pub current_step_name: Option<String>,
    pub pending_approvers: Vec<Uuid>,
}

pub async fn progress<C: ConnectionTrait>(
    db: &C,
    instance: &approval_instance::Model,
) -> AppResult<ProgressView> {
    let positions = decode_positions(instance);
    let status = InstanceStatus::parse(&instance.status);
    let steps = steps_of(db, &[instance.flow_id]).await?;
    let current = positions
        .get(instance.current_index as usize)
        .and_then(|p| steps.iter().find(|s| s.position == *p));
    let pending_approvers = if status == InstanceStatus::Pending {
        let decided: HashSet<Uuid> = decisions_of(db, &[instance.id])
            .await?
            .into_iter()
            .filter(|d| d.step_index == instance.current_index)
            .map(|d| d.accountable_user_id)
            .collect();
        assignments_at(db, instance.id, instance.current_index)
            .await?
            .into_iter()
            .filter(|u| !decided.contains(u))
            .collect()
    } else {
        Vec::new()
    };
    Ok(ProgressView {
        step_number: if positions.is_empty() {
            0
        } else {
            (instance.current_index as usize + 1).min(positions.len())
        },
        step_count: positions.len(),
        current_step_name: (status == InstanceStatus::Pending)
            .then(|| current.map(|s| s.name.clone()))
            .flatten(),
        pending_approvers,
    })
}

pub struct StepCycle {
    pub step_index: i32,
    pub step_name: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub seconds: i64,
}

/// How long each finished step took, from its start to the decision that closed it, and the
/// whole approval's duration once decided.
pub fn cycle_times(
    instance: &approval_instance::Model,
    decisions: &[approval_decision::Model],
) -> (Vec<StepCycle>, Option<i64>) {
    let mut steps = Vec::new();
    let mut started_at = instance.started_at;
    let finished_steps = match InstanceStatus::parse(&instance.status) {
        InstanceStatus::Pending => instance.current_index,
        _ => instance.current_index + 1,
    };
    for index in 0..finished_steps {
        let closing = decisions
            .iter()
            .filter(|d| d.step_index == index)
            .max_by_key(|d| (d.decided_at, d.id));
        if let Some(closing) = closing {
            steps.push(StepCycle {
                step_index: index,
                step_name: closing.step_name.clone(),
                started_at,
                finished_at: closing.decided_at,
                seconds: (closing.decided_at - started_at).num_seconds(),
            });
            started_at = closing.decided_at;
        }
    }
    let total = instance
        .decided_at
        .map(|decided| (decided - instance.started_at).num_seconds());
    (steps, total)
}

/// Approvals whose current step waits on the viewer, directly or as an active delegate.
pub async fn pending_for<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<approval_instance::Model>> {
    let me = viewer.user()?;
    let mut people = vec![me.id];
    people.extend(delegators_of(db, me.id, Utc::now()).await?);
    let assignments = approval_assignment::Entity::find()
        .filter(approval_assignment::Column::UserId.is_in(people.clone()))
        .all(db)
        .await?;
    let instance_ids: Vec<Uuid> = assignments.iter().map(|a| a.instance_id).collect();
    if instance_ids.is_empty() {
        return Ok(Vec::new());
    }
    let instances = approval_instance::Entity::find()
        .filter(approval_instance::Column::Id.is_in(instance_ids.clone()))
        .filter(approval_instance::Column::Status.eq(InstanceStatus::Pending.as_str()))
        .order_by_asc(approval_instance::Column::StartedAt)
        .all(db)
        .await?;
    let decisions = decisions_of(db, &instance_ids).await?;
    Ok(instances
        .into_iter()
        .filter(|instance| {
            let waiting_on: Vec<Uuid> = assignments
                .iter()
                .filter(|a| a.instance_id == instance.id && a.step_index == instance.current_index)
                .map(|a| a.user_id)
                .collect();
            waiting_on.iter().any(|person| {
                !decisions.iter().any(|d| {
                    d.instance_id == instance.id
                        && d.step_index == instance.current_index
                        && d.accountable_user_id == *person
                })
            })
        })
        .collect())
}

/// A sub-select of the ids of `subject_kind` subjects on whose approval `user_id` was ever
/// assigned, for other domains' visibility filters.
pub fn subjects_assigned_to(subject_kind: &str, user_id: Uuid) -> SelectStatement {
    Query::select()
        .column((
            approval_instance::Entity,
            approval_instance::Column::SubjectId,
        ))
        .from(approval_instance::Entity)
        .inner_join(
            approval_assignment::Entity,
            Expr::col((
                approval_assignment::Entity,
                approval_assignment::Column::InstanceId,
            ))
            .equals((approval_instance::Entity, approval_instance::Column::Id)),
        )
        .and_where(
            Expr::col((
                approval_instance::Entity,
                approval_instance::Column::SubjectType,
            ))
            .eq(subject_kind),
        )
        .and_where(
            Expr::col((
                approval_assignment::Entity,
                approval_assignment::Column::UserId,
            ))
            .eq(user_id),
        )
        .to_owned()
}

/// Everyone ever assigned to the approval, for visibility checks on a single subject.
pub async fn assignees_of<C: ConnectionTrait>(db: &C, instance_id: Uuid) -> AppResult<Vec<Uuid>> {
    Ok(approval_assignment::Entity::find()
        .filter(approval_assignment::Column::InstanceId.eq(instance_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect())
}

pub async fn instances_by_id<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> AppResult<Vec<approval_instance::Model>> {
    Ok(approval_instance::Entity::find()
        .filter(approval_instance::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?)
}

// ---------------------------------------------------------------- delegation

pub async fn delegate<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    to_user: Uuid,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> AppResult<approval_delegation::Model> {
    let me = viewer.user()?;
    if to_user == me.id {
        return Err(AppError::bad_field(
            "toUserId",
            "you cannot delegate to yourself",
        ));
    }
    if ends_at <= starts_at {
        return Err(AppError::bad_field(
            "endsAt",
            "a delegation must end after it starts",
        ));
    }
    if identity::active_users(db, vec![to_user]).await?.is_empty() {
        return Err(AppError::bad_field("toUserId", "no such active user"));
    }
    Ok(approval_delegation::ActiveModel {
        id: Set(Uuid::now_v7()),
        from_user_id: Set(me.id),
        to_user_id: Set(to_user),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

pub async fn my_delegations<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<approval_delegation::Model>> {
    let me = viewer.user()?;
    Ok(approval_delegation::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(approval_delegation::Column::FromUserId.eq(me.id))
                .add(approval_delegation::Column::ToUserId.eq(me.id)),
        )
        .order_by_desc(approval_delegation::Column::StartsAt)
        .all(db)
        .await?)
}

pub async fn cancel_delegation<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: Uuid,
) -> AppResult<bool> {
    let me = viewer.user()?;
    let deleted = approval_delegation::Entity::delete_many()
        .filter(approval_delegation::Column::Id.eq(id))
        .filter(approval_delegation::Column::FromUserId.eq(me.id))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(AppError::not_found("delegation"));
    }
    Ok(true)
}
