//! Starting an approval for a subject and deciding its steps.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entities::{
    approval_assignment, approval_decision, approval_delegation, approval_flow, approval_instance,
    approval_step,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::auth::Viewer;
use crate::domains::approvals::model::{
    parse_decision_comment, ApprovalEvent, ApprovalEventKind, ApproverRule, InstanceId,
    InstanceStatus, SubjectFacts, SubjectRef, Verdict,
};
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service as notifications;
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

use super::*;

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
/// whose condition is false are skipped; a condition whose fact is missing or unreadable, or
/// one stored damaged, keeps its step (see `Condition::applies`). Approvers of every remaining step are resolved now, so
/// a step that could never be approved is refused at submission, not discovered later.
pub async fn start(
    work: &Work,
    flow_id: Uuid,
    subject: SubjectRef,
    facts: SubjectFacts,
) -> AppResult<Started> {
    let flow = approval_flow::Entity::find_by_id(flow_id)
        .one(work)
        .await?
        .ok_or_else(|| AppError::Conflict("the approval flow no longer exists".into()))?;
    let steps = steps_of_version(work, flow.id, flow.version).await?;
    let mut positions = Vec::new();
    let mut approvers_by_index = Vec::new();
    for step in &steps {
        if step_condition(step).is_some_and(|c| !c.applies(&facts)) {
            continue;
        }
        let rule = step_rule(step)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("step {} has no rule", step.id)))?;
        let mut approvers = resolve_approvers(work, &rule, &facts).await?;
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
        flow_version: Set(flow.version),
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
    .insert(work)
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
            .exec(work)
            .await?;
    }
    if let Some(first) = approvers_by_index.first() {
        notify_step(work, &instance, first, facts.initiator_id).await?;
    }
    Ok(Started { instance, status })
}

