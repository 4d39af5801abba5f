//! Identity rules: sessions, the department tree, users, roles and grants.

use std::collections::HashMap;

use chrono::Utc;
use entities::{department, refresh_token, role, role_grant, user};
use sea_orm::prelude::Expr;
use sea_orm::sea_query::LockType;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::model::{
    department_path, would_make_cycle, DepartmentChanges, DepartmentId, Email, IdentityEvent,
    IdentityEventKind, NewDepartment, NewPassword, NewRole, NewUser, RoleGrantId, RoleId,
    UserChanges, UserId,
};
use crate::auth::jwt::{Claims, JwtKeys};
use crate::auth::viewer::{Scope, ScopedPermission};
use crate::auth::{password, tokens, Permission, Viewer, ViewerUser};
use crate::error::{AppError, AppResult};
use crate::platform::cache::Cache;
use crate::platform::events::{self, EventBus};

/// What a successful login or refresh hands back.
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in_secs: i64,
    pub user: user::Model,
}

pub struct LoginPolicy {
    pub failures_per_window: i64,
    pub window: std::time::Duration,
    pub refresh_ttl: std::time::Duration,
}

/// The administrator made on first start, with the password when it was generated here.
pub struct FirstAdmin {
    pub email: String,
    pub generated_password: Option<String>,
}

async fn announce(
    bus: &dyn EventBus,
    kind: IdentityEventKind,
    subject_id: Uuid,
    actor: Option<Uuid>,
) {
    let event = IdentityEvent {
        kind,
        subject_id,
        actor_id: actor,
        at: Utc::now(),
    };
    // The change is committed; a lost live notification must not turn it into an error.
    if let Err(err) = events::publish(bus, &event).await {
        tracing::warn!(error = ?err, "publishing identity event failed");
    }
}

/// On PostgreSQL, serialises changes to one aggregate (the department tree, a refresh-token
/// family) inside the current transaction. SQLite already has a single writer.
async fn lock_key<C: ConnectionTrait>(db: &C, key: &str) -> AppResult<()> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- first start

pub async fn ensure_first_admin<C>(
    db: &C,
    email: Option<&str>,
    password_text: Option<&str>,
) -> AppResult<Option<FirstAdmin>>
where
    C: ConnectionTrait + TransactionTrait,
{
    if user::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    let email = Email::parse(email.unwrap_or("admin@interlink.local"))?;
    let (password_text, generated) = match password_text {
        Some(p) => (p.to_owned(), None),
        None => {
            let p = tokens::generate()[..20].to_owned();
            (p.clone(), Some(p))
        }
    };
    let hash = password::hash(NewPassword::parse(&password_text)?.into_inner()).await?;
    let now = Utc::now();
    let txn = db.begin().await?;
    // Nodes starting together take turns; whoever comes second sees the first one's admin.
    lock_key(&txn, "first-admin").await?;
    if user::Entity::find().count(&txn).await? > 0 {
        return Ok(None);
    }
    let role_id = match role::Entity::find()
        .filter(role::Column::Name.eq("Administrator"))
        .one(&txn)
        .await?
    {
        Some(existing) => existing.id,
        None => {
            role::ActiveModel {
                id: Set(Uuid::now_v7()),
                name: Set("Administrator".into()),
                permissions: Set(serde_json::json!([Permission::Admin.as_str()])),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?
            .id
        }
    };
    let admin = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.display.clone()),
        email_normalized: Set(email.normalized.clone()),
        name: Set("Administrator".into()),
        department_id: Set(None),
        password_hash: Set(hash),
        is_active: Set(true),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    insert_grant(&txn, admin.id, role_id, None).await?;
    txn.commit().await?;
    Ok(Some(FirstAdmin {
        email: email.display,
        generated_password: generated,
    }))
}

// ---------------------------------------------------------------- sessions

