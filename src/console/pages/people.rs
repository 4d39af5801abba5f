//! The people directory, and a person's page: their portrait where the viewer may see it, and
//! the tasks of theirs the viewer can see.

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::work::task_card;
use crate::console::i18n::Text;
use crate::console::layout;
use crate::console::session::Signed;
use crate::domains::identity::model::DepartmentId;
use crate::domains::identity::service::{self as identity, PeopleFilter};
use crate::domains::profiles::model::{Profile, ProfileWindow};
use crate::domains::profiles::service as profiles;
use crate::domains::tasks::model::WorkStatus;
use crate::domains::tasks::service::{self as tasks, TaskFilter, TaskOrder, TaskOrderField};
use crate::error::{AppError, AppResult};

const DIRECTORY_PAGE: u64 = 50;
const PERSON_TASKS: u64 = 50;

#[derive(Deserialize, Default)]
pub struct Search {
    q: Option<String>,
    department: Option<String>,
    page: Option<u64>,
}

pub async fn directory(signed: Signed, Query(search): Query<Search>) -> Response {
    let db = &signed.app.db.conn;
    let page = search.page.unwrap_or(0).min(10_000);
    let department = search
        .department
        .as_deref()
        .filter(|d| !d.is_empty())
        .and_then(|d| Uuid::parse_str(d).ok());
    let loaded = async {
        let found = identity::list_people(
            db,
            &signed.viewer,
            PeopleFilter {
                search: search.q.clone().filter(|q| !q.trim().is_empty()),
                department_id: department.map(DepartmentId),
                include_inactive: false,
            },
            page * DIRECTORY_PAGE,
            DIRECTORY_PAGE,
            identity::Counting::PageOnly,
        )
        .await?;
        let departments = identity::list_departments(db, &signed.viewer).await?;
        AppResult::Ok((found, departments))
    };
    let (found, departments) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let department_name = |id: Option<Uuid>| {
        id.and_then(|id| departments.iter().find(|d| d.id == id))
            .map_or("—", |d| d.name.as_str())
    };
    let has_next = found.has_next;
    let content = html! {
        form method="get" action="/people" class="filters" {
            div class="field" {
                label for="people-q" { (t.search) }
                input id="people-q" type="search" name="q" value=(search.q.clone().unwrap_or_default());
            }
            div class="field" {
                label for="people-department" { (t.department) }
                select id="people-department" name="department" {
                    option value="" { (t.any) }
                    @for d in &departments {
                        option value=(d.id) selected[department == Some(d.id)] { (d.name) }
                    }
                }
            }
            button type="submit" { (t.search) }
        }
        @if found.people.is_empty() {
            p class="empty" { (t.person_not_listed) }
        }
        ul class="cards people" {
            @for person in &found.people {
                li class="card" {
                    a href=(format!("/people/{}", person.user.id)) { (person.user.name) }
                    div class="meta" {
                        span { (department_name(person.user.department_id)) }
                        @if person.email_visible { span { (person.user.email) } }
                    }
                }
            }
        }
        @if has_next {
            p { a href=(format!("/people?{}", serde_urlencoded::to_string([
                ("q", search.q.clone().unwrap_or_default()),
                ("department", search.department.clone().unwrap_or_default()),
                ("page", (page + 1).to_string()),
            ]).unwrap_or_default())) { (t.next_page) } }
        }
    };
    layout::page(&signed, t.people, content).await
}

/// Bars of the portrait's counts, drawn on the server (no script, no outside chart library).
fn portrait_chart(t: &Text, profile: &Profile) -> Markup {
    let bars = [
        (t.open_tasks, profile.tasks_open),
        (t.done_tasks, profile.tasks_done),
        (t.merit_total, profile.merit_total),
    ];
    let top = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let width = 260;
    html! {
        svg class="chart" viewBox=(format!("0 0 {} {}", width + 120, bars.len() * 28)) role="img"
            aria-label=(t.portrait) {
            @for (i, (label, value)) in bars.iter().enumerate() {
                @let y = i * 28;
                @let length = (value.max(&0) * width / top).max(1);
                text x="0" y=(y + 18) class="chart-label" { (label) }
                rect x="110" y=(y + 4) width=(length) height="18" class="chart-bar" {}
                text x=(110 + length + 6) y=(y + 18) class="chart-value" { (value) }
            }
        }
    }
}

