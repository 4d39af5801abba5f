//! Identity's GraphQL output and input types, mapped from entities and parsed into model types.

use std::collections::BTreeSet;

use async_graphql::{
    ComplexObject, Context, Enum, InputObject, MaybeUndefined, Result, SimpleObject, ID,
};
use chrono::{DateTime, Utc};
use entities::{department, role, role_grant, user};
use uuid::Uuid;

use crate::auth::Permission;
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::model::{
    parse_name, parse_permissions, DepartmentChanges, DepartmentId, Email, IdentityEvent,
    IdentityEventKind, NewDepartment, NewPassword, NewRole, NewUser, UserChanges, UserId,
    UserRecord,
};
use crate::domains::identity::service::{self, UserFilter};
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::ids::{maybe_id, optional_id};
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
        .map(User::from))
}

/// A department by id through the request's loader.
pub async fn department_by_id(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<Department>> {
    Ok(ctx
        .loaders::<IdentityLoaders>()?
        .departments
        .load_one(id)
        .await
        .map_err(loader_error)?
        .map(Department::from))
}

/// A user's grants with their roles, for the user themself and administrators only.
async fn visible_grants(
    ctx: &Context<'_>,
    user_id: Uuid,
) -> Result<Vec<(role_grant::Model, role::Model)>> {
    service::can_see_grants_of(ctx.viewer()?, user_id)?;
    Ok(ctx
        .loaders::<IdentityLoaders>()?
        .grants
        .load_one(user_id)
        .await
        .map_err(loader_error)?
        .unwrap_or_default())
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    id: ID,
    name: String,
    is_active: bool,
    created_at: DateTime<Utc>,
    #[graphql(skip)]
    address: String,
    /// The person who just signed in, answered before any viewer exists.
    #[graphql(skip)]
    signed_in: bool,
    #[graphql(skip)]
    user_id: Uuid,
    #[graphql(skip)]
    department_id: Option<Uuid>,
}

impl From<user::Model> for User {
    fn from(user: user::Model) -> Self {
        UserRecord::from(user).into()
    }
}

impl From<UserRecord> for User {
    fn from(user: UserRecord) -> Self {
        Self {
            id: ID(user.id.to_string()),
            address: user.email,
            name: user.name,
            is_active: user.is_active,
            created_at: user.created_at,
            signed_in: false,
            user_id: user.id,
            department_id: user.department_id,
        }
    }
}

/// Other domains still build it the way they built the old newtype.
#[ComplexObject]
impl User {
    /// Shown to the person, administrators, and people of the same department; null to
    /// anyone else.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let shown = self.signed_in
            || service::may_see_email(ctx.viewer()?, self.user_id, self.department_id);
        Ok(shown.then(|| self.address.clone()))
    }

    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    /// Visible to the user themself and to administrators.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<RoleGrant>> {
        let grants = visible_grants(ctx, self.user_id).await?;
        Ok(grants.into_iter().map(RoleGrant::from).collect())
    }
    /// Every permission the user holds anywhere; visible to the user and administrators.
    async fn permissions(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let grants = visible_grants(ctx, self.user_id).await?;
        Ok(service::permission_names(&grants))
    }
    /// Their portrait over `[from, to)` (default: the 90 days up to now; at most five years),
    /// for the user themself, holders of a role scoped to a department subtree containing
    /// theirs, and administrators; `NOT_FOUND` for anyone else.
    // Several aggregate queries each: priced so a page of users with portraits stays bounded.
    #[graphql(complexity = "child_complexity + 20")]
    async fn profile(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Option<crate::domains::profiles::graphql::UserProfile>> {
        crate::domains::profiles::graphql::profile_field(ctx, self.user_id, from, to)
            .await
            .map(Some)
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Department {
    id: ID,
    name: String,
    #[graphql(skip)]
    department_id: Uuid,
    #[graphql(skip)]
    parent_id: Option<Uuid>,
    #[graphql(skip)]
    head_user_id: Option<Uuid>,
}

impl From<department::Model> for Department {
    fn from(department: department::Model) -> Self {
        Self {
            id: ID(department.id.to_string()),
            name: department.name,
            department_id: department.id,
            parent_id: department.parent_id,
            head_user_id: department.head_user_id,
        }
    }
}

/// Other domains still build it the way they built the old newtype.
#[ComplexObject]
impl Department {
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.parent_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .child_departments
            .load_one(self.department_id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(Department::from)
            .collect())
    }
    async fn head(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.head_user_id else {
            return Ok(None);
        };
        user_by_id(ctx, id).await
    }
}

#[derive(SimpleObject)]
pub struct Role {
    id: ID,
    name: String,
    permissions: Vec<String>,
}

impl From<role::Model> for Role {
    fn from(role: role::Model) -> Self {
        Self {
            permissions: service::role_permissions(&role)
                .into_iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            id: ID(role.id.to_string()),
            name: role.name,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RoleGrant {
    id: ID,
    role: Role,
    #[graphql(skip)]
    user_id: Uuid,
    #[graphql(skip)]
    department_id: Option<Uuid>,
}

impl From<(role_grant::Model, role::Model)> for RoleGrant {
    fn from((grant, role): (role_grant::Model, role::Model)) -> Self {
        Self {
            id: ID(grant.id.to_string()),
            role: role.into(),
            user_id: grant.user_id,
            department_id: grant.department_id,
        }
    }
}

#[ComplexObject]
impl RoleGrant {
    /// The department whose subtree the grant covers; null for a global grant.
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_by_id(ctx, self.user_id).await
    }
}

/// Someone in the company directory, as the viewer may see them.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Person {
    id: ID,
    name: String,
    is_active: bool,
    /// Shown to the person, administrators, and people of the same department; null to
    /// anyone else.
    email: Option<String>,
    #[graphql(skip)]
    department_id: Option<Uuid>,
}

impl From<service::Listed> for Person {
    fn from(listed: service::Listed) -> Self {
        let user = listed.user;
        Self {
            id: ID(user.id.to_string()),
            name: user.name,
            is_active: user.is_active,
            email: listed.email_visible.then_some(user.email),
            department_id: user.department_id,
        }
    }
}

#[ComplexObject]
impl Person {
    async fn department(&self, ctx: &Context<'_>) -> Result<Option<Department>> {
        let Some(id) = self.department_id else {
            return Ok(None);
        };
        department_by_id(ctx, id).await
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
            user: User {
                signed_in: true,
                ..session.user.into()
            },
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

// ---------------------------------------------------------------- parsing inputs

const NAME_MAX: usize = 200;

fn name(raw: &str) -> Result<String, AppError> {
    parse_name("name", raw, NAME_MAX)
}

impl TryFrom<CreateDepartmentInput> for NewDepartment {
    type Error = AppError;

    fn try_from(input: CreateDepartmentInput) -> Result<Self, AppError> {
        Ok(Self {
            name: name(&input.name)?,
            parent_id: optional_id("parentId", input.parent_id.as_ref(), DepartmentId::parse)?,
        })
    }
}

impl TryFrom<UpdateDepartmentInput> for DepartmentChanges {
    type Error = AppError;

    fn try_from(input: UpdateDepartmentInput) -> Result<Self, AppError> {
        Ok(Self {
            name: input.name.as_deref().map(name).transpose()?,
            parent_id: maybe_id("parentId", input.parent_id, DepartmentId::parse)?,
            head_user_id: maybe_id("headUserId", input.head_user_id, UserId::parse)?,
        })
    }
}

impl TryFrom<CreateRoleInput> for NewRole {
    type Error = AppError;

    fn try_from(input: CreateRoleInput) -> Result<Self, AppError> {
        Ok(Self {
            name: name(&input.name)?,
            permissions: parse_permissions(&input.permissions)?,
        })
    }
}

/// What `updateRole` changes: a new name, a new set of permissions, each when given.
pub struct RoleChanges {
    pub name: Option<String>,
    pub permissions: Option<BTreeSet<Permission>>,
}

impl TryFrom<UpdateRoleInput> for RoleChanges {
    type Error = AppError;

    fn try_from(input: UpdateRoleInput) -> Result<Self, AppError> {
        Ok(Self {
            name: input.name.as_deref().map(name).transpose()?,
            permissions: input
                .permissions
                .map(|p| parse_permissions(&p))
                .transpose()?,
        })
    }
}

impl TryFrom<CreateUserInput> for NewUser {
    type Error = AppError;

    fn try_from(input: CreateUserInput) -> Result<Self, AppError> {
        Ok(Self {
            email: Email::parse(&input.email)?,
            name: name(&input.name)?,
            password: NewPassword::parse(&input.password)?,
            department_id: optional_id(
                "departmentId",
                input.department_id.as_ref(),
                DepartmentId::parse,
            )?,
        })
    }
}

impl TryFrom<UpdateUserInput> for UserChanges {
    type Error = AppError;

    fn try_from(input: UpdateUserInput) -> Result<Self, AppError> {
        Ok(Self {
            email: input.email.as_deref().map(Email::parse).transpose()?,
            name: input.name.as_deref().map(name).transpose()?,
            department_id: maybe_id("departmentId", input.department_id, DepartmentId::parse)?,
        })
    }
}

impl TryFrom<UserFilterInput> for UserFilter {
    type Error = AppError;

    fn try_from(filter: UserFilterInput) -> Result<Self, AppError> {
        Ok(Self {
            department_id: optional_id(
                "departmentId",
                filter.department_id.as_ref(),
                DepartmentId::parse,
            )?,
            active: filter.active,
            search: filter.search,
        })
    }
}
