//! The organisation, for administrators: departments (name, parent, head), people (create,
//! edit, deactivate, their role grants) and roles (name and permissions).

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use entities::{department, role};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::account::Nothing;
use crate::auth::Permission;
use crate::console::layout::{self, button_form, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::identity::model::{
    parse_name, DepartmentChanges, DepartmentId, Email, NewDepartment, NewPassword, NewRole,
    RoleGrantId, RoleId, UserChanges, UserId,
};
use crate::domains::identity::service::{self as identity, UserFilter};
use crate::error::{AppError, AppResult};

/// People listed on the organisation page; a search narrows it.
const USER_PAGE: u64 = 100;
const SEARCH_MAX: usize = 200;

type Fields = HashMap<String, String>;

fn text<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields.get(name).map_or("", |v| v.trim())
}

fn optional_id(fields: &Fields, name: &str, api_field: &str) -> AppResult<Option<Uuid>> {
    match text(fields, name) {
        "" => Ok(None),
        raw => Uuid::parse_str(raw)
            .map(Some)
            .map_err(|_| AppError::bad_field(api_field, "not a known id")),
    }
}

fn administers(signed: &Signed) -> bool {
    signed.me.is_admin()
}

fn permissions_of(role: &role::Model) -> Vec<String> {
    role.permissions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

fn checked_permissions(fields: &Fields) -> BTreeSet<Permission> {
    Permission::ALL
        .into_iter()
        .filter(|p| fields.contains_key(&format!("permission.{}", p.as_str())))
        .collect()
}

fn department_select(
    id: &str,
    name: &str,
    departments: &[department::Model],
    chosen: Option<&str>,
    none_label: &str,
) -> Markup {
    html! {
        select id=(id) name=(name) {
            option value="" { (none_label) }
            @for d in departments {
                option value=(d.id) selected[chosen == Some(d.id.to_string().as_str())] { (d.name) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Search {
    search: Option<String>,
}

struct Loaded {
    departments: Vec<department::Model>,
    users: Vec<crate::domains::identity::model::UserRecord>,
    roles: Vec<role::Model>,
}

async fn load(signed: &Signed, search: Option<String>) -> AppResult<Loaded> {
    let db = &signed.app.db.conn;
    if search
        .as_ref()
        .is_some_and(|s| s.chars().count() > SEARCH_MAX)
    {
        return Err(AppError::bad_field("search", "at most 200 characters"));
    }
    let filter = UserFilter {
        department_id: None,
        active: None,
        search,
    };
    Ok(Loaded {
        departments: identity::list_departments(db, &signed.viewer).await?,
        users: identity::list_users(db, &signed.viewer, filter, None, USER_PAGE)
            .await?
            .users,
        roles: identity::list_roles(db, &signed.viewer).await?,
    })
}

async fn render_overview(
    signed: &Signed,
    search: Option<String>,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !administers(signed) {
        return layout::not_found(signed.locale);
    }
    let loaded = match load(signed, search.clone()).await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let empty = Fields::new();
    let shown = shown.unwrap_or(&empty);
    // Which form the refusal belongs to, so it shows beside that form's fields only.
    let form_err = |form: &str| err.as_ref().filter(|_| text(shown, "form") == form);
    let names: HashMap<Uuid, &str> = loaded
        .departments
        .iter()
        .map(|d| (d.id, d.name.as_str()))
        .collect();
    let people: HashMap<Uuid, &str> = loaded
        .users
        .iter()
        .map(|u| (u.id, u.name.as_str()))
        .collect();
    let content = html! {
        (layout::alert(t, err.as_ref()))
        section aria-labelledby="departments-h" {
            h2 id="departments-h" { (t.departments) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.departments) {
                table {
                    thead { tr {
                        th scope="col" { (t.name) } th scope="col" { (t.parent) } th scope="col" { (t.head) }
                    } }
                    tbody {
                        @for d in &loaded.departments {
                            tr {
                                td { a href=(format!("/configuration/departments/{}", d.id)) { (d.name) } }
                                td { (d.parent_id.and_then(|p| names.get(&p).copied()).unwrap_or("—")) }
                                td { (d.head_user_id.and_then(|h| people.get(&h).copied()).unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
            form method="post" action="/configuration/departments" class="filters" aria-label=(t.new_department) {
                (token_field(&signed.form_token))
                input type="hidden" name="form" value="department";
                (field(t.name, "department-name", "name", form_err("department"), html! {
                    input id="department-name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
                }))
                (field(t.parent, "department-parent", "parentId", form_err("department"),
                    department_select("department-parent", "parent", &loaded.departments, Some(text(shown, "parent")), t.none)))
                button type="submit" { (t.new_department) }
            }
        }
        section aria-labelledby="users-h" {
            h2 id="users-h" { (t.people) }
            form method="get" action="/configuration/organisation" class="filters" aria-label=(t.search) {
                div class="field" {
                    label for="user-search" { (t.search) }
                    input id="user-search" name="search" type="search" maxlength="200" value=(search.unwrap_or_default());
                }
                button type="submit" { (t.search) }
            }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.people) {
                table {
                    thead { tr {
                        th scope="col" { (t.name) } th scope="col" { (t.email) }
                        th scope="col" { (t.department) } th scope="col" { (t.status) }
                    } }
                    tbody {
                        @for u in &loaded.users {
                            tr {
                                td { a href=(format!("/configuration/users/{}", u.id)) { (u.name) } }
                                td { (u.email) }
                                td { (u.department_id.and_then(|d| names.get(&d).copied()).unwrap_or("—")) }
                                td { @if u.is_active { (t.active) } @else { (t.deactivated) } }
                            }
                        }
                    }
                }
            }
            form method="post" action="/configuration/users" class="stack" aria-labelledby="new-user-h" {
                h3 id="new-user-h" { (t.new_person) }
                (token_field(&signed.form_token))
                input type="hidden" name="form" value="user";
                (field(t.name, "user-name", "name", form_err("user"), html! {
                    input id="user-name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
                }))
                (field(t.email, "user-email", "email", form_err("user"), html! {
                    input id="user-email" name="email" type="email" required value=(text(shown, "email"));
                }))
                (field(t.password, "user-password", "password", form_err("user"), html! {
                    input id="user-password" name="password" type="password" required minlength="10" autocomplete="new-password";
                }))
                (field(t.department, "user-department", "departmentId", form_err("user"),
                    department_select("user-department", "department", &loaded.departments, Some(text(shown, "department")), t.none)))
                button type="submit" class="primary" { (t.create) }
            }
        }
        section aria-labelledby="roles-h" {
            h2 id="roles-h" { (t.roles) }
            ul {
                @for r in &loaded.roles {
                    li { a href=(format!("/configuration/roles/{}", r.id)) { (r.name) } " · " (permissions_of(r).join(", ")) }
                }
            }
            (role_form(signed, None, shown, form_err("role")))
        }
    };
    layout::page_refusing(signed, t.organisation, content, err.as_ref()).await
}

fn role_form(
    signed: &Signed,
    found: Option<&role::Model>,
    shown: &Fields,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    let action = found.map_or("/configuration/roles".to_owned(), |r| {
        format!("/configuration/roles/{}", r.id)
    });
    let held: Vec<String> = found.map(permissions_of).unwrap_or_default();
    let checked = |p: Permission| {
        if shown.is_empty() {
            held.iter().any(|h| h == p.as_str())
        } else {
            shown.contains_key(&format!("permission.{}", p.as_str()))
        }
    };
    let name = if shown.is_empty() {
        found.map(|r| r.name.clone()).unwrap_or_default()
    } else {
        text(shown, "name").to_owned()
    };
    html! {
        form method="post" action=(action) class="stack" aria-labelledby="role-form-h" {
            h3 id="role-form-h" { @if found.is_some() { (t.edit) } @else { (t.new_role) } }
            (token_field(&signed.form_token))
            input type="hidden" name="form" value="role";
            (field(t.name, "role-name", "name", err, html! {
                input id="role-name" name="name" type="text" required maxlength="200" value=(name);
            }))
            fieldset class="checks" {
                legend { (t.permissions) }
                @for p in Permission::ALL {
                    @let key = format!("permission.{}", p.as_str());
                    label { input type="checkbox" name=(key) checked[checked(p)]; " " (p.as_str()) }
                }
            }
            @if let Some(message) = err.filter(|e| layout::error_field(e) == Some("permissions")) {
                p class="field-error" { (layout::error_text(t, message)) }
            }
            button type="submit" class="primary" { (t.save) }
        }
    }
}

pub async fn overview(signed: Signed, Query(search): Query<Search>) -> Response {
    let search = search
        .search
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    render_overview(&signed, search, None, None).await
}

pub async fn create_department(signed: Signed, Form(fields): Form<Fields>) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let new = NewDepartment {
            name: parse_name("name", text(&fields, "name"), 200)?,
            parent_id: optional_id(&fields, "parent", "parentId")?.map(DepartmentId),
        };
        signed
            .app
            .write(async |work| identity::create_department(work, &signed.viewer, new).await)
            .await
    };
    match created.await {
        Ok(_) => Redirect::to("/configuration/organisation").into_response(),
        Err(err) => render_overview(&signed, None, Some(&fields), Some(err)).await,
    }
}

pub async fn create_user(signed: Signed, Form(fields): Form<Fields>) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let new = crate::domains::identity::model::NewUser {
            email: Email::parse(text(&fields, "email"))?,
            name: parse_name("name", text(&fields, "name"), 200)?,
            password: NewPassword::parse(fields.get("password").map_or("", String::as_str))?,
            department_id: optional_id(&fields, "department", "departmentId")?.map(DepartmentId),
        };
        let app = &signed.app;
        app.write(async |work| {
            identity::create_user(work, &app.passwords, &signed.viewer, new).await
        })
        .await
    };
    // The password is never sent back into the form.
    let mut shown = fields.clone();
    shown.remove("password");
    match created.await {
        Ok(made) => Redirect::to(&format!("/configuration/users/{}", made.id)).into_response(),
        Err(err) => render_overview(&signed, None, Some(&shown), Some(err)).await,
    }
}

pub async fn create_role(signed: Signed, Form(fields): Form<Fields>) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let new = NewRole {
            name: parse_name("name", text(&fields, "name"), 200)?,
            permissions: checked_permissions(&fields),
        };
        signed
            .app
            .write(async |work| identity::create_role(work, &signed.viewer, new).await)
            .await
    };
    match created.await {
        Ok(_) => Redirect::to("/configuration/organisation").into_response(),
        Err(err) => render_overview(&signed, None, Some(&fields), Some(err)).await,
    }
}

async fn render_department(
    signed: &Signed,
    id: &str,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !administers(signed) {
        return layout::not_found(signed.locale);
    }
    let loaded = async {
        let id = Uuid::parse_str(id).map_err(|_| AppError::not_found("department"))?;
        let mut all = load(signed, None).await?;
        let found = all
            .departments
            .iter()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| AppError::not_found("department"))?;
        // The head is always a choice, even beyond the listed page or deactivated: saving the
        // form must never drop them unasked.
        if let Some(head) = found
            .head_user_id
            .filter(|h| !all.users.iter().any(|u| u.id == *h))
        {
            let db = &signed.app.db.conn;
            all.users.extend(identity::users_by_id(db, &[head]).await?);
        }
        AppResult::Ok((found, all))
    };
    let (found, all) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let current: Fields = [
        ("name".to_owned(), found.name.clone()),
        (
            "parent".to_owned(),
            found.parent_id.map(|p| p.to_string()).unwrap_or_default(),
        ),
        (
            "head".to_owned(),
            found
                .head_user_id
                .map(|h| h.to_string())
                .unwrap_or_default(),
        ),
    ]
    .into();
    let shown = shown.unwrap_or(&current);
    let others: Vec<department::Model> = all
        .departments
        .iter()
        .filter(|d| d.id != found.id)
        .cloned()
        .collect();
    let content = html! {
        p { a href="/configuration/organisation" { (t.organisation) } }
        (layout::alert(t, err.as_ref()))
        form method="post" action=(format!("/configuration/departments/{}", found.id)) class="stack" {
            (token_field(&signed.form_token))
            (field(t.name, "name", "name", err.as_ref(), html! {
                input id="name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
            }))
            (field(t.parent, "parent", "parentId", err.as_ref(),
                department_select("parent", "parent", &others, Some(text(shown, "parent")), t.none)))
            (field(t.head, "head", "headUserId", err.as_ref(), html! {
                select id="head" name="head" {
                    option value="" { (t.none) }
                    @for u in all.users.iter().filter(|u| u.is_active || Some(u.id) == found.head_user_id) {
                        option value=(u.id) selected[text(shown, "head") == u.id.to_string()] { (u.name) }
                    }
                }
            }))
            button type="submit" class="primary" { (t.save) }
        }
    };
    layout::page_refusing(
        signed,
        &format!("{} · {}", t.departments, found.name),
        content,
        err.as_ref(),
    )
    .await
}

pub async fn department_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_department(&signed, &id, None, None).await
}

pub async fn update_department(
    signed: Signed,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(department) = Uuid::parse_str(&id).map(DepartmentId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let changes = DepartmentChanges {
            name: Some(parse_name("name", text(&fields, "name"), 200)?),
            parent_id: Some(optional_id(&fields, "parent", "parentId")?.map(DepartmentId)),
            head_user_id: Some(optional_id(&fields, "head", "headUserId")?.map(UserId)),
        };
        signed
            .app
            .write(async |work| {
                identity::update_department(work, &signed.viewer, department, changes).await
            })
            .await
    };
    match updated.await {
        Ok(_) => Redirect::to("/configuration/organisation").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_department(&signed, &id, Some(&fields), Some(err)).await,
    }
}

async fn render_user(
    signed: &Signed,
    id: &str,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !administers(signed) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let loaded = async {
        let id = Uuid::parse_str(id).map_err(|_| AppError::not_found("user"))?;
        let found = identity::find_user(db, &signed.viewer, UserId(id)).await?;
        let grants = identity::grants_with_roles(db, &[found.id]).await?;
        let departments = identity::list_departments(db, &signed.viewer).await?;
        let roles = identity::list_roles(db, &signed.viewer).await?;
        AppResult::Ok((found, grants, departments, roles))
    };
    let (found, grants, departments, roles) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let current: Fields = [
        ("name".to_owned(), found.name.clone()),
        ("email".to_owned(), found.email.clone()),
        (
            "department".to_owned(),
            found
                .department_id
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ),
    ]
    .into();
    let shown = shown.unwrap_or(&current);
    let is_grant_form = text(shown, "form") == "grant";
    let profile_err = err.as_ref().filter(|_| !is_grant_form);
    let grant_err = err.as_ref().filter(|_| is_grant_form);
    let names: HashMap<Uuid, &str> = departments
        .iter()
        .map(|d| (d.id, d.name.as_str()))
        .collect();
    let base = format!("/configuration/users/{}", found.id);
    let content = html! {
        p { a href="/configuration/organisation" { (t.organisation) } }
        (layout::alert(t, err.as_ref()))
        form method="post" action=(base) class="stack" {
            (token_field(&signed.form_token))
            (field(t.name, "name", "name", profile_err, html! {
                input id="name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
            }))
            (field(t.email, "email", "email", profile_err, html! {
                input id="email" name="email" type="email" required value=(text(shown, "email"));
            }))
            (field(t.department, "department", "departmentId", profile_err,
                department_select("department", "department", &departments, Some(text(shown, "department")), t.none)))
            button type="submit" class="primary" { (t.save) }
        }
        (super::integrations::active_form(signed, &format!("{base}/active"), found.is_active))
        section aria-labelledby="grants-h" {
            h2 id="grants-h" { (t.grants) }
            ul {
                @for (grant, role) in &grants {
                    li {
                        (role.name) " · "
                        (grant.department_id.and_then(|d| names.get(&d).copied()).unwrap_or(t.everywhere))
                        " " (button_form(signed, &format!("/configuration/grants/{}/revoke", grant.id), t.revoke, "danger"))
                    }
                }
            }
            form method="post" action=(format!("{base}/grants")) class="filters" aria-label=(t.grant_role) {
                (token_field(&signed.form_token))
                input type="hidden" name="form" value="grant";
                (field(t.roles, "grant-role", "roleId", grant_err, html! {
                    select id="grant-role" name="role" required {
                        @for r in &roles { option value=(r.id) { (r.name) } }
                    }
                }))
                (field(t.department, "grant-department", "departmentId", grant_err,
                    department_select("grant-department", "department", &departments, None, t.everywhere)))
                button type="submit" { (t.grant_role) }
            }
        }
    };
    layout::page_refusing(
        signed,
        &format!("{} · {}", t.people, found.name),
        content,
        err.as_ref(),
    )
    .await
}

pub async fn user_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_user(&signed, &id, None, None).await
}

pub async fn update_user(
    signed: Signed,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(user) = Uuid::parse_str(&id).map(UserId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let changes = UserChanges {
            email: Some(Email::parse(text(&fields, "email"))?),
            name: Some(parse_name("name", text(&fields, "name"), 200)?),
            department_id: Some(
                optional_id(&fields, "department", "departmentId")?.map(DepartmentId),
            ),
        };
        signed
            .app
            .write(async |work| identity::update_user(work, &signed.viewer, user, changes).await)
            .await
    };
    match updated.await {
        Ok(_) => Redirect::to(&format!("/configuration/users/{id}")).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_user(&signed, &id, Some(&fields), Some(err)).await,
    }
}

pub async fn set_user_active(
    signed: Signed,
    Path(id): Path<String>,
    Form(wanted): Form<super::integrations::Active>,
) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(user) = Uuid::parse_str(&id).map(UserId) else {
        return layout::not_found(signed.locale);
    };
    let switched = signed
        .app
        .write(async |work| {
            identity::set_user_active(work, &signed.viewer, user, wanted.active).await
        })
        .await;
    match switched {
        Ok(_) => Redirect::to(&format!("/configuration/users/{id}")).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_user(&signed, &id, None, Some(err)).await,
    }
}

pub async fn grant(signed: Signed, Path(id): Path<String>, Form(fields): Form<Fields>) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(user) = Uuid::parse_str(&id).map(UserId) else {
        return layout::not_found(signed.locale);
    };
    let granted = async {
        let role = optional_id(&fields, "role", "roleId")?
            .ok_or_else(|| AppError::bad_field("roleId", "choose a role"))?;
        let department = optional_id(&fields, "department", "departmentId")?.map(DepartmentId);
        signed
            .app
            .write(async |work| {
                identity::grant_role(work, &signed.viewer, user, RoleId(role), department).await
            })
            .await
    };
    match granted.await {
        Ok(_) => Redirect::to(&format!("/configuration/users/{id}")).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_user(&signed, &id, Some(&fields), Some(err)).await,
    }
}

pub async fn revoke(signed: Signed, Path(id): Path<String>, Form(_): Form<Nothing>) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(grant) = Uuid::parse_str(&id).map(RoleGrantId) else {
        return layout::not_found(signed.locale);
    };
    let db = &signed.app.db.conn;
    // Back to the person the grant was theirs.
    let holder = identity::grant_holder(db, &signed.viewer, grant).await;
    match signed
        .app
        .write(async |work| identity::revoke_grant(work, &signed.viewer, grant).await)
        .await
    {
        Ok(_) => match holder {
            Ok(Some(user)) => Redirect::to(&format!("/configuration/users/{user}")).into_response(),
            _ => Redirect::to("/configuration/organisation").into_response(),
        },
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

async fn render_role(
    signed: &Signed,
    id: &str,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !administers(signed) {
        return layout::not_found(signed.locale);
    }
    let loaded = async {
        let id = Uuid::parse_str(id).map_err(|_| AppError::not_found("role"))?;
        identity::list_roles(&signed.app.db.conn, &signed.viewer)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| AppError::not_found("role"))
    };
    let found = match loaded.await {
        Ok(found) => found,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let empty = Fields::new();
    let content = html! {
        p { a href="/configuration/organisation" { (t.organisation) } }
        (layout::alert(t, err.as_ref()))
        (role_form(signed, Some(&found), shown.unwrap_or(&empty), err.as_ref()))
    };
    layout::page_refusing(
        signed,
        &format!("{} · {}", t.roles, found.name),
        content,
        err.as_ref(),
    )
    .await
}

pub async fn role_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_role(&signed, &id, None, None).await
}

pub async fn update_role(
    signed: Signed,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !administers(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(role) = Uuid::parse_str(&id).map(RoleId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let name = parse_name("name", text(&fields, "name"), 200)?;
        let permissions = checked_permissions(&fields);
        signed
            .app
            .write(async |work| {
                identity::update_role(work, &signed.viewer, role, Some(name), Some(permissions))
                    .await
            })
            .await
    };
    match updated.await {
        Ok(_) => Redirect::to("/configuration/organisation").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_role(&signed, &id, Some(&fields), Some(err)).await,
    }
}
