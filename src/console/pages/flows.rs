//! Approval flows for `task.configure` holders: steps, approver rule, required approvals,
//! condition and SLA. Saving an edit makes a new version; approvals already running keep the
//! version they started on.

use std::collections::HashMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use entities::{approval_flow, approval_step};
use maud::{html, Markup};
use uuid::Uuid;

use crate::auth::Permission;
use crate::console::layout::{self, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::approvals::model::{
    ApproverRule, CompareOp, Condition, FlowChanges, FlowId, NewFlow, NewStep, MAX_STEPS,
};
use crate::domains::approvals::service as approvals;
use crate::error::{AppError, AppResult};
use crate::platform::money::Decimal;

/// Blank rows offered after the flow's steps, for adding steps without script.
const SPARE_ROWS: usize = 2;
const RULES: [&str; 4] = ["ROLE", "DEPARTMENT_HEAD", "FIELD", "USER"];
const OPS: [&str; 5] = ["GT", "GTE", "LT", "LTE", "EQ"];

type Fields = HashMap<String, String>;

fn configures(signed: &Signed) -> bool {
    signed.me.has_global(Permission::TaskConfigure)
}

fn text<'f>(fields: &'f Fields, name: &str) -> &'f str {
    fields.get(name).map_or("", |v| v.trim())
}

/// The form's fields as the stored flow fills them.
fn fields_of(flow: &approval_flow::Model, steps: &[approval_step::Model]) -> Fields {
    let mut fields = Fields::from([("name".to_owned(), flow.name.clone())]);
    if flow.allow_self_approval {
        fields.insert("allow_self_approval".into(), "on".into());
    }
    for (i, step) in steps.iter().enumerate() {
        let (rule, value) = if let Some(role) = &step.approver_role {
            ("ROLE", role.clone())
        } else if step.department_head {
            ("DEPARTMENT_HEAD", String::new())
        } else if let Some(field) = &step.approver_field {
            ("FIELD", field.clone())
        } else {
            (
                "USER",
                step.approver_user_id
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            )
        };
        let mut put = |key: &str, value: String| {
            fields.insert(format!("step.{i}.{key}"), value);
        };
        put("name", step.name.clone());
        put("rule", rule.to_owned());
        put("rule_value", value);
        put("required", step.required_approvals.to_string());
        put(
            "condition_field",
            step.condition_field.clone().unwrap_or_default(),
        );
        put(
            "condition_op",
            step.condition_op.clone().unwrap_or_default(),
        );
        put(
            "condition_value",
            step.condition_value.clone().unwrap_or_default(),
        );
        put(
            "sla",
            step.sla_hours.map(|h| h.to_string()).unwrap_or_default(),
        );
    }
    fields
}

/// The steps the form describes, in order; a row with no name is left out.
fn steps_of(fields: &Fields) -> AppResult<Vec<NewStep>> {
    let mut steps = Vec::new();
    for i in 0..MAX_STEPS + SPARE_ROWS {
        let at = |key: &str| text(fields, &format!("step.{i}.{key}"));
        if at("name").is_empty() {
            continue;
        }
        let value = at("rule_value");
        let needs_value = |what: &str| {
            if value.is_empty() {
                Err(AppError::bad_field(
                    "steps",
                    format!("step {}: name the {what}", i + 1),
                ))
            } else {
                Ok(value.to_owned())
            }
        };
        let rule = match at("rule") {
            "ROLE" => ApproverRule::Role(needs_value("role")?),
            "DEPARTMENT_HEAD" => ApproverRule::DepartmentHead,
            "FIELD" => ApproverRule::Field(needs_value("field")?),
            "USER" => ApproverRule::User(Uuid::parse_str(value).map_err(|_| {
                AppError::bad_field("steps", format!("step {}: not a user id", i + 1))
            })?),
            _ => {
                return Err(AppError::bad_field(
                    "steps",
                    format!("step {}: choose an approver rule", i + 1),
                ))
            }
        };
        let number = |key: &str, what: &str| -> AppResult<Option<u32>> {
            match at(key) {
                "" => Ok(None),
                raw => raw.parse().map(Some).map_err(|_| {
                    AppError::bad_field(
                        "steps",
                        format!("step {}: {what} is a whole number", i + 1),
                    )
                }),
            }
        };
        let condition = match (
            at("condition_field"),
            at("condition_op"),
            at("condition_value"),
        ) {
            ("", _, _) => None,
            (field, op, value) => Some(Condition {
                field: field.to_owned(),
                op: CompareOp::parse(op).ok_or_else(|| {
                    AppError::bad_field("steps", format!("step {}: choose a comparison", i + 1))
                })?,
                value: value.parse::<Decimal>().map_err(|_| {
                    AppError::bad_field(
                        "steps",
                        format!("step {}: the condition compares with a number", i + 1),
                    )
                })?,
            }),
        };
        steps.push(NewStep {
            name: at("name").to_owned(),
            rule,
            required_approvals: number("required", "required approvals")?.unwrap_or(1),
            condition,
            sla_hours: number("sla", "the SLA")?,
        });
    }
    Ok(steps)
}

