//! Integrations for `integrations.manage` holders: partner apps with their scopes, API keys
//! (the key is shown once, on the page that made it), webhook endpoints (the signing secret
//! likewise), their deliveries with each attempt, redelivery and replay from a log cursor.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use entities::webhook_endpoint;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::account::Nothing;
use crate::auth::{AppScope, Permission};
use crate::console::layout::{self, button_form, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::events::model::Topic;
use crate::domains::identity::service as identity;
use crate::domains::integrations::model::scopes_of;
use crate::domains::integrations::model::webhooks::{
    parse_description, DeliveryId, EndpointId, Filters,
};
use crate::domains::integrations::service::webhooks::{
    self as hooks, EndpointChanges, NewEndpoint,
};
use crate::domains::integrations::service::{self as integrations, AppChanges, NewApp};
use crate::error::{AppError, AppResult};
use crate::platform::events::Cursor;

const DELIVERY_PAGE: u64 = 25;

pub fn manages_integrations(signed: &Signed) -> bool {
    signed.me.app.is_none() && signed.me.has_global(Permission::IntegrationsManage)
}

/// Checkboxes arrive as `scope.TASKS_READ=on` and `topic.tasks=on`, one field each.
type Fields = HashMap<String, String>;

fn text<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields.get(name).map_or("", |v| v.trim())
}

fn checked_scopes(fields: &Fields) -> BTreeSet<AppScope> {
    AppScope::ALL
        .into_iter()
        .filter(|s| fields.contains_key(&format!("scope.{}", s.as_str())))
        .collect()
}

fn checked_topics(fields: &Fields) -> Vec<Topic> {
    Topic::ALL
        .into_iter()
        .filter(|t| fields.contains_key(&format!("topic.{}", t.as_str())))
        .collect()
}

fn optional_uuid(fields: &Fields, name: &str, api_field: &str) -> AppResult<Option<Uuid>> {
    match text(fields, name) {
        "" => Ok(None),
        raw => Uuid::parse_str(raw)
            .map(Some)
            .map_err(|_| AppError::bad_field(api_field, "not a known id")),
    }
}

fn scopes_text(stored: &serde_json::Value) -> String {
    let scopes: Vec<&str> = scopes_of(stored)
        .into_iter()
        .map(AppScope::as_str)
        .collect();
    if scopes.is_empty() {
        "—".to_owned()
    } else {
        scopes.join(", ")
    }
}

fn app_form(
    signed: &Signed,
    departments: &[(Uuid, String)],
    shown: &Fields,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    html! {
        form method="post" action="/integrations/apps" class="stack" aria-labelledby="new-app-h" {
            h2 id="new-app-h" { (t.new_app) }
            (token_field(&signed.form_token))
            (field(t.name, "app-name", "name", err, html! {
                input id="app-name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
            }))
            (field(t.department, "app-department", "departmentId", err, html! {
                select id="app-department" name="department" {
                    option value="" { (t.everywhere) }
                    @for (id, name) in departments {
                        option value=(id) selected[text(shown, "department") == id.to_string()] { (name) }
                    }
                }
            }))
            fieldset class="checks" {
                legend { (t.scopes) }
                @for scope in AppScope::ALL {
                    @let name = format!("scope.{}", scope.as_str());
                    label { input type="checkbox" name=(name) checked[shown.contains_key(&name)]; " " (scope.as_str()) }
                }
            }
            button type="submit" class="primary" { (t.create) }
        }
    }
}

async fn department_choices(signed: &Signed) -> AppResult<Vec<(Uuid, String)>> {
    Ok(
        identity::list_departments(&signed.app.db.conn, &signed.viewer)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect(),
    )
}

