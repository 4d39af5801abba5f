//! Creating and changing apps, and the viewer an app is.

use std::collections::BTreeSet;

use chrono::Utc;
use entities::{app, user};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryOrder, Set};
use uuid::Uuid;

use crate::auth::password::Passwords;
use crate::auth::{AppAccess, AppScope, Permission, Viewer, ViewerUser};
use crate::domains::identity::service as identity;
use crate::domains::integrations::model::{app_name, grants_for, scopes_json, scopes_of};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

pub struct NewApp {
    pub name: String,
    pub scopes: BTreeSet<AppScope>,
    pub department_id: Option<Uuid>,
}

/// What `updateApp` changes; `None` leaves a field as it is, and `department_id: Some(None)`
/// lifts the department limit.
#[derive(Default)]
pub struct AppChanges {
    pub name: Option<String>,
    pub scopes: Option<BTreeSet<AppScope>>,
    pub department_id: Option<Option<Uuid>>,
    pub active: Option<bool>,
    pub owner_id: Option<Uuid>,
}

fn may_manage(viewer: &Viewer) -> AppResult<&ViewerUser> {
    let me = viewer.user()?;
    if me.app.is_some() {
        return Err(AppError::Forbidden("apps cannot manage apps".into()));
    }
    me.require_global(Permission::IntegrationsManage)?;
    Ok(me)
}

/// The app, for someone who may manage apps (`integrations.manage`, or an administrator):
/// `FORBIDDEN` for anyone else, `NOT_FOUND` when there is no such app.
pub async fn managed_app<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    app_id: Uuid,
) -> AppResult<app::Model> {
    may_manage(viewer)?;
    app::Entity::find_by_id(app_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("app"))
}

pub async fn apps<C: ConnectionTrait>(db: &C, viewer: &Viewer) -> AppResult<Vec<app::Model>> {
    may_manage(viewer)?;
    Ok(app::Entity::find()
        .order_by_asc(app::Column::Name)
        .order_by_asc(app::Column::Id)
        .all(db)
        .await?)
}

async fn department_path<C: ConnectionTrait>(db: &C, department: Uuid) -> AppResult<String> {
    identity::department_path_of(db, department)
        .await?
        .ok_or_else(|| AppError::bad_field("departmentId", "no such department"))
}

/// A manager gives an app no more than they could read themselves: each scope's permission over
/// the app's department (everywhere, for an app without one). People's profiles and reports have
/// no permission a manager could hold, so only administrators give those; an app's reach must
/// never be a way around one's own grants.
fn check_grantable(
    me: &ViewerUser,
    scopes: &BTreeSet<AppScope>,
    department_path: Option<&str>,
) -> AppResult<()> {
    if me.is_admin() {
        return Ok(());
    }
    for scope in scopes {
        if matches!(scope, AppScope::ProfilesRead | AppScope::ReportsRead) {
            return Err(AppError::Forbidden(format!(
                "only administrators give apps the {scope} scope"
            )));
        }
    }
    for grant in grants_for(scopes, department_path) {
        let held = match &grant.scope {
            crate::auth::viewer::Scope::Global => me.has_global(grant.permission),
            crate::auth::viewer::Scope::Subtree { path } => me.has_in(grant.permission, path),
        };
        if !held {
            return Err(AppError::Forbidden(format!(
                "giving an app these scopes{} needs {} there yourself",
                if department_path.is_some() {
                    " over its department"
                } else {
                    " everywhere"
                },
                grant.permission
            )));
        }
    }
    Ok(())
}

pub async fn create_app(
    work: &Work,
    passwords: &Passwords,
    viewer: &Viewer,
    input: NewApp,
) -> AppResult<app::Model> {
    let me = may_manage(viewer)?;
    let name = app_name(&input.name)?;
    let path = match input.department_id {
        Some(department) => Some(department_path(work, department).await?),
        None => None,
    };
    check_grantable(me, &input.scopes, path.as_deref())?;
    let id = Uuid::now_v7();
    let service_user = identity::create_service_account(work, passwords, id, &name).await?;
    let now = Utc::now();
    Ok(app::ActiveModel {
        id: Set(id),
        name: Set(name),
        owner_id: Set(me.id),
        service_user_id: Set(service_user),
        active: Set(true),
        scopes: Set(scopes_json(&input.scopes)),
        department_id: Set(input.department_id),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await?)
}

pub async fn update_app(
    work: &Work,
    viewer: &Viewer,
    id: Uuid,
    changes: AppChanges,
) -> AppResult<app::Model> {
    let current = managed_app(work, viewer, id).await?;
    let me = viewer.user()?;
    let scopes = changes
        .scopes
        .clone()
        .unwrap_or_else(|| scopes_of(&current.scopes));
    let department = changes.department_id.unwrap_or(current.department_id);
    let path = match department {
        Some(department) => Some(department_path(work, department).await?),
        None => None,
    };
    check_grantable(me, &scopes, path.as_deref())?;
    let mut row: app::ActiveModel = current.into();
    if let Some(name) = changes.name {
        row.name = Set(app_name(&name)?);
    }
    if let Some(scopes) = changes.scopes {
        row.scopes = Set(scopes_json(&scopes));
    }
    if let Some(department) = changes.department_id {
        row.department_id = Set(department);
    }
    if let Some(active) = changes.active {
        row.active = Set(active);
    }
    if let Some(owner) = changes.owner_id {
        let found = user::Entity::find_by_id(owner).one(work).await?;
        if !found.is_some_and(|u| u.is_active) {
            return Err(AppError::bad_field("ownerId", "no such active user"));
        }
        row.owner_id = Set(owner);
    }
    row.updated_at = Set(Utc::now());
    let updated = row.update(work).await?;
    super::bi_access::end_bi_access_if_refused(work, &updated).await?;
    identity::end_service_account_sessions(work, updated.service_user_id, me.id);
    Ok(updated)
}

/// The viewer an active app is: its service account, holding exactly its scopes over its
/// department's subtree (everywhere when it has none). `None` for an inactive or missing app.
pub async fn app_viewer<C: ConnectionTrait>(db: &C, app_id: Uuid) -> AppResult<Option<ViewerUser>> {
    match app::Entity::find_by_id(app_id).one(db).await? {
        Some(app) if app.active => viewer_of_app(db, &app).await.map(Some),
        _ => Ok(None),
    }
}

pub(super) async fn viewer_of_app<C: ConnectionTrait>(
    db: &C,
    app: &app::Model,
) -> AppResult<ViewerUser> {
    let department_path = match app.department_id {
        Some(department) => Some(
            identity::department_path_of(db, department)
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("app's department is gone")))?,
        ),
        None => None,
    };
    let scopes = scopes_of(&app.scopes);
    Ok(ViewerUser {
        id: app.service_user_id,
        department_id: app.department_id,
        grants: grants_for(&scopes, department_path.as_deref()),
        app: Some(AppAccess {
            app_id: app.id,
            scopes,
        }),
    })
}

/// The viewer an app acts as, looked up again (for work that runs later on its behalf, such as
/// a background export); `None` once the app is deactivated or gone.
pub async fn viewer_of_active_app<C: ConnectionTrait>(
    db: &C,
    app_id: Uuid,
) -> AppResult<Option<ViewerUser>> {
    match app::Entity::find_by_id(app_id).one(db).await? {
        Some(found) if found.active => Ok(Some(viewer_of_app(db, &found).await?)),
        _ => Ok(None),
    }
}
