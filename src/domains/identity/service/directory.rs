//! Reading people, departments and roles, and who may see whose grants.

use std::collections::HashMap;

use entities::{department, role, role_grant, user};
use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::auth::{Permission, Viewer};
use crate::domains::identity::model::{DepartmentId, UserId};
use crate::error::{AppError, AppResult};

pub fn role_permissions(role: &role::Model) -> Vec<Permission> {
    role.permissions
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str()?.parse::<Permission>().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn grants_with_roles<C: ConnectionTrait>(
    db: &C,
    user_ids: &[Uuid],
) -> AppResult<Vec<(role_grant::Model, role::Model)>> {
    let rows = role_grant::Entity::find()
        .filter(role_grant::Column::UserId.is_in(user_ids.iter().copied()))
        .find_also_related(role::Entity)
        .order_by_asc(role_grant::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(grant, role)| Some((grant, role?)))
        .collect())
}

pub(super) async fn department_paths<C: ConnectionTrait>(
    db: &C,
    ids: Vec<Uuid>,
) -> AppResult<HashMap<Uuid, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(department::Entity::find()
        .filter(department::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.path))
        .collect())
}

/// Any signed-in user may look people up; the directory is shared across the company.
pub async fn find_user<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: UserId,
) -> AppResult<user::Model> {
    viewer.user()?;
    user::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))
}

pub async fn me<C: ConnectionTrait>(db: &C, viewer: &Viewer) -> AppResult<user::Model> {
    let me = viewer.user()?;
    find_user(db, viewer, UserId(me.id)).await
}

pub struct UserFilter {
    pub department_id: Option<DepartmentId>,
    pub active: Option<bool>,
    pub search: Option<String>,
}

pub struct UserPage {
    pub users: Vec<user::Model>,
    pub has_next: bool,
    pub total: u64,
}

pub async fn list_users<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: UserFilter,
    after: Option<Uuid>,
    first: u64,
) -> AppResult<UserPage> {
    viewer.user()?.require_global(Permission::Admin)?;
    let mut query = user::Entity::find();
    if let Some(department) = filter.department_id {
        query = query.filter(user::Column::DepartmentId.eq(department.0));
    }
    if let Some(active) = filter.active {
        query = query.filter(user::Column::IsActive.eq(active));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = crate::platform::db::contains_pattern(&search.to_lowercase());
        query = query.filter(
            sea_orm::Condition::any()
                .add(user::Column::EmailNormalized.like(pattern.clone()))
                .add(
                    Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(
                        user::Column::Name,
                    )))
                    .like(pattern),
                ),
        );
    }
    let total = query.clone().count(db).await?;
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    let mut users = query
        .order_by_asc(user::Column::Id)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = users.len() as u64 > first;
    users.truncate(first as usize);
    Ok(UserPage {
        users,
        has_next,
        total,
    })
}

pub async fn list_departments<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<department::Model>> {
    viewer.user()?;
    Ok(department::Entity::find()
        .order_by_asc(department::Column::Path)
        .all(db)
        .await?)
}

pub async fn find_department<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: DepartmentId,
) -> AppResult<department::Model> {
    viewer.user()?;
    department::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("department"))
}

pub async fn list_roles<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<role::Model>> {
    viewer.user()?.require_global(Permission::Admin)?;
    Ok(role::Entity::find()
        .order_by_asc(role::Column::Name)
        .all(db)
        .await?)
}

/// Roles and permissions are private to their holder and to administrators.
pub fn can_see_grants_of(viewer: &Viewer, user_id: Uuid) -> AppResult<()> {
    let me = viewer.user()?;
    if me.id == user_id || me.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only the user and administrators see a user's roles".into(),
        ))
    }
}
