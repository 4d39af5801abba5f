//! Creating, changing and deactivating users, and their passwords.

use chrono::Utc;
use entities::{department, refresh_token, role, user};
use sea_orm::prelude::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::*;
use crate::auth::password::Passwords;
use crate::auth::{Permission, Viewer};
use crate::domains::identity::model::{
    Email, IdentityEvent, IdentityEventKind, NewPassword, NewUser, UserChanges, UserId,
};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

/// A new active user's row, ready to insert: every way a user comes to be goes through here.
pub(super) fn new_user_row(
    email: &Email,
    name: String,
    department_id: Option<Uuid>,
    password_hash: String,
) -> user::ActiveModel {
    let now = Utc::now();
    user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.display.clone()),
        email_normalized: Set(email.normalized.clone()),
        name: Set(name),
        department_id: Set(department_id),
        password_hash: Set(password_hash),
        is_active: Set(true),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

pub async fn create_user(
    work: &Work,
    passwords: &Passwords,
    viewer: &Viewer,
    input: NewUser,
) -> AppResult<user::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    if let Some(department) = input.department_id {
        department::Entity::find_by_id(department.0)
            .one(work)
            .await?
            .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))?;
    }
    let hash = passwords.hash(input.password.into_inner()).await?;
    let created = new_user_row(
        &input.email,
        input.name,
        input.department_id.map(|d| d.0),
        hash,
    )
    .insert(work)
    .await
    .map_err(|e| AppError::from_unique_violation(e, "a user with this email already exists"))?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::UserCreated,
        created.id,
        Some(me.id),
    ));
    Ok(created)
}

/// Where apps' service accounts live: a reserved domain no person's address can have.
pub const APP_ACCOUNT_DOMAIN: &str = "@apps.interlink.invalid";

/// A user that stands for a partner app in the records it writes (initiator, author, submitter),
/// so that every record still names a user. Its password is random and never shown: nobody can
/// sign in as it, and its permissions come from the app's scopes, not from roles.
pub async fn create_service_account(
    work: &Work,
    passwords: &Passwords,
    app_id: Uuid,
    app_name: &str,
) -> AppResult<Uuid> {
    use rand::distributions::{Alphanumeric, DistString};
    let unusable = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 48);
    let hash = passwords.hash(unusable).await?;
    let email = Email::parse(&format!("app-{}{APP_ACCOUNT_DOMAIN}", app_id.simple()))?;
    // In no department: it must never be picked as a department's member (task assignment).
    let created = new_user_row(&email, format!("{app_name} (app)"), None, hash)
        .insert(work)
        .await?;
    Ok(created.id)
}

/// Ends the open sockets of a service account: its app's access changed (a key revoked, its
/// scopes, department or active flag changed), so sockets opened under the old access close.
pub fn end_service_account_sessions(work: &Work, service_user: Uuid, actor: Uuid) {
    work.emit(&IdentityEvent::new(
        IdentityEventKind::SessionsRevoked,
        service_user,
        Some(actor),
    ));
}

pub async fn update_user(
    work: &Work,
    viewer: &Viewer,
    id: UserId,
    changes: UserChanges,
) -> AppResult<user::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let current = user::Entity::find_by_id(id.0)
        .one(work)
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
                .one(work)
                .await?
                .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))?;
        }
        active.department_id = Set(department.map(|d| d.0));
    }
    active.updated_at = Set(Utc::now());
    let updated = active
        .update(work)
        .await
        .map_err(|e| AppError::from_unique_violation(e, "a user with this email already exists"))?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::UserUpdated,
        updated.id,
        Some(me.id),
    ));
    Ok(updated)
}

/// Deactivation also ends every session: refresh tokens are revoked and the token version
/// moves on, so outstanding access tokens stop working at once.
pub async fn set_user_active(
    work: &Work,
    viewer: &Viewer,
    id: UserId,
    active_flag: bool,
) -> AppResult<user::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    if me.id == id.0 && !active_flag {
        return Err(AppError::Conflict("you cannot deactivate yourself".into()));
    }
    let current = user::Entity::find_by_id(id.0)
        .one(work)
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
            .exec(work)
            .await?;
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(work).await?;
    let kind = if active_flag {
        IdentityEventKind::UserReactivated
    } else {
        IdentityEventKind::UserDeactivated
    };
    work.emit(&IdentityEvent::new(kind, updated.id, Some(me.id)));
    Ok(updated)
}

