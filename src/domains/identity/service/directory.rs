//! Reading people, departments and roles, and who may see whose grants.

use std::collections::HashMap;

use entities::{department, role, role_grant, user};
use sea_orm::prelude::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::auth::{Permission, Viewer};
use crate::domains::identity::model::{DepartmentId, UserColumns, UserId, UserRecord};
use crate::error::{AppError, AppResult};
use crate::platform::db::any_of;

pub fn role_permissions(role: &role::Model) -> Vec<Permission> {
    permissions_named(&role.permissions)
}

/// The permissions a role's JSON list names; names this build does not know are skipped.
pub fn permissions_named(names: &serde_json::Value) -> Vec<Permission> {
    names
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str()?.parse::<Permission>().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub async fn grants_with_roles<C: ConnectionTrait>(
    db: &C,
    user_ids: &[Uuid],
) -> AppResult<Vec<(role_grant::Model, role::Model)>> {
    let rows = role_grant::Entity::find()
        .filter(role_grant::Column::UserId.is_in(user_ids.iter().copied()))
        .find_also_related(role::Entity)
        .order_by_asc(role_grant::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(grant, role)| Some((grant, role?)))
        .collect())
}

pub(super) async fn department_paths<C: ConnectionTrait>(
    db: &C,
    ids: Vec<Uuid>,
) -> AppResult<HashMap<Uuid, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(department::Entity::find()
        .filter(department::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.path))
        .collect())
}

/// A `UserRecord`'s columns, in its order: what every read of users outside sign-in selects.
pub const USER_RECORD_COLUMNS: [user::Column; 6] = [
    user::Column::Id,
    user::Column::Email,
    user::Column::Name,
    user::Column::DepartmentId,
    user::Column::IsActive,
    user::Column::CreatedAt,
];

/// The users `select` finds, as records decoded by position (no password hash read, and no
/// column looked up by name per row).
pub async fn user_records<C: ConnectionTrait>(
    db: &C,
    select: sea_orm::Select<user::Entity>,
) -> AppResult<Vec<UserRecord>> {
    Ok(select
        .select_only()
        .columns(USER_RECORD_COLUMNS)
        .into_tuple::<UserColumns>()
        .all(db)
        .await?
        .into_iter()
        .map(UserRecord::from)
        .collect())
}

/// Any signed-in user may look people up; the directory is shared across the company.
pub async fn find_user<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: UserId,
) -> AppResult<UserRecord> {
    viewer.user()?;
    user_records(db, user::Entity::find_by_id(id.0))
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found("user"))
}

pub async fn me<C: ConnectionTrait>(db: &C, viewer: &Viewer) -> AppResult<UserRecord> {
    let me = viewer.user()?;
    find_user(db, viewer, UserId(me.id)).await
}

pub struct UserFilter {
    pub department_id: Option<DepartmentId>,
    pub active: Option<bool>,
    pub search: Option<String>,
}

pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub has_next: bool,
    pub total: u64,
}

pub async fn list_users<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: UserFilter,
    after: Option<Uuid>,
    first: u64,
) -> AppResult<UserPage> {
    viewer.user()?.require_global(Permission::Admin)?;
    let mut query = user::Entity::find();
    if let Some(department) = filter.department_id {
        query = query.filter(user::Column::DepartmentId.eq(department.0));
    }
    if let Some(active) = filter.active {
        query = query.filter(user::Column::IsActive.eq(active));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = crate::platform::db::contains_pattern(&search.to_lowercase());
        query = query.filter(
            sea_orm::Condition::any()
                .add(user::Column::EmailNormalized.like(pattern.clone()))
                .add(
                    Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(
                        user::Column::Name,
                    )))
                    .like(pattern),
                ),
        );
    }
    let total = query.clone().count(db).await?;
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    let mut users = user_records(db, query.order_by_asc(user::Column::Id).limit(first + 1)).await?;
    let has_next = users.len() as u64 > first;
    users.truncate(first as usize);
    Ok(UserPage {
        users,
        has_next,
        total,
    })
}

/// Whether `viewer` may read the email of the person `user_id` of `department_id`: the person,
/// administrators, and people (or apps) of the same department. Everyone else sees names only,
/// so the directory cannot be harvested for addresses.
pub fn may_see_email(viewer: &Viewer, user_id: Uuid, department_id: Option<Uuid>) -> bool {
    let Ok(me) = viewer.user() else {
        return false;
    };
    me.id == user_id
        || me.is_admin()
        || (department_id.is_some() && me.department_id == department_id)
}

/// Longest directory search accepted; names are at most 200 characters.
const SEARCH_MAX: usize = 200;

pub struct PeopleFilter {
    pub search: Option<String>,
    pub department_id: Option<DepartmentId>,
    pub include_inactive: bool,
}

/// One person as the directory shows them to one viewer.
pub struct Listed {
    pub user: UserRecord,
    pub email_visible: bool,
}

