//! Identity's GraphQL surface: thin resolvers that parse input and call the service.

mod types;

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Object, Result, Subscription, ID};
use futures_util::{Stream, StreamExt};
pub use types::*;

use crate::app::AppState;
use crate::auth::Permission;
use crate::domains::identity::model::{
    self, DepartmentChanges, DepartmentId, IdentityEvent, NewDepartment, NewPassword, NewRole,
    NewUser, RoleGrantId, RoleId, UserChanges, UserId,
};
use crate::domains::identity::service::{self, Credentials, UserFilter, UserPage};
use crate::graphql::context::ContextExt;
use crate::graphql::found;
use crate::graphql::ids::optional_id;
use crate::graphql::live;
use crate::graphql::pagination::{
    connection, decode_cursor, page_size, selects_total, uncounted_connection, TotalCount,
};
use crate::platform::events::Envelope;

// ---------------------------------------------------------------- roots

fn credentials(app: &AppState) -> Credentials<'_> {
    app.credentials()
}

fn user_connection(
    page: UserPage,
    after: bool,
) -> Connection<String, User, TotalCount, EmptyFields> {
    let mut connection = Connection::with_additional_fields(
        after,
        page.has_next,
        TotalCount {
            total_count: page.total,
        },
    );
    connection.edges.extend(
        page.users
            .into_iter()
            .map(|u| Edge::new(u.id.to_string(), User::from(u))),
    );
    connection
}

