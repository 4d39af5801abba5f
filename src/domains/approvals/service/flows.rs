//! Approval flows and their steps: defined once, used by every kind of subject.

use chrono::Utc;
use entities::{approval_flow, approval_step};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::auth::{Permission, Viewer};
use crate::domains::approvals::model::{ApproverRule, FlowId, NewFlow};
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
    for step in &flow.steps {
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
    let now = Utc::now();
    let created = approval_flow::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(flow.name.clone()),
        allow_self_approval: Set(flow.allow_self_approval),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
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
        .insert(work)
        .await?;
    }
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