pub struct PeoplePage {
    pub people: Vec<Listed>,
    /// Counted only when asked for (`Counting::Total`).
    pub total: Option<u64>,
    pub has_next: bool,
}

/// Whether a page read also counts every match: a caller that shows no total skips a
/// statement that reads every matching row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counting {
    Total,
    PageOnly,
}

/// The company directory, open to every signed-in person: names and departments, by name.
/// Search matches the name (and, for administrators, the email: for anyone else a match on an
/// address they may not read would tell them whose it is). Inactive people only on request.
pub async fn list_people<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    filter: PeopleFilter,
    offset: u64,
    first: u64,
    counting: Counting,
) -> AppResult<PeoplePage> {
    let me = viewer.user()?;
    // Apps act through service accounts; they are not people to look up.
    let mut query = user::Entity::find().filter(
        user::Column::EmailNormalized
            .like(format!("%{}", super::APP_ACCOUNT_DOMAIN))
            .not(),
    );
    if let Some(department) = filter.department_id {
        query = query.filter(user::Column::DepartmentId.eq(department.0));
    }
    if !filter.include_inactive {
        query = query.filter(user::Column::IsActive.eq(true));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if search.chars().count() > SEARCH_MAX {
            return Err(AppError::bad_field(
                "search",
                format!("search is at most {SEARCH_MAX} characters"),
            ));
        }
        let pattern = crate::platform::db::contains_pattern(&search.to_lowercase());
        let by_name = Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(
            user::Column::Name,
        )))
        .like(pattern.clone());
        let mut matches = sea_orm::Condition::any().add(by_name);
        if me.is_admin() {
            matches = matches.add(user::Column::EmailNormalized.like(pattern));
        }
        query = query.filter(matches);
    }
    let total = match counting {
        Counting::Total => Some(query.clone().count(db).await?),
        Counting::PageOnly => None,
    };
    // One row past the page says whether another follows.
    let mut users = user_records(
        db,
        query
            .order_by_asc(user::Column::Name)
            .order_by_asc(user::Column::Id)
            .offset(offset)
            .limit(first + 1),
    )
    .await?;
    let has_next = users.len() as u64 > first;
    users.truncate(first as usize);
    Ok(PeoplePage {
        people: users
            .into_iter()
            .map(|user| Listed {
                email_visible: may_see_email(viewer, user.id, user.department_id),
                user,
            })
            .collect(),
        total,
        has_next,
    })
}

/// One person of the directory by id, as `list_people` would show them (inactive ones too);
/// `None` for an app's service account or an unknown id.
pub async fn person_listing<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    user_id: Uuid,
) -> AppResult<Option<Listed>> {
    viewer.user()?;
    let user = user_records(
        db,
        user::Entity::find_by_id(user_id).filter(
            user::Column::EmailNormalized
                .like(format!("%{}", super::APP_ACCOUNT_DOMAIN))
                .not(),
        ),
    )
    .await?
    .pop();
    Ok(user.map(|user| Listed {
        email_visible: may_see_email(viewer, user.id, user.department_id),
        user,
    }))
}

pub async fn list_departments<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<department::Model>> {
    viewer.user()?;
    Ok(department::Entity::find()
        .order_by_asc(department::Column::Path)
        .all(db)
        .await?)
}

pub async fn find_department<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: DepartmentId,
) -> AppResult<department::Model> {
    viewer.user()?;
    department::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("department"))
}

pub async fn list_roles<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<role::Model>> {
    viewer.user()?.require_global(Permission::Admin)?;
    Ok(role::Entity::find()
        .order_by_asc(role::Column::Name)
        .all(db)
        .await?)
}

/// Roles and permissions are private to their holder and to administrators.
pub fn can_see_grants_of(viewer: &Viewer, user_id: Uuid) -> AppResult<()> {
    let me = viewer.user()?;
    if me.id == user_id || me.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only the user and administrators see a user's roles".into(),
        ))
    }
}