/// The departments of a page of people, read with the page when the query selects them
/// (rather than after the loaders' batching delay).
async fn prime_departments(
    ctx: &Context<'_>,
    department_ids: impl Iterator<Item = uuid::Uuid>,
) -> Result<()> {
    let connection = ctx.look_ahead();
    let nodes = [
        connection.field("edges").field("node"),
        connection.field("nodes"),
    ];
    if !nodes.iter().any(|node| node.field("department").exists()) {
        return Ok(());
    }
    let mut ids: Vec<uuid::Uuid> = department_ids.collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let departments = service::departments_by_id(ctx.caller()?.db(), &ids).await?;
    ctx.loaders::<crate::domains::identity::loaders::IdentityLoaders>()?
        .departments
        .feed_many(departments.into_iter().map(|d| (d.id, d)))
        .await;
    Ok(())
}

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let caller = ctx.caller()?;
        Ok(service::me(caller.db(), caller.viewer).await?.into())
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let caller = ctx.caller()?;
        let user = service::find_user(caller.db(), caller.viewer, UserId::parse("id", &id)?).await;
        Ok(found(user)?.map(User::from))
    }

    /// Administrators only.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        filter: Option<UserFilterInput>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, User, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let filter = UserFilter::try_from(filter.unwrap_or_default())?;
        let first = page_size(first)?;
        let after = after
            .map(|a| UserId::parse("after", &a).map(|id| id.0))
            .transpose()?;
        let page = service::list_users(caller.db(), caller.viewer, filter, after, first).await?;
        prime_departments(ctx, page.users.iter().filter_map(|u| u.department_id)).await?;
        Ok(user_connection(page, after.is_some()))
    }

    /// The company directory, open to everyone signed in: names and departments, ordered by
    /// name. `search` matches the name; `departmentId` keeps one department (not its subtree).
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn people(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        department_id: Option<ID>,
        include_inactive: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Person, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let filter = service::PeopleFilter {
            search,
            department_id: optional_id(
                "departmentId",
                department_id.as_ref(),
                DepartmentId::parse,
            )?,
            include_inactive: include_inactive.unwrap_or(false),
        };
        let first = page_size(first)?;
        let offset = decode_cursor(after.as_deref())?;
        let counting = if selects_total(ctx) {
            service::Counting::Total
        } else {
            service::Counting::PageOnly
        };
        let page =
            service::list_people(caller.db(), caller.viewer, filter, offset, first, counting)
                .await?;
        prime_departments(ctx, page.people.iter().filter_map(|p| p.user.department_id)).await?;
        let people = page.people.into_iter().map(Person::from).collect();
        Ok(match page.total {
            Some(total) => connection(people, total, offset),
            None => uncounted_connection(people, page.has_next, offset),
        })
    }

    /// The whole department tree, ordered so parents come before children.
    async fn departments(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let caller = ctx.caller()?;
        let departments = service::list_departments(caller.db(), caller.viewer).await?;
        Ok(departments.into_iter().map(Department::from).collect())
    }

    async fn department(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Department>> {
        let caller = ctx.caller()?;
        let id = DepartmentId::parse("id", &id)?;
        let department = service::find_department(caller.db(), caller.viewer, id).await;
        Ok(found(department)?.map(Department::from))
    }

    /// Administrators only.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        let caller = ctx.caller()?;
        let roles = service::list_roles(caller.db(), caller.viewer).await?;
        Ok(roles.into_iter().map(Role::from).collect())
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
        let credentials = credentials(app);
        let client = ctx.client()?;
        let verified =
            service::verify_login(&app.db.conn, &credentials, client, &email, &password).await?;
        let ttl = credentials.policy.refresh_ttl;
        let session = app
            .write(async |work| service::login(work, &app.jwt, ttl, verified).await)
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
        let caller = ctx.caller()?;
        let token = refresh_token.as_deref();
        Ok(caller
            .write(async |work| service::logout(work, caller.viewer, token, all_sessions).await)
            .await?)
    }

    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let caller = ctx.caller()?;
        let credentials = credentials(caller.app);
        caller
            .write(async |work| {
                let (current, new) = (&current_password, &new_password);
                service::change_own_password(work, &credentials, caller.viewer, current, new).await
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
        let caller = ctx.caller()?;
        let user_id = UserId::parse("userId", &user_id)?;
        let password = NewPassword::parse(&password)?;
        let credentials = credentials(caller.app);
        caller
            .write(async |work| {
                let viewer = caller.viewer;
                service::change_password(work, &credentials, viewer, user_id, None, password).await
            })
            .await?;
        Ok(true)
    }

    async fn create_department(
        &self,
        ctx: &Context<'_>,
        input: CreateDepartmentInput,
    ) -> Result<Department> {
        let caller = ctx.caller()?;
        let input = NewDepartment::try_from(input)?;
        let created = caller
            .write(async |work| service::create_department(work, caller.viewer, input).await)
            .await?;
        Ok(created.into())
    }

    async fn update_department(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDepartmentInput,
    ) -> Result<Department> {
        let caller = ctx.caller()?;
        let id = DepartmentId::parse("id", &id)?;
        let changes = DepartmentChanges::try_from(input)?;
        let updated = caller
            .write(async |work| service::update_department(work, caller.viewer, id, changes).await)
            .await?;
        Ok(updated.into())
    }

    async fn create_role(&self, ctx: &Context<'_>, input: CreateRoleInput) -> Result<Role> {
        let caller = ctx.caller()?;
        let input = NewRole::try_from(input)?;
        let created = caller
            .write(async |work| service::create_role(work, caller.viewer, input).await)
            .await?;
        Ok(created.into())
    }

    async fn update_role(&self, ctx: &Context<'_>, id: ID, input: UpdateRoleInput) -> Result<Role> {
        let caller = ctx.caller()?;
        let id = RoleId::parse("id", &id)?;
        let RoleChanges { name, permissions } = RoleChanges::try_from(input)?;
        let updated = caller
            .write(async |work| {
                service::update_role(work, caller.viewer, id, name, permissions).await
            })
            .await?;
        Ok(updated.into())
    }

    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> Result<User> {
        let caller = ctx.caller()?;
        let input = NewUser::try_from(input)?;
        let created = caller
            .write(async |work| {
                service::create_user(work, &caller.app.passwords, caller.viewer, input).await
            })
            .await?;
        Ok(created.into())
    }

    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let caller = ctx.caller()?;
        let id = UserId::parse("id", &id)?;
        let changes = UserChanges::try_from(input)?;
        let updated = caller
            .write(async |work| service::update_user(work, caller.viewer, id, changes).await)
            .await?;
        Ok(updated.into())
    }

    /// Deactivation ends every session of the user at once.
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let caller = ctx.caller()?;
        let id = UserId::parse("id", &id)?;
        let user = caller
            .write(async |work| service::set_user_active(work, caller.viewer, id, false).await)
            .await?;
        Ok(user.into())
    }

    async fn reactivate_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let caller = ctx.caller()?;
        let id = UserId::parse("id", &id)?;
        let user = caller
            .write(async |work| service::set_user_active(work, caller.viewer, id, true).await)
            .await?;
        Ok(user.into())
    }

    /// With `departmentId`, the grant covers that department's subtree; without, everywhere.
    async fn grant_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role_id: ID,
        department_id: Option<ID>,
    ) -> Result<RoleGrant> {
        let caller = ctx.caller()?;
        let (user_id, role_id) = (
            UserId::parse("userId", &user_id)?,
            RoleId::parse("roleId", &role_id)?,
        );
        let department_id =
            optional_id("departmentId", department_id.as_ref(), DepartmentId::parse)?;
        let granted = caller
            .write(async |work| {
                service::grant_role(work, caller.viewer, user_id, role_id, department_id).await
            })
            .await?;
        Ok(granted.into())
    }

    async fn revoke_role(&self, ctx: &Context<'_>, grant_id: ID) -> Result<bool> {
        let caller = ctx.caller()?;
        let grant_id = RoleGrantId::parse("grantId", &grant_id)?;
        Ok(caller
            .write(async |work| service::revoke_grant(work, caller.viewer, grant_id).await)
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
        let viewer = ctx.caller()?.viewer.clone();
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
