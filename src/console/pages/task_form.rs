//! New and edit task: the seed's fields, and the chosen category's custom fields rendered from
//! its JSON Schema (string, number, enum, boolean, date).

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use entities::task;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::task::parse_task_id;
use crate::console::layout::{self, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::tasks::model::{
    CashOutputChange, CashOutputInput, CategoryId, ReviewStatus, TaskFields, TaskId,
};
use crate::domains::tasks::service::{self as tasks, NewTask, TaskChanges};
use crate::error::{AppError, AppResult};
use crate::platform::money::Decimal;

/// People offered as executors and confirmers; the directory page searches the rest.
const PEOPLE_LIMIT: u64 = 200;
const DATETIME_INPUT: &str = "%Y-%m-%dT%H:%M";

/// A custom field the form knows how to render, from one property of the schema.
enum CustomKind {
    Text,
    Date,
    Integer,
    Number,
    Boolean,
    Choice(Vec<Value>),
}

struct CustomField {
    key: String,
    label: String,
    kind: CustomKind,
    required: bool,
}

fn custom_fields_of(schema: Option<&Value>) -> Vec<CustomField> {
    let Some(schema) = schema else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(key, property)| {
            let kind = match (
                property.get("enum").and_then(Value::as_array),
                property.get("type").and_then(Value::as_str),
                property.get("format").and_then(Value::as_str),
            ) {
                (Some(choices), _, _) => CustomKind::Choice(choices.clone()),
                (None, Some("integer"), _) => CustomKind::Integer,
                (None, Some("number"), _) => CustomKind::Number,
                (None, Some("boolean"), _) => CustomKind::Boolean,
                (None, _, Some("date")) => CustomKind::Date,
                _ => CustomKind::Text,
            };
            CustomField {
                label: property
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or(key)
                    .to_owned(),
                key: key.clone(),
                required: required.contains(&key.as_str()),
                kind,
            }
        })
        .collect()
}

fn choice_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The custom fields' values from the form, typed as the schema says; the service then checks
/// them against the schema itself.
fn custom_values(fields: &[CustomField], form: &FormValues) -> AppResult<Value> {
    let mut values = Map::new();
    for custom in fields {
        let name = format!("cf.{}", custom.key);
        let raw = form.one(&name).map(str::trim).unwrap_or_default();
        let bad = |why: &str| AppError::bad_field(&format!("customFields.{}", custom.key), why);
        let value = match &custom.kind {
            CustomKind::Boolean => Some(Value::Bool(!raw.is_empty())),
            _ if raw.is_empty() => None,
            CustomKind::Text | CustomKind::Date => Some(Value::String(raw.to_owned())),
            CustomKind::Integer => Some(Value::from(
                raw.parse::<i64>().map_err(|_| bad("a whole number"))?,
            )),
            CustomKind::Number => Some(
                raw.parse::<serde_json::Number>()
                    .map(Value::Number)
                    .map_err(|_| bad("a number"))?,
            ),
            CustomKind::Choice(choices) => Some(
                choices
                    .iter()
                    .find(|c| choice_text(c) == raw)
                    .cloned()
                    .ok_or_else(|| bad("one of the listed choices"))?,
            ),
        };
        if let Some(value) = value {
            values.insert(custom.key.clone(), value);
        }
    }
    Ok(Value::Object(values))
}

/// The submitted form, repeated names (executors) kept.
pub struct FormValues(Vec<(String, String)>);

