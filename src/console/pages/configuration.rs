//! The seed's configuration management page: task categories (edited here), approval flows with
//! their steps, transaction types, and the organisation, each for whoever may manage it.

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use entities::task_category;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Permission;
use crate::console::layout::{self, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::approvals::service as approvals;
use crate::domains::business::service as business;
use crate::domains::identity::service as identity;
use crate::domains::tasks::model::{
    AssignmentPool, AssignmentStrategy, CategoryChanges, CategoryId,
};
use crate::domains::tasks::service as tasks;
use crate::error::{AppError, AppResult};

fn configures_tasks(signed: &Signed) -> bool {
    signed.me.has_global(Permission::TaskConfigure)
}

fn strategy_label(strategy: &str) -> &str {
    match AssignmentStrategy::parse(strategy) {
        Some(AssignmentStrategy::Manual) | None => "MANUAL",
        Some(AssignmentStrategy::RoundRobin) => "ROUND_ROBIN",
        Some(AssignmentStrategy::LeastLoaded) => "LEAST_LOADED",
    }
}

fn rule_of(step: &entities::approval_step::Model) -> String {
    if let Some(role) = &step.approver_role {
        format!("role: {role}")
    } else if step.department_head {
        "department head".to_owned()
    } else if let Some(field) = &step.approver_field {
        format!("field: {field}")
    } else if let Some(user) = step.approver_user_id {
        format!("user: {user}")
    } else {
        "—".to_owned()
    }
}

fn condition_of(step: &entities::approval_step::Model) -> String {
    match (
        &step.condition_field,
        &step.condition_op,
        &step.condition_value,
    ) {
        (Some(field), Some(op), Some(value)) => format!("{field} {op} {value}"),
        _ => "—".to_owned(),
    }
}

pub async fn overview(signed: Signed) -> Response {
    let tasks_too = configures_tasks(&signed);
    let admin = signed.me.is_admin();
    if !tasks_too && !signed.me.holds_anywhere(Permission::FinancePost) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let loaded = async {
        let categories = if tasks_too {
            tasks::list_categories(db, &signed.viewer, true).await?
        } else {
            Vec::new()
        };
        let flows = if tasks_too {
            approvals::list_flows(db, &signed.viewer).await?
        } else {
            Vec::new()
        };
        let steps =
            approvals::steps_of(db, &flows.iter().map(|f| f.id).collect::<Vec<_>>()).await?;
        let types = business::list_types(db, &signed.viewer).await?;
        let departments = identity::list_departments(db, &signed.viewer).await?;
        let roles = if admin {
            identity::list_roles(db, &signed.viewer).await?
        } else {
            Vec::new()
        };
        let ledger = if super::ledger_setup::posts_to_ledger(&signed) {
            Some(super::ledger_setup::overview_section(&signed).await?)
        } else {
            None
        };
        AppResult::Ok((categories, flows, steps, types, departments, roles, ledger))
    };
    let (categories, flows, steps, types, departments, roles, ledger) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let content = html! {
        @if tasks_too {
            section aria-labelledby="categories-h" {
                h2 id="categories-h" { (t.task_categories) }
                div class="table-wrap" tabindex="0" role="region" aria-label=(t.task_categories) {
                    table {
                        thead { tr {
                            th scope="col" { (t.code) } th scope="col" { (t.name) }
                            th scope="col" { (t.strategy) } th scope="col" { (t.default_priority) }
                            th scope="col" { (t.status) }
                        } }
                        tbody {
                            @for c in &categories {
                                tr {
                                    td { (c.code) }
                                    td { a href=(format!("/configuration/categories/{}", c.id)) { (c.name) } }
                                    td { (strategy_label(&c.assignment_strategy)) }
                                    td { (c.default_priority) }
                                    td { @if c.archived_at.is_some() { (t.archived) } @else { "—" } }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="flows-h" {
                h2 id="flows-h" { (t.approval_flows) }
                p { a class="button" href="/configuration/flows/new" { (t.new_flow) } }
                @for flow in &flows {
                    h3 { a href=(format!("/configuration/flows/{}", flow.id)) { (flow.name) } " · " (t.version) " " (flow.version) }
                    div class="table-wrap" tabindex="0" role="region" aria-label=(t.approval_flows) {
                        table {
                            thead { tr {
                                th scope="col" { (t.step) } th scope="col" { (t.approver_rule) }
                                th scope="col" { (t.required_approvals) } th scope="col" { (t.condition) }
                                th scope="col" { (t.sla_hours) }
                            } }
                            tbody {
                                @for step in steps.iter().filter(|s| s.flow_id == flow.id) {
                                    tr {
                                        td { (step.name) }
                                        td { (rule_of(step)) }
                                        td { (step.required_approvals) }
                                        td { (condition_of(step)) }
                                        td { (step.sla_hours.map_or("—".to_owned(), |h| h.to_string())) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="types-h" {
            h2 id="types-h" { (t.transaction_types) }
            @if admin {
                p { a class="button" href="/configuration/types/new" { (t.new_transaction_type) } }
            }
            ul { @for ty in &types { li {
                @if admin {
                    a href=(format!("/configuration/types/{}", ty.id)) { (ty.code) } " · " (ty.name) " · " (ty.route)
                } @else {
                    (ty.code) " · " (ty.name)
                }
            } } }
        }
        @if let Some(ledger) = ledger { (ledger) }
        section aria-labelledby="org-h" {
            h2 id="org-h" { (t.department) }
            @if admin {
                p { a class="button" href="/configuration/organisation" { (t.organisation) } }
            }
            ul { @for d in &departments { li { (d.name) } } }
            @if admin {
                h3 { (t.roles) }
                ul { @for role in &roles { li { (role.name) " · " (role.permissions.to_string()) } } }
            }
        }
    };
    layout::page(&signed, t.configuration, content).await
}

fn category_form(
    signed: &Signed,
    category: &task_category::Model,
    flows: &[entities::approval_flow::Model],
    departments: &[entities::department::Model],
    shown: &CategoryFields,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    let base = format!("/configuration/categories/{}", category.id);
    html! {
        (layout::alert(t, err))
        form method="post" action=(base) class="stack" {
            (token_field(&signed.form_token))
            (field(t.code, "code", "code", err, html! {
                input id="code" name="code" type="text" required value=(shown.code);
            }))
            (field(t.name, "name", "name", err, html! {
                input id="name" name="name" type="text" required value=(shown.name);
            }))
            (field(t.default_priority, "default-priority", "defaultPriority", err, html! {
                input id="default-priority" name="default_priority" type="number" min="1" max="5" step="1" value=(shown.default_priority);
            }))
            (field(t.strategy, "strategy", "strategy", err, html! {
                select id="strategy" name="strategy" {
                    @for s in ["MANUAL", "ROUND_ROBIN", "LEAST_LOADED"] {
                        option value=(s) selected[shown.strategy == s] { (s) }
                    }
                }
            }))
            (field(t.pool, "pool-department", "pool", err, html! {
                select id="pool-department" name="pool_department" {
                    option value="" { (t.none) }
                    @for d in departments {
                        option value=(d.id) selected[shown.pool_department.as_deref() == Some(d.id.to_string().as_str())] { (d.name) }
                    }
                }
            }))
            (field(t.pool_role, "pool-role", "pool", err, html! {
                input id="pool-role" name="pool_role" type="text" value=(shown.pool_role.clone().unwrap_or_default());
            }))
            (field(t.approval_flow, "flow", "approvalFlowId", err, html! {
                select id="flow" name="approval_flow" {
                    option value="" { (t.none) }
                    @for f in flows {
                        option value=(f.id) selected[shown.approval_flow.as_deref() == Some(f.id.to_string().as_str())] { (f.name) }
                    }
                }
            }))
            (field(t.custom_field_schema, "schema", "customFieldsSchema", err, html! {
                textarea id="schema" name="custom_fields_schema" rows="8" class="code" spellcheck="false" { (shown.custom_fields_schema) }
            }))
            button type="submit" class="primary" { (t.save) }
        }
        form method="post" action=(format!("{base}/archive")) class="inline" {
            (token_field(&signed.form_token))
            @if category.archived_at.is_some() {
                input type="hidden" name="archived" value="false";
                button type="submit" { (t.restore) }
            } @else {
                input type="hidden" name="archived" value="true";
                button type="submit" class="danger" { (t.archive) }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct CategoryFields {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    default_priority: String,
    #[serde(default)]
    strategy: String,
    pool_department: Option<String>,
    pool_role: Option<String>,
    approval_flow: Option<String>,
    #[serde(default)]
    custom_fields_schema: String,
}

impl CategoryFields {
    fn of(category: &task_category::Model) -> Self {
        Self {
            code: category.code.clone(),
            name: category.name.clone(),
            default_priority: category.default_priority.to_string(),
            strategy: category.assignment_strategy.clone(),
            pool_department: category.pool_department_id.map(|d| d.to_string()),
            pool_role: category.pool_role.clone(),
            approval_flow: category.approval_flow_id.map(|f| f.to_string()),
            custom_fields_schema: category
                .custom_fields_schema
                .as_ref()
                .and_then(|s| serde_json::to_string_pretty(s).ok())
                .unwrap_or_default(),
        }
    }

    fn changes(&self) -> AppResult<CategoryChanges> {
        let id = |raw: &Option<String>, field: &str| -> AppResult<Option<Uuid>> {
            match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(raw) => Uuid::parse_str(raw)
                    .map(Some)
                    .map_err(|_| AppError::bad_field(field, "not a known id")),
            }
        };
        let pool = match (
            id(&self.pool_department, "pool")?,
            self.pool_role
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_field(
                    "pool",
                    "a pool is a department or a role, not both",
                ))
            }
            (Some(department), None) => Some(AssignmentPool::Department(department)),
            (None, Some(role)) => Some(AssignmentPool::Role(role.to_owned())),
            (None, None) => None,
        };
        let schema = match self.custom_fields_schema.trim() {
            "" => None,
            text => Some(serde_json::from_str(text).map_err(|e| {
                AppError::bad_field("customFieldsSchema", format!("not JSON: {e}"))
            })?),
        };
        Ok(CategoryChanges {
            code: Some(self.code.trim().to_owned()),
            name: Some(self.name.trim().to_owned()),
            default_priority: Some(self.default_priority.trim().parse().map_err(|_| {
                AppError::bad_field("defaultPriority", "a whole number from 1 to 5")
            })?),
            approval_flow_id: Some(id(&self.approval_flow, "approvalFlowId")?),
            strategy: Some(AssignmentStrategy::parse(&self.strategy).ok_or_else(|| {
                AppError::bad_field("strategy", "MANUAL, ROUND_ROBIN or LEAST_LOADED")
            })?),
            pool: Some(pool),
            custom_fields_schema: Some(schema),
        })
    }
}

async fn render_category(
    signed: &Signed,
    id: &str,
    shown: Option<&CategoryFields>,
    err: Option<AppError>,
) -> Response {
    if !configures_tasks(signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(id) = Uuid::parse_str(id).map(CategoryId) else {
        return layout::not_found(signed.locale);
    };
    let db = &signed.app.db.conn;
    let loaded = async {
        let category = tasks::category_for(db, &signed.viewer, id)
            .await?
            .ok_or_else(|| AppError::not_found("task category"))?;
        let flows = approvals::list_flows(db, &signed.viewer).await?;
        let departments = identity::list_departments(db, &signed.viewer).await?;
        AppResult::Ok((category, flows, departments))
    };
    let (category, flows, departments) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let current = CategoryFields::of(&category);
    let content = category_form(
        signed,
        &category,
        &flows,
        &departments,
        shown.unwrap_or(&current),
        err.as_ref(),
    );
    let title = format!("{} · {}", signed.t().task_categories, category.name);
    layout::page_refusing(signed, &title, content, err.as_ref()).await
}

pub async fn category_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_category(&signed, &id, None, None).await
}

pub async fn update_category(
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<CategoryFields>,
) -> Response {
    if !configures_tasks(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(category) = Uuid::parse_str(&id).map(CategoryId) else {
        return layout::not_found(signed.locale);
    };
    let updated = match form.changes() {
        Ok(changes) => {
            signed
                .app
                .write(async |work| {
                    tasks::update_category(work, &signed.viewer, category, changes).await
                })
                .await
        }
        Err(err) => Err(err),
    };
    match updated {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_category(&signed, &id, Some(&form), Some(err)).await,
    }
}

#[derive(Deserialize)]
pub struct Archived {
    archived: bool,
}

pub async fn archive_category(
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<Archived>,
) -> Response {
    if !configures_tasks(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(category) = Uuid::parse_str(&id).map(CategoryId) else {
        return layout::not_found(signed.locale);
    };
    match signed
        .app
        .write(async |work| {
            tasks::set_category_archived(work, &signed.viewer, category, form.archived).await
        })
        .await
    {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}
