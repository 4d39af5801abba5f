//! Identity's GraphQL surface: thin resolvers that parse input and call the service.

mod types;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, Result, Subscription, ID};
use futures_util::{Stream, StreamExt};
pub use types::*;

use crate::auth::Permission;
use crate::domains::identity::model::{
    parse_name, parse_permissions, DepartmentChanges, DepartmentId, Email, IdentityEvent,
    NewDepartment, NewPassword, NewRole, NewUser, RoleGrantId, RoleId, UserChanges, UserId,
};
use crate::domains::identity::service::{self, LoginPolicy, UserFilter};
use crate::error::AppError;
use crate::graphql::context::ContextExt;
use crate::graphql::ids::{maybe_id, optional_id};
use crate::graphql::pagination::{page_size, TotalCount};
use crate::platform::events::{self, Received};

const NAME_MAX: usize = 200;

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
                department_id: optional_id(
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
            app.bus.as_ref(),
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
            app.bus.as_ref(),
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
            app.bus.as_ref(),
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
            parent_id: optional_id("parentId", input.parent_id.as_ref(), DepartmentId::parse)?,
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
            department_id: optional_id(
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
            optional_id("departmentId", department_id.as_ref(), DepartmentId::parse)?,
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
