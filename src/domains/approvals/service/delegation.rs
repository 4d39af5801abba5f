//! Out-of-office delegation of one's approvals to another user.

use chrono::{DateTime, Utc};
use entities::approval_delegation;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::auth::Viewer;
use crate::domains::approvals::model::{ApprovalEvent, ApprovalEventKind};
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

pub async fn delegate(
    work: &Work,
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
    if identity::active_users(work, vec![to_user])
        .await?
        .is_empty()
    {
        return Err(AppError::bad_field("toUserId", "no such active user"));
    }
    let delegation = approval_delegation::ActiveModel {
        id: Set(Uuid::now_v7()),
        from_user_id: Set(me.id),
        to_user_id: Set(to_user),
        starts_at: Set(starts_at),
        ends_at: Set(ends_at),
        created_at: Set(Utc::now()),
    }
    .insert(work)
    .await?;
    work.emit(&ApprovalEvent {
        kind: ApprovalEventKind::Delegated,
        people: vec![me.id, to_user],
        department_path: None,
        instance_id: delegation.id,
        subject_type: "approval_delegation".to_owned(),
        subject_id: delegation.id,
        decided_by: me.id,
        approve: true,
        status: "ACTIVE".to_owned(),
        at: delegation.created_at,
    });
    Ok(delegation)
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