impl FormValues {
    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, name: &str) -> String {
        self.one(name).unwrap_or_default().trim().to_owned()
    }

    fn checked(&self, name: &str) -> bool {
        self.one(name).is_some()
    }

    fn id(&self, name: &str, api_field: &str) -> AppResult<Option<Uuid>> {
        match self.one(name).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(raw) => Uuid::parse_str(raw)
                .map(Some)
                .map_err(|_| AppError::bad_field(api_field, "not a known id")),
        }
    }

    fn ids(&self, name: &str, api_field: &str) -> AppResult<Vec<Uuid>> {
        self.all(name)
            .filter(|s| !s.trim().is_empty())
            .map(|raw| {
                Uuid::parse_str(raw.trim())
                    .map_err(|_| AppError::bad_field(api_field, "not a known id"))
            })
            .collect()
    }

    fn moment(&self, name: &str, api_field: &str) -> AppResult<Option<DateTime<Utc>>> {
        match self.one(name).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(raw) => NaiveDateTime::parse_from_str(raw, DATETIME_INPUT)
                .map(|at| Some(at.and_utc()))
                .map_err(|_| AppError::bad_field(api_field, "a date and time (UTC)")),
        }
    }

    fn number(&self, name: &str, api_field: &str) -> AppResult<Option<i32>> {
        match self.one(name).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(raw) => raw
                .parse()
                .map(Some)
                .map_err(|_| AppError::bad_field(api_field, "a whole number")),
        }
    }

    fn cash(&self) -> AppResult<Option<Decimal>> {
        match self
            .one("cash_output")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Ok(None),
            Some(raw) => raw
                .parse::<Decimal>()
                .map(Some)
                .map_err(|_| AppError::bad_field("cashOutputValue", "an amount such as 1250.00")),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct Choice {
    category: Option<String>,
    parent: Option<String>,
}

struct FormData {
    categories: Vec<entities::task_category::Model>,
    category: Option<entities::task_category::Model>,
    people: Vec<crate::domains::identity::model::UserRecord>,
    parent: Option<task::Model>,
}

async fn form_data(
    signed: &Signed,
    category: Option<Uuid>,
    parent: Option<Uuid>,
) -> AppResult<FormData> {
    let db = &signed.app.db.conn;
    let parent = match parent {
        Some(id) => Some(tasks::find_task(db, &signed.viewer, TaskId(id)).await?),
        None => None,
    };
    let categories = tasks::list_categories(db, &signed.viewer, false).await?;
    let chosen = parent.as_ref().map(|p| p.category_id).or(category);
    let category = chosen.and_then(|id| categories.iter().find(|c| c.id == id).cloned());
    let people = super::people_to_choose(db, &signed.viewer, PEOPLE_LIMIT).await?;
    Ok(FormData {
        categories,
        category,
        people,
        parent,
    })
}

/// What the form shows in each field: the task being edited, or what was just submitted.
#[derive(Default)]
struct Shown {
    title: String,
    key_points: String,
    executors: Vec<Uuid>,
    team: bool,
    confirmer: Option<Uuid>,
    cash: String,
    start: String,
    deadline: String,
    priority: String,
    merit: String,
    custom: Map<String, Value>,
}

impl Shown {
    fn of_task(task: &task::Model, executors: Vec<Uuid>) -> Self {
        let at = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format(DATETIME_INPUT).to_string())
                .unwrap_or_default()
        };
        Self {
            title: task.title.clone(),
            key_points: task.key_points.clone(),
            executors,
            team: task.is_team_task,
            confirmer: task.confirmer_id,
            cash: tasks::money_text(task.cash_output_minor, &task.currency).unwrap_or_default(),
            start: at(task.start_at),
            deadline: at(task.deadline),
            priority: task.priority.to_string(),
            merit: task.merit_points.to_string(),
            custom: task.custom_fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn of_form(form: &FormValues) -> Self {
        Self {
            title: form.text("title"),
            key_points: form.text("key_points"),
            executors: form
                .all("executor")
                .filter_map(|s| Uuid::parse_str(s).ok())
                .collect(),
            team: form.checked("team"),
            confirmer: form.one("confirmer").and_then(|s| Uuid::parse_str(s).ok()),
            cash: form.text("cash_output"),
            start: form.text("start"),
            deadline: form.text("deadline"),
            priority: form.text("priority"),
            merit: form.text("merit"),
            custom: form
                .0
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("cf.")
                        .map(|k| (k.to_owned(), Value::String(v.clone())))
                })
                .collect(),
        }
    }
}

