//! Roles, their permissions, and granting them globally or per department subtree.

use chrono::Utc;
use entities::{department, role, role_grant, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::*;
use crate::auth::{Permission, Viewer};
use crate::domains::identity::model::{
    DepartmentId, IdentityEvent, IdentityEventKind, NewRole, RoleGrantId, RoleId, UserId,
};
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

pub async fn create_role(work: &Work, viewer: &Viewer, input: NewRole) -> AppResult<role::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let now = Utc::now();
    let created = role::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(input.name.clone()),
        permissions: Set(serde_json::json!(input
            .permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, format!("a role named {:?} already exists", input.name))
    })?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::RoleCreated,
        created.id,
        Some(me.id),
    ));
    Ok(created)
}

/// A change of permissions reaches the role's holders at once: the event names them, so their
/// open connections resolve their grants again.
pub async fn update_role(
    work: &Work,
    viewer: &Viewer,
    id: RoleId,
    name: Option<String>,
    permissions: Option<std::collections::BTreeSet<Permission>>,
) -> AppResult<role::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    lock_in_transaction(work, "admin-guard").await?;
    let current = role::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("role"))?;
    let mut active: role::ActiveModel = current.into();
    if let Some(name) = &name {
        active.name = Set(name.clone());
    }
    let permissions_changed = permissions.is_some();
    if let Some(permissions) = permissions {
        active.permissions = Set(serde_json::json!(permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()));
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(work).await.map_err(|e| {
        AppError::from_unique_violation(
            e,
            format!("a role named {:?} already exists", name.unwrap_or_default()),
        )
    })?;
    ensure_an_admin_remains(work).await?;
    let mut event = IdentityEvent::new(IdentityEventKind::RoleUpdated, updated.id, Some(me.id));
    if permissions_changed {
        event.people = holders_of(work, updated.id).await?;
    }
    work.emit(&event);
    Ok(updated)
}

/// Refuses a change that would leave no active user holding `admin` everywhere: nobody could
/// manage the installation any more.
async fn ensure_an_admin_remains<C: ConnectionTrait>(db: &C) -> AppResult<()> {
    let admins: Vec<Uuid> = role_grant::Entity::find()
        .filter(role_grant::Column::DepartmentId.is_null())
        .find_also_related(role::Entity)
        .all(db)
        .await?
        .into_iter()
        .filter(|(_, role)| {
            role.as_ref()
                .is_some_and(|r| role_permissions(r).contains(&Permission::Admin))
        })
        .map(|(grant, _)| grant.user_id)
        .collect();
    let active = user::Entity::find()
        .filter(user::Column::Id.is_in(admins))
        .filter(user::Column::IsActive.eq(true))
        .one(db)
        .await?;
    if active.is_none() {
        return Err(AppError::Conflict(
            "this would leave no active administrator".into(),
        ));
    }
    Ok(())
}

/// Everyone holding `role_id` in any scope, once each.
async fn holders_of<C: ConnectionTrait>(db: &C, role_id: Uuid) -> AppResult<Vec<Uuid>> {
    let mut holders: Vec<Uuid> = role_grant::Entity::find()
        .filter(role_grant::Column::RoleId.eq(role_id))
        .all(db)
        .await?
        .into_iter()
        .map(|grant| grant.user_id)
        .collect();
    holders.sort_unstable();
    holders.dedup();
    Ok(holders)
}

pub(super) async fn insert_grant<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    role_id: Uuid,
    department_id: Option<Uuid>,
) -> Result<role_grant::Model, sea_orm::DbErr> {
    role_grant::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        role_id: Set(role_id),
        department_id: Set(department_id),
        scope_key: Set(department_id.map_or_else(|| "*".to_owned(), |d| d.to_string())),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

pub async fn grant_role(
    work: &Work,
    viewer: &Viewer,
    user_id: UserId,
    role_id: RoleId,
    department_id: Option<DepartmentId>,
) -> AppResult<(role_grant::Model, role::Model)> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    user::Entity::find_by_id(user_id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::bad_field("userId", "no such user"))?;
    let role = role::Entity::find_by_id(role_id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::bad_field("roleId", "no such role"))?;
    if let Some(department) = department_id {
        department::Entity::find_by_id(department.0)
            .one(work)
            .await?
            .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))?;
    }
    let grant = insert_grant(work, user_id.0, role_id.0, department_id.map(|d| d.0))
        .await
        .map_err(|e| {
            AppError::from_unique_violation(e, "the user already holds this role in this scope")
        })?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::RoleGranted,
        user_id.0,
        Some(me.id),
    ));
    Ok((grant, role))
}

/// Whose grant this is, for an administrator (`None` when there is no such grant).
pub async fn grant_holder<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    grant_id: RoleGrantId,
) -> AppResult<Option<Uuid>> {
    viewer.user()?.require_global(Permission::Admin)?;
    Ok(role_grant::Entity::find_by_id(grant_id.0)
        .one(db)
        .await?
        .map(|g| g.user_id))
}

pub async fn revoke_grant(work: &Work, viewer: &Viewer, grant_id: RoleGrantId) -> AppResult<bool> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    lock_in_transaction(work, "admin-guard").await?;
    let grant = role_grant::Entity::find_by_id(grant_id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("role grant"))?;
    role_grant::Entity::delete_by_id(grant.id)
        .exec(work)
        .await?;
    ensure_an_admin_remains(work).await?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::RoleRevoked,
        grant.user_id,
        Some(me.id),
    ));
    Ok(true)
}
