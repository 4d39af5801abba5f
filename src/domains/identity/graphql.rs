//! Identity's GraphQL surface: thin resolvers that parse input and call the service.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{
    Context, Enum, InputObject, MaybeUndefined, Object, Result, SimpleObject, Subscription, ID,
};
use chrono::{DateTime, Utc};
use entities::{department, role, role_grant, user};
use futures_util::{Stream, StreamExt};

use super::loaders::IdentityLoaders;
use super::model::{
    parse_name, parse_permissions, DepartmentChanges, DepartmentId, Email, IdentityEvent,
    IdentityEventKind, NewDepartment, NewPassword, NewRole, NewUser, RoleGrantId, RoleId,
    UserChanges, UserId,
};
use super::service::{self, LoginPolicy, UserFilter};
use crate::auth::Permission;
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::pagination::{page_size, TotalCount};
use crate::platform::events::{self, Received};

const NAME_MAX: usize = 200;

fn parse_optional<T>(
    field: &str,
    raw: Option<&ID>,
    parse: fn(&str, &str) -> Result<T, AppError>,
) -> Result<Option<T>, AppError> {
    raw.map(|id| parse(field, id.as_str())).transpose()
}

// ---------------------------------------------------------------- output types

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
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .departments
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Department))
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
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .departments
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Department))
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
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .users
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(User))
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
    grant: role_grant::Model,
    role: role::Model,
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
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .departments
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Department))
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let loaders = ctx.loaders::<IdentityLoaders>()?;
        Ok(loaders
            .users
            .load_one(self.grant.user_id)
            .await
            .map_err(loader_error)?
            .map(User))
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
    DepartmentChanged,
}

#[derive(SimpleObject)]
pub struct IdentityChange {
    kind: IdentityEventType,
    subject_id: ID,
    actor_id: Option<ID>,
    at: DateTime<Utc>,
}