fn custom_inputs(
    signed: &Signed,
    fields: &[CustomField],
    shown: &Shown,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    let whole_error = err
        .filter(|e| layout::error_field(e) == Some("customFields"))
        .map(|e| layout::error_text(t, e));
    html! {
        @if !fields.is_empty() {
            fieldset class="custom" {
                legend { (t.custom_fields) }
                @if let Some(message) = whole_error {
                    p class="field-error" role="alert" { (message) }
                }
                @for custom in fields {
                    @let id = format!("cf-{}", custom.key);
                    @let name = format!("cf.{}", custom.key);
                    @let current = shown.custom.get(&custom.key).map(choice_text).unwrap_or_default();
                    @let api = format!("customFields.{}", custom.key);
                    @match &custom.kind {
                        CustomKind::Boolean => {
                            div class="field check" {
                                input id=(id) type="checkbox" name=(name) value="true"
                                    checked[shown.custom.get(&custom.key).is_some_and(|v| v == &Value::Bool(true) || v == "true")];
                                label for=(id) { (custom.label) }
                            }
                        }
                        CustomKind::Choice(choices) => {
                            (field(&custom.label, &id, &api, err, html! {
                                select id=(id) name=(name) required[custom.required] {
                                    option value="" { "—" }
                                    @for choice in choices {
                                        @let text = choice_text(choice);
                                        option value=(text) selected[text == current] { (text) }
                                    }
                                }
                            }))
                        }
                        kind => {
                            @let (input_type, step) = match kind {
                                CustomKind::Date => ("date", None),
                                CustomKind::Integer => ("number", Some("1")),
                                CustomKind::Number => ("number", Some("any")),
                                _ => ("text", None),
                            };
                            (field(&custom.label, &id, &api, err, html! {
                                input id=(id) type=(input_type) name=(name) step=[step] value=(current) required[custom.required];
                            }))
                        }
                    }
                }
            }
        }
    }
}

fn task_form(
    signed: &Signed,
    data: &FormData,
    action: &str,
    shown: &Shown,
    err: Option<&AppError>,
    editing: bool,
) -> Markup {
    let t = signed.t();
    let fields = custom_fields_of(
        data.category
            .as_ref()
            .and_then(|c| c.custom_fields_schema.as_ref()),
    );
    let category_id = data.category.as_ref().map(|c| c.id);
    html! {
        @if !editing && data.parent.is_none() {
            form method="get" action="/tasks/new" class="filters" data-auto-submit="" {
                div class="field" {
                    label for="choose-category" { (t.category) }
                    select id="choose-category" name="category" {
                        option value="" { "—" }
                        @for c in &data.categories {
                            option value=(c.id) selected[Some(c.id) == category_id] { (c.name) }
                        }
                    }
                }
                button type="submit" { (t.choose_category) }
            }
        }
        (layout::alert(t, err))
        @if let Some(parent) = &data.parent {
            p { (t.subtasks) ": " a href=(format!("/tasks/{}", parent.id)) { (parent.title) } }
        }
        @if editing || category_id.is_some() {
            form method="post" action=(action) class="stack task-form" {
                (token_field(&signed.form_token))
                @if let Some(id) = category_id { input type="hidden" name="category" value=(id); }
                @if let Some(parent) = &data.parent { input type="hidden" name="parent" value=(parent.id); }
                (field(t.title, "title", "title", err, html! {
                    input id="title" name="title" type="text" required maxlength="200" value=(shown.title);
                }))
                (field(t.key_points, "key-points", "keyPoints", err, html! {
                    textarea id="key-points" name="key_points" rows="3" { (shown.key_points) }
                }))
                (field(t.executors, "executors", "executorIds", err, html! {
                    select id="executors" name="executor" multiple size="5" aria-describedby="executors-hint" {
                        @for person in &data.people {
                            option value=(person.id) selected[shown.executors.contains(&person.id)] { (person.name) }
                        }
                    }
                    p class="hint" id="executors-hint" { (t.executor_ids_hint) }
                }))
                div class="field check" {
                    input id="team" type="checkbox" name="team" value="1" checked[shown.team];
                    label for="team" { (t.team_task) }
                }
                (field(t.confirmer, "confirmer", "confirmerId", err, html! {
                    select id="confirmer" name="confirmer" {
                        option value="" { (t.initiator) }
                        @for person in &data.people {
                            option value=(person.id) selected[shown.confirmer == Some(person.id)] { (person.name) }
                        }
                    }
                }))
                (field(t.cash_output, "cash-output", "cashOutputValue", err, html! {
                    input id="cash-output" name="cash_output" type="text" inputmode="decimal" value=(shown.cash);
                }))
                (field(&format!("{} (UTC)", t.start), "start", "startAt", err, html! {
                    input id="start" name="start" type="datetime-local" value=(shown.start);
                }))
                (field(&format!("{} (UTC)", t.deadline), "deadline", "deadline", err, html! {
                    input id="deadline" name="deadline" type="datetime-local" value=(shown.deadline);
                }))
                (field(t.priority, "priority", "priority", err, html! {
                    input id="priority" name="priority" type="number" min="1" max="5" step="1" value=(shown.priority);
                }))
                (field(t.merit, "merit", "meritPoints", err, html! {
                    input id="merit" name="merit" type="number" min="0" step="1" value=(shown.merit);
                }))
                (custom_inputs(signed, &fields, shown, err))
                button type="submit" class="primary" { (if editing { t.save } else { t.create }) }
            }
        }
    }
}

