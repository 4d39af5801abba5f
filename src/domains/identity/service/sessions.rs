//! Sign-in, token rotation, sign-out, the first administrator, and Viewers from tokens.

use chrono::Utc;
use entities::{department, refresh_token, role, role_grant, user};
use sea_orm::prelude::Expr;
use sea_orm::sea_query::{Alias, Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::*;
use crate::auth::jwt::{Claims, JwtKeys};
use crate::auth::password::Passwords;
use crate::auth::viewer::{Scope, ScopedPermission};
use crate::auth::{tokens, Permission, Viewer, ViewerUser};
use crate::domains::identity::model::{Email, IdentityEvent, IdentityEventKind, NewPassword};
use crate::error::{AppError, AppResult};
use crate::platform::cache::Cache;
use crate::platform::db::lock_in_transaction;
use crate::platform::rate_limit::{Bucket, ClientAddr};
use crate::platform::work::Work;

/// What a successful login or refresh hands back.
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in_secs: i64,
    pub user: user::Model,
}

pub struct LoginPolicy {
    /// Failed sign-ins per (account, client) in `window`: a stranger's guesses never lock
    /// the account for anyone else.
    pub failures_per_window: i64,
    /// Wrong current passwords per user in `changePassword` in `window`.
    pub password_change_failures_per_window: i64,
    pub window: std::time::Duration,
    pub refresh_ttl: std::time::Duration,
}

impl From<&crate::config::Config> for LoginPolicy {
    fn from(config: &crate::config::Config) -> Self {
        Self {
            failures_per_window: config.limits.login_failures_per_window,
            password_change_failures_per_window: config.limits.password_change_failures_per_window,
            window: config.limits.login_failure_window,
            refresh_ttl: config.jwt.refresh_ttl,
        }
    }
}

/// What checking a password stands on: this node's hasher, the shared failure counters, the
/// per-client attempt budget and the limits.
pub struct Credentials<'a> {
    pub passwords: &'a Passwords,
    pub cache: &'a dyn Cache,
    pub attempts: &'a Bucket,
    pub policy: LoginPolicy,
}

/// Counts one attempt against a failure budget (before checking, so concurrent guesses cannot
/// all slip under it); past the budget, `RATE_LIMITED` with the time until the window ends.
pub(crate) async fn count_failure(
    cache: &dyn Cache,
    key: &str,
    limit: i64,
    window: std::time::Duration,
    message: &str,
) -> AppResult<()> {
    let attempts = cache
        .increment(key, window)
        .await
        .map_err(AppError::internal)?;
    if attempts > limit {
        let left = cache.ttl(key).await.map_err(AppError::internal)?;
        return Err(AppError::rate_limited(
            message,
            Some(left.unwrap_or(window)),
        ));
    }
    Ok(())
}

/// The administrator made on first start, with the password when it was generated here.
pub struct FirstAdmin {
    pub email: String,
    pub generated_password: Option<String>,
}

/// Creates the Administrator role and a user holding it when there is no user at all.
pub async fn ensure_first_admin(
    work: &Work,
    passwords: &Passwords,
    email: Option<&str>,
    password_text: Option<&str>,
) -> AppResult<Option<FirstAdmin>> {
    if user::Entity::find().count(work).await? > 0 {
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
    let hash = passwords
        .hash(NewPassword::parse(&password_text)?.into_inner())
        .await?;
    let now = Utc::now();
    // Nodes starting together take turns; whoever comes second sees the first one's admin.
    lock_in_transaction(work, "first-admin").await?;
    if user::Entity::find().count(work).await? > 0 {
        return Ok(None);
    }
    let role_id = match role::Entity::find()
        .filter(role::Column::Name.eq("Administrator"))
        .one(work)
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
            .insert(work)
            .await?
            .id
        }
    };
    let admin = super::users::new_user_row(&email, "Administrator".into(), None, hash)
        .insert(work)
        .await?;
    insert_grant(work, admin.id, role_id, None).await?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::UserCreated,
        admin.id,
        None,
    ));
    work.emit(&IdentityEvent::new(
        IdentityEventKind::RoleGranted,
        admin.id,
        None,
    ));
    Ok(Some(FirstAdmin {
        email: email.display,
        generated_password: generated,
    }))
}

/// A user whose email and password matched, not yet signed in (see `login`).
pub struct Verified(user::Model);

