//! Reading approvals: progress, cycle time, what waits on whom.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entities::{approval_assignment, approval_decision, approval_instance};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::auth::Viewer;
use crate::domains::approvals::model::InstanceStatus;
use crate::error::AppResult;

use super::*;

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
    let steps = steps_of_version(db, instance.flow_id, instance.flow_version).await?;
    let current = positions
        .get(instance.current_index as usize)
        .and_then(|p| steps.iter().find(|s| s.position == *p));
    let pending_approvers = if status == Some(InstanceStatus::Pending) {
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
        current_step_name: (status == Some(InstanceStatus::Pending))
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
        Some(InstanceStatus::Pending) | None => instance.current_index,
        Some(_) => instance.current_index + 1,
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
/// Everyone ever assigned to any approval of the subject, every round included: the same
/// set `subjects_assigned_to` selects in SQL.
pub async fn assignees_of_subject<C: ConnectionTrait>(
    db: &C,
    subject_kind: &str,
    subject_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    let instances: Vec<Uuid> = approval_instance::Entity::find()
        .filter(approval_instance::Column::SubjectType.eq(subject_kind))
        .filter(approval_instance::Column::SubjectId.eq(subject_id))
        .all(db)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    Ok(approval_assignment::Entity::find()
        .filter(approval_assignment::Column::InstanceId.is_in(instances))
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

/// Every review record ever made on one subject, across resubmissions, oldest first.
pub async fn decisions_for_subject<C: ConnectionTrait>(
    db: &C,
    subject_kind: &str,
    subject_id: Uuid,
) -> AppResult<Vec<approval_decision::Model>> {
    let instances: Vec<Uuid> = approval_instance::Entity::find()
        .filter(approval_instance::Column::SubjectType.eq(subject_kind))
        .filter(approval_instance::Column::SubjectId.eq(subject_id))
        .all(db)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    if instances.is_empty() {
        return Ok(Vec::new());
    }
    decisions_of(db, &instances).await
}

/// The subject's user fields (`executorIds`, `confirmerId`, …) that chose approvers in the
/// version of the flow `instance_id` ran on: the people named there were part of what was
/// approved, so the subject should not swap them afterwards.
pub async fn fields_that_chose_approvers<C: ConnectionTrait>(
    db: &C,
    instance_id: Uuid,
) -> AppResult<Vec<String>> {
    let Some(instance) = approval_instance::Entity::find_by_id(instance_id)
        .one(db)
        .await?
    else {
        return Ok(Vec::new());
    };
    Ok(
        steps_of_version(db, instance.flow_id, instance.flow_version)
            .await?
            .into_iter()
            .filter_map(|step| step.approver_field)
            .collect(),
    )
}
