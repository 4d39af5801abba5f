//! API keys: made and shown once, stored hashed, looked up by id, expired and revoked.

use chrono::{DateTime, Duration, Utc};
use entities::{api_key, app};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::apps::{managed_app, viewer_of_app};
use crate::auth::{Viewer, ViewerUser};
use crate::domains::identity::service as identity;
use crate::domains::integrations::model::{generate_key, hash_key, key_name, parse_key};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

/// `last_used_at` is written at most this often per key, so a busy key costs no write per request.
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

pub async fn create_key(
    work: &Work,
    viewer: &Viewer,
    app_id: Uuid,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> AppResult<(api_key::Model, String)> {
    let app = managed_app(work, viewer, app_id).await?;
    let name = key_name(name)?;
    let now = Utc::now();
    if expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::bad_field(
            "expiresAt",
            "the expiry must be in the future",
        ));
    }
    let key = generate_key();
    let row = api_key::ActiveModel {
        id: Set(key.id),
        app_id: Set(app.id),
        name: Set(name),
        secret_hash: Set(key.secret_hash),
        hint: Set(key.hint),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_by: Set(viewer.user()?.id),
        created_at: Set(now),
    }
    .insert(work)
    .await?;
    Ok((row, key.text))
}

/// Revoking is final and takes effect on the next request on every node: keys are checked
/// against the database on each request. Revoking a revoked key changes nothing.
pub async fn revoke_key(work: &Work, viewer: &Viewer, key_id: Uuid) -> AppResult<api_key::Model> {
    viewer.user()?;
    let key = api_key::Entity::find_by_id(key_id)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("API key"))?;
    let app = managed_app(work, viewer, key.app_id).await?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    identity::end_service_account_sessions(work, app.service_user_id, viewer.user()?.id);
    let mut row: api_key::ActiveModel = key.into();
    row.revoked_at = Set(Some(Utc::now()));
    Ok(row.update(work).await?)
}

pub async fn keys_of<C: ConnectionTrait>(db: &C, app_id: Uuid) -> AppResult<Vec<api_key::Model>> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::AppId.eq(app_id))
        .order_by_desc(api_key::Column::Id)
        .all(db)
        .await?)
}

/// The viewer an API key stands for, and when the key expires. Every refusal reads the same, so
/// a caller learns nothing of which keys exist: malformed, unknown, wrong secret, expired,
/// revoked, or an inactive app.
pub async fn authenticate_key<C: ConnectionTrait>(
    db: &C,
    text: &str,
) -> AppResult<(ViewerUser, Option<DateTime<Utc>>)> {
    let refused = || AppError::Unauthenticated("invalid, expired or revoked API key".into());
    let id = parse_key(text).ok_or_else(refused)?;
    let Some((key, Some(app))) = api_key::Entity::find_by_id(id)
        .find_also_related(app::Entity)
        .one(db)
        .await?
    else {
        return Err(refused());
    };
    let presented = hash_key(text);
    let matches: bool = presented
        .as_bytes()
        .ct_eq(key.secret_hash.as_bytes())
        .into();
    let now = Utc::now();
    if !matches
        || key.revoked_at.is_some()
        || key.expires_at.is_some_and(|at| at <= now)
        || !app.active
    {
        return Err(refused());
    }
    // Best effort: a busy database must not turn a good key into an error.
    if let Err(err) = touch(db, &key, now).await {
        tracing::warn!(error = ?err, key = %key.id, "recording a key's last use failed");
    }
    Ok((viewer_of_app(db, &app).await?, key.expires_at))
}

async fn touch<C: ConnectionTrait>(
    db: &C,
    key: &api_key::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    if key
        .last_used_at
        .is_some_and(|at| now - at < LAST_USED_GRANULARITY)
    {
        return Ok(());
    }
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(key.id))
        .exec(db)
        .await?;
    Ok(())
}
