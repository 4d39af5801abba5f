//! Apps and API keys over GraphQL: managed by `integrations.manage` holders and administrators.

use std::collections::BTreeSet;

use async_graphql::{
    ComplexObject, Context, Enum, InputObject, MaybeUndefined, Object, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use entities::{api_key, app};
use uuid::Uuid;

use crate::auth::AppScope as Scope;
use crate::domains::integrations::model::scopes_of;
use crate::domains::integrations::service::{self, AppChanges, NewApp};
use crate::error::{AppError, AppResult};
use crate::graphql::context::ContextExt;
use crate::graphql::found;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Scope")]
pub enum AppScope {
    TasksRead,
    TasksWrite,
    ApprovalsRead,
    BusinessRead,
    BusinessSubmit,
    FinanceRead,
    ReportsRead,
    ProfilesRead,
    EventsSubscribe,
}

pub(super) fn parse_id(field: &str, raw: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::bad_field(field, "not a valid id"))
}

/// A partner application: it signs in with API keys and sees exactly its scopes.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct App {
    id: ID,
    name: String,
    owner_id: ID,
    /// The user that stands for the app in what it writes (initiator, author, submitter).
    service_user_id: ID,
    active: bool,
    scopes: Vec<AppScope>,
    /// When set, the app sees only this department's subtree.
    department_id: Option<ID>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[graphql(skip)]
    uuid: Uuid,
}

impl From<app::Model> for App {
    fn from(row: app::Model) -> Self {
        Self {
            id: ID(row.id.to_string()),
            name: row.name,
            owner_id: ID(row.owner_id.to_string()),
            service_user_id: ID(row.service_user_id.to_string()),
            active: row.active,
            scopes: scopes_of(&row.scopes)
                .into_iter()
                .map(AppScope::from)
                .collect(),
            department_id: row.department_id.map(|d| ID(d.to_string())),
            created_at: row.created_at,
            updated_at: row.updated_at,
            uuid: row.id,
        }
    }
}

#[ComplexObject]
impl App {
    /// Every key of the app, newest first, revoked ones included. Secrets are never shown again.
    async fn keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        let caller = ctx.caller()?;
        let rows = service::keys_of(caller.db(), self.uuid).await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// The app's PostgreSQL role for BI tools, if it has one (see `createBiAccess`).
    async fn bi_access(&self, ctx: &Context<'_>) -> Result<Option<super::bi_access::BiAccessInfo>> {
        let caller = ctx.caller()?;
        let row = service::bi_access_of(caller.db(), self.uuid).await?;
        Ok(row.map(Into::into))
    }
}

#[derive(SimpleObject)]
pub struct ApiKey {
    id: ID,
    app_id: ID,
    name: String,
    /// The key's last four characters, to tell it apart from the others.
    hint: String,
    expires_at: Option<DateTime<Utc>>,
    /// Kept to the minute.
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// Neither revoked nor expired.
    usable: bool,
}

impl From<api_key::Model> for ApiKey {
    fn from(row: api_key::Model) -> Self {
        let usable = row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > Utc::now());
        Self {
            id: ID(row.id.to_string()),
            app_id: ID(row.app_id.to_string()),
            name: row.name,
            hint: row.hint,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
            usable,
        }
    }
}

/// A new key with its secret: the only time the secret is shown. Send it as
/// `Authorization: Bearer <secret>` or `X-Api-Key: <secret>`.
#[derive(SimpleObject)]
pub struct ApiKeyCreated {
    key: ApiKey,
    secret: String,
}

#[derive(InputObject)]
pub struct CreateAppInput {
    name: String,
    scopes: Vec<AppScope>,
    department_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateAppInput {
    name: Option<String>,
    scopes: Option<Vec<AppScope>>,
    /// `null` lifts the department limit.
    department_id: MaybeUndefined<ID>,
    active: Option<bool>,
    owner_id: Option<ID>,
}

fn scope_set(scopes: Vec<AppScope>) -> BTreeSet<Scope> {
    scopes.into_iter().map(Scope::from).collect()
}

#[derive(Default)]
pub struct AppsQuery;

#[Object]
impl AppsQuery {
    async fn apps(&self, ctx: &Context<'_>) -> Result<Vec<App>> {
        let caller = ctx.caller()?;
        let rows = service::apps(caller.db(), caller.viewer).await?;
        Ok(rows.into_iter().map(App::from).collect())
    }

    async fn app(&self, ctx: &Context<'_>, id: ID) -> Result<Option<App>> {
        let caller = ctx.caller()?;
        let id = parse_id("id", &id)?;
        let row = found(service::managed_app(caller.db(), caller.viewer, id).await)?;
        Ok(row.map(App::from))
    }
}

#[derive(Default)]
pub struct AppsMutation;

#[Object]
impl AppsMutation {
    async fn create_app(&self, ctx: &Context<'_>, input: CreateAppInput) -> Result<App> {
        let caller = ctx.caller()?;
        let input = NewApp {
            name: input.name,
            scopes: scope_set(input.scopes),
            department_id: input
                .department_id
                .map(|d| parse_id("departmentId", &d))
                .transpose()?,
        };
        let created = caller
            .write(async |work| {
                service::create_app(work, &caller.app.passwords, caller.viewer, input).await
            })
            .await?;
        Ok(created.into())
    }

    async fn update_app(&self, ctx: &Context<'_>, id: ID, input: UpdateAppInput) -> Result<App> {
        let caller = ctx.caller()?;
        let id = parse_id("id", &id)?;
        let changes = AppChanges {
            name: input.name,
            scopes: input.scopes.map(scope_set),
            department_id: match input.department_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(d) => Some(Some(parse_id("departmentId", &d)?)),
            },
            active: input.active,
            owner_id: input
                .owner_id
                .map(|o| parse_id("ownerId", &o))
                .transpose()?,
        };
        let updated = caller
            .write(async |work| service::update_app(work, caller.viewer, id, changes).await)
            .await?;
        Ok(updated.into())
    }

    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        app_id: ID,
        name: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<ApiKeyCreated> {
        let caller = ctx.caller()?;
        let app_id = parse_id("appId", &app_id)?;
        let (key, secret) = caller
            .write(async |work| {
                service::create_key(work, caller.viewer, app_id, &name, expires_at).await
            })
            .await?;
        Ok(ApiKeyCreated {
            key: key.into(),
            secret,
        })
    }

    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let caller = ctx.caller()?;
        let id = parse_id("id", &id)?;
        let key = caller
            .write(async |work| service::revoke_key(work, caller.viewer, id).await)
            .await?;
        Ok(key.into())
    }
}