pub async fn login<C>(
    db: &C,
    cache: &dyn Cache,
    keys: &JwtKeys,
    policy: &LoginPolicy,
    email: &str,
    password_text: &str,
) -> AppResult<Session>
where
    C: ConnectionTrait + TransactionTrait,
{
    let rejected = || AppError::Unauthenticated("wrong email or password".into());
    // A malformed email is treated as unknown so the answer never tells which part failed.
    let normalized = Email::parse(email)
        .map(|e| e.normalized)
        .unwrap_or_default();
    let limiter_key = format!("login-failures:{normalized}");
    let failures = cache
        .counter(&limiter_key)
        .await
        .map_err(AppError::internal)?;
    if failures >= policy.failures_per_window {
        return Err(AppError::RateLimited(
            "too many failed sign-ins for this account; try again later".into(),
        ));
    }

    let found = if normalized.is_empty() {
        None
    } else {
        user::Entity::find()
            .filter(user::Column::EmailNormalized.eq(normalized.as_str()))
            .one(db)
            .await?
    };
    let stored_hash = found.as_ref().map(|u| u.password_hash.clone());
    let password_ok = password::verify(password_text.to_owned(), stored_hash).await?;
    let user = match found {
        Some(user) if password_ok && user.is_active => user,
        _ => {
            cache
                .increment(&limiter_key, policy.window)
                .await
                .map_err(AppError::internal)?;
            return Err(rejected());
        }
    };
    start_session(db, keys, policy.refresh_ttl, user, Uuid::now_v7()).await
}

async fn start_session<C: ConnectionTrait>(
    db: &C,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    user: user::Model,
    family_id: Uuid,
) -> AppResult<Session> {
    let refresh_token = tokens::generate();
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(refresh_ttl).map_err(AppError::internal)?;
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        family_id: Set(family_id),
        token_hash: Set(tokens::digest(&refresh_token)),
        expires_at: Set(now + ttl),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(Session {
        access_token: keys.issue(user.id, user.token_version)?,
        refresh_token,
        expires_in_secs: keys.access_ttl_secs(),
        user,
    })
}

/// Rotates a refresh token. A token that was already used is a sign of theft: the whole
/// family is revoked, so the thief's copy dies with the victim's.
pub async fn refresh<C>(
    db: &C,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    presented: &str,
) -> AppResult<Session>
where
    C: ConnectionTrait + TransactionTrait,
{
    let rejected = || AppError::Unauthenticated("invalid or expired refresh token".into());
    let txn = db.begin().await?;
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(tokens::digest(presented)))
        .one(&txn)
        .await?
    else {
        return Err(rejected());
    };
    lock_key(&txn, &format!("refresh-family:{}", token.family_id)).await?;
    // Re-read under the family lock: a concurrent rotation may have spent it meanwhile.
    let token = refresh_token::Entity::find_by_id(token.id)
        .one(&txn)
        .await?
        .ok_or_else(rejected)?;
    let now = Utc::now();
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Err(rejected());
    }
    if token.used_at.is_some() {
        revoke_family(&txn, token.family_id).await?;
        txn.commit().await?;
        tracing::warn!(family = %token.family_id, "refresh token reused; family revoked");
        return Err(rejected());
    }
    let user = user::Entity::find_by_id(token.user_id)
        .one(&txn)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(rejected)?;
    let mut spent: refresh_token::ActiveModel = token.clone().into();
    spent.used_at = Set(Some(now));
    spent.update(&txn).await?;
    let session = start_session(&txn, keys, refresh_ttl, user, token.family_id).await?;
    txn.commit().await?;
    Ok(session)
}

