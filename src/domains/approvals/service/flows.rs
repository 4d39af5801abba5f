//! Approval flows and their steps: defined once, used by every kind of subject.

use chrono::Utc;
use entities::{approval_flow, approval_step};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::auth::{Permission, Viewer};
use crate::domains::approvals::model::{ApproverRule, FlowChanges, FlowId, NewFlow, NewStep};
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

pub async fn create_flow(
    work: &Work,
    viewer: &Viewer,
    flow: NewFlow,
) -> AppResult<approval_flow::Model> {
    viewer.user()?.require_global(Permission::TaskConfigure)?;
    flow.validate()?;
    check_approvers(work, &flow.steps).await?;
    let now = Utc::now();
    let created = approval_flow::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(flow.name.clone()),
        allow_self_approval: Set(flow.allow_self_approval),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await?;
    insert_steps(work, created.id, created.version, &flow.steps).await?;
    Ok(created)
}

/// Every edit makes a new version, its steps beside the old ones: an approval keeps the steps
/// of the version it started on, and new ones start on the newest. Left-out steps carry over.
/// The name and `allowSelfApproval` are the flow's own and hold for running approvals too.
pub async fn update_flow(
    work: &Work,
    viewer: &Viewer,
    id: FlowId,
    changes: FlowChanges,
) -> AppResult<approval_flow::Model> {
    viewer.user()?.require_global(Permission::TaskConfigure)?;
    let current = approval_flow::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("approval flow"))?;
    if let Some(steps) = &changes.steps {
        NewFlow {
            name: current.name.clone(),
            allow_self_approval: current.allow_self_approval,
            steps: steps.clone(),
        }
        .validate()?;
        check_approvers(work, steps).await?;
    }
    // The increment is one statement, so concurrent edits get distinct versions.
    let mut bump = approval_flow::Entity::update_many()
        .col_expr(
            approval_flow::Column::Version,
            Expr::col(approval_flow::Column::Version).add(1),
        )
        .col_expr(approval_flow::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(name) = changes.name {
        bump = bump.col_expr(approval_flow::Column::Name, Expr::value(name));
    }
    if let Some(allow) = changes.allow_self_approval {
        bump = bump.col_expr(approval_flow::Column::AllowSelfApproval, Expr::value(allow));
    }
    let updated = bump
        .filter(approval_flow::Column::Id.eq(current.id))
        .exec_with_returning(work)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::not_found("approval flow"))?;
    match changes.steps {
        Some(steps) => insert_steps(work, updated.id, updated.version, &steps).await?,
        None => {
            let previous = steps_of_version(work, updated.id, updated.version - 1).await?;
            for step in previous {
                let mut copy: approval_step::ActiveModel = step.into();
                copy.id = Set(Uuid::now_v7());
                copy.version = Set(updated.version);
                copy.insert(work).await?;
            }
        }
    }
    Ok(updated)
}

async fn check_approvers(work: &Work, steps: &[NewStep]) -> AppResult<()> {
    for step in steps {
        match &step.rule {
            ApproverRule::User(id) => {
                if identity::active_users(work, vec![*id]).await?.is_empty() {
                    return Err(AppError::bad_field("approverUserId", "no such active user"));
                }
            }
            ApproverRule::Role(name) => {
                if identity::role_named(work, name).await?.is_none() {
                    return Err(AppError::bad_field(
                        "approverRole",
                        format!("no role named {name:?}"),
                    ));
                }
            }
            ApproverRule::DepartmentHead | ApproverRule::Field(_) => {}
        }
    }
    Ok(())
}

async fn insert_steps(
    work: &Work,
    flow_id: Uuid,
    version: i32,
    steps: &[NewStep],
) -> AppResult<()> {
    for (position, step) in steps.iter().enumerate() {
        approval_step::ActiveModel {
            id: Set(Uuid::now_v7()),
            flow_id: Set(flow_id),
            version: Set(version),
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
        .insert(work)
        .await?;
    }
    Ok(())
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

/// The steps of each flow's newest version, in order.
pub async fn steps_of<C: ConnectionTrait>(
    db: &C,
    flow_ids: &[Uuid],
) -> AppResult<Vec<approval_step::Model>> {
    Ok(approval_step::Entity::find()
        .filter(approval_step::Column::FlowId.is_in(flow_ids.iter().copied()))
        .filter(Expr::cust(
            "approval_steps.version = (SELECT f.version FROM approval_flows f \
             WHERE f.id = approval_steps.flow_id)",
        ))
        .order_by_asc(approval_step::Column::FlowId)
        .order_by_asc(approval_step::Column::Position)
        .all(db)
        .await?)
}

/// The steps of one version of a flow, in order: what an approval started on it is decided by.
pub async fn steps_of_version<C: ConnectionTrait>(
    db: &C,
    flow_id: Uuid,
    version: i32,
) -> AppResult<Vec<approval_step::Model>> {
    Ok(approval_step::Entity::find()
        .filter(approval_step::Column::FlowId.eq(flow_id))
        .filter(approval_step::Column::Version.eq(version))
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
