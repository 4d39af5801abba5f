//! "My work": the tasks I execute, confirm, initiated or must decide on, grouped by status.

use std::collections::{HashMap, HashSet};

use axum::extract::Query;
use axum::response::Response;
use entities::task;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::console::i18n::Text;
use crate::console::layout;
use crate::console::session::Signed;
use crate::domains::approvals::service as approvals;
use crate::domains::identity::service as identity;
use crate::domains::tasks::model::SUBJECT_KIND as TASK_SUBJECT_KIND;
use crate::domains::tasks::model::{ReviewStatus, WorkStatus};
use crate::domains::tasks::service::{self as tasks, TaskFilter, TaskOrder, TaskOrderField};
use crate::error::AppResult;

/// The board shows this many tasks at most; the filters narrow it.
const BOARD_LIMIT: u64 = 200;

#[derive(Deserialize, Default)]
pub struct BoardFilter {
    category: Option<String>,
    department: Option<String>,
    overdue: Option<String>,
    q: Option<String>,
}

fn id_of(raw: Option<&str>) -> Option<Uuid> {
    raw.filter(|s| !s.is_empty())
        .and_then(|s| Uuid::parse_str(s).ok())
}

pub fn status_label(t: &Text, status: &str) -> &'static str {
    match WorkStatus::parse(status) {
        Some(WorkStatus::Open) => t.status_open,
        Some(WorkStatus::InProgress) => t.status_in_progress,
        Some(WorkStatus::Done) => t.status_done,
        Some(WorkStatus::Cancelled) | None => t.status_cancelled,
    }
}

pub fn review_label(t: &Text, status: &str) -> &'static str {
    match ReviewStatus::parse(status) {
        Some(ReviewStatus::Draft) | None => t.review_draft,
        Some(ReviewStatus::Pending) => t.review_pending,
        Some(ReviewStatus::Approved) => t.review_approved,
        Some(ReviewStatus::Rejected) => t.review_rejected,
    }
}

struct Board {
    tasks: Vec<task::Model>,
    awaiting_me: HashSet<Uuid>,
}

async fn load(signed: &Signed, filter: &BoardFilter) -> AppResult<Board> {
    let db = &signed.app.db.conn;
    let narrowed = |me: Option<Uuid>| TaskFilter {
        category_id: id_of(filter.category.as_deref()),
        department_id: id_of(filter.department.as_deref()),
        overdue: filter.overdue.as_deref().map(|_| true),
        search: filter.q.clone().filter(|q| !q.trim().is_empty()),
        involving: me,
        ..TaskFilter::default()
    };
    let order = [TaskOrder {
        field: TaskOrderField::Deadline,
        descending: false,
    }];
    let mine = tasks::list_tasks(
        db,
        &signed.viewer,
        narrowed(Some(signed.me.id)),
        &order,
        0,
        BOARD_LIMIT,
    )
    .await?;
    let mut board = Board {
        tasks: mine.tasks,
        awaiting_me: HashSet::new(),
    };
    let pending: Vec<Uuid> = approvals::pending_for(db, &signed.viewer)
        .await?
        .into_iter()
        .filter(|a| a.subject_type == TASK_SUBJECT_KIND)
        .map(|a| a.subject_id)
        .collect();
    board.awaiting_me = pending.iter().copied().collect();
    let known: HashSet<Uuid> = board.tasks.iter().map(|t| t.id).collect();
    let missing: Vec<Uuid> = pending
        .into_iter()
        .filter(|id| !known.contains(id))
        .take(BOARD_LIMIT as usize)
        .collect();
    if !missing.is_empty() {
        // Tasks waiting on my decision, through the same filter and visibility as the rest.
        let extra = tasks::list_tasks_by_id(db, &signed.viewer, &narrowed(None), &missing).await?;
        board.tasks.extend(extra);
    }
    Ok(board)
}