async fn revoke_family<C: ConnectionTrait>(db: &C, family_id: Uuid) -> AppResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends one session (the refresh token's family), or with `everywhere` every session and
/// every access token of the signed-in user.
pub async fn logout<C>(
    db: &C,
    viewer: &Viewer,
    presented: Option<&str>,
    everywhere: bool,
) -> AppResult<bool>
where
    C: ConnectionTrait + TransactionTrait,
{
    if everywhere {
        let me = viewer.user()?;
        let txn = db.begin().await?;
        bump_token_version(&txn, me.id).await?;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::UserId.eq(me.id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        return Ok(true);
    }
    let Some(presented) = presented else {
        return Err(AppError::bad_field(
            "refreshToken",
            "give the refresh token to end, or allSessions: true",
        ));
    };
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(tokens::digest(presented)))
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    revoke_family(db, token.family_id).await?;
    Ok(true)
}

async fn bump_token_version<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Resolves verified access-token claims into a Viewer, refusing deactivated users and
/// tokens issued before the user's last password change or deactivation.
pub async fn viewer_from_claims<C: ConnectionTrait>(
    db: &C,
    claims: &Claims,
) -> AppResult<ViewerUser> {
    let rejected = || AppError::Unauthenticated("invalid or expired access token".into());
    let user_id = Uuid::parse_str(&claims.sub).map_err(|_| rejected())?;
    let user = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .filter(|u| u.is_active && u.token_version == claims.ver)
        .ok_or_else(rejected)?;
    let grants = grants_with_roles(db, &[user.id]).await?;
    let department_paths = department_paths(
        db,
        grants.iter().filter_map(|(g, _)| g.department_id).collect(),
    )
    .await?;
    let mut scoped = Vec::new();
    for (grant, role) in grants {
        let scope = match grant.department_id {
            None => Scope::Global,
            Some(department) => match department_paths.get(&department) {
                Some(path) => Scope::Subtree { path: path.clone() },
                None => continue,
            },
        };
        for permission in role_permissions(&role) {
            scoped.push(ScopedPermission {
                permission,
                scope: scope.clone(),
            });
        }
    }
    Ok(ViewerUser {
        id: user.id,
        department_id: user.department_id,
        grants: scoped,
    })
}

// ---------------------------------------------------------------- reads

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

async fn department_paths<C: ConnectionTrait>(
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
        let pattern = format!("%{}%", search.to_lowercase().replace(['%', '_'], ""));
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

// ---------------------------------------------------------------- departments

pub async fn create_department<C>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    input: NewDepartment,
) -> AppResult<department::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let id = DepartmentId(Uuid::now_v7());
    let parent_path = match input.parent_id {
        Some(parent) => Some(
            department::Entity::find_by_id(parent.0)
                .one(db)
                .await?
                .ok_or_else(|| AppError::bad_field("parentId", "no such parent department"))?
                .path,
        ),
        None => None,
    };
    let now = Utc::now();
    let created = department::ActiveModel {
        id: Set(id.0),
        name: Set(input.name),
        parent_id: Set(input.parent_id.map(|p| p.0)),
        path: Set(department_path(parent_path.as_deref(), id)),
        head_user_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    announce(
        bus,
        IdentityEventKind::DepartmentChanged,
        created.id,
        Some(me.id),
    )
    .await;
    Ok(created)
}

pub async fn update_department<C>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    id: DepartmentId,
    changes: DepartmentChanges,
) -> AppResult<department::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let txn = db.begin().await?;
    lock_key(&txn, "department-tree").await?;
    let current = department::Entity::find_by_id(id.0)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("department"))?;
    let mut active: department::ActiveModel = current.clone().into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(head) = changes.head_user_id {
        if let Some(head) = head {
            user::Entity::find_by_id(head.0)
                .one(&txn)
                .await?
                .ok_or_else(|| AppError::bad_field("headUserId", "no such user"))?;
        }
        active.head_user_id = Set(head.map(|h| h.0));
    }
    if let Some(new_parent) = changes.parent_id {
        let new_parent_path = match new_parent {
            Some(parent) => {
                let parent = department::Entity::find_by_id(parent.0)
                    .one(&txn)
                    .await?
                    .ok_or_else(|| AppError::bad_field("parentId", "no such parent department"))?;
                if would_make_cycle(&current.path, &parent.path) {
                    return Err(AppError::bad_field(
                        "parentId",
                        "a department cannot move under itself or its own descendant",
                    ));
                }
                Some(parent.path)
            }
            None => None,
        };
        let new_path = department_path(new_parent_path.as_deref(), id);
        if new_path != current.path {
            let subtree = department::Entity::find()
                .filter(department::Column::Path.starts_with(current.path.as_str()))
                .lock(LockType::Update)
                .all(&txn)
                .await?;
            for node in subtree.into_iter().filter(|d| d.id != current.id) {
                let moved = format!("{new_path}{}", &node.path[current.path.len()..]);
                let mut node: department::ActiveModel = node.into();
                node.path = Set(moved);
                node.update(&txn).await?;
            }
        }
        active.parent_id = Set(new_parent.map(|p| p.0));
        active.path = Set(new_path);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    announce(
        bus,
        IdentityEventKind::DepartmentChanged,
        updated.id,
        Some(me.id),
    )
    .await;
    Ok(updated)
}

