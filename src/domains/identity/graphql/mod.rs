//! Identity's GraphQL surface: thin resolvers that parse input and call the service.

mod types;

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, Result, Subscription, ID};
use futures_util::{Stream, StreamExt};
pub use types::*;

use crate::auth::Permission;
use crate::domains::identity::model::{
    self, parse_name, parse_permissions, DepartmentChanges, DepartmentId, Email, IdentityEvent,
    NewDepartment, NewPassword, NewRole, NewUser, RoleGrantId, RoleId, UserChanges, UserId,
};
use crate::domains::identity::service::{self, LoginPolicy, UserFilter};
use crate::error::AppError;
use crate::graphql::context::ContextExt;
use crate::graphql::ids::{maybe_id, optional_id};
use crate::graphql::live;
use crate::graphql::pagination::{page_size, TotalCount};
use crate::platform::events::Envelope;

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
        let verified =
            service::verify_login(&app.db.conn, app.cache.as_ref(), &policy, &email, &password)
                .await?;
        let session = app
            .write(async |work| service::login(work, &app.jwt, policy.refresh_ttl, verified).await)
            .await?;
        Ok(session.into())
    }

    /// Trades a refresh token for a new pair; the old refresh token is spent.
    async fn refresh_token(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let app = ctx.app()?;
        let ttl = app.config.jwt.refresh_ttl;
        let refreshed = app
            .write(async |work| service::refresh(work, &app.jwt, ttl, &refresh_token).await)
            .await?;
        Ok(refreshed.session()?.into())
    }

    /// Ends the session of `refreshToken`, or with `allSessions` every session of the caller.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: Option<String>,
        #[graphql(default = false)] all_sessions: bool,
    ) -> Result<bool> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let token = refresh_token.as_deref();
        Ok(app
            .write(async |work| service::logout(work, viewer, token, all_sessions).await)
            .await?)
    }

    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let me = UserId(viewer.user()?.id);
        let new_password = NewPassword::parse(&new_password)?;
        app.write(async |work| {
            service::change_password(work, viewer, me, Some(&current_password), new_password).await
        })
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
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let user_id = UserId::parse("userId", &user_id)?;
        let password = NewPassword::parse(&password)?;
        app.write(async |work| {
            service::change_password(work, viewer, user_id, None, password).await
        })
        .await?;
        Ok(true)
    }

    async fn create_department(
        &self,
        ctx: &Context<'_>,
        input: CreateDepartmentInput,
    ) -> Result<Department> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let input = NewDepartment {
            name: parse_name("name", &input.name, NAME_MAX)?,
            parent_id: optional_id("parentId", input.parent_id.as_ref(), DepartmentId::parse)?,
        };
        let created = app
            .write(async |work| service::create_department(work, viewer, input).await)
            .await?;
        Ok(Department(created))
    }

    async fn update_department(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDepartmentInput,
    ) -> Result<Department> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = DepartmentId::parse("id", &id)?;
        let changes = DepartmentChanges {
            name: input
                .name
                .map(|n| parse_name("name", &n, NAME_MAX))
                .transpose()?,
            parent_id: maybe_id("parentId", input.parent_id, DepartmentId::parse)?,
            head_user_id: maybe_id("headUserId", input.head_user_id, UserId::parse)?,
        };
        let updated = app
            .write(async |work| service::update_department(work, viewer, id, changes).await)
            .await?;
        Ok(Department(updated))
    }

    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> Result<Role> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let input = NewRole {
            name: parse_name("name", &input.name, NAME_MAX)?,
            permissions: parse_permissions(&input.permissions)?,
        };
        let created = app
            .write(async |work| service::create_role(work, viewer, input).await)
            .await?;
        Ok(Role(created))
    }

    async fn update_role(&self, ctx: &Context<'_>, id: ID, input: UpdateRoleInput) -> Result<Role> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = RoleId::parse("id", &id)?;
        let name = input
            .name
            .map(|n| parse_name("name", &n, NAME_MAX))
            .transpose()?;
        let permissions = input
            .permissions
            .map(|p| parse_permissions(&p))
            .transpose()?;
        let updated = app
            .write(async |work| service::update_role(work, viewer, id, name, permissions).await)
            .await?;
        Ok(Role(updated))
    }

    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
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
        let created = app
            .write(async |work| service::create_user(work, viewer, input).await)
            .await?;
        Ok(User(created))
    }

    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = UserId::parse("id", &id)?;
        let changes = UserChanges {
            email: input.email.as_deref().map(Email::parse).transpose()?,
            name: input
                .name
                .map(|n| parse_name("name", &n, NAME_MAX))
                .transpose()?,
            department_id: maybe_id("departmentId", input.department_id, DepartmentId::parse)?,
        };
        let updated = app
            .write(async |work| service::update_user(work, viewer, id, changes).await)
            .await?;
        Ok(User(updated))
    }

    /// Deactivation ends every session of the user at once.
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = UserId::parse("id", &id)?;
        let user = app
            .write(async |work| service::set_user_active(work, viewer, id, false).await)
            .await?;
        Ok(User(user))
    }

    async fn reactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let id = UserId::parse("id", &id)?;
        let user = app
            .write(async |work| service::set_user_active(work, viewer, id, true).await)
            .await?;
        Ok(User(user))
    }

    /// With `departmentId`, the grant covers that department's subtree; without, everywhere.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role_id: ID,
        department_id: Option<ID>,
    ) -> Result<RoleGrant> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let user_id = UserId::parse("userId", &user_id)?;
        let role_id = RoleId::parse("roleId", &role_id)?;
        let department_id =
            optional_id("departmentId", department_id.as_ref(), DepartmentId::parse)?;
        let (grant, role) = app
            .write(async |work| {
                service::grant_role(work, viewer, user_id, role_id, department_id).await
            })
            .await?;
        Ok(RoleGrant { grant, role })
    }

    async fn revoke_role(&self, ctx: &Context<'_>, grant_id: ID) -> Result<bool> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let grant_id = RoleGrantId::parse("grantId", &grant_id)?;
        Ok(app
            .write(async |work| service::revoke_grant(work, viewer, grant_id).await)
            .await?)
    }
}

#[derive(Default)]
pub struct IdentitySubscription;

#[Subscription]
impl IdentitySubscription {
    /// Changes to users, roles and departments, from every node. Administrators only. With
    /// `after` (an event's `cursor`), first the changes after it, then live ones.
    async fn identity_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = IdentityChange>> {
        let viewer = ctx.viewer()?.clone();
        service::may_watch_identity(&viewer)?;
        let entries = live::follow(ctx, after.as_deref()).await?;
        Ok(entries.filter_map(move |entry: Arc<Envelope>| {
            let change = entry
                .decode::<IdentityEvent>()
                .filter(|_| {
                    viewer
                        .user()
                        .is_ok_and(|me| model::event_visible_to(&entry, me))
                })
                .map(|event| IdentityChange::new(&entry, event));
            async move { change }
        }))
    }
}
