//! Daily task rollups: written by `reports.refresh` a day at a time, read for whole past days
//! that nothing touched since, with the rest of every answer from base rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use entities::task;
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, Statement};

use super::day;
use super::tasks::{grouped, key_alias, measured_tasks, read_row, too_many_groups, ADDITIVE};
use crate::auth::{Permission, ViewerUser};
use crate::domains::reports::model::{
    Source, TaskDimension, TaskStats, TaskStatsQuery, TaskStatsRow, MAX_GROUPS,
};
use crate::domains::tasks::model::{sees_tasks, WorkStatus};
use crate::domains::tasks::service::{overdue_condition, TaskFilter};
use crate::error::{AppError, AppResult};

/// Writes that committed after a refresh read the tasks but carry an earlier `updated_at` are
/// caught by looking back this far; the nightly reconcile catches anything longer.
pub const REFRESH_SLACK_MINUTES: i64 = 10;
/// More touched days than this and an answer reads base rows only.
const MAX_TOUCHED_DAYS: usize = 62;
/// The rollup dimensions: every task dimension but the executor.
const DIMENSIONS: [TaskDimension; 7] = [
    TaskDimension::Department,
    TaskDimension::Category,
    TaskDimension::Status,
    TaskDimension::ReviewStatus,
    TaskDimension::Priority,
    TaskDimension::DeadlineMonth,
    TaskDimension::CompletedMonth,
];

