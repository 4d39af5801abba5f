//! `task_stats`: the tasks list's rows, grouped and measured in one statement per answer.

use chrono::{DateTime, Utc};
use entities::{task, task_executor};
use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend, QueryResult};

use super::{capped, month, percentile_columns, ranked_and_grouped, read_percentiles, secs, sum};
use crate::auth::Viewer;
use crate::domains::reports::model::{
    TaskDimension, TaskKey, TaskStats, TaskStatsQuery, TaskStatsRow, Window, MAX_GROUPS,
};
use crate::domains::tasks::model::{ReviewStatus, WorkStatus};
use crate::domains::tasks::service::{filter_condition, overdue_condition};
use crate::error::{AppError, AppResult};

/// The counts and sums of `TaskStatsRow` that add up across days (everything but `overdue`,
/// which moves with the clock, and the percentiles).
pub(super) const ADDITIVE: [&str; 7] = [
    "count",
    "done",
    "on_time",
    "completed_with_deadline",
    "merit_total",
    "cash_minor",
    "progress_sum",
];

/// The viewer's statistics over the tasks their list shows for `query.filter`, with
/// `created_at` in the window.
pub async fn task_stats<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    query: TaskStatsQuery,
) -> AppResult<TaskStats> {
    let me = viewer.user()?;
    let query = TaskStatsQuery {
        group_by: crate::domains::reports::model::parse_dimensions(&query.group_by)?,
        window: Window::parse(query.window.from, query.window.to)?,
        ..query
    };
    let now = Utc::now();
    let condition = filter_condition(me, &query.filter, now).add(window_condition(query.window));
    if let Some(answer) = super::rollups::answer(db, me, &query, &condition, now).await? {
        return Ok(answer);
    }
    let rows = grouped(db, condition.clone(), &query.group_by, now).await?;
    let total = grouped(db, condition, &[], now)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(TaskStats {
        rows,
        total,
        as_of: now,
    })
}

pub(super) fn window_condition(window: Window) -> Condition {
    let mut all = Condition::all();
    if let Some(from) = window.from {
        all = all.add(task::Column::CreatedAt.gte(from));
    }
    if let Some(to) = window.to {
        all = all.add(task::Column::CreatedAt.lt(to));
    }
    all
}

/// The SQL of each dimension's key over `tasks` (and `task_executors` for the executor).
pub(super) fn key_expr(backend: DbBackend, dimension: TaskDimension) -> String {
    match dimension {
        TaskDimension::Department => "tasks.department_id".into(),
        TaskDimension::Category => "tasks.category_id".into(),
        TaskDimension::Executor => "task_executors.user_id".into(),
        TaskDimension::Status => "tasks.status".into(),
        TaskDimension::ReviewStatus => "tasks.review_status".into(),
        TaskDimension::Priority => "tasks.priority".into(),
        TaskDimension::DeadlineMonth => month(backend, "tasks.deadline"),
        TaskDimension::CompletedMonth => month(backend, "tasks.completed_at"),
    }
}

pub(super) fn key_alias(dimension: TaskDimension) -> &'static str {
    match dimension {
        TaskDimension::Department => "k_department",
        TaskDimension::Category => "k_category",
        TaskDimension::Executor => "k_executor",
        TaskDimension::Status => "k_status",
        TaskDimension::ReviewStatus => "k_review_status",
        TaskDimension::Priority => "k_priority",
        TaskDimension::DeadlineMonth => "k_deadline_month",
        TaskDimension::CompletedMonth => "k_completed_month",
    }
}

/// When the task became approved: its approval's decision; else the activity entry that set
/// `reviewStatus` to APPROVED (a category without a flow); else its creation, for tasks born
/// approved (subtasks).
fn approved_at() -> String {
    let approved = ReviewStatus::Approved.as_str();
    format!(
        "COALESCE((SELECT ai.decided_at FROM approval_instances ai \
           WHERE ai.id = tasks.approval_instance_id AND ai.status = '{approved}'), \
         (SELECT MAX(ta.at) FROM task_activity ta WHERE ta.task_id = tasks.id \
           AND ta.field = 'reviewStatus' AND ta.new_value = '{approved}'), \
         CASE WHEN tasks.review_status = '{approved}' THEN tasks.created_at END)"
    )
}

fn finished() -> String {
    let done = WorkStatus::Done.as_str();
    format!("tasks.status = '{done}' AND tasks.completed_at IS NOT NULL")
}

/// Lead time in seconds of a finished task: created to completed (null while unfinished).
fn lead_secs(backend: DbBackend) -> String {
    format!(
        "CASE WHEN {} THEN {} - {} END",
        finished(),
        secs(backend, "tasks.completed_at"),
        secs(backend, "tasks.created_at")
    )
}

/// Cycle time in seconds of a finished task: approved to completed (null while unfinished).
fn cycle_secs(backend: DbBackend) -> String {
    format!(
        "CASE WHEN {} THEN {} - {} END",
        finished(),
        secs(backend, "tasks.completed_at"),
        secs(backend, &approved_at())
    )
}

