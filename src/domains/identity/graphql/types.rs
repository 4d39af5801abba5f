//! Identity's GraphQL output and input types, mapped from entities and parsed into model types.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{department, role, role_grant, user};

use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::model::{IdentityEvent, IdentityEventKind};
use crate::domains::identity::service;
use crate::graphql::context::{loader_error, ContextExt};
use crate::platform::events::Envelope;

// ---------------------------------------------------------------- output types

/// A user by id through the request's loader, for any domain's output type.
pub async fn user_by_id(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<User>> {
    Ok(ctx
        .loaders::<IdentityLoaders>()?
        .users
        .load_one(id)
        .await
        .map_err(loader_error)?
        .map(User))
}

/// A department by id through the request's loader.
pub async fn department_by_id(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<Department>> {
    Ok(ctx
        .loaders::<IdentityLoaders>()?
        .departments
        .load_one(id)
        .await
        .map_err(loader_error)?
        .map(Department))
}

pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.0.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    /// Visible to the user themself and to administrators.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<RoleGrant>> {
        service::can_see_grants_of(ctx.viewer()?, self.0.id)?;
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .grants
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(|(grant, role)| RoleGrant { grant, role })
            .collect())
    }
    /// Every permission the user holds anywhere; visible to the user and administrators.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        service::can_see_grants_of(ctx.viewer()?, self.0.id)?;
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        let mut names: Vec<String> = loaders
            .grants
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .iter()
            .flat_map(|(_, role)| service::role_permissions(role))
            .map(|p| p.as_str().to_owned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

pub struct Department(pub department::Model);

#[Object]
impl Department {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.0.parent_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .child_departments
            .load_one(self.0.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(Department)
            .collect())
    }
    async fn head(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.head_user_id else {
            return Ok(None);
        };
        user_by_id(ctx, id).await
    }
}

pub struct Role(pub role::Model);

#[Object]
impl Role {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn permissions(&self) -> Vec<String> {
        service::role_permissions(&self.0)
            .into_iter()
            .map(|p| p.as_str().to_owned())
            .collect()
    }
}

pub struct RoleGrant {
    pub grant: role_grant::Model,
    pub role: role::Model,
}

#[Object]
impl RoleGrant {
    async fn id(&self) -> ID {
        ID(self.grant.id.to_string())
    }
    async fn role(&self) -> Role {
        Role(self.role.clone())
    }
    /// The department whose subtree the grant covers; null for a global grant.
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.grant.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.grant.user_id).await
    }
}

#[derive(SimpleObject)]
pub struct AuthPayload {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    user: User,
}

impl From<service::Session> for AuthPayload {
    fn from(session: service::Session) -> Self {
        Self {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            token_type: "Bearer",
            expires_in: session.expires_in_secs,
            user: User(session.user),
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "IdentityEventKind")]
pub enum IdentityEventType {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    RoleGranted,
    RoleRevoked,
    RoleCreated,
    RoleUpdated,
    DepartmentChanged,
    SessionsRevoked,
}

#[derive(SimpleObject)]
pub struct IdentityChange {
    /// Pass it as `after` to resume right after this change.
    cursor: String,
    kind: IdentityEventType,
    /// The user, role or department it is about.
    subject_id: ID,
    actor_id: Option<ID>,
    at: DateTime<Utc>,
}

impl IdentityChange {
    pub fn new(entry: &Envelope, event: IdentityEvent) -> Self {
        Self {
            cursor: entry.cursor.to_string(),
            kind: event.kind.into(),
            subject_id: ID(event.subject_id.to_string()),
            actor_id: event.actor_id.map(|a| ID(a.to_string())),
            at: event.at,
        }
    }
}

// ---------------------------------------------------------------- inputs

#[derive(InputObject)]
pub struct CreateDepartmentInput {
    pub name: String,
    pub parent_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateDepartmentInput {
    pub name: Option<String>,
    /// null moves the department to the root; absent leaves it where it is.
    pub parent_id: MaybeUndefined<ID>,
    pub head_user_id: MaybeUndefined<ID>,
}

#[derive(InputObject)]
pub struct CreateRoleInput {
    pub name: String,
    pub permissions: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    pub name: Option<String>,
    pub permissions: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub email: String,
    pub name: String,
    pub password: String,
    pub department_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub email: Option<String>,
    pub name: Option<String>,
    pub department_id: MaybeUndefined<ID>,
}

#[derive(InputObject, Default)]
pub struct UserFilterInput {
    pub department_id: Option<ID>,
    pub active: Option<bool>,
    /// Matches email or name, case-insensitively.
    pub search: Option<String>,
}