/// Every permission the grants carry, each named once, in order.
pub fn permission_names(grants: &[(role_grant::Model, role::Model)]) -> Vec<String> {
    let mut names: Vec<String> = grants
        .iter()
        .flat_map(|(_, role)| role_permissions(role))
        .map(|p| p.as_str().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The live feed of identity changes is for administrators.
pub fn may_watch_identity(viewer: &Viewer) -> AppResult<()> {
    viewer.user()?.require_global(Permission::Admin)
}

/// Active users holding the role named `role_name` either globally or through a grant whose
/// department subtree contains `department_id`.
pub async fn active_holders_of_role<C: ConnectionTrait>(
    db: &C,
    role_name: &str,
    department_id: Option<Uuid>,
) -> AppResult<Vec<Uuid>> {
    let Some(role) = role::Entity::find()
        .filter(role::Column::Name.eq(role_name))
        .one(db)
        .await?
    else {
        return Ok(Vec::new());
    };
    let grants = role_grant::Entity::find()
        .filter(role_grant::Column::RoleId.eq(role.id))
        .all(db)
        .await?;
    let subject_path = match department_id {
        Some(id) => department::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|d| d.path),
        None => None,
    };
    let scope_paths =
        department_paths(db, grants.iter().filter_map(|g| g.department_id).collect()).await?;
    let holders: Vec<Uuid> = grants
        .iter()
        .filter(|grant| match grant.department_id {
            None => true,
            Some(scope) => match (scope_paths.get(&scope), &subject_path) {
                (Some(scope_path), Some(path)) => path.starts_with(scope_path.as_str()),
                _ => false,
            },
        })
        .map(|grant| grant.user_id)
        .collect();
    active_users(db, holders).await
}

/// The head of the department or, failing that, of its nearest ancestor that has one.
pub async fn department_head_for<C: ConnectionTrait>(
    db: &C,
    department_id: Option<Uuid>,
) -> AppResult<Option<Uuid>> {
    let Some(id) = department_id else {
        return Ok(None);
    };
    let Some(department) = department::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let ancestors: Vec<Uuid> = department
        .path
        .split('/')
        .filter_map(|part| Uuid::parse_str(part).ok())
        .collect();
    let by_id: HashMap<Uuid, department::Model> = department::Entity::find()
        .filter(department::Column::Id.is_in(ancestors.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    for ancestor in ancestors.iter().rev() {
        if let Some(head) = by_id.get(ancestor).and_then(|d| d.head_user_id) {
            if !active_users(db, vec![head]).await?.is_empty() {
                return Ok(Some(head));
            }
        }
    }
    Ok(None)
}

/// The subset of `ids` that are existing, active users, in the order given, without repeats.
pub async fn active_users<C: ConnectionTrait>(db: &C, ids: Vec<Uuid>) -> AppResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let active: std::collections::HashSet<Uuid> = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.clone()))
        .filter(user::Column::IsActive.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut seen = std::collections::HashSet::new();
    Ok(ids
        .into_iter()
        .filter(|id| active.contains(id) && seen.insert(*id))
        .collect())
}

pub async fn role_named<C: ConnectionTrait>(db: &C, name: &str) -> AppResult<Option<role::Model>> {
    Ok(role::Entity::find()
        .filter(role::Column::Name.eq(name))
        .one(db)
        .await?)
}

/// The materialised path of a department, for subtree checks elsewhere.
pub async fn department_path_of<C: ConnectionTrait>(
    db: &C,
    department_id: Uuid,
) -> AppResult<Option<String>> {
    Ok(department::Entity::find_by_id(department_id)
        .one(db)
        .await?
        .map(|d| d.path))
}

/// A sub-select of the ids of every department inside any of the subtrees at `paths`.
pub fn departments_within(paths: &[String]) -> sea_orm::sea_query::SelectStatement {
    let mut any = sea_orm::Condition::any();
    for path in paths {
        any = any.add(department::Column::Path.starts_with(path.as_str()));
    }
    if paths.is_empty() {
        any = any.add(sea_orm::sea_query::Expr::cust("1 = 0"));
    }
    sea_orm::sea_query::Query::select()
        .column(department::Column::Id)
        .from(department::Entity)
        .cond_where(any)
        .to_owned()
}

/// A sub-select of the ids of every department in the subtree of `department_id` (itself
/// included), for callers that hold the department's id but not its path.
pub fn departments_under(department_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Alias, Expr, JoinType, Query};
    let root = Alias::new("root");
    Query::select()
        .column((department::Entity, department::Column::Id))
        .from(department::Entity)
        .join_as(
            JoinType::InnerJoin,
            department::Entity,
            root.clone(),
            Expr::cust("SUBSTR(departments.path, 1, LENGTH(root.path)) = root.path"),
        )
        .and_where(Expr::col((root, department::Column::Id)).eq(department_id))
        .to_owned()
}

/// Active users whose department is `department_id` itself.
pub async fn active_members_of<C: ConnectionTrait>(
    db: &C,
    department_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(user::Entity::find()
        .filter(user::Column::DepartmentId.eq(department_id))
        .filter(user::Column::IsActive.eq(true))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

pub async fn users_by_id<C: ConnectionTrait>(db: &C, ids: &[Uuid]) -> AppResult<Vec<UserRecord>> {
    user_records(
        db,
        user::Entity::find().filter(any_of(db.get_database_backend(), user::Column::Id, ids)),
    )
    .await
}

pub async fn departments_by_id<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> AppResult<Vec<department::Model>> {
    Ok(department::Entity::find()
        .filter(any_of(
            db.get_database_backend(),
            department::Column::Id,
            ids,
        ))
        .all(db)
        .await?)
}