/// An approved main task's form: only who does it, who confirms it and by when (the service
/// refuses every other field once reviewers approved it).
fn restaff_form(
    signed: &Signed,
    data: &FormData,
    action: &str,
    shown: &Shown,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    html! {
        (layout::alert(t, err))
        p class="hint" { (t.approved_task_locked) }
        form method="post" action=(action) class="stack task-form" {
            (token_field(&signed.form_token))
            (field(t.executors, "executors", "executorIds", err, html! {
                select id="executors" name="executor" multiple size="5" aria-describedby="executors-hint" {
                    @for person in &data.people {
                        option value=(person.id) selected[shown.executors.contains(&person.id)] { (person.name) }
                    }
                }
                p class="hint" id="executors-hint" { (t.executor_ids_hint) }
            }))
            (field(t.confirmer, "confirmer", "confirmerId", err, html! {
                select id="confirmer" name="confirmer" {
                    option value="" { (t.initiator) }
                    @for person in &data.people {
                        option value=(person.id) selected[shown.confirmer == Some(person.id)] { (person.name) }
                    }
                }
            }))
            (field(&format!("{} (UTC)", t.deadline), "deadline", "deadline", err, html! {
                input id="deadline" name="deadline" type="datetime-local" value=(shown.deadline);
            }))
            button type="submit" class="primary" { (t.save) }
        }
    }
}

/// Whether the task is a main task its reviewers approved: only its people and deadline change.
fn restaffing(task: &task::Model) -> bool {
    task.parent_id.is_none()
        && ReviewStatus::parse(&task.review_status) == Some(ReviewStatus::Approved)
}

async fn new_form(
    signed: &Signed,
    category: Option<Uuid>,
    parent: Option<Uuid>,
    shown: &Shown,
    err: Option<AppError>,
) -> Response {
    let data = match form_data(signed, category, parent).await {
        Ok(data) => data,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let content = task_form(signed, &data, "/tasks/new", shown, err.as_ref(), false);
    layout::page_refusing(signed, signed.t().new_task, content, err.as_ref()).await
}

fn optional_id(raw: Option<&str>) -> Option<Uuid> {
    raw.filter(|s| !s.is_empty())
        .and_then(|s| Uuid::parse_str(s).ok())
}

pub async fn new_page(signed: Signed, Query(choice): Query<Choice>) -> Response {
    let shown = Shown {
        merit: "0".into(),
        ..Shown::default()
    };
    new_form(
        &signed,
        optional_id(choice.category.as_deref()),
        optional_id(choice.parent.as_deref()),
        &shown,
        None,
    )
    .await
}

fn new_task(form: &FormValues, fields: &[CustomField]) -> AppResult<NewTask> {
    let cash = form.cash()?;
    Ok(NewTask {
        category_id: form.id("category", "categoryId")?.map(CategoryId),
        parent_id: form.id("parent", "parentId")?.map(TaskId),
        fields: TaskFields {
            title: form.text("title"),
            key_points: form.text("key_points"),
            executor_ids: form.ids("executor", "executorIds")?,
            is_team_task: form.checked("team"),
            confirmer_id: form.id("confirmer", "confirmerId")?,
            cash_output_minor: None,
            start_at: form.moment("start", "startAt")?,
            deadline: form.moment("deadline", "deadline")?,
            priority: form.number("priority", "priority")?,
            merit_points: form.number("merit", "meritPoints")?.unwrap_or(0),
            custom_fields: custom_values(fields, form)?,
        },
        cash_output: Some(CashOutputInput {
            has: cash.is_some(),
            value: cash,
        }),
    })
}

pub async fn create(signed: Signed, Form(values): Form<Vec<(String, String)>>) -> Response {
    let form = FormValues(values);
    let category = optional_id(form.one("category"));
    let parent = optional_id(form.one("parent"));
    let schema = match category {
        Some(id) => tasks::find_category(&signed.app.db.conn, CategoryId(id))
            .await
            .ok()
            .flatten()
            .and_then(|c| c.custom_fields_schema),
        None => None,
    };
    let fields = custom_fields_of(schema.as_ref());
    let currency = &signed.app.config.currency;
    let created = match new_task(&form, &fields) {
        Ok(new) => {
            signed
                .app
                .write(async |work| tasks::create_task(work, &signed.viewer, currency, new).await)
                .await
        }
        Err(err) => Err(err),
    };
    match created {
        Ok(task) => Redirect::to(&format!("/tasks/{}", task.id)).into_response(),
        Err(err) => new_form(&signed, category, parent, &Shown::of_form(&form), Some(err)).await,
    }
}

async fn edit_form(
    signed: &Signed,
    id: TaskId,
    shown: Option<&Shown>,
    err: Option<AppError>,
) -> Response {
    let db = &signed.app.db.conn;
    let loaded = async {
        let task = tasks::find_task(db, &signed.viewer, id).await?;
        let may_edit = task.initiator_id == signed.me.id
            || signed.me.is_admin()
            || (restaffing(&task) && tasks::may_restaff(db, &signed.me, &task).await?);
        if !may_edit {
            return Err(AppError::not_found("task"));
        }
        let executors: Vec<Uuid> = tasks::executors_by_task(db, &[task.id])
            .await?
            .remove(&task.id)
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.id)
            .collect();
        let data = form_data(signed, Some(task.category_id), None).await?;
        AppResult::Ok((task, executors, data))
    };
    let (task, executors, data) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let from_task = Shown::of_task(&task, executors);
    let action = format!("/tasks/{}/edit?version={}", task.id, task.version);
    let shown = shown.unwrap_or(&from_task);
    let content = if restaffing(&task) {
        restaff_form(signed, &data, &action, shown, err.as_ref())
    } else {
        task_form(signed, &data, &action, shown, err.as_ref(), true)
    };
    layout::page_refusing(signed, signed.t().edit_task, content, err.as_ref()).await
}