/// Checks a sign-in, read-only. It runs before the unit of work that starts the session, not
/// inside it: argon2 takes tens of milliseconds (longer when sign-ins queue for it), and an
/// open transaction would hold a connection, on SQLite the only one, all that time.
///
/// Every attempt first draws on the client's sign-in budget (whatever the account: credential
/// stuffing), then on the budget of failures of this account from this client. Both come before
/// any hash, so a refused attempt costs no argon2 at all.
pub async fn verify_login<C: ConnectionTrait>(
    db: &C,
    credentials: &Credentials<'_>,
    client: ClientAddr,
    email: &str,
    password_text: &str,
) -> AppResult<Verified> {
    let rejected = || AppError::Unauthenticated("wrong email or password".into());
    let client_key = client.key();
    if let Err(wait) = credentials.attempts.take(&client_key, 1).await {
        return Err(AppError::rate_limited(
            "too many sign-in attempts from this address; try again later",
            Some(wait),
        ));
    }
    // A malformed email is treated as unknown so the answer never tells which part failed.
    let normalized = Email::parse(email)
        .map(|e| e.normalized)
        .unwrap_or_default();
    let policy = &credentials.policy;
    let cache = credentials.cache;
    // Per (account, client): a successful sign-in clears it, and nobody else's guesses count.
    let limiter_key = format!("login-failures:{client_key}:{normalized}");
    count_failure(
        cache,
        &limiter_key,
        policy.failures_per_window,
        policy.window,
        "too many failed sign-ins for this account from this address; try again later",
    )
    .await?;

    let found = if normalized.is_empty() {
        None
    } else {
        user::Entity::find()
            .filter(user::Column::EmailNormalized.eq(normalized.as_str()))
            .one(db)
            .await?
    };
    let stored_hash = found.as_ref().map(|u| u.password_hash.clone());
    let password_ok = credentials
        .passwords
        .verify(password_text.to_owned(), stored_hash)
        .await?;
    let user = match found {
        Some(user) if password_ok && user.is_active => user,
        _ => return Err(rejected()),
    };
    cache
        .delete(&limiter_key)
        .await
        .map_err(AppError::internal)?;
    Ok(Verified(user))
}

/// Starts a new session (a new refresh-token family) for a verified sign-in.
pub async fn login(
    work: &Work,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    verified: Verified,
) -> AppResult<Session> {
    start_session(work, keys, refresh_ttl, verified.0, Uuid::now_v7()).await
}

async fn start_session(
    work: &Work,
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
        token_version: Set(user.token_version),
    }
    .insert(work)
    .await?;
    Ok(Session {
        access_token: keys.issue(user.id, user.token_version)?,
        refresh_token,
        expires_in_secs: keys.access_ttl_secs(),
        user,
    })
}

/// How a presented refresh token was taken.
pub enum Refreshed {
    Rotated(Box<Session>),
    /// Refused after revoking its family (a reused token, or a login that is over): the
    /// revocation must commit, so this is not an error until the work is done.
    Refused,
}

impl Refreshed {
    pub fn session(self) -> AppResult<Session> {
        match self {
            Self::Rotated(session) => Ok(*session),
            Self::Refused => Err(refresh_rejected()),
        }
    }
}

fn refresh_rejected() -> AppError {
    AppError::Unauthenticated("invalid or expired refresh token".into())
}