// ---------------------------------------------------------------- roles and grants

pub async fn create_role<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    input: NewRole,
) -> AppResult<role::Model> {
    viewer.user()?.require_global(Permission::Admin)?;
    let now = Utc::now();
    role::ActiveModel {
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
    .insert(db)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, format!("a role named {:?} already exists", input.name))
    })
}

pub async fn update_role<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: RoleId,
    name: Option<String>,
    permissions: Option<std::collections::BTreeSet<Permission>>,
) -> AppResult<role::Model> {
    viewer.user()?.require_global(Permission::Admin)?;
    let current = role::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("role"))?;
    let mut active: role::ActiveModel = current.into();
    if let Some(name) = &name {
        active.name = Set(name.clone());
    }
    if let Some(permissions) = permissions {
        active.permissions = Set(serde_json::json!(permissions
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()));
    }
    active.updated_at = Set(Utc::now());
    active.update(db).await.map_err(|e| {
        AppError::from_unique_violation(
            e,
            format!("a role named {:?} already exists", name.unwrap_or_default()),
        )
    })
}

async fn insert_grant<C: ConnectionTrait>(
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

pub async fn grant_role<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    user_id: UserId,
    role_id: RoleId,
    department_id: Option<DepartmentId>,
) -> AppResult<(role_grant::Model, role::Model)> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    user::Entity::find_by_id(user_id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_field("userId", "no such user"))?;
    let role = role::Entity::find_by_id(role_id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_field("roleId", "no such role"))?;
    if let Some(department) = department_id {
        department::Entity::find_by_id(department.0)
            .one(db)
            .await?
            .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))?;
    }
    let grant = insert_grant(db, user_id.0, role_id.0, department_id.map(|d| d.0))
        .await
        .map_err(|e| {
            AppError::from_unique_violation(e, "the user already holds this role in this scope")
        })?;
    announce(bus, IdentityEventKind::RoleGranted, user_id.0, Some(me.id)).await;
    Ok((grant, role))
}

pub async fn revoke_grant<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    grant_id: RoleGrantId,
) -> AppResult<bool> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let grant = role_grant::Entity::find_by_id(grant_id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("role grant"))?;
    if grant.user_id == me.id && is_last_global_admin_grant(db, &grant).await? {
        return Err(AppError::Conflict(
            "you cannot revoke the last administrator grant".into(),
        ));
    }
    role_grant::Entity::delete_by_id(grant.id).exec(db).await?;
    announce(
        bus,
        IdentityEventKind::RoleRevoked,
        grant.user_id,
        Some(me.id),
    )
    .await;
    Ok(true)
}

async fn is_last_global_admin_grant<C: ConnectionTrait>(
    db: &C,
    grant: &role_grant::Model,
) -> AppResult<bool> {
    if grant.department_id.is_some() {
        return Ok(false);
    }
    let admin_grants = role_grant::Entity::find()
        .filter(role_grant::Column::DepartmentId.is_null())
        .find_also_related(role::Entity)
        .all(db)
        .await?
        .into_iter()
        .filter(|(_, role)| {
            role.as_ref()
                .is_some_and(|r| role_permissions(r).contains(&Permission::Admin))
        })
        .collect::<Vec<_>>();
    Ok(admin_grants.len() <= 1 && admin_grants.iter().any(|(g, _)| g.id == grant.id))
}

// ---------------------------------------------------------------- users

pub async fn create_user<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    input: NewUser,
) -> AppResult<user::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    if let Some(department) = input.department_id {
        department::Entity::find_by_id(department.0)
            .one(db)
            .await?
            .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))?;
    }
    let hash = password::hash(input.password.into_inner()).await?;
    let now = Utc::now();
    let created = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(input.email.display.clone()),
        email_normalized: Set(input.email.normalized.clone()),
        name: Set(input.name),
        department_id: Set(input.department_id.map(|d| d.0)),
        password_hash: Set(hash),
        is_active: Set(true),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|e| AppError::from_unique_violation(e, "a user with this email already exists"))?;
    announce(bus, IdentityEventKind::UserCreated, created.id, Some(me.id)).await;
    Ok(created)
}