impl From<IdentityEvent> for IdentityChange {
    fn from(event: IdentityEvent) -> Self {
        Self {
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
    name: String,
    parent_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateDepartmentInput {
    name: Option<String>,
    /// null moves the department to the root; absent leaves it where it is.
    parent_id: MaybeUndefined<ID>,
    head_user_id: MaybeUndefined<ID>,
}

#[derive(InputObject)]
pub struct CreateRoleInput {
    name: String,
    permissions: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateRoleInput {
    name: Option<String>,
    permissions: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    email: String,
    name: String,
    password: String,
    department_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    email: Option<String>,
    name: Option<String>,
    department_id: MaybeUndefined<ID>,
}

#[derive(InputObject, Default)]
pub struct UserFilterInput {
    department_id: Option<ID>,
    active: Option<bool>,
    /// Matches email or name, case-insensitively.
    search: Option<String>,
}

fn maybe_id<T>(
    field: &str,
    raw: MaybeUndefined<ID>,
    parse: fn(&str, &str) -> Result<T, AppError>,
) -> Result<Option<Option<T>>, AppError> {
    match raw {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(id) => Ok(Some(Some(parse(field, id.as_str())?))),
    }
}

// ---------------------------------------------------------------- roots

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let app = ctx.app()?;
        Ok(User(service::me(&app.db.conn, ctx.viewer()?).await?))
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let app = ctx.app()?;
        let id = UserId::parse("id", &id)?;
        match service::find_user(&app.db.conn, ctx.viewer()?, id).await {
            Ok(user) => Ok(Some(User(user))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Administrators only.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        filter: Option<UserFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, User, TotalCount, EmptyFields>> {
        let app = ctx.app()?;
        let filter = filter.unwrap_or_default();
        let first = page_size(first)?;
        let after = after
            .map(|a| UserId::parse("after", &a).map(|id| id.0))
            .transpose()?;
        let page = service::list_users(
            &app.db.conn,
            ctx.viewer()?,
            UserFilter {
                department_id: parse_optional(
                    "departmentId",
                    filter.department_id.as_ref(),
                    DepartmentId::parse,
                )?,
                active: filter.active,
                search: filter.search,
            },
            after,
            first,
        )
        .await?;
        let mut connection = Connection::with_additional_fields(
            after.is_some(),
            page.has_next,
            TotalCount {
                total_count: page.total,
            },
        );
        connection.edges.extend(
            page.users
                .into_iter()
                .map(|u| Edge::new(u.id.to_string(), User(u))),
        );
        Ok(connection)
    }

    /// The whole department tree, ordered so parents come before children.
    async fn departments(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let app = ctx.app()?;
        Ok(service::list_departments(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(Department)
            .collect())
    }

    async fn department(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Department>> {
        let app = ctx.app()?;
        let id = DepartmentId::parse("id", &id)?;
        match service::find_department(&app.db.conn, ctx.viewer()?, id).await {
            Ok(d) => Ok(Some(Department(d))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Administrators only.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        let app = ctx.app()?;
        Ok(service::list_roles(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(Role)
            .collect())
    }

    /// The permission strings a role may carry.
    async fn known_permissions(&self) -> Vec<&'static str> {
        Permission::ALL.map(Permission::as_str).to_vec()
    }
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<AuthPayload> {
        let app = ctx.app()?;
        let policy = LoginPolicy {
            failures_per_window: app.config.limits.login_failures_per_window,
            window: app.config.limits.login_failure_window,
            refresh_ttl: app.config.jwt.refresh_ttl,
        };
        let session = service::login(
            &app.db.conn,
            app.cache.as_ref(),
            &app.jwt,
            &policy,
            &email,
            &password,
        )
        .await?;
        Ok(session.into())
    }

    /// Trades a refresh token for a new pair; the old refresh token is spent.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let app = ctx.app()?;
        let session = service::refresh(
            &app.db.conn,
            &app.jwt,
            app.config.jwt.refresh_ttl,
            &refresh_token,
        )
        .await?;
        Ok(session.into())
    }

    /// Ends the session of `refreshToken`, or with `allSessions` every session of the caller.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
        #[graphql(default = false)] all_sessions: bool,
    ) -> Result<bool> {
        let app = ctx.app()?;
        Ok(service::logout(
            &app.db.conn,
            ctx.viewer()?,
            refresh_token.as_deref(),
            all_sessions,
        )
        .await?)
    }

    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let app = ctx.app()?;
        let viewer = ctx.viewer()?;
        let me = UserId(viewer.user()?.id);
        service::change_password(
            &app.db.conn,
            viewer,
            me,
            Some(&current_password),
            NewPassword::parse(&new_password)?,
        )
        .await?;
        Ok(true)
    }

    /// Administrators only: sets another user's password and ends their sessions.
    async fn set_user_password(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        password: String,
    ) -> Result<bool> {
        let app = ctx.app()?;
        service::change_password(
            &app.db.conn,
            ctx.viewer()?,
            UserId::parse("userId", &user_id)?,
            None,
            NewPassword::parse(&password)?,
        )
        .await?;
        Ok(true)
    }

    async fn create_department(
        &self,
        ctx: &Context<'_>,
        input: CreateDepartmentInput,
    ) -> Result<Department> {
        let app = ctx.app()?;
        let input = NewDepartment {
            name: parse_name("name", &input.name, NAME_MAX)?,
            parent_id: parse_optional("parentId", input.parent_id.as_ref(), DepartmentId::parse)?,
        };
        Ok(Department(
            service::create_department(&app.db.conn, app.bus.as_ref(), ctx.viewer()?, input)
                .await?,
        ))
    }

    async fn update_department(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDepartmentInput,
    ) -> Result<Department> {
        let app = ctx.app()?;
        let changes = DepartmentChanges {
            name: input
                .name
                .map(|n| parse_name("name", &n, NAME_MAX))
                .transpose()?,
            parent_id: maybe_id("parentId", input.parent_id, DepartmentId::parse)?,
            head_user_id: maybe_id("headUserId", input.head_user_id, UserId::parse)?,
        };
        Ok(Department(
            service::update_department(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                DepartmentId::parse("id", &id)?,
                changes,
            )
            .await?,
        ))
    }

    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> Result<Role> {
        let app = ctx.app()?;
        let input = NewRole {
            name: parse_name("name", &input.name, NAME_MAX)?,
            permissions: parse_permissions(&input.permissions)?,
        };
        Ok(Role(
            service::create_role(&app.db.conn, ctx.viewer()?, input).await?,
        ))
    }

    async fn update_role(&self, ctx: &Context<'_>, id: ID, input: UpdateRoleInput) -> Result<Role> {
        let app = ctx.app()?;
        let name = input
            .name
            .map(|n| parse_name("name", &n, NAME_MAX))
            .transpose()?;
        let permissions = input
            .permissions
            .map(|p| parse_permissions(&p))
            .transpose()?;
        Ok(Role(
            service::update_role(
                &app.db.conn,
                ctx.viewer()?,
                RoleId::parse("id", &id)?,
                name,
                permissions,
            )
            .await?,
        ))
    }

    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        let app = ctx.app()?;
        let input = NewUser {
            email: Email::parse(&input.email)?,
            name: parse_name("name", &input.name, NAME_MAX)?,
            password: NewPassword::parse(&input.password)?,
            department_id: parse_optional(
                "departmentId",
                input.department_id.as_ref(),
                DepartmentId::parse,
            )?,
        };
        Ok(User(
            service::create_user(&app.db.conn, app.bus.as_ref(), ctx.viewer()?, input).await?,
        ))
    }

    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let app = ctx.app()?;
        let changes = UserChanges {
            email: input.email.as_deref().map(Email::parse).transpose()?,
            name: input
                .name
                .map(|n| parse_name("name", &n, NAME_MAX))
                .transpose()?,
            department_id: maybe_id("departmentId", input.department_id, DepartmentId::parse)?,
        };
        Ok(User(
            service::update_user(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                UserId::parse("id", &id)?,
                changes,
            )
            .await?,
        ))
    }

    /// Deactivation ends every session of the user at once.
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let app = ctx.app()?;
        let id = UserId::parse("id", &id)?;
        Ok(User(
            service::set_user_active(&app.db.conn, app.bus.as_ref(), ctx.viewer()?, id, false)
                .await?,
        ))
    }

    async fn reactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let app = ctx.app()?;
        let id = UserId::parse("id", &id)?;
        Ok(User(
            service::set_user_active(&app.db.conn, app.bus.as_ref(), ctx.viewer()?, id, true)
                .await?,
        ))
    }

    /// With `departmentId`, the grant covers that department's subtree; without, everywhere.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role_id: ID,
        department_id: Option<ID>,
    ) -> Result<RoleGrant> {
        let app = ctx.app()?;
        let (grant, role) = service::grant_role(
            &app.db.conn,
            app.bus.as_ref(),
            ctx.viewer()?,
            UserId::parse("userId", &user_id)?,
            RoleId::parse("roleId", &role_id)?,
            parse_optional("departmentId", department_id.as_ref(), DepartmentId::parse)?,
        )
        .await?;
        Ok(RoleGrant { grant, role })
    }

    async fn revoke_role(&self, ctx: &Context<'_>, grant_id: ID) -> Result<bool> {
        let app = ctx.app()?;
        Ok(service::revoke_grant(
            &app.db.conn,
            app.bus.as_ref(),
            ctx.viewer()?,
            RoleGrantId::parse("grantId", &grant_id)?,
        )
        .await?)
    }
}

#[derive(Default)]
pub struct IdentitySubscription;

#[Subscription]
impl IdentitySubscription {
    /// Changes to users, roles and departments, from every node. Administrators only. A
    /// subscriber that falls too far behind is closed rather than buffered without bound.
    async fn identity_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = IdentityChange>> {
        let app = ctx.app()?;
        ctx.viewer()?.user()?.require_global(Permission::Admin)?;
        let stream = events::subscribe::<IdentityEvent>(app.bus.as_ref())
            .take_while(|received| {
                futures_util::future::ready(matches!(received, Received::Event(_)))
            })
            .filter_map(|received| async move {
                match received {
                    Received::Event(event) => Some(IdentityChange::from(event)),
                    Received::Lagged(_) => None,
                }
            });
        Ok(stream)
    }
}