/// Rotates a refresh token. A token that was already used is a sign of theft: the whole
/// family is revoked, so the thief's copy dies with the victim's.
pub async fn refresh(
    work: &Work,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    presented: &str,
) -> AppResult<Refreshed> {
    let Some(token) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(tokens::digest(presented)))
        .one(work)
        .await?
    else {
        return Err(refresh_rejected());
    };
    lock_in_transaction(work, &format!("refresh-family:{}", token.family_id)).await?;
    // Re-read under the family lock: a concurrent rotation may have spent it meanwhile.
    let token = refresh_token::Entity::find_by_id(token.id)
        .one(work)
        .await?
        .ok_or_else(refresh_rejected)?;
    let now = Utc::now();
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Err(refresh_rejected());
    }
    if token.used_at.is_some() {
        revoke_family(work, token.family_id).await?;
        tracing::warn!(family = %token.family_id, "refresh token reused; family revoked");
        return Ok(Refreshed::Refused);
    }
    let user = match user::Entity::find_by_id(token.user_id).one(work).await? {
        Some(user) if user.is_active && user.token_version == token.token_version => user,
        _ => {
            // Issued before a password change or deactivation: the whole login is over.
            revoke_family(work, token.family_id).await?;
            return Ok(Refreshed::Refused);
        }
    };
    let mut spent: refresh_token::ActiveModel = token.clone().into();
    spent.used_at = Set(Some(now));
    spent.update(work).await?;
    let session = start_session(work, keys, refresh_ttl, user, token.family_id).await?;
    Ok(Refreshed::Rotated(Box::new(session)))
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
pub async fn logout(
    work: &Work,
    viewer: &Viewer,
    presented: Option<&str>,
    everywhere: bool,
) -> AppResult<bool> {
    if everywhere {
        let me = viewer.user()?;
        bump_token_version(work, me.id).await?;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::UserId.eq(me.id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(work)
            .await?;
        work.emit(&IdentityEvent::new(
            IdentityEventKind::SessionsRevoked,
            me.id,
            Some(me.id),
        ));
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
        .one(work)
        .await?
    else {
        return Ok(false);
    };
    revoke_family(work, token.family_id).await?;
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
    viewer_of(db, user_id, Some(claims.ver))
        .await?
        .ok_or_else(rejected)
}

/// The Viewer of an active user (holding `token_version`, when given) with its grants, scoped
/// ones resolved to department paths: one statement, as every request starts here.
async fn viewer_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    token_version: Option<i32>,
) -> AppResult<Option<ViewerUser>> {
    let mut query = Query::select();
    query
        .column((user::Entity, user::Column::DepartmentId))
        .expr_as(
            Expr::col((role_grant::Entity, role_grant::Column::DepartmentId)),
            Alias::new("grant_department"),
        )
        .column((role::Entity, role::Column::Permissions))
        .column((department::Entity, department::Column::Path))
        .from(user::Entity)
        .left_join(
            role_grant::Entity,
            Expr::col((role_grant::Entity, role_grant::Column::UserId))
                .equals((user::Entity, user::Column::Id)),
        )
        .left_join(
            role::Entity,
            Expr::col((role::Entity, role::Column::Id))
                .equals((role_grant::Entity, role_grant::Column::RoleId)),
        )
        .left_join(
            department::Entity,
            Expr::col((department::Entity, department::Column::Id))
                .equals((role_grant::Entity, role_grant::Column::DepartmentId)),
        )
        .and_where(Expr::col((user::Entity, user::Column::Id)).eq(user_id))
        .and_where(Expr::col((user::Entity, user::Column::IsActive)).eq(true))
        .order_by((role_grant::Entity, role_grant::Column::Id), Order::Asc);
    if let Some(version) = token_version {
        query.and_where(Expr::col((user::Entity, user::Column::TokenVersion)).eq(version));
    }
    let rows = db
        .query_all(db.get_database_backend().build(&query))
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let department_id: Option<Uuid> = first.try_get("", "department_id")?;
    let mut grants = Vec::new();
    for row in &rows {
        // A user without grants still has one row, with every grant column NULL.
        let Some(permissions) = row.try_get::<Option<serde_json::Value>>("", "permissions")? else {
            continue;
        };
        let scope = match row.try_get::<Option<Uuid>>("", "grant_department")? {
            None => Scope::Global,
            Some(_) => match row.try_get::<Option<String>>("", "path")? {
                Some(path) => Scope::Subtree { path },
                None => continue,
            },
        };
        for permission in permissions_named(&permissions) {
            grants.push(ScopedPermission {
                permission,
                scope: scope.clone(),
            });
        }
    }
    Ok(Some(ViewerUser {
        id: user_id,
        department_id,
        grants,
        app: None,
    }))
}

/// The Viewer of an active user by id, for credentials other than an access token (a download
/// link names its user).
pub async fn viewer_for_user<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> AppResult<Option<ViewerUser>> {
    viewer_of(db, user_id, None).await
}

/// A browser session of the console: a refresh-token family of its own whose one token lives in
/// an `HttpOnly` cookie and is never rotated. It is stored under a digest apart from API refresh
/// tokens, so the cookie cannot be traded for tokens at `refreshToken`, and it ends with the
/// family (sign-out), with the user's token version (password change, "sign out everywhere")
/// and with deactivation, exactly like an API session.
pub struct ConsoleSession {
    pub token: String,
    pub user: user::Model,
}

/// Stored as `console:` and the token's digest: no presented string digests to that (a digest is
/// 64 hex digits), so no API call that looks tokens up by digest can ever find a console row.
fn console_digest(token: &str) -> String {
    format!("console:{}", tokens::digest(token))
}

/// The form token of a console session: derived from the cookie's secret, so a page elsewhere,
/// which cannot read the cookie, cannot forge it.
pub fn console_form_token(session_token: &str) -> String {
    tokens::digest(&format!("console-form:{session_token}"))[..32].to_owned()
}

/// Starts a console session for a verified sign-in.
pub async fn start_console_session(
    work: &Work,
    ttl: std::time::Duration,
    verified: Verified,
) -> AppResult<ConsoleSession> {
    let user = verified.0;
    let token = tokens::generate();
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(ttl).map_err(AppError::internal)?;
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        family_id: Set(Uuid::now_v7()),
        token_hash: Set(console_digest(&token)),
        expires_at: Set(now + ttl),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
        token_version: Set(user.token_version),
    }
    .insert(work)
    .await?;
    Ok(ConsoleSession { token, user })
}

/// The Viewer of a console cookie, while its family stands and its user is active at the
/// token version it was issued under; `None` otherwise.
pub async fn console_viewer<C: ConnectionTrait>(
    db: &C,
    session_token: &str,
) -> AppResult<Option<ViewerUser>> {
    let Some(session) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(console_digest(session_token)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if session.revoked_at.is_some() || session.used_at.is_some() || session.expires_at <= Utc::now()
    {
        return Ok(None);
    }
    viewer_of(db, session.user_id, Some(session.token_version)).await
}

/// Ends the console session of this cookie (its family); `false` when there was none.
pub async fn end_console_session(work: &Work, session_token: &str) -> AppResult<bool> {
    let Some(session) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(console_digest(session_token)))
        .one(work)
        .await?
    else {
        return Ok(false);
    };
    revoke_family(work, session.family_id).await?;
    Ok(true)
}
