//! The read-only SQL door for BI tools: a PostgreSQL login role per app, made, rotated and
//! dropped here. What the role sees is decided in the database (migration
//! `m20261202_000016_create_bi_schema`): `bi` views, row-level security keyed on
//! `session_user`, and one visibility function per GraphQL read rule.

use chrono::Utc;
use entities::{app, bi_access};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, ModelTrait, Set, Statement,
};
use uuid::Uuid;

use crate::auth::{AppScope, Viewer};
use crate::domains::integrations::model::bi::{self, Endpoint};
use crate::domains::integrations::model::scopes_of;
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

use super::apps::managed_app;

/// A role just made or given a new password: the only time the password is shown.
pub struct BiGrant {
    pub access: bi_access::Model,
    pub endpoint: Endpoint,
    pub password: String,
}

fn needs_postgres() -> AppError {
    AppError::bad_field(
        "appId",
        "the SQL door for BI tools needs PostgreSQL: this installation stores its data in \
         SQLite, which has no login roles or row-level security; run Interlink on PostgreSQL \
         (DATABASE_URL) to use it",
    )
}

/// Why `app` may not have a door, if it may not: it must be active and hold `REPORTS_READ`.
fn refusal(app: &app::Model) -> Option<AppError> {
    if !app.active {
        return Some(AppError::bad_field(
            "appId",
            "the app is inactive: activate it (updateApp) before giving it BI access",
        ));
    }
    if !scopes_of(&app.scopes).contains(&AppScope::ReportsRead) {
        return Some(AppError::bad_field(
            "appId",
            "BI access needs the app's REPORTS_READ scope: give it that scope (updateApp) first",
        ));
    }
    None
}

async fn call<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<sea_orm::Value>) -> AppResult<()> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await?;
    Ok(())
}

/// `createBiAccess`: for a manager of apps (`integrations.manage`), a login role for an active
/// app with `REPORTS_READ`. Asked again, the same role gets a new password (the old one stops
/// working at once; open sessions stay until they end or access is revoked) and its grants are
/// renewed, so the answer is always a working credential. `endpoint` is where BI tools connect
/// (`None`: the server's database address is not PostgreSQL's).
pub async fn create_bi_access(
    work: &Work,
    viewer: &Viewer,
    endpoint: Option<Endpoint>,
    app_id: Uuid,
) -> AppResult<BiGrant> {
    let app = managed_app(work, viewer, app_id).await?;
    if work.get_database_backend() != DbBackend::Postgres {
        return Err(needs_postgres());
    }
    if let Some(refused) = refusal(&app) {
        return Err(refused);
    }
    let endpoint = endpoint.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "DATABASE_URL names no PostgreSQL database to hand to BI tools"
        ))
    })?;
    lock_in_transaction(work, &format!("bi_access:{}", app.id)).await?;
    let role = bi::role_name(app.id);
    let password = bi::generate_password();
    let existing = bi_access::Entity::find_by_id(role.clone())
        .one(work)
        .await?;
    let role_exists = work
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_roles WHERE rolname = $1",
            [role.clone().into()],
        ))
        .await?
        .is_some();
    let access = match existing {
        Some(access) if role_exists => {
            call(
                work,
                "SELECT public.bi_set_password($1, $2)",
                vec![role.clone().into(), password.clone().into()],
            )
            .await?;
            access
        }
        // Mapped, but the role was dropped outside Interlink: make it again.
        Some(access) => {
            call(
                work,
                "SELECT public.bi_create_role($1, $2)",
                vec![role.into(), password.clone().into()],
            )
            .await?;
            access
        }
        None => {
            // Roles are cluster-wide: one of this name not mapped here belongs to another
            // database (a copy of this one, say), and must not be taken over.
            if role_exists {
                return Err(AppError::Conflict(format!(
                    "a PostgreSQL role named {role} already exists in this cluster but is not \
                     this database's; drop it (or use another cluster) first"
                )));
            }
            let access = bi_access::ActiveModel {
                role_name: Set(role.clone()),
                app_id: Set(app.id),
                created_at: Set(Utc::now()),
            }
            .insert(work)
            .await?;
            call(
                work,
                "SELECT public.bi_create_role($1, $2)",
                vec![role.into(), password.clone().into()],
            )
            .await?;
            access
        }
    };
    Ok(BiGrant {
        access,
        endpoint,
        password,
    })
}

/// `revokeBiAccess`: drops the app's role for a manager of apps; `false` when it had none.
pub async fn revoke_bi_access(work: &Work, viewer: &Viewer, app_id: Uuid) -> AppResult<bool> {
    let app = managed_app(work, viewer, app_id).await?;
    end_bi_access(work, app.id).await
}

/// Ends an app's BI access inside `work`: its open sessions are terminated, the role and its
/// privileges dropped, the mapping deleted. Terminating is immediate (not transactional), so
/// it happens before the drop; a session that connects between it and the commit holds no
/// privilege once the commit lands and is refused at its next statement. `false` when the
/// app had no access.
pub async fn end_bi_access(work: &Work, app_id: Uuid) -> AppResult<bool> {
    let Some(access) = bi_access_of(work, app_id).await? else {
        return Ok(false);
    };
    lock_in_transaction(work, &format!("bi_access:{app_id}")).await?;
    if work.get_database_backend() == DbBackend::Postgres {
        call(
            work,
            "SELECT public.bi_drop_role($1)",
            vec![access.role_name.clone().into()],
        )
        .await?;
    }
    access.delete(work).await?;
    Ok(true)
}

/// After `updateApp`: an app that is no longer active or lost `REPORTS_READ` loses its door in
/// the same unit of work (the visibility functions already show such an app nothing).
pub async fn end_bi_access_if_refused(work: &Work, app: &app::Model) -> AppResult<()> {
    if refusal(app).is_some() {
        end_bi_access(work, app.id).await?;
    }
    Ok(())
}

/// The app's role, if it has one (never its password, which is not stored).
pub async fn bi_access_of<C: ConnectionTrait>(
    db: &C,
    app_id: Uuid,
) -> AppResult<Option<bi_access::Model>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(bi_access::Entity::find()
        .filter(bi_access::Column::AppId.eq(app_id))
        .one(db)
        .await?)
}