async fn notify_step(
    work: &Work,
    instance: &approval_instance::Model,
    approvers: &[Uuid],
    actor: Uuid,
) -> AppResult<()> {
    notifications::notify(
        work,
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

pub(super) fn subject_kind(raw: &str) -> &'static str {
    match raw {
        "task" => "task",
        "business_transaction" => "business_transaction",
        "journal_entry" => "journal_entry",
        _ => "approval",
    }
}

// ---------------------------------------------------------------- deciding

/// Users who have delegated their approvals to `delegate` for the moment `at`.
pub(super) async fn delegators_of<C: ConnectionTrait>(
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

pub(super) async fn assignments_at<C: ConnectionTrait>(
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
/// Everyone assigned to any step of the instance.
pub(super) async fn assignments_of_instance<C: ConnectionTrait>(
    db: &C,
    instance_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(approval_assignment::Entity::find()
        .filter(approval_assignment::Column::InstanceId.eq(instance_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect())
}

/// The materialised path of the department the approval's subject belongs to.
pub(super) async fn subject_department_path<C: ConnectionTrait>(
    db: &C,
    instance: &approval_instance::Model,
) -> AppResult<Option<String>> {
    match instance.subject_department_id {
        Some(department) => {
            crate::domains::identity::service::department_path_of(db, department).await
        }
        None => Ok(None),
    }
}

/// Who may read an approval, as SQL over `approval_instances`: its initiator, whoever was ever
/// assigned to it (or is now an active delegate of an assignee), and `approval.read` holders
/// over its subject's department (`reads_approvals_in`; a subject of no department needs a
/// global grant). `approval(id)`, deciding, and the statistics all filter through it.
pub async fn visible_instances<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<sea_orm::Condition> {
    use sea_orm::sea_query::Query;
    let me = viewer.user()?;
    if me.has_global(crate::auth::Permission::ApprovalRead) {
        return Ok(sea_orm::Condition::all());
    }
    let mut people = vec![me.id];
    people.extend(delegators_of(db, me.id, Utc::now()).await?);
    let assigned = Query::select()
        .column(approval_assignment::Column::InstanceId)
        .from(approval_assignment::Entity)
        .and_where(Expr::col(approval_assignment::Column::UserId).is_in(people))
        .to_owned();
    let subtrees: Vec<String> = crate::domains::approvals::model::approval_subtrees(me)
        .map(str::to_owned)
        .collect();
    let mut any = sea_orm::Condition::any()
        .add(approval_instance::Column::InitiatorId.eq(me.id))
        .add(approval_instance::Column::Id.in_subquery(assigned));
    if !subtrees.is_empty() {
        any = any.add(
            approval_instance::Column::SubjectDepartmentId
                .in_subquery(identity::departments_within(&subtrees)),
        );
    }
    Ok(any)
}

pub async fn find_instance<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: InstanceId,
) -> AppResult<approval_instance::Model> {
    approval_instance::Entity::find_by_id(id.0)
        .filter(visible_instances(db, viewer).await?)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("approval"))
}

pub struct Decided {
    pub instance: approval_instance::Model,
    pub decision: approval_decision::Model,
}

/// Records the viewer's decision on the current step. A rejection ends the approval; enough
/// approvals move it to the next step or, after the last, approve it. The subject's domain
/// hears the verdict inside the same transaction.
pub async fn decide(
    work: &Work,
    subjects: &ApprovalSubjects,
    viewer: &Viewer,
    id: InstanceId,
    approve: bool,
    comment: Option<&str>,
) -> AppResult<Decided> {
    let me = viewer.user()?;
    let comment = parse_decision_comment(approve, comment)?;
    lock_in_transaction(work, &format!("approval:{}", id.0)).await?;
    let instance = approval_instance::Entity::find_by_id(id.0)
        .filter(visible_instances(work, viewer).await?)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("approval"))?;
    if InstanceStatus::parse(&instance.status) != Some(InstanceStatus::Pending) {
        return Err(AppError::Conflict(
            "this approval is already decided".into(),
        ));
    }
    let flow = approval_flow::Entity::find_by_id(instance.flow_id)
        .one(work)
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
        .filter(approval_step::Column::Version.eq(instance.flow_version))
        .filter(
            approval_step::Column::Position
                .eq(positions.get(index as usize).copied().unwrap_or(-1)),
        )
        .one(work)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("approval step missing")))?;
    let assigned = assignments_at(work, instance.id, index).await?;
    let step_decisions: Vec<approval_decision::Model> = decisions_of(work, &[instance.id])
        .await?
        .into_iter()
        .filter(|d| d.step_index == index)
        .collect();
    if step_decisions.iter().any(|d| d.decided_by == me.id) {
        return Err(AppError::Conflict(
            "you have already decided this step".into(),
        ));
    }
    let decided: HashSet<Uuid> = step_decisions
        .iter()
        .map(|d| d.accountable_user_id)
        .collect();
    let now = Utc::now();
    let mut accountable_options = vec![me.id];
    accountable_options.extend(delegators_of(work, me.id, now).await?);
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
    .insert(work)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, "this step was already decided for that approver")
    })?;

    let approvals_here = decided.len() as i32 + 1;
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
            let next = assignments_at(work, instance.id, index + 1).await?;
            notify_step(work, &instance, &next, me.id).await?;
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
    let updated = active.update(work).await?;
    if let Some(verdict) = &verdict {
        let subject = subjects.get(&instance.subject_type)?;
        subject
            .on_verdict(work, instance.subject_id, verdict, me.id)
            .await?;
    }
    let mut people = assignments_of_instance(work, updated.id).await?;
    people.extend([updated.initiator_id, me.id]);
    people.sort_unstable();
    people.dedup();
    let department_path = subject_department_path(work, &updated).await?;
    work.emit(&ApprovalEvent {
        kind: if verdict.is_some() {
            ApprovalEventKind::Decided
        } else {
            ApprovalEventKind::StepDecided
        },
        people,
        department_path,
        instance_id: updated.id,
        subject_type: updated.subject_type.clone(),
        subject_id: updated.subject_id,
        decided_by: me.id,
        approve,
        status: updated.status.clone(),
        at: now,
    });
    Ok(Decided {
        instance: updated,
        decision,
    })
}

/// Withdraws every pending approval of a subject (the subject was cancelled), in the caller's
/// transaction: nobody can decide it any more, and it leaves everyone's pending list.
pub async fn cancel_for_subject<C: ConnectionTrait>(db: &C, subject: SubjectRef) -> AppResult<u64> {
    let now = Utc::now();
    let updated = approval_instance::Entity::update_many()
        .col_expr(
            approval_instance::Column::Status,
            Expr::value(InstanceStatus::Cancelled.as_str()),
        )
        .col_expr(approval_instance::Column::DecidedAt, Expr::value(now))
        .filter(approval_instance::Column::SubjectType.eq(subject.kind))
        .filter(approval_instance::Column::SubjectId.eq(subject.id))
        .filter(approval_instance::Column::Status.eq(InstanceStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}