fn filters(
    signed: &Signed,
    filter: &BoardFilter,
    categories: &[entities::task_category::Model],
    departments: &[entities::department::Model],
) -> Markup {
    let t = signed.t();
    let chosen = |raw: &Option<String>, id: Uuid| raw.as_deref() == Some(id.to_string().as_str());
    html! {
        form method="get" action="/work" class="filters" aria-label=(t.filters) {
            div class="field" {
                label for="f-category" { (t.category) }
                select id="f-category" name="category" {
                    option value="" { (t.any) }
                    @for c in categories {
                        option value=(c.id) selected[chosen(&filter.category, c.id)] { (c.name) }
                    }
                }
            }
            div class="field" {
                label for="f-department" { (t.department) }
                select id="f-department" name="department" {
                    option value="" { (t.any) }
                    @for d in departments {
                        option value=(d.id) selected[chosen(&filter.department, d.id)] { (d.name) }
                    }
                }
            }
            div class="field" {
                label for="f-q" { (t.search) }
                input id="f-q" type="search" name="q" maxlength="200" value=(filter.q.clone().unwrap_or_default());
            }
            div class="field check" {
                input id="f-overdue" type="checkbox" name="overdue" value="1" checked[filter.overdue.is_some()];
                label for="f-overdue" { (t.overdue_only) }
            }
            button type="submit" { (t.apply) }
        }
    }
}

pub fn task_card(signed: &Signed, task: &task::Model, awaiting_me: bool) -> Markup {
    let t = signed.t();
    html! {
        li class="card" {
            a href=(format!("/tasks/{}", task.id)) { (task.title) }
            div class="meta" {
                span class=(format!("review {}", task.review_status.to_lowercase())) { (review_label(t, &task.review_status)) }
                @if task.overdue {
                    span class="tag late" { (t.overdue) }
                }
                @if awaiting_me {
                    span class="tag mine" { (t.pending_decisions) }
                }
                @if let Some(deadline) = task.deadline {
                    span { (t.deadline) ": " (signed.locale.date(deadline)) }
                }
                span { (t.progress) ": " (task.progress) "%" }
            }
        }
    }
}

pub async fn board(signed: Signed, Query(filter): Query<BoardFilter>) -> Response {
    let db = &signed.app.db.conn;
    let loaded = async {
        let board = load(&signed, &filter).await?;
        let categories = tasks::list_categories(db, &signed.viewer, false).await?;
        let departments = identity::list_departments(db, &signed.viewer).await?;
        AppResult::Ok((board, categories, departments))
    };
    let (board, categories, departments) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let mut columns: HashMap<&str, Vec<&task::Model>> = HashMap::new();
    for task in &board.tasks {
        columns.entry(task.status.as_str()).or_default().push(task);
    }
    let statuses = [
        WorkStatus::Open,
        WorkStatus::InProgress,
        WorkStatus::Done,
        WorkStatus::Cancelled,
    ];
    let may_create = signed
        .me
        .holds_anywhere(crate::auth::Permission::TaskCreateMain);
    let content = html! {
        @if may_create {
            p { a class="button primary" href="/tasks/new" { (t.new_task) } }
        }
        (filters(&signed, &filter, &categories, &departments))
        div class="tabs" role="tablist" hidden {
            @for (i, status) in statuses.iter().enumerate() {
                button type="button" role="tab" id=(format!("tab-{}", status.as_str()))
                    aria-controls=(format!("col-{}", status.as_str()))
                    aria-selected=(if i == 0 { "true" } else { "false" }) {
                    (status_label(t, status.as_str()))
                    " (" (columns.get(status.as_str()).map_or(0, Vec::len)) ")"
                }
            }
        }
        div id="board" class="board" data-live="" {
            @for status in statuses {
                @let items = columns.get(status.as_str()).cloned().unwrap_or_default();
                section class="column" id=(format!("col-{}", status.as_str())) role="tabpanel"
                    aria-labelledby=(format!("h-{}", status.as_str())) {
                    h2 id=(format!("h-{}", status.as_str())) {
                        (status_label(t, status.as_str())) " " span class="count" { (items.len()) }
                    }
                    @if items.is_empty() {
                        p class="empty" { (t.no_tasks) }
                    } @else {
                        ul class="cards" {
                            @for task in items {
                                (task_card(&signed, task, board.awaiting_me.contains(&task.id)))
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&signed, t.my_work, content).await
}