fn portrait(signed: &Signed, profile: &Profile) -> Markup {
    let t = signed.t();
    let currency = &signed.app.config.currency;
    let cash = tasks::money_text(Some(profile.cash_output_minor), currency).unwrap_or_default();
    html! {
        section aria-labelledby="portrait-h" id="portrait" data-live="" {
            h2 id="portrait-h" { (t.portrait) }
            dl class="fields" {
                div class="row" { dt { (t.open_tasks) } dd { (profile.tasks_open) } }
                div class="row" { dt { (t.done_tasks) } dd { (profile.tasks_done) } }
                div class="row" { dt { (t.merit_total) } dd id="merit-total" { (profile.merit_total) } }
                div class="row" { dt { (t.cash_output_total) } dd { (signed.locale.money(&cash, currency)) } }
                div class="row" { dt { (t.on_time_rate) } dd {
                    @match profile.on_time_rate {
                        Some(rate) => {
                            meter min="0" max="1" value=(rate) aria-label=(t.on_time_rate) {}
                            " " (format!("{:.0}%", rate * 100.0))
                        }
                        None => "—",
                    }
                } }
                div class="row" { dt { (t.throughput) } dd { (format!("{:.2}", profile.throughput_per_week)) } }
            }
            (portrait_chart(t, profile))
        }
    }
}

pub async fn person(signed: Signed, Path(id): Path<String>) -> Response {
    let Ok(user_id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    let db = &signed.app.db.conn;
    let loaded = async {
        let listed = identity::person_listing(db, &signed.viewer, user_id)
            .await?
            .ok_or_else(|| AppError::not_found("user"))?;
        let window = ProfileWindow::new(None, None, chrono::Utc::now())?;
        let profile = match profiles::profile_of(db, &signed.viewer, user_id, window).await {
            Ok(profile) => Some(profile),
            Err(AppError::NotFound(_) | AppError::Forbidden(_)) => None,
            Err(err) => return Err(err),
        };
        let order = [TaskOrder {
            field: TaskOrderField::Deadline,
            descending: false,
        }];
        let listed_tasks = tasks::list_tasks(
            db,
            &signed.viewer,
            TaskFilter {
                executor_id: Some(user_id),
                ..TaskFilter::default()
            },
            &order,
            0,
            PERSON_TASKS,
        )
        .await?;
        AppResult::Ok((listed, profile, listed_tasks.tasks))
    };
    let (listed, profile, person_tasks) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let (open, done): (Vec<_>, Vec<_>) = person_tasks
        .iter()
        .filter(|task| task.status != WorkStatus::Cancelled.as_str())
        .partition(|task| task.status != WorkStatus::Done.as_str());
    let content = html! {
        @if listed.email_visible { p { (t.email) ": " (listed.user.email) } }
        @if let Some(profile) = &profile {
            (portrait(&signed, profile))
        }
        section aria-labelledby="open-h" {
            h2 id="open-h" { (t.open_tasks) }
            @if open.is_empty() { p class="empty" { (t.no_tasks) } }
            ul class="cards" { @for task in &open { (task_card(&signed, task, false)) } }
        }
        section aria-labelledby="done-h" {
            h2 id="done-h" { (t.done_tasks) }
            @if done.is_empty() { p class="empty" { (t.no_tasks) } }
            ul class="cards" { @for task in &done { (task_card(&signed, task, false)) } }
        }
    };
    layout::page(&signed, &listed.user.name, content).await
}