/// `FROM tasks`, joined to the task's executors when grouped by them: a task is then one row
/// per executor, and one with a null executor when it has none.
fn from_tasks(select: &mut SelectStatement, dimensions: &[TaskDimension]) {
    select.from(task::Entity);
    if dimensions.contains(&TaskDimension::Executor) {
        select.left_join(
            task_executor::Entity,
            Expr::col((task_executor::Entity, task_executor::Column::TaskId))
                .equals((task::Entity, task::Column::Id)),
        );
    }
}

/// The rows' keys and their lead and cycle times, nothing else: what the percentiles rank.
pub(super) fn task_durations(
    backend: DbBackend,
    condition: Condition,
    dimensions: &[TaskDimension],
) -> SelectStatement {
    let mut select = Query::select();
    from_tasks(&mut select, dimensions);
    for dimension in dimensions {
        select.expr_as(
            Expr::cust(key_expr(backend, *dimension)),
            Alias::new(key_alias(*dimension)),
        );
    }
    select
        .expr_as(Expr::cust(lead_secs(backend)), Alias::new("lead_s"))
        .expr_as(Expr::cust(cycle_secs(backend)), Alias::new("cycle_s"))
        .cond_where(condition);
    select.to_owned()
}

/// The lead and cycle time percentiles of `durations` (rows shaped as `task_durations`'),
/// per group of `dimensions`.
pub(super) async fn grouped_percentiles<C: ConnectionTrait>(
    db: &C,
    durations: SelectStatement,
    dimensions: &[TaskDimension],
) -> AppResult<Vec<TaskStatsRow>> {
    let keys: Vec<String> = dimensions
        .iter()
        .map(|d| key_alias(*d).to_owned())
        .collect();
    let mut outer = ranked_and_grouped(durations, &["lead_s", "cycle_s"], &keys);
    for value in ["lead_s", "cycle_s"] {
        for (alias, expr) in percentile_columns(value) {
            outer.expr_as(Expr::cust(expr), Alias::new(alias));
        }
    }
    let backend = db.get_database_backend();
    let rows = db.query_all(capped(backend, &outer)).await?;
    too_many_groups(rows.len())?;
    rows.iter()
        .map(|row| {
            Ok(TaskStatsRow {
                key: read_key(row, dimensions)?,
                lead_time_hours: read_percentiles(row, "lead_s")?,
                cycle_time_hours: read_percentiles(row, "cycle_s")?,
                ..Default::default()
            })
        })
        .collect()
}

/// The overdue tasks under `condition`, counted per group of `dimensions` (keys only, none of
/// the per-task lookups the other measures need).
pub(super) async fn grouped_overdue<C: ConnectionTrait>(
    db: &C,
    condition: Condition,
    dimensions: &[TaskDimension],
    now: DateTime<Utc>,
) -> AppResult<Vec<TaskStatsRow>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    from_tasks(&mut select, dimensions);
    for dimension in dimensions {
        let key = key_expr(backend, *dimension);
        select.expr_as(Expr::cust(key.clone()), Alias::new(key_alias(*dimension)));
        select.add_group_by([Expr::cust(key)]);
    }
    select
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("overdue"))
        .cond_where(condition.add(overdue_condition(now)));
    let rows = db.query_all(capped(backend, &select)).await?;
    too_many_groups(rows.len())?;
    rows.iter()
        .map(|row| {
            Ok(TaskStatsRow {
                key: read_key(row, dimensions)?,
                overdue: row.try_get("", "overdue")?,
                ..Default::default()
            })
        })
        .collect()
}

/// One row per task (per task and executor when grouped by executor) with its key and its
/// per-task measures, as 0/1 flags and sums.
pub(super) fn measured_tasks(
    backend: DbBackend,
    condition: Condition,
    dimensions: &[TaskDimension],
    now: DateTime<Utc>,
) -> SelectStatement {
    let by_executor = dimensions.contains(&TaskDimension::Executor);
    let done = WorkStatus::Done.as_str();
    let finished = finished();
    let merit_of_executor = if by_executor {
        " AND merit_records.user_id = task_executors.user_id"
    } else {
        ""
    };
    let mut select = Query::select();
    from_tasks(&mut select, dimensions);
    for dimension in dimensions {
        select.expr_as(
            Expr::cust(key_expr(backend, *dimension)),
            Alias::new(key_alias(*dimension)),
        );
    }
    let columns = [
        (
            "done",
            format!("CASE WHEN tasks.status = '{done}' THEN 1 ELSE 0 END"),
        ),
        (
            "completed_with_deadline",
            format!("CASE WHEN {finished} AND tasks.deadline IS NOT NULL THEN 1 ELSE 0 END"),
        ),
        (
            "on_time",
            format!(
                "CASE WHEN {finished} AND tasks.completed_at <= tasks.deadline THEN 1 ELSE 0 END"
            ),
        ),
        (
            "merit_total",
            format!(
                "(SELECT COALESCE(SUM(merit_records.points), 0) FROM merit_records \
                 WHERE merit_records.task_id = tasks.id{merit_of_executor})"
            ),
        ),
        ("cash_minor", "COALESCE(tasks.cash_output_minor, 0)".into()),
        (
            "is_main",
            "CASE WHEN tasks.parent_id IS NULL THEN 1 ELSE 0 END".into(),
        ),
        ("progress", "tasks.progress".into()),
        ("lead_s", lead_secs(backend)),
        ("cycle_s", cycle_secs(backend)),
    ];
    for (alias, expr) in columns {
        select.expr_as(Expr::cust(expr), Alias::new(alias));
    }
    select.expr_as(
        Expr::case(overdue_condition(now), 1).finally(0),
        Alias::new("overdue"),
    );
    select.cond_where(condition);
    select.to_owned()
}