fn rollup_column(dimension: TaskDimension) -> &'static str {
    match dimension {
        TaskDimension::Department => "department_id",
        TaskDimension::Category => "category_id",
        TaskDimension::Status => "status",
        TaskDimension::ReviewStatus => "review_status",
        TaskDimension::Priority => "priority",
        TaskDimension::DeadlineMonth => "deadline_month",
        TaskDimension::CompletedMonth => "completed_month",
        TaskDimension::Executor => "executor_id",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    pub days: usize,
    pub at: DateTime<Utc>,
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// The refresh state, row-locked: concurrent refreshes (nodes whose leases overlapped) queue
/// here and each rewrites whole days, so the last one leaves the same rows.
async fn lock_state<C: ConnectionTrait>(db: &C) -> AppResult<Option<DateTime<Utc>>> {
    let backend = db.get_database_backend();
    db.execute(Statement::from_string(
        backend,
        "UPDATE report_refresh_state SET id = id WHERE id = 1",
    ))
    .await?;
    let row = db
        .query_one(Statement::from_string(
            backend,
            "SELECT refreshed_at FROM report_refresh_state WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("report_refresh_state has no row")))?;
    Ok(row.try_get("", "refreshed_at")?)
}

/// The UTC days of creation of tasks changed since `since` (every day when `None`).
async fn days_touched<C: ConnectionTrait>(
    db: &C,
    since: Option<DateTime<Utc>>,
) -> AppResult<Vec<NaiveDate>> {
    let backend = db.get_database_backend();
    let mut select = Query::select();
    select
        .distinct()
        .expr_as(
            Expr::cust(day(backend, "tasks.created_at")),
            Alias::new("d"),
        )
        .from(task::Entity);
    if let Some(since) = since {
        select.and_where(task::Column::UpdatedAt.gte(since));
    }
    let rows = db.query_all(backend.build(&select)).await?;
    rows.iter()
        .map(|row| {
            let text: String = row.try_get("", "d")?;
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map_err(|e| AppError::internal(anyhow::anyhow!("bad rollup day {text}: {e}")))
        })
        .collect()
}

/// Rewrites the rollups of every day a task was created on that changed since the last
/// refresh (all days when `full`, the nightly reconcile), inside the caller's transaction.
pub async fn refresh<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    full: bool,
) -> AppResult<Refreshed> {
    let backend = db.get_database_backend();
    let watermark = lock_state(db).await?;
    let since = if full {
        None
    } else {
        watermark.map(|w| w - Duration::minutes(REFRESH_SLACK_MINUTES))
    };
    if since.is_none() {
        db.execute(Statement::from_string(
            backend,
            "DELETE FROM task_rollup_days",
        ))
        .await?;
    }
    let days = days_touched(db, since).await?;
    for day in &days {
        let text = day.format("%Y-%m-%d").to_string();
        let delete = Query::delete()
            .from_table(Alias::new("task_rollup_days"))
            .and_where(Expr::col(Alias::new("day")).eq(text.clone()))
            .to_owned();
        db.execute(backend.build(&delete)).await?;
        let created = Condition::all()
            .add(task::Column::CreatedAt.gte(start_of(*day)))
            .add(task::Column::CreatedAt.lt(start_of(*day) + Duration::days(1)));
        let mut select = Query::select();
        select.expr(Expr::val(text)).from_subquery(
            measured_tasks(backend, created, &DIMENSIONS, now),
            Alias::new("m"),
        );
        let mut columns = vec!["day".to_owned()];
        for dimension in DIMENSIONS {
            select.column(Alias::new(key_alias(dimension)));
            select.group_by_col(Alias::new(key_alias(dimension)));
            columns.push(rollup_column(dimension).to_owned());
        }
        select.column(Alias::new("is_main"));
        select.group_by_col(Alias::new("is_main"));
        columns.push("is_main".into());
        select.expr(Expr::cust("COUNT(*)"));
        for measure in &ADDITIVE[1..] {
            let source = if *measure == "progress_sum" {
                "progress"
            } else {
                measure
            };
            select.expr(Expr::cust(super::sum(source)));
            columns.push((*measure).to_owned());
        }
        columns.insert(DIMENSIONS.len() + 2, "count".into());
        let insert = Query::insert()
            .into_table(Alias::new("task_rollup_days"))
            .columns(columns.iter().map(|c| Alias::new(c.as_str())))
            .select_from(select)
            .map_err(|e| AppError::internal(anyhow::anyhow!("rollup insert: {e}")))?
            .to_owned();
        db.execute(backend.build(&insert)).await?;
    }
    let mut update = Query::update();
    update
        .table(Alias::new("report_refresh_state"))
        .value(Alias::new("refreshed_at"), now)
        .and_where(Expr::col(Alias::new("id")).eq(1));
    if full {
        update.value(Alias::new("reconciled_at"), now);
    }
    db.execute(backend.build(&update)).await?;
    Ok(Refreshed {
        days: days.len(),
        at: now,
    })
}

/// Whether rollups can answer `query` exactly for `viewer`: every task visible (rollups know
/// no audience), filters the rollup keys carry, no executor, and day-aligned bounds.
fn expressible(viewer: &ViewerUser, query: &TaskStatsQuery) -> bool {
    let TaskFilter {
        category_id: _,
        review_status: _,
        status: _,
        executor_id,
        initiator_id,
        department_id: _,
        parent_id,
        main_only: _,
        deadline_from,
        deadline_to,
        overdue,
        search,
    } = &query.filter;
    let aligned = |t: Option<DateTime<Utc>>| t.is_none_or(|t| t.time() == NaiveTime::MIN);
    query.source == Source::Auto
        && sees_tasks(viewer)
        && viewer.has_global(Permission::TaskRead)
        && executor_id.is_none()
        && initiator_id.is_none()
        && parent_id.is_none()
        && deadline_from.is_none()
        && deadline_to.is_none()
        && overdue.is_none()
        && search.is_none()
        && !query.group_by.contains(&TaskDimension::Executor)
        && aligned(query.window.from)
        && aligned(query.window.to)
}

/// The answer from rollups where exact, or `None` to read base rows. Whole days before the
/// last refresh's day that no task change touched since come from the rollups; tasks of
/// other days from base rows; `overdue` (it moves with the clock) and the percentiles (they do
/// not add up) from base rows over the done and overdue tasks, through the same condition.
pub(super) async fn answer<C: ConnectionTrait>(
    db: &C,
    viewer: &ViewerUser,
    query: &TaskStatsQuery,
    condition: &Condition,
    now: DateTime<Utc>,
) -> AppResult<Option<TaskStats>> {
    if !expressible(viewer, query) {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let Some(refreshed_at) = db
        .query_one(Statement::from_string(
            backend,
            "SELECT refreshed_at FROM report_refresh_state WHERE id = 1",
        ))
        .await?
        .map(|row| row.try_get::<Option<DateTime<Utc>>>("", "refreshed_at"))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let mut touched = days_touched(
        db,
        Some(refreshed_at - Duration::minutes(REFRESH_SLACK_MINUTES)),
    )
    .await?;
    if touched.len() > MAX_TOUCHED_DAYS {
        return Ok(None);
    }
    let cutoff = refreshed_at.date_naive();
    touched.retain(|d| *d < cutoff);
    let mut from_base = Condition::any().add(task::Column::CreatedAt.gte(start_of(cutoff)));
    for day in &touched {
        from_base = from_base.add(
            Condition::all()
                .add(task::Column::CreatedAt.gte(start_of(*day)))
                .add(task::Column::CreatedAt.lt(start_of(*day) + Duration::days(1))),
        );
    }
    let clocked = Condition::any()
        .add(task::Column::Status.eq(WorkStatus::Done.as_str()))
        .add(overdue_condition(now));
    let mut groupings = Vec::new();
    for dimensions in [query.group_by.clone(), Vec::new()] {
        let mut rows: BTreeMap<_, TaskStatsRow> = BTreeMap::new();
        for row in rolled_up(db, query, &dimensions, cutoff, &touched).await? {
            merge(&mut rows, row, false);
        }
        let recent = condition.clone().add(from_base.clone());
        for row in grouped(db, recent, &dimensions, now).await? {
            merge(&mut rows, row, false);
        }
        let clock = condition.clone().add(clocked.clone());
        for row in grouped(db, clock, &dimensions, now).await? {
            merge(&mut rows, row, true);
        }
        too_many_groups(rows.len())?;
        groupings.push(rows.into_values().collect::<Vec<_>>());
    }
    let total = groupings.pop().and_then(|t| t.into_iter().next());
    Ok(Some(TaskStats {
        rows: groupings.pop().unwrap_or_default(),
        total: total.unwrap_or_default(),
        as_of: refreshed_at,
    }))
}

/// Adds `row` into its group: the additive measures, or (`clock`) overdue and percentiles.
fn merge(
    rows: &mut BTreeMap<crate::domains::reports::model::TaskKey, TaskStatsRow>,
    row: TaskStatsRow,
    clock: bool,
) {
    let into = rows.entry(row.key.clone()).or_insert_with(|| TaskStatsRow {
        key: row.key.clone(),
        ..Default::default()
    });
    if clock {
        into.overdue = row.overdue;
        into.lead_time_hours = row.lead_time_hours;
        into.cycle_time_hours = row.cycle_time_hours;
    } else {
        into.count += row.count;
        into.done += row.done;
        into.on_time += row.on_time;
        into.completed_with_deadline += row.completed_with_deadline;
        into.merit_total += row.merit_total;
        into.cash_output_minor += row.cash_output_minor;
        into.progress_sum += row.progress_sum;
    }
}

/// The rollups' sums of days before `cutoff` not `touched`, under the query's filter.
async fn rolled_up<C: ConnectionTrait>(
    db: &C,
    query: &TaskStatsQuery,
    dimensions: &[TaskDimension],
    cutoff: NaiveDate,
    touched: &[NaiveDate],
) -> AppResult<Vec<TaskStatsRow>> {
    let backend = db.get_database_backend();
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let col = |name: &str| Expr::col(Alias::new(name));
    let mut select = Query::select();
    select
        .from(Alias::new("task_rollup_days"))
        .and_where(col("day").lt(day(cutoff)));
    if !touched.is_empty() {
        select.and_where(col("day").is_not_in(touched.iter().map(|d| day(*d))));
    }
    if let Some(from) = query.window.from {
        select.and_where(col("day").gte(day(from.date_naive())));
    }
    if let Some(to) = query.window.to {
        select.and_where(col("day").lt(day(to.date_naive())));
    }
    let f = &query.filter;
    if let Some(id) = f.category_id {
        select.and_where(col("category_id").eq(id));
    }
    if let Some(id) = f.department_id {
        select.and_where(col("department_id").eq(id));
    }
    if let Some(status) = f.status {
        select.and_where(col("status").eq(status.as_str()));
    }
    if let Some(status) = f.review_status {
        select.and_where(col("review_status").eq(status.as_str()));
    }
    if f.main_only {
        select.and_where(col("is_main").eq(1));
    }
    for dimension in dimensions {
        select.expr_as(
            col(rollup_column(*dimension)),
            Alias::new(key_alias(*dimension)),
        );
        select.group_by_col(Alias::new(rollup_column(*dimension)));
    }
    for measure in ADDITIVE {
        // Quoted: `count` is a keyword to PostgreSQL.
        select.expr_as(
            Expr::cust(super::sum(&format!("\"{measure}\""))),
            Alias::new(measure),
        );
    }
    select.limit(MAX_GROUPS as u64 + 1);
    let rows = db.query_all(backend.build(&select)).await?;
    too_many_groups(rows.len())?;
    let rows = rows
        .iter()
        .map(|row| read_row(row, dimensions, false))
        .collect::<AppResult<Vec<_>>>()?;
    // Over no rollup row at all, the ungrouped sum still returns one row of zeros: skip it
    // rather than invent an empty group.
    Ok(rows.into_iter().filter(|r| r.count > 0).collect())
}