async fn render_overview(
    signed: &Signed,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !manages_integrations(signed) {
        return layout::not_found(signed.locale);
    }
    let loaded = async {
        let apps = integrations::apps(&signed.app.db.conn, &signed.viewer).await?;
        let departments = department_choices(signed).await?;
        AppResult::Ok((apps, departments))
    };
    let (apps, departments) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let names: HashMap<Uuid, &str> = departments
        .iter()
        .map(|(id, n)| (*id, n.as_str()))
        .collect();
    let t = signed.t();
    let empty = Fields::new();
    let content = html! {
        (layout::alert(t, err.as_ref()))
        section aria-labelledby="apps-h" {
            h2 id="apps-h" { (t.apps) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.apps) {
                table {
                    thead { tr {
                        th scope="col" { (t.name) } th scope="col" { (t.status) }
                        th scope="col" { (t.department) } th scope="col" { (t.scopes) }
                    } }
                    tbody {
                        @for a in &apps {
                            tr {
                                td { a href=(format!("/integrations/apps/{}", a.id)) { (a.name) } }
                                td { @if a.active { (t.active) } @else { (t.deactivated) } }
                                td { (a.department_id.and_then(|d| names.get(&d).copied()).unwrap_or(t.everywhere)) }
                                td { (scopes_text(&a.scopes)) }
                            }
                        }
                    }
                }
            }
        }
        (app_form(signed, &departments, shown.unwrap_or(&empty), err.as_ref()))
    };
    layout::page_refusing(signed, t.integrations, content, err.as_ref()).await
}

pub async fn overview(signed: Signed) -> Response {
    render_overview(&signed, None, None).await
}

pub async fn create_app(signed: Signed, Form(fields): Form<Fields>) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let new = NewApp {
            name: text(&fields, "name").to_owned(),
            scopes: checked_scopes(&fields),
            department_id: optional_uuid(&fields, "department", "departmentId")?,
        };
        let app = &signed.app;
        app.write(async |work| {
            integrations::create_app(work, &app.passwords, &signed.viewer, new).await
        })
        .await
    };
    match created.await {
        Ok(made) => Redirect::to(&format!("/integrations/apps/{}", made.id)).into_response(),
        Err(err) => render_overview(&signed, Some(&fields), Some(err)).await,
    }
}

/// What a page that just made a secret shows, this once.
enum Revealed {
    Key(String),
    Secret(String),
}

async fn render_app(
    signed: &Signed,
    id: &str,
    revealed: Option<Revealed>,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !manages_integrations(signed) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let loaded = async {
        let id = Uuid::parse_str(id).map_err(|_| AppError::not_found("app"))?;
        let found = integrations::managed_app(db, &signed.viewer, id).await?;
        let keys = integrations::keys_of(db, found.id).await?;
        let endpoints = hooks::endpoints(db, &signed.viewer, found.id).await?;
        AppResult::Ok((found, keys, endpoints))
    };
    let (found, keys, endpoints) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let locale = signed.locale;
    let empty = Fields::new();
    let shown = shown.unwrap_or(&empty);
    let base = format!("/integrations/apps/{}", found.id);
    let content = html! {
        p { a href="/integrations" { (t.integrations) } }
        (layout::alert(t, err.as_ref()))
        @match &revealed {
            Some(Revealed::Key(key)) => div class="reveal" role="status" {
                p { strong { (t.key_shown_once) } }
                p { code id="revealed-key" { (key) } }
            },
            Some(Revealed::Secret(secret)) => div class="reveal" role="status" {
                p { strong { (t.secret_shown_once) } }
                p { code id="revealed-secret" { (secret) } }
            },
            None => {},
        }
        dl class="fields" {
            div class="row" { dt { (t.status) } dd { @if found.active { (t.active) } @else { (t.deactivated) } } }
            div class="row" { dt { (t.scopes) } dd { (scopes_text(&found.scopes)) } }
        }
        (active_form(signed, &format!("{base}/active"), found.active))
        section aria-labelledby="keys-h" {
            h2 id="keys-h" { (t.api_keys) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.api_keys) {
                table {
                    thead { tr {
                        th scope="col" { (t.name) } th scope="col" { (t.key_hint) }
                        th scope="col" { (t.created) } th scope="col" { (t.expires) }
                        th scope="col" { (t.last_used) } th scope="col" { (t.status) }
                        th scope="col" { (t.actions) }
                    } }
                    tbody {
                        @for key in &keys {
                            tr {
                                td { (key.name) }
                                td { code { "…" (key.hint) } }
                                td { (locale.date_time(key.created_at)) }
                                td { (key.expires_at.map_or("—".to_owned(), |at| locale.date_time(at))) }
                                td { (key.last_used_at.map_or("—".to_owned(), |at| locale.date_time(at))) }
                                td { @if key.revoked_at.is_some() { (t.revoked) } @else { (t.active) } }
                                td { @if key.revoked_at.is_none() {
                                    (button_form(signed, &format!("/integrations/keys/{}/revoke", key.id), t.revoke, "danger"))
                                } }
                            }
                        }
                    }
                }
            }
            form method="post" action=(format!("{base}/keys")) class="filters" aria-label=(t.new_key) {
                (token_field(&signed.form_token))
                (field(t.key_name, "key-name", "name", err.as_ref().filter(|_| shown.contains_key("key")), html! {
                    input id="key-name" name="name" type="text" required maxlength="200";
                }))
                input type="hidden" name="key" value="1";
                button type="submit" { (t.new_key) }
            }
        }
        section aria-labelledby="endpoints-h" {
            h2 id="endpoints-h" { (t.webhook_endpoints) }
            ul {
                @for endpoint in &endpoints {
                    li {
                        a href=(format!("/integrations/endpoints/{}", endpoint.id)) { (endpoint.url) }
                        " · " @if endpoint.active { (t.active) } @else { (t.deactivated) }
                        @if let Some(reason) = &endpoint.disabled_reason { " · " (reason) }
                    }
                }
            }
            (endpoint_form(signed, &base, shown, err.as_ref().filter(|_| shown.contains_key("url"))))
        }
    };
    layout::page_refusing(
        signed,
        &format!("{} · {}", t.apps, found.name),
        content,
        err.as_ref(),
    )
    .await
}

