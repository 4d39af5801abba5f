//! SLA escalation, run by the scheduler: a step pending past its SLA reminds its approvers
//! (and whoever they have delegated to) and brings in the department head as an approver.

use chrono::{DateTime, Utc};
use entities::{
    approval_assignment, approval_delegation, approval_escalation, approval_instance, approval_step,
};
use sea_orm::prelude::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::decode_positions;
use super::engine::{assignments_at, subject_kind};
use crate::domains::approvals::model::{ApprovalEvent, ApprovalEventKind, InstanceStatus};
use crate::domains::identity::service as identity;
use crate::domains::notifications::model::{NotificationKind, Subject};
use crate::domains::notifications::service::{self as notifications, Notice};
use crate::error::AppResult;
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

/// Pending instances one scan looks at, oldest step first.
const SCAN_BATCH: u64 = 2000;

/// A pending step whose SLA has run out, as a scan found it.
pub struct LateStep {
    instance: approval_instance::Model,
    step: approval_step::Model,
}

/// The pending steps whose SLA has run out and that were not escalated yet, oldest first.
pub async fn late_steps<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
) -> AppResult<Vec<LateStep>> {
    // No SLA is shorter than an hour, so younger steps cannot be late.
    let candidates = approval_instance::Entity::find()
        .filter(approval_instance::Column::Status.eq(InstanceStatus::Pending.as_str()))
        .filter(approval_instance::Column::StepStartedAt.lte(now - chrono::Duration::hours(1)))
        // Escalated steps drop out here, so they cannot crowd out newer late ones.
        .filter(Expr::cust(
            "NOT EXISTS (SELECT 1 FROM approval_escalations e WHERE e.instance_id = \
             approval_instances.id AND e.step_index = approval_instances.current_index)",
        ))
        .order_by_asc(approval_instance::Column::StepStartedAt)
        .limit(SCAN_BATCH)
        .all(db)
        .await?;
    let mut late = Vec::new();
    for instance in candidates {
        let Some(position) = decode_positions(&instance)
            .get(instance.current_index as usize)
            .copied()
        else {
            continue;
        };
        let Some(step) = approval_step::Entity::find()
            .filter(approval_step::Column::FlowId.eq(instance.flow_id))
            .filter(approval_step::Column::Version.eq(instance.flow_version))
            .filter(approval_step::Column::Position.eq(position))
            .one(db)
            .await?
        else {
            continue;
        };
        let Some(sla_hours) = step.sla_hours else {
            continue;
        };
        if instance.step_started_at + chrono::Duration::hours(i64::from(sla_hours)) > now {
            continue;
        }
        late.push(LateStep { instance, step });
    }
    Ok(late)
}

/// Escalates one late step, once per instance and step: reminds its approvers and their
/// delegates, and adds the department head as an approver. `false` when someone decided or
/// escalated it since the scan.
pub async fn escalate_step(work: &Work, late: &LateStep, now: DateTime<Utc>) -> AppResult<bool> {
    let LateStep { instance, step } = late;
    // The same lock `decide` takes: a decision and an escalation of one step never interleave,
    // and a step decided since the scan read it is left alone.
    lock_in_transaction(work, &format!("approval:{}", instance.id)).await?;
    let current = approval_instance::Entity::find_by_id(instance.id)
        .one(work)
        .await?;
    let unchanged = current.is_some_and(|c| {
        c.status == InstanceStatus::Pending.as_str()
            && c.current_index == instance.current_index
            && c.step_started_at == instance.step_started_at
    });
    if !unchanged {
        return Ok(false);
    }
    let index = instance.current_index;
    let head = identity::department_head_for(work, instance.subject_department_id).await?;
    let marked = approval_escalation::Entity::insert(approval_escalation::ActiveModel {
        instance_id: Set(instance.id),
        step_index: Set(index),
        escalated_to: Set(head),
        escalated_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(work)
    .await?;
    if !matches!(marked, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok(false);
    }
    let approvers = assignments_at(work, instance.id, index).await?;
    let delegates: Vec<Uuid> = approval_delegation::Entity::find()
        .filter(approval_delegation::Column::FromUserId.is_in(approvers.clone()))
        .filter(approval_delegation::Column::StartsAt.lte(now))
        .filter(approval_delegation::Column::EndsAt.gt(now))
        .all(work)
        .await?
        .into_iter()
        .map(|d| d.to_user_id)
        .collect();
    if let Some(head) = head.filter(|h| !approvers.contains(h) && *h != instance.initiator_id) {
        approval_assignment::ActiveModel {
            id: Set(Uuid::now_v7()),
            instance_id: Set(instance.id),
            step_index: Set(index),
            user_id: Set(head),
            created_at: Set(now),
        }
        .insert(work)
        .await?;
    }
    let mut people = super::engine::assignments_of_instance(work, instance.id).await?;
    people.push(instance.initiator_id);
    let mut recipients = approvers;
    recipients.extend(delegates);
    recipients.extend(head);
    let body = format!(
        "The step \"{}\" has waited longer than its {} h SLA and was escalated to the department head.",
        step.name,
        step.sla_hours.unwrap_or_default()
    );
    notifications::notify(
        work,
        &recipients,
        None,
        Notice {
            kind: NotificationKind::ApprovalEscalated,
            title: "An approval is overdue",
            body: &body,
            subject: Some(Subject {
                kind: subject_kind(&instance.subject_type),
                id: instance.subject_id,
            }),
        },
    )
    .await?;
    people.extend(recipients.iter().copied());
    people.sort_unstable();
    people.dedup();
    let department_path = super::engine::subject_department_path(work, instance).await?;
    work.emit(&ApprovalEvent {
        kind: ApprovalEventKind::Escalated,
        people,
        department_path,
        instance_id: instance.id,
        subject_type: instance.subject_type.clone(),
        subject_id: instance.subject_id,
        decided_by: uuid::Uuid::nil(),
        approve: false,
        status: instance.status.clone(),
        at: now,
    });
    Ok(true)
}