/// The signed-in user changes their own password, proving the current one.
pub async fn change_own_password(
    work: &Work,
    credentials: &Credentials<'_>,
    viewer: &Viewer,
    current_password: &str,
    new_password: &str,
) -> AppResult<user::Model> {
    let me = UserId(viewer.user()?.id);
    let new_password = NewPassword::parse(new_password)?;
    change_password(
        work,
        credentials,
        viewer,
        me,
        Some(current_password),
        new_password,
    )
    .await
}

/// A password change ends every other session of the user.
///
/// Proving the current password draws on the user's own failure budget before any hash: a
/// stolen access token buys a handful of guesses per window, not unlimited ones.
pub async fn change_password(
    work: &Work,
    credentials: &Credentials<'_>,
    viewer: &Viewer,
    target: UserId,
    current_password: Option<&str>,
    new_password: NewPassword,
) -> AppResult<user::Model> {
    let me = viewer.user()?;
    if me.id != target.0 {
        me.require_global(Permission::Admin)?;
    }
    let user = user::Entity::find_by_id(target.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if me.id == target.0 {
        let current = current_password.ok_or_else(|| {
            AppError::bad_field("currentPassword", "give your current password to change it")
        })?;
        let budget_key = format!("password-change-failures:{}", user.id);
        let policy = &credentials.policy;
        count_failure(
            credentials.cache,
            &budget_key,
            policy.password_change_failures_per_window,
            policy.window,
            "too many wrong current passwords; try again later",
        )
        .await?;
        let stored = Some(user.password_hash.clone());
        if !credentials
            .passwords
            .verify(current.to_owned(), stored)
            .await?
        {
            return Err(AppError::bad_field(
                "currentPassword",
                "the current password is wrong",
            ));
        }
        credentials
            .cache
            .delete(&budget_key)
            .await
            .map_err(AppError::internal)?;
    }
    let hash = credentials
        .passwords
        .hash(new_password.into_inner())
        .await?;
    let mut active: user::ActiveModel = user.clone().into();
    active.password_hash = Set(hash);
    active.token_version = Set(user.token_version + 1);
    active.updated_at = Set(Utc::now());
    let updated = active.update(work).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::UserId.eq(target.0))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(work)
        .await?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::SessionsRevoked,
        updated.id,
        Some(me.id),
    ));
    Ok(updated)
}

/// The shell's way in (`interlink admin create-user`): whoever runs it already owns the
/// server, so there is no Viewer; the same parsing and rules apply otherwise.
pub async fn create_user_from_shell(
    work: &Work,
    passwords: &Passwords,
    email: &str,
    name: &str,
    password_text: &str,
    make_admin: bool,
) -> AppResult<user::Model> {
    let input = NewUser {
        email: Email::parse(email)?,
        name: crate::domains::identity::model::parse_name("name", name, 200)?,
        password: NewPassword::parse(password_text)?,
        department_id: None,
    };
    let hash = passwords.hash(input.password.into_inner()).await?;
    let created = new_user_row(&input.email, input.name, None, hash)
        .insert(work)
        .await
        .map_err(|e| AppError::from_unique_violation(e, "a user with this email already exists"))?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::UserCreated,
        created.id,
        None,
    ));
    if make_admin {
        let admin_role = role::Entity::find()
            .all(work)
            .await?
            .into_iter()
            .find(|r| role_permissions(r).contains(&Permission::Admin))
            .ok_or_else(|| AppError::Conflict("no role carries the admin permission".into()))?;
        insert_grant(work, created.id, admin_role.id, None).await?;
        work.emit(&IdentityEvent::new(
            IdentityEventKind::RoleGranted,
            created.id,
            None,
        ));
    }
    Ok(created)
}