/// Groups `measured_tasks` by `dimensions`, ranks for the percentiles in between.
pub(super) fn grouped_statement(
    backend: DbBackend,
    condition: Condition,
    dimensions: &[TaskDimension],
    now: DateTime<Utc>,
) -> SelectStatement {
    let keys: Vec<String> = dimensions
        .iter()
        .map(|d| key_alias(*d).to_owned())
        .collect();
    let mut outer = ranked_and_grouped(
        measured_tasks(backend, condition, dimensions, now),
        &["lead_s", "cycle_s"],
        &keys,
    );
    for measure in [
        "done",
        "on_time",
        "completed_with_deadline",
        "merit_total",
        "cash_minor",
    ] {
        outer.expr_as(Expr::cust(sum(measure)), Alias::new(measure));
    }
    outer.expr_as(Expr::cust(sum("progress")), Alias::new("progress_sum"));
    outer.expr_as(Expr::cust(sum("overdue")), Alias::new("overdue"));
    for value in ["lead_s", "cycle_s"] {
        for (alias, expr) in percentile_columns(value) {
            outer.expr_as(Expr::cust(expr), Alias::new(alias));
        }
    }
    outer.to_owned()
}

/// Runs `grouped_statement`; rows sorted by key so both backends list them alike.
pub(super) async fn grouped<C: ConnectionTrait>(
    db: &C,
    condition: Condition,
    dimensions: &[TaskDimension],
    now: DateTime<Utc>,
) -> AppResult<Vec<TaskStatsRow>> {
    let backend = db.get_database_backend();
    let statement = capped(
        backend,
        &grouped_statement(backend, condition, dimensions, now),
    );
    let rows = db.query_all(statement).await?;
    too_many_groups(rows.len())?;
    let mut out = rows
        .iter()
        .map(|row| read_row(row, dimensions, true))
        .collect::<AppResult<Vec<_>>>()?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

pub(super) fn too_many_groups(n: usize) -> AppResult<()> {
    if n > MAX_GROUPS {
        return Err(AppError::bad_field(
            "groupBy",
            format!("more than {MAX_GROUPS} groups: narrow the filter or group by less"),
        ));
    }
    Ok(())
}

pub(super) fn read_key(row: &QueryResult, dimensions: &[TaskDimension]) -> AppResult<TaskKey> {
    let mut key = TaskKey::default();
    for dimension in dimensions {
        let alias = key_alias(*dimension);
        match dimension {
            TaskDimension::Department => key.department = row.try_get("", alias)?,
            TaskDimension::Category => key.category = row.try_get("", alias)?,
            TaskDimension::Executor => key.executor = row.try_get("", alias)?,
            TaskDimension::Status => key.status = row.try_get("", alias)?,
            TaskDimension::ReviewStatus => key.review_status = row.try_get("", alias)?,
            TaskDimension::Priority => key.priority = row.try_get("", alias)?,
            TaskDimension::DeadlineMonth => key.deadline_month = row.try_get("", alias)?,
            TaskDimension::CompletedMonth => key.completed_month = row.try_get("", alias)?,
        }
    }
    Ok(key)
}

/// A grouped row; `with_clock` reads `overdue` and the percentiles too (rollups have neither).
pub(super) fn read_row(
    row: &QueryResult,
    dimensions: &[TaskDimension],
    with_clock: bool,
) -> AppResult<TaskStatsRow> {
    let get = |name: &str| -> AppResult<i64> { Ok(row.try_get::<i64>("", name)?) };
    let mut out = TaskStatsRow {
        key: read_key(row, dimensions)?,
        count: get("count")?,
        done: get("done")?,
        on_time: get("on_time")?,
        completed_with_deadline: get("completed_with_deadline")?,
        merit_total: get("merit_total")?,
        cash_output_minor: get("cash_minor")?,
        progress_sum: get("progress_sum")?,
        ..Default::default()
    };
    if with_clock {
        out.overdue = get("overdue")?;
        out.lead_time_hours = read_percentiles(row, "lead_s")?;
        out.cycle_time_hours = read_percentiles(row, "cycle_s")?;
    }
    Ok(out)
}