pub async fn update_user<C: ConnectionTrait>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    id: UserId,
    changes: UserChanges,
) -> AppResult<user::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let current = user::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let mut active: user::ActiveModel = current.into();
    if let Some(email) = changes.email {
        active.email = Set(email.display);
        active.email_normalized = Set(email.normalized);
    }
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(department) = changes.department_id {
        if let Some(department) = department {
            department::Entity::find_by_id(department.0)
                .one(db)
                .await?
                .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))?;
        }
        active.department_id = Set(department.map(|d| d.0));
    }
    active.updated_at = Set(Utc::now());
    let updated = active
        .update(db)
        .await
        .map_err(|e| AppError::from_unique_violation(e, "a user with this email already exists"))?;
    announce(bus, IdentityEventKind::UserUpdated, updated.id, Some(me.id)).await;
    Ok(updated)
}

/// Deactivation also ends every session: refresh tokens are revoked and the token version
/// moves on, so outstanding access tokens stop working at once.
pub async fn set_user_active<C>(
    db: &C,
    bus: &dyn EventBus,
    viewer: &Viewer,
    id: UserId,
    active_flag: bool,
) -> AppResult<user::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    if me.id == id.0 && !active_flag {
        return Err(AppError::Conflict("you cannot deactivate yourself".into()));
    }
    let txn = db.begin().await?;
    let current = user::Entity::find_by_id(id.0)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    let mut active: user::ActiveModel = current.clone().into();
    active.is_active = Set(active_flag);
    if !active_flag {
        active.token_version = Set(current.token_version + 1);
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::UserId.eq(id.0))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    let kind = if active_flag {
        IdentityEventKind::UserReactivated
    } else {
        IdentityEventKind::UserDeactivated
    };
    announce(bus, kind, updated.id, Some(me.id)).await;
    Ok(updated)
}

/// A password change ends every other session of the user.
pub async fn change_password<C>(
    db: &C,
    viewer: &Viewer,
    target: UserId,
    current_password: Option<&str>,
    new_password: NewPassword,
) -> AppResult<user::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let me = viewer.user()?;
    if me.id != target.0 {
        me.require_global(Permission::Admin)?;
    }
    let user = user::Entity::find_by_id(target.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if me.id == target.0 {
        let current = current_password.ok_or_else(|| {
            AppError::bad_field("currentPassword", "give your current password to change it")
        })?;
        if !password::verify(current.to_owned(), Some(user.password_hash.clone())).await? {
            return Err(AppError::bad_field(
                "currentPassword",
                "the current password is wrong",
            ));
        }
    }
    let hash = password::hash(new_password.into_inner()).await?;
    let txn = db.begin().await?;
    let mut active: user::ActiveModel = user.clone().into();
    active.password_hash = Set(hash);
    active.token_version = Set(user.token_version + 1);
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::UserId.eq(target.0))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(updated)
}

/// The shell's way in (`interlink admin create-user`): whoever runs it already owns the
/// server, so there is no Viewer; the same parsing and rules apply otherwise.
pub async fn create_user_from_shell<C>(
    db: &C,
    email: &str,
    name: &str,
    password_text: &str,
    make_admin: bool,
) -> AppResult<user::Model>
where
    C: ConnectionTrait + TransactionTrait,
{
    let input = NewUser {
        email: Email::parse(email)?,
        name: super::model::parse_name("name", name, 200)?,
        password: NewPassword::parse(password_text)?,
        department_id: None,
    };
    let hash = password::hash(input.password.into_inner()).await?;
    let now = Utc::now();
    let txn = db.begin().await?;
    let created = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(input.email.display),
        email_normalized: Set(input.email.normalized),
        name: Set(input.name),
        department_id: Set(None),
        password_hash: Set(hash),
        is_active: Set(true),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| AppError::from_unique_violation(e, "a user with this email already exists"))?;
    if make_admin {
        let admin_role = role::Entity::find()
            .all(&txn)
            .await?
            .into_iter()
            .find(|r| role_permissions(r).contains(&Permission::Admin))
            .ok_or_else(|| AppError::Conflict("no role carries the admin permission".into()))?;
        insert_grant(&txn, created.id, admin_role.id, None).await?;
    }
    txn.commit().await?;
    Ok(created)
}
