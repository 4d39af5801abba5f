//! The SQL door for BI tools over GraphQL: managers of apps give an app a PostgreSQL login
//! role (its password shown once) and take it away.

use async_graphql::{Context, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::bi_access;

use crate::domains::integrations::model::bi::Endpoint;
use crate::domains::integrations::service;
use crate::graphql::context::ContextExt;

use super::apps::parse_id;

/// A working PostgreSQL credential for an app's BI tools. The password is shown only here;
/// asking again gives a new one and the old one stops working.
#[derive(SimpleObject)]
pub struct BiAccess {
    app_id: ID,
    host: String,
    port: i32,
    database: String,
    user: String,
    password: String,
    created_at: DateTime<Utc>,
}

/// That an app has a BI role, and since when (never its password).
#[derive(SimpleObject)]
pub struct BiAccessInfo {
    user: String,
    created_at: DateTime<Utc>,
}

impl From<bi_access::Model> for BiAccessInfo {
    fn from(row: bi_access::Model) -> Self {
        Self {
            user: row.role_name,
            created_at: row.created_at,
        }
    }
}

#[derive(Default)]
pub struct BiAccessMutation;

#[Object]
impl BiAccessMutation {
    /// Gives the app (active, with `REPORTS_READ`) a read-only PostgreSQL login for the `bi`
    /// schema, or a new password for the one it has. Needs `integrations.manage`; PostgreSQL
    /// deployments only (`BAD_USER_INPUT` on SQLite).
    async fn create_bi_access(&self, ctx: &Context<'_>, app_id: ID) -> Result<BiAccess> {
        let caller = ctx.caller()?;
        let app_id = parse_id("appId", &app_id)?;
        let config = &caller.app.config;
        let endpoint = config.database_url.as_ref().and_then(|url| {
            Endpoint::resolve(url.expose(), config.bi.host.as_deref(), config.bi.port)
        });
        let grant = caller
            .write(async |work| {
                service::create_bi_access(work, caller.viewer, endpoint, app_id).await
            })
            .await?;
        Ok(BiAccess {
            app_id: ID(grant.access.app_id.to_string()),
            host: grant.endpoint.host,
            port: i32::from(grant.endpoint.port),
            database: grant.endpoint.database,
            user: grant.access.role_name,
            password: grant.password,
            created_at: grant.access.created_at,
        })
    }

    /// Drops the app's BI role and ends its open sessions; `false` when it had none.
    async fn revoke_bi_access(&self, ctx: &Context<'_>, app_id: ID) -> Result<bool> {
        let caller = ctx.caller()?;
        let app_id = parse_id("appId", &app_id)?;
        Ok(caller
            .write(async |work| service::revoke_bi_access(work, caller.viewer, app_id).await)
            .await?)
    }
}