fn endpoint_form(signed: &Signed, base: &str, shown: &Fields, err: Option<&AppError>) -> Markup {
    let t = signed.t();
    html! {
        form method="post" action=(format!("{base}/endpoints")) class="stack" aria-labelledby="new-endpoint-h" {
            h3 id="new-endpoint-h" { (t.new_endpoint) }
            (token_field(&signed.form_token))
            (field(t.url, "endpoint-url", "url", err, html! {
                input id="endpoint-url" name="url" type="url" required value=(text(shown, "url"));
            }))
            (field(t.description, "endpoint-description", "description", err, html! {
                input id="endpoint-description" name="description" type="text" maxlength="500" value=(text(shown, "description"));
            }))
            fieldset class="checks" {
                legend { (t.topics) }
                @for topic in Topic::ALL {
                    @let name = format!("topic.{}", topic.as_str());
                    label { input type="checkbox" name=(name) checked[shown.contains_key(&name)]; " " (topic.as_str()) }
                }
            }
            button type="submit" class="primary" { (t.create) }
        }
    }
}

pub async fn app_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_app(&signed, &id, None, None, None).await
}

/// The form that switches something off or on. It says which it wants, so a page loaded before
/// someone else's change cannot undo it by flipping the state back.
pub fn active_form(signed: &Signed, action: &str, active_now: bool) -> Markup {
    let t = signed.t();
    html! {
        form method="post" action=(action) class="inline" {
            (token_field(&signed.form_token))
            input type="hidden" name="active" value=(if active_now { "false" } else { "true" });
            @if active_now {
                button type="submit" class="danger" { (t.deactivate) }
            } @else {
                button type="submit" { (t.reactivate) }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct Active {
    pub active: bool,
}

pub async fn set_app_active(
    signed: Signed,
    Path(id): Path<String>,
    Form(wanted): Form<Active>,
) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(app_id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    let changes = AppChanges {
        active: Some(wanted.active),
        ..AppChanges::default()
    };
    let switched = signed
        .app
        .write(async |work| integrations::update_app(work, &signed.viewer, app_id, changes).await)
        .await;
    match switched {
        Ok(_) => Redirect::to(&format!("/integrations/apps/{id}")).into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

pub async fn create_key(
    signed: Signed,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(app_id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    let name = text(&fields, "name").to_owned();
    match signed
        .app
        .write(async |work| {
            integrations::create_key(work, &signed.viewer, app_id, &name, None).await
        })
        .await
    {
        Ok((_, key)) => render_app(&signed, &id, Some(Revealed::Key(key)), None, None).await,
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_app(&signed, &id, None, Some(&fields), Some(err)).await,
    }
}

pub async fn revoke_key(
    signed: Signed,
    Path(id): Path<String>,
    Form(_): Form<Nothing>,
) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(key_id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    match signed
        .app
        .write(async |work| integrations::revoke_key(work, &signed.viewer, key_id).await)
        .await
    {
        Ok(key) => Redirect::to(&format!("/integrations/apps/{}", key.app_id)).into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

pub async fn create_endpoint(
    signed: Signed,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(app_id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    let created = async {
        let description = match text(&fields, "description") {
            "" => None,
            given => Some(given.to_owned()),
        };
        let new = NewEndpoint {
            app_id,
            url: text(&fields, "url").to_owned(),
            filters: Filters::parse(checked_topics(&fields), Vec::new(), Vec::new())?,
            description: parse_description(description)?,
        };
        let app = &signed.app;
        app.write(async |work| {
            hooks::create_endpoint(work, &signed.viewer, &app.outbound, new).await
        })
        .await
    };
    match created.await {
        Ok((_, secret)) => {
            render_app(&signed, &id, Some(Revealed::Secret(secret)), None, None).await
        }
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_app(&signed, &id, None, Some(&fields), Some(err)).await,
    }
}

#[derive(Deserialize, Default)]
pub struct DeliveryPaging {
    page: Option<u64>,
}

async fn render_endpoint(
    signed: &Signed,
    id: &str,
    page: u64,
    notice: Option<String>,
    err: Option<AppError>,
) -> Response {
    if !manages_integrations(signed) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let page = page.min(10_000);
    let loaded = async {
        let id = Uuid::parse_str(id).map_err(|_| AppError::not_found("webhook endpoint"))?;
        let endpoint: webhook_endpoint::Model =
            hooks::managed_endpoint(db, &signed.viewer, EndpointId(id)).await?;
        let deliveries = hooks::deliveries(
            db,
            &signed.viewer,
            EndpointId(id),
            page * DELIVERY_PAGE,
            DELIVERY_PAGE,
        )
        .await?;
        AppResult::Ok((endpoint, deliveries))
    };
    let (endpoint, deliveries) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let locale = signed.locale;
    let base = format!("/integrations/endpoints/{}", endpoint.id);
    let filters = Filters::stored(
        &endpoint.topics,
        &endpoint.kinds,
        &endpoint.transaction_types,
    );
    let topics: Vec<&str> = filters.topics.iter().map(|t| t.as_str()).collect();
    let more = (page + 1) * DELIVERY_PAGE < deliveries.total;
    let content = html! {
        p { a href=(format!("/integrations/apps/{}", endpoint.app_id)) { (t.apps) } }
        (layout::alert(t, err.as_ref()))
        @if let Some(notice) = &notice { div class="notice" role="status" { (notice) } }
        dl class="fields" {
            div class="row" { dt { (t.url) } dd { (endpoint.url) } }
            div class="row" { dt { (t.status) } dd { @if endpoint.active { (t.active) } @else { (t.deactivated) } } }
            @if let Some(reason) = &endpoint.disabled_reason { div class="row" { dt { (t.reason) } dd { (reason) } } }
            div class="row" { dt { (t.topics) } dd { @if topics.is_empty() { (t.any) } @else { (topics.join(", ")) } } }
            div class="row" { dt { (t.description) } dd { (endpoint.description) } }
        }
        (active_form(signed, &format!("{base}/active"), endpoint.active))
        section aria-labelledby="replay-h" {
            h2 id="replay-h" { (t.replay) }
            form method="post" action=(format!("{base}/replay")) class="filters" {
                (token_field(&signed.form_token))
                (field(t.replay_after, "after", "after", err.as_ref(), html! {
                    input id="after" name="after" type="text" required spellcheck="false" class="code";
                }))
                button type="submit" { (t.replay) }
            }
        }
        section aria-labelledby="deliveries-h" id="deliveries" data-live="" {
            h2 id="deliveries-h" { (t.deliveries) " · " (deliveries.total) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.deliveries) {
                table {
                    thead { tr {
                        th scope="col" { (t.event) } th scope="col" { (t.status) }
                        th scope="col" { (t.attempts) } th scope="col" { (t.created) }
                        th scope="col" { (t.actions) }
                    } }
                    tbody {
                        @for (delivery, attempts) in &deliveries.items {
                            tr {
                                td { (delivery.event_type) br; code class="hint" { (delivery.message_id) } }
                                td { (delivery.status) }
                                td {
                                    ol class="attempts" {
                                        @for attempt in attempts {
                                            li {
                                                (locale.date_time(attempt.at)) " · "
                                                (attempt.status_code.map_or("—".to_owned(), |c| c.to_string()))
                                                " · " (attempt.duration_ms) " ms"
                                                @if let Some(error) = &attempt.error { " · " (error) }
                                            }
                                        }
                                    }
                                }
                                td { (locale.date_time(delivery.created_at)) }
                                td { (button_form(signed, &format!("/integrations/deliveries/{}/redeliver", delivery.id), t.redeliver, "")) }
                            }
                        }
                    }
                }
            }
            @if more {
                p { a href=(format!("{base}?page={}", page + 1)) { (t.next_page) } }
            }
        }
    };
    layout::page_refusing(signed, t.webhook_endpoints, content, err.as_ref()).await
}

pub async fn endpoint_page(
    signed: Signed,
    Path(id): Path<String>,
    Query(paging): Query<DeliveryPaging>,
) -> Response {
    render_endpoint(&signed, &id, paging.page.unwrap_or(0), None, None).await
}

pub async fn set_endpoint_active(
    signed: Signed,
    Path(id): Path<String>,
    Form(wanted): Form<Active>,
) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(endpoint) = Uuid::parse_str(&id).map(EndpointId) else {
        return layout::not_found(signed.locale);
    };
    let app = &signed.app;
    let changes = EndpointChanges {
        active: Some(wanted.active),
        ..EndpointChanges::default()
    };
    let switched = app
        .write(async |work| {
            hooks::update_endpoint(work, &signed.viewer, &app.outbound, endpoint, changes).await
        })
        .await;
    match switched {
        Ok(_) => Redirect::to(&format!("/integrations/endpoints/{id}")).into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

#[derive(Deserialize)]
pub struct Replay {
    #[serde(default)]
    after: String,
}

pub async fn replay(signed: Signed, Path(id): Path<String>, Form(form): Form<Replay>) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(endpoint) = Uuid::parse_str(&id).map(EndpointId) else {
        return layout::not_found(signed.locale);
    };
    let replayed = async {
        let after = Cursor::parse(form.after.trim())
            .ok_or_else(|| AppError::bad_field("after", "not an event cursor"))?;
        let app = &signed.app;
        app.write(async |work| {
            hooks::replay(work, &signed.viewer, &app.config.webhooks, endpoint, after).await
        })
        .await
    };
    match replayed.await {
        Ok(queued) => {
            let notice = format!("{queued} {}", signed.t().deliveries_queued);
            render_endpoint(&signed, &id, 0, Some(notice), None).await
        }
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_endpoint(&signed, &id, 0, None, Some(err)).await,
    }
}

pub async fn redeliver(signed: Signed, Path(id): Path<String>, Form(_): Form<Nothing>) -> Response {
    if !manages_integrations(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(delivery) = Uuid::parse_str(&id).map(DeliveryId) else {
        return layout::not_found(signed.locale);
    };
    let app = &signed.app;
    match app
        .write(async |work| {
            hooks::redeliver(work, &signed.viewer, &app.config.webhooks, delivery).await
        })
        .await
    {
        Ok(row) => {
            Redirect::to(&format!("/integrations/endpoints/{}", row.endpoint_id)).into_response()
        }
        Err(err) => layout::error_response(signed.locale, &err),
    }
}