pub async fn edit_page(signed: Signed, Path(id): Path<String>) -> Response {
    match parse_task_id(&id) {
        Ok(id) => edit_form(&signed, id, None, None).await,
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

#[derive(Deserialize)]
pub struct Version {
    version: i32,
}

/// The form lists people by name and the task keeps them in its own order: the same people in
/// another order are no change.
fn same_people(chosen: &[Uuid], current: &[Uuid]) -> bool {
    let mut chosen = chosen.to_vec();
    let mut current = current.to_vec();
    chosen.sort_unstable();
    current.sort_unstable();
    chosen == current
}

/// What the restaffing form changed: its people and deadline, nothing else.
fn restaff_changes(
    task: &task::Model,
    executors: &[Uuid],
    form: &FormValues,
) -> AppResult<TaskChanges> {
    let mut changes = TaskChanges::default();
    let chosen = form.ids("executor", "executorIds")?;
    if !same_people(&chosen, executors) {
        changes.executor_ids = Some(chosen);
    }
    let confirmer = form.id("confirmer", "confirmerId")?;
    if confirmer != task.confirmer_id {
        changes.confirmer_id = Some(confirmer);
    }
    let deadline = form.moment("deadline", "deadline")?;
    if deadline.map(|s| s.format(DATETIME_INPUT).to_string())
        != task.deadline.map(|s| s.format(DATETIME_INPUT).to_string())
    {
        changes.deadline = Some(deadline);
    }
    Ok(changes)
}

/// Only what the form changed goes to the service: an approved task refuses edits to fields
/// it was approved with, even when the value sent is the same.
fn changes(
    task: &task::Model,
    executors: &[Uuid],
    form: &FormValues,
    fields: &[CustomField],
) -> AppResult<TaskChanges> {
    let mut changes = TaskChanges::default();
    let title = form.text("title");
    if title != task.title {
        changes.title = Some(title);
    }
    let key_points = form.text("key_points");
    if key_points != task.key_points {
        changes.key_points = Some(key_points);
    }
    let chosen = form.ids("executor", "executorIds")?;
    if !same_people(&chosen, executors) {
        changes.executor_ids = Some(chosen);
    }
    let team = form.checked("team");
    if team != task.is_team_task {
        changes.is_team_task = Some(team);
    }
    let confirmer = form.id("confirmer", "confirmerId")?;
    if confirmer != task.confirmer_id {
        changes.confirmer_id = Some(confirmer);
    }
    let start = form.moment("start", "startAt")?;
    if start.map(|s| s.format(DATETIME_INPUT).to_string())
        != task.start_at.map(|s| s.format(DATETIME_INPUT).to_string())
    {
        changes.start_at = Some(start);
    }
    let deadline = form.moment("deadline", "deadline")?;
    if deadline.map(|s| s.format(DATETIME_INPUT).to_string())
        != task.deadline.map(|s| s.format(DATETIME_INPUT).to_string())
    {
        changes.deadline = Some(deadline);
    }
    if let Some(priority) = form
        .number("priority", "priority")?
        .filter(|p| *p != task.priority)
    {
        changes.priority = Some(priority);
    }
    if let Some(merit) = form
        .number("merit", "meritPoints")?
        .filter(|m| *m != task.merit_points)
    {
        changes.merit_points = Some(merit);
    }
    let cash = form.cash()?;
    let current_cash = tasks::money_text(task.cash_output_minor, &task.currency);
    if cash.map(|c| c.to_string()) != current_cash {
        changes.cash_output = CashOutputChange {
            has: Some(cash.is_some()),
            value: Some(cash),
        };
    }
    let custom = custom_values(fields, form)?;
    if custom != task.custom_fields {
        changes.custom_fields = Some(custom);
    }
    Ok(changes)
}

pub async fn update(
    signed: Signed,
    Path(id): Path<String>,
    Query(version): Query<Version>,
    Form(values): Form<Vec<(String, String)>>,
) -> Response {
    let id = match parse_task_id(&id) {
        Ok(id) => id,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let form = FormValues(values);
    let viewer = &signed.viewer;
    let updated = signed
        .app
        .write(async |work| {
            let task = tasks::find_task(work, viewer, id).await?;
            let executors: Vec<Uuid> = tasks::executors_by_task(work, &[task.id])
                .await?
                .remove(&task.id)
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.id)
                .collect();
            let category = tasks::find_category(work, CategoryId(task.category_id)).await?;
            let fields = custom_fields_of(
                category
                    .as_ref()
                    .and_then(|c| c.custom_fields_schema.as_ref()),
            );
            let changes = if restaffing(&task) {
                restaff_changes(&task, &executors, &form)?
            } else {
                changes(&task, &executors, &form, &fields)?
            };
            tasks::update_task(work, viewer, id, version.version, changes).await
        })
        .await;
    match updated {
        Ok(task) => Redirect::to(&format!("/tasks/{}", task.id)).into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => edit_form(&signed, id, Some(&Shown::of_form(&form)), Some(err)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_gives_typed_fields_and_typed_values() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["customer"],
            "properties": {
                "customer": { "type": "string" },
                "visits": { "type": "integer" },
                "score": { "type": "number" },
                "onsite": { "type": "boolean" },
                "tier": { "enum": ["gold", "silver"] },
                "due": { "type": "string", "format": "date" }
            }
        });
        let fields = custom_fields_of(Some(&schema));
        assert_eq!(fields.len(), 6);
        assert!(fields.iter().any(|f| f.key == "customer" && f.required));
        assert!(fields
            .iter()
            .any(|f| f.key == "due" && matches!(f.kind, CustomKind::Date)));
        let form = FormValues(vec![
            ("cf.customer".into(), " Acme ".into()),
            ("cf.visits".into(), "3".into()),
            ("cf.score".into(), "4.5".into()),
            ("cf.tier".into(), "gold".into()),
            ("cf.due".into(), "2026-12-24".into()),
        ]);
        let values = custom_values(&fields, &form).unwrap_or_default();
        assert_eq!(
            values,
            serde_json::json!({
                "customer": "Acme", "visits": 3, "score": 4.5, "onsite": false,
                "tier": "gold", "due": "2026-12-24"
            })
        );
        let wrong = FormValues(vec![("cf.visits".into(), "three".into())]);
        let err = custom_values(&fields, &wrong).err();
        assert!(matches!(
            err,
            Some(AppError::BadUserInput { field: Some(f), .. }) if f == "customFields.visits"
        ));
        let off_list = FormValues(vec![("cf.tier".into(), "bronze".into())]);
        assert!(custom_values(&fields, &off_list).is_err());
    }
}
