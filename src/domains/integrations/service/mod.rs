//! Apps: who manages them, and the Viewer an app acts as. (Placeholder until the apps half
//! lands: these two functions keep the names and signatures it provides.)

pub mod delivery;
pub mod webhooks;

use entities::app;
use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use crate::auth::viewer::{Scope, ScopedPermission};
use crate::auth::{Permission, Viewer, ViewerUser};
use crate::error::{AppError, AppResult};

/// The Viewer an app acts as; `None` when it is inactive or missing.
pub async fn app_viewer(db: &impl ConnectionTrait, app_id: Uuid) -> AppResult<Option<ViewerUser>> {
    let Some(row) = app::Entity::find_by_id(app_id).one(db).await? else {
        return Ok(None);
    };
    if !row.active {
        return Ok(None);
    }
    Ok(Some(ViewerUser {
        id: row.id,
        department_id: row.department_id,
        grants: vec![ScopedPermission {
            permission: Permission::Admin,
            scope: Scope::Global,
        }],
    }))
}

/// The app, for a viewer who may manage it.
pub async fn managed_app(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    app_id: Uuid,
) -> AppResult<app::Model> {
    viewer.user()?.require_global(Permission::Admin)?;
    app::Entity::find_by_id(app_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("app"))
}
