//! Business transaction types, for administrators: code, name, route, approval flow, the
//! payload's JSON Schema, the posting rule and the forwarding address, each checked as the API
//! checks them.

use std::collections::HashMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use entities::transaction_type;
use maud::{html, Markup};
use uuid::Uuid;

use crate::console::layout::{self, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::approvals::service as approvals;
use crate::domains::business::model::{Route, TransactionTypeId};
use crate::domains::business::service::{self as business, NewType, TypeChanges};
use crate::domains::identity::model::parse_name;
use crate::error::{AppError, AppResult};

const ROUTES: [&str; 3] = ["DATA_PROCESS", "FINANCE_POSTING", "APP_FORWARD"];

type Fields = HashMap<String, String>;

fn text<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields.get(name).map_or("", |v| v.trim())
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn fields_of(found: &transaction_type::Model) -> Fields {
    Fields::from([
        ("code".to_owned(), found.code.clone()),
        ("name".to_owned(), found.name.clone()),
        ("route".to_owned(), found.route.clone()),
        (
            "approval_flow".to_owned(),
            found
                .approval_flow_id
                .map(|f| f.to_string())
                .unwrap_or_default(),
        ),
        ("payload_schema".to_owned(), pretty(&found.payload_schema)),
        (
            "posting_rule".to_owned(),
            found.posting_rule.as_ref().map(pretty).unwrap_or_default(),
        ),
        (
            "forward_url".to_owned(),
            found.forward_url.clone().unwrap_or_default(),
        ),
    ])
}

fn json_field(
    fields: &Fields,
    name: &str,
    api_field: &str,
) -> AppResult<Option<serde_json::Value>> {
    match text(fields, name) {
        "" => Ok(None),
        raw => serde_json::from_str(raw)
            .map(Some)
            .map_err(|e| AppError::bad_field(api_field, format!("not JSON: {e}"))),
    }
}

/// Every field of the form, as a whole new type: an edit sets each one.
fn parsed(fields: &Fields) -> AppResult<NewType> {
    Ok(NewType {
        code: text(fields, "code").to_owned(),
        name: parse_name("name", text(fields, "name"), 200)?,
        payload_schema: json_field(fields, "payload_schema", "payloadSchema")?
            .unwrap_or_else(|| serde_json::json!({ "type": "object" })),
        approval_flow_id: match text(fields, "approval_flow") {
            "" => None,
            raw => Some(
                Uuid::parse_str(raw)
                    .map_err(|_| AppError::bad_field("approvalFlowId", "no such approval flow"))?,
            ),
        },
        route: Route::parse(text(fields, "route")).ok_or_else(|| {
            AppError::bad_field("route", "DATA_PROCESS, FINANCE_POSTING or APP_FORWARD")
        })?,
        posting_rule: json_field(fields, "posting_rule", "postingRule")?,
        forward_url: Some(text(fields, "forward_url").to_owned()).filter(|u| !u.is_empty()),
    })
}

fn type_form(
    signed: &Signed,
    action: &str,
    shown: &Fields,
    flows: &[entities::approval_flow::Model],
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    html! {
        (layout::alert(t, err))
        form method="post" action=(action) class="stack" {
            (token_field(&signed.form_token))
            (field(t.code, "code", "code", err, html! {
                input id="code" name="code" type="text" required maxlength="64" value=(text(shown, "code"));
            }))
            (field(t.name, "name", "name", err, html! {
                input id="name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
            }))
            (field(t.route, "route", "route", err, html! {
                select id="route" name="route" {
                    @for route in ROUTES { option value=(route) selected[text(shown, "route") == route] { (route) } }
                }
            }))
            (field(t.approval_flow, "approval-flow", "approvalFlowId", err, html! {
                select id="approval-flow" name="approval_flow" {
                    option value="" { (t.none) }
                    @for f in flows {
                        option value=(f.id) selected[text(shown, "approval_flow") == f.id.to_string()] { (f.name) }
                    }
                }
            }))
            (field(t.payload_schema, "payload-schema", "payloadSchema", err, html! {
                textarea id="payload-schema" name="payload_schema" rows="8" class="code" spellcheck="false" { (text(shown, "payload_schema")) }
            }))
            (field(t.posting_rule, "posting-rule", "postingRule", err, html! {
                textarea id="posting-rule" name="posting_rule" rows="6" class="code" spellcheck="false" { (text(shown, "posting_rule")) }
            }))
            (field(t.forward_url, "forward-url", "forwardUrl", err, html! {
                input id="forward-url" name="forward_url" type="url" value=(text(shown, "forward_url"));
            }))
            button type="submit" class="primary" { (t.save) }
        }
    }
}

async fn render(
    signed: &Signed,
    id: Option<&str>,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !signed.me.is_admin() {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let loaded = async {
        let found = match id {
            None => None,
            Some(raw) => {
                let id =
                    Uuid::parse_str(raw).map_err(|_| AppError::not_found("transaction type"))?;
                Some(
                    business::list_types(db, &signed.viewer)
                        .await?
                        .into_iter()
                        .find(|ty| ty.id == id)
                        .ok_or_else(|| AppError::not_found("transaction type"))?,
                )
            }
        };
        let flows = approvals::list_flows(db, &signed.viewer).await?;
        AppResult::Ok((found, flows))
    };
    let (found, flows) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let current = found.as_ref().map(fields_of).unwrap_or_else(|| {
        Fields::from([
            ("route".to_owned(), "DATA_PROCESS".to_owned()),
            (
                "payload_schema".to_owned(),
                "{ \"type\": \"object\" }".to_owned(),
            ),
        ])
    });
    let shown = shown.unwrap_or(&current);
    let (action, title) = match &found {
        Some(ty) => (
            format!("/configuration/types/{}", ty.id),
            format!("{} · {}", t.transaction_types, ty.name),
        ),
        None => (
            "/configuration/types/new".to_owned(),
            t.new_transaction_type.to_owned(),
        ),
    };
    let content = html! {
        p { a href="/configuration" { (t.configuration) } }
        (type_form(signed, &action, shown, &flows, err.as_ref()))
    };
    layout::page_refusing(signed, &title, content, err.as_ref()).await
}

pub async fn new_page(signed: Signed) -> Response {
    render(&signed, None, None, None).await
}

pub async fn page(signed: Signed, Path(id): Path<String>) -> Response {
    render(&signed, Some(&id), None, None).await
}

pub async fn create(signed: Signed, Form(fields): Form<Fields>) -> Response {
    if !signed.me.is_admin() {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let new = parsed(&fields)?;
        let app = &signed.app;
        app.write(async |work| {
            business::create_type(work, &signed.viewer, &app.outbound, new).await
        })
        .await
    };
    match created.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err) => render(&signed, None, Some(&fields), Some(err)).await,
    }
}

pub async fn update(
    signed: Signed,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    if !signed.me.is_admin() {
        return layout::not_found(signed.locale);
    }
    let Ok(type_id) = Uuid::parse_str(&id).map(TransactionTypeId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let whole = parsed(&fields)?;
        let changes = TypeChanges {
            code: Some(whole.code),
            name: Some(whole.name),
            payload_schema: Some(whole.payload_schema),
            approval_flow_id: Some(whole.approval_flow_id),
            route: Some(whole.route),
            posting_rule: Some(whole.posting_rule),
            forward_url: Some(whole.forward_url),
        };
        let app = &signed.app;
        app.write(async |work| {
            business::update_type(work, &signed.viewer, &app.outbound, type_id, changes).await
        })
        .await
    };
    match updated.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render(&signed, Some(&id), Some(&fields), Some(err)).await,
    }
}