fn flow_form(
    signed: &Signed,
    action: &str,
    shown: &Fields,
    rows: usize,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    let steps_error = err.filter(|e| layout::error_field(e) == Some("steps"));
    html! {
        (layout::alert(t, err))
        form method="post" action=(action) class="stack" {
            (token_field(&signed.form_token))
            (field(t.name, "flow-name", "name", err, html! {
                input id="flow-name" name="name" type="text" required maxlength="200" value=(text(shown, "name"));
            }))
            div class="field" {
                label { input type="checkbox" name="allow_self_approval" checked[shown.contains_key("allow_self_approval")]; " " (t.allow_self_approval) }
            }
            @if let Some(err) = steps_error {
                p class="field-error" id="steps-error" { (layout::error_text(t, err)) }
            }
            @for i in 0..rows {
                @let at = |key: &str| text(shown, &format!("step.{i}.{key}")).to_owned();
                @let id = |key: &str| format!("step-{i}-{key}");
                @let name = |key: &str| format!("step.{i}.{key}");
                fieldset class="step" {
                    legend { (t.step) " " (i + 1) }
                    div class="field" { label for=(id("name")) { (t.name) }
                        input id=(id("name")) name=(name("name")) type="text" maxlength="200" value=(at("name")); }
                    div class="field" { label for=(id("rule")) { (t.approver_rule) }
                        select id=(id("rule")) name=(name("rule")) {
                            @for rule in RULES { option value=(rule) selected[at("rule") == rule] { (rule) } }
                        } }
                    div class="field" { label for=(id("rule_value")) { (t.approver) }
                        input id=(id("rule_value")) name=(name("rule_value")) type="text" value=(at("rule_value")); }
                    div class="field" { label for=(id("required")) { (t.required_approvals) }
                        input id=(id("required")) name=(name("required")) type="number" min="1" step="1" value=(at("required")); }
                    div class="field" { label for=(id("condition_field")) { (t.condition) }
                        input id=(id("condition_field")) name=(name("condition_field")) type="text" value=(at("condition_field")); }
                    div class="field" { label for=(id("condition_op")) { (t.comparison) }
                        select id=(id("condition_op")) name=(name("condition_op")) {
                            option value="" { "—" }
                            @for op in OPS { option value=(op) selected[at("condition_op") == op] { (op) } }
                        } }
                    div class="field" { label for=(id("condition_value")) { (t.threshold) }
                        input id=(id("condition_value")) name=(name("condition_value")) type="text" inputmode="decimal" value=(at("condition_value")); }
                    div class="field" { label for=(id("sla")) { (t.sla_hours) }
                        input id=(id("sla")) name=(name("sla")) type="number" min="1" step="1" value=(at("sla")); }
                }
            }
            button type="submit" class="primary" { (t.save) }
        }
    }
}

fn rows_for(shown: &Fields) -> usize {
    let used = (0..MAX_STEPS + SPARE_ROWS)
        .filter(|i| shown.keys().any(|k| k.starts_with(&format!("step.{i}."))))
        .max()
        .map_or(0, |i| i + 1);
    (used + SPARE_ROWS).min(MAX_STEPS + SPARE_ROWS)
}

async fn render(
    signed: &Signed,
    id: Option<&str>,
    shown: Option<&Fields>,
    err: Option<AppError>,
) -> Response {
    if !configures(signed) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let loaded = async {
        match id {
            None => AppResult::Ok(None),
            Some(raw) => {
                let id = Uuid::parse_str(raw).map_err(|_| AppError::not_found("approval flow"))?;
                let flow = approvals::list_flows(db, &signed.viewer)
                    .await?
                    .into_iter()
                    .find(|f| f.id == id)
                    .ok_or_else(|| AppError::not_found("approval flow"))?;
                let steps = approvals::steps_of(db, &[flow.id]).await?;
                Ok(Some((flow, steps)))
            }
        }
    };
    let found = match loaded.await {
        Ok(found) => found,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let current = found
        .as_ref()
        .map(|(f, s)| fields_of(f, s))
        .unwrap_or_default();
    let shown = shown.unwrap_or(&current);
    let (action, title) = match &found {
        Some((flow, _)) => (
            format!("/configuration/flows/{}", flow.id),
            format!(
                "{} · {} · {} {}",
                t.approval_flows, flow.name, t.version, flow.version
            ),
        ),
        None => ("/configuration/flows/new".to_owned(), t.new_flow.to_owned()),
    };
    let content = html! {
        p { a href="/configuration" { (t.configuration) } }
        @if found.is_some() { p class="hint" { (t.flow_versions_hint) } }
        (flow_form(signed, &action, shown, rows_for(shown), err.as_ref()))
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
    if !configures(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let flow = NewFlow {
            name: text(&fields, "name").to_owned(),
            allow_self_approval: fields.contains_key("allow_self_approval"),
            steps: steps_of(&fields)?,
        };
        signed
            .app
            .write(async |work| approvals::create_flow(work, &signed.viewer, flow).await)
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
    if !configures(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(flow) = Uuid::parse_str(&id).map(FlowId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let changes = FlowChanges {
            name: Some(text(&fields, "name").to_owned()),
            allow_self_approval: Some(fields.contains_key("allow_self_approval")),
            steps: Some(steps_of(&fields)?),
        };
        signed
            .app
            .write(async |work| approvals::update_flow(work, &signed.viewer, flow, changes).await)
            .await
    };
    match updated.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render(&signed, Some(&id), Some(&fields), Some(err)).await,
    }
}
