//! Daily task rollups: written by `reports.refresh` a day at a time, read for whole past days
//! that nothing touched since, with the rest of every answer from base rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveTime, Utc};
use entities::task;
use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement, UnionType};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend, Statement};

use super::day;
use super::tasks::{
    grouped, grouped_overdue, grouped_percentiles, key_alias, measured_tasks, read_row,
    task_durations, too_many_groups, ADDITIVE,
};
use crate::auth::{Permission, ViewerUser};
use crate::domains::reports::model::{
    Source, TaskDimension, TaskKey, TaskStats, TaskStatsQuery, TaskStatsRow, Window,
};
use crate::domains::tasks::model::{sees_tasks, WorkStatus};
use crate::domains::tasks::service::{open_statuses, TaskFilter};
use crate::error::{AppError, AppResult};

/// Writes that committed after a refresh read the tasks but carry an earlier `updated_at` are
/// caught by looking back this far; the nightly reconcile catches anything longer.
pub const REFRESH_SLACK_MINUTES: i64 = 10;
/// More touched days than this and an answer reads base rows only.
const MAX_TOUCHED_DAYS: usize = 62;
/// The per-task rollup key: every task dimension but the executor.
const DIMENSIONS: [TaskDimension; 7] = [
    TaskDimension::Department,
    TaskDimension::Category,
    TaskDimension::Status,
    TaskDimension::ReviewStatus,
    TaskDimension::Priority,
    TaskDimension::DeadlineMonth,
    TaskDimension::CompletedMonth,
];

/// The per-person rollup key: the executor and every other dimension.
const EXECUTOR_DIMENSIONS: [TaskDimension; 8] = [
    TaskDimension::Executor,
    TaskDimension::Department,
    TaskDimension::Category,
    TaskDimension::Status,
    TaskDimension::ReviewStatus,
    TaskDimension::Priority,
    TaskDimension::DeadlineMonth,
    TaskDimension::CompletedMonth,
];

/// One set of rollup tables over one key: sums per day of creation and per whole month, and
/// each done task's lead and cycle time (what percentiles rank).
struct Family {
    days: &'static str,
    months: &'static str,
    durations: &'static str,
    dimensions: &'static [TaskDimension],
}

/// A task once: every grouping without the executor, and every total.
const PER_TASK: Family = Family {
    days: "task_rollup_days",
    months: "task_rollup_months",
    durations: "task_rollup_durations",
    dimensions: &DIMENSIONS,
};

/// A task once per executor (and once, with no executor, when it has none): EXECUTOR groupings.
const PER_EXECUTOR: Family = Family {
    days: "task_rollup_executor_days",
    months: "task_rollup_executor_months",
    durations: "task_rollup_executor_durations",
    dimensions: &EXECUTOR_DIMENSIONS,
};

const FAMILIES: [&Family; 2] = [&PER_TASK, &PER_EXECUTOR];

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn month_text(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn next_month(first: NaiveDate) -> NaiveDate {
    first
        .checked_add_months(Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

/// The first day of `month` (`YYYY-MM`) and of the month after.
fn month_bounds(month: &str) -> AppResult<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|e| AppError::internal(anyhow::anyhow!("bad rollup month {month}: {e}")))?;
    Ok((first, next_month(first)))
}

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
        for family in FAMILIES {
            for table in [family.days, family.months, family.durations] {
                db.execute(Statement::from_string(
                    backend,
                    format!("DELETE FROM {table}"),
                ))
                .await?;
            }
        }
    }
    let days = days_touched(db, since).await?;
    for day in &days {
        let text = day_text(*day);
        let created = Condition::all()
            .add(task::Column::CreatedAt.gte(start_of(*day)))
            .add(task::Column::CreatedAt.lt(start_of(*day) + Duration::days(1)));
        for family in FAMILIES {
            for table in [family.days, family.durations] {
                let delete = Query::delete()
                    .from_table(Alias::new(table))
                    .and_where(Expr::col(Alias::new("day")).eq(text.clone()))
                    .to_owned();
                db.execute(backend.build(&delete)).await?;
            }
            write_durations(db, family, &text, created.clone(), now).await?;
            write_day(db, family, &text, created.clone(), now).await?;
        }
    }
    let months: BTreeSet<String> = days.iter().map(|d| month_text(*d)).collect();
    for month in &months {
        for family in FAMILIES {
            write_month(db, family, month).await?;
        }
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

/// One row per measured task of `condition` (per task and executor in the per-person family),
/// led by the day and `family`'s key; with the rollup columns those fill, in order.
fn keyed_rows(
    backend: DbBackend,
    family: &Family,
    day: &str,
    condition: Condition,
    now: DateTime<Utc>,
) -> (SelectStatement, Vec<String>) {
    let mut select = Query::select();
    select.expr(Expr::val(day)).from_subquery(
        measured_tasks(backend, condition, family.dimensions, now),
        Alias::new("m"),
    );
    let mut columns = vec!["day".to_owned()];
    for dimension in family.dimensions {
        select.column(Alias::new(key_alias(*dimension)));
        columns.push(rollup_column(*dimension).to_owned());
    }
    (select, columns)
}

/// `INSERT INTO table (columns) select`.
async fn insert_rows<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[String],
    select: SelectStatement,
) -> AppResult<()> {
    let insert = Query::insert()
        .into_table(Alias::new(table))
        .columns(columns.iter().map(|c| Alias::new(c.as_str())))
        .select_from(select)
        .map_err(|e| AppError::internal(anyhow::anyhow!("{table} insert: {e}")))?
        .to_owned();
    db.execute(db.get_database_backend().build(&insert)).await?;
    Ok(())
}

/// The sums of one day of creation, per key of `family`.
async fn write_day<C: ConnectionTrait>(
    db: &C,
    family: &Family,
    day: &str,
    created: Condition,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let (mut select, mut columns) =
        keyed_rows(db.get_database_backend(), family, day, created, now);
    for dimension in family.dimensions {
        select.group_by_col(Alias::new(key_alias(*dimension)));
    }
    select.column(Alias::new("is_main"));
    select.group_by_col(Alias::new("is_main"));
    columns.push("is_main".into());
    select.expr(Expr::cust("COUNT(*)"));
    columns.push("count".into());
    for measure in &ADDITIVE[1..] {
        let source = if *measure == "progress_sum" {
            "progress"
        } else {
            measure
        };
        select.expr(Expr::cust(super::sum(source)));
        columns.push((*measure).to_owned());
    }
    insert_rows(db, family.days, &columns, select).await
}

/// The done tasks of one day of creation with their lead and cycle times, for the percentiles.
async fn write_durations<C: ConnectionTrait>(
    db: &C,
    family: &Family,
    day: &str,
    created: Condition,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let done = created.add(task::Column::Status.eq(WorkStatus::Done.as_str()));
    let (mut select, mut columns) = keyed_rows(db.get_database_backend(), family, day, done, now);
    for column in ["is_main", "lead_s", "cycle_s"] {
        select.column(Alias::new(column));
        columns.push(column.to_owned());
    }
    insert_rows(db, family.durations, &columns, select).await
}

/// Rewrites one month's rollups of `family` as the sum of its days'.
async fn write_month<C: ConnectionTrait>(db: &C, family: &Family, month: &str) -> AppResult<()> {
    let backend = db.get_database_backend();
    let delete = Query::delete()
        .from_table(Alias::new(family.months))
        .and_where(Expr::col(Alias::new("month")).eq(month))
        .to_owned();
    db.execute(backend.build(&delete)).await?;
    let (first, next) = month_bounds(month)?;
    let mut select = Query::select();
    select
        .expr(Expr::val(month))
        .from(Alias::new(family.days))
        .and_where(Expr::col(Alias::new("day")).gte(day_text(first)))
        .and_where(Expr::col(Alias::new("day")).lt(day_text(next)));
    let mut columns = vec!["month".to_owned()];
    for dimension in family.dimensions {
        let column = rollup_column(*dimension);
        select.column(Alias::new(column));
        select.group_by_col(Alias::new(column));
        columns.push(column.to_owned());
    }
    select.column(Alias::new("is_main"));
    select.group_by_col(Alias::new("is_main"));
    columns.push("is_main".into());
    for measure in ADDITIVE {
        select.expr(Expr::cust(super::sum(&format!("\"{measure}\""))));
        columns.push(measure.to_owned());
    }
    insert_rows(db, family.months, &columns, select).await
}

/// Whether rollups can answer `query` exactly for `viewer`: every task visible (rollups know
/// no audience), filters the rollup keys carry, and day-aligned bounds. An executor filter is
/// not one: it keeps a task's whole merit, where the per-person rollups hold each executor's.
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
        involving,
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
        && involving.is_none()
        && aligned(query.window.from)
        && aligned(query.window.to)
}

/// Which source answers which days of a query's window: monthly rollups for whole months
/// before the refresh's month that no change touched since; daily rollups for the other days
/// before the refresh's day that nothing touched; base rows for the rest.
struct Coverage {
    /// Whole months from this one (inclusive; unbounded when `None`)...
    months_from: Option<NaiveDate>,
    /// ...to this one (exclusive), less `touched_months`.
    months_to: NaiveDate,
    touched_months: Vec<String>,
    /// Days before this one, less `touched`, come from rollups.
    cutoff: NaiveDate,
    touched: Vec<NaiveDate>,
}

impl Coverage {
    fn new(window: Window, cutoff: NaiveDate, touched: Vec<NaiveDate>) -> Self {
        // Bounds are day-aligned here (`expressible`); a window starting mid-month leaves that
        // month to the daily rollups.
        let months_from = window.from.map(|from| {
            let first = first_of_month(from.date_naive());
            if first == from.date_naive() {
                first
            } else {
                next_month(first)
            }
        });
        let mut months_to = first_of_month(cutoff);
        if let Some(to) = window.to {
            months_to = months_to.min(first_of_month(to.date_naive()));
        }
        let touched_months: BTreeSet<String> = touched.iter().map(|d| month_text(*d)).collect();
        Self {
            months_from,
            months_to,
            touched_months: touched_months.into_iter().collect(),
            cutoff,
            touched,
        }
    }

    /// Rows of `task_rollup_months` this coverage reads.
    fn months(&self) -> Condition {
        let month = || Expr::col(Alias::new("month"));
        let mut all = Condition::all().add(month().lt(month_text(self.months_to)));
        if let Some(from) = self.months_from {
            all = all.add(month().gte(month_text(from)));
        }
        if !self.touched_months.is_empty() {
            all = all.add(month().is_not_in(self.touched_months.clone()));
        }
        all
    }

    /// Days (of `task_rollup_days` and `task_rollup_durations`) the rollups answer, months or
    /// not.
    fn rolled_days(&self, window: Window) -> Condition {
        let day = || Expr::col(Alias::new("day"));
        let mut all = Condition::all().add(day().lt(day_text(self.cutoff)));
        if !self.touched.is_empty() {
            all = all.add(day().is_not_in(self.touched.iter().map(|d| day_text(*d))));
        }
        if let Some(from) = window.from {
            all = all.add(day().gte(day_text(from.date_naive())));
        }
        if let Some(to) = window.to {
            all = all.add(day().lt(day_text(to.date_naive())));
        }
        all
    }

    /// Days of `task_rollup_days` outside the whole months.
    fn days(&self, window: Window) -> Condition {
        let day = || Expr::col(Alias::new("day"));
        let mut outside = Condition::any().add(day().gte(day_text(self.months_to)));
        if let Some(from) = self.months_from {
            outside = outside.add(day().lt(day_text(from)));
        }
        if !self.touched_months.is_empty() {
            outside = outside.add(
                Expr::expr(Expr::cust("substr(day, 1, 7)")).is_in(self.touched_months.clone()),
            );
        }
        self.rolled_days(window).add(outside)
    }

    /// Tasks read from base rows: created on or after the cutoff, or on a touched day.
    fn base_rows(&self) -> Condition {
        let mut any = Condition::any().add(task::Column::CreatedAt.gte(start_of(self.cutoff)));
        for day in &self.touched {
            any = any.add(
                Condition::all()
                    .add(task::Column::CreatedAt.gte(start_of(*day)))
                    .add(task::Column::CreatedAt.lt(start_of(*day) + Duration::days(1))),
            );
        }
        any
    }
}

/// The answer from rollups where exact, or `None` to read base rows. The additive measures
/// come from the monthly and daily rollups and base rows (`Coverage`); `overdue` (it moves
/// with the clock) as `Sources::sums` says; the percentiles (they do not add up) from one ranking over
/// the rolled-up durations and the base rows' done tasks. Without an executor grouping each
/// task is in exactly one group, so the total's additive measures are the groups' sums; with
/// one, a task can be in several, so the total is summed apart over the per-task rollups.
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
    let sources = Sources {
        query,
        coverage: Coverage::new(query.window, cutoff, touched),
        condition,
        now,
    };
    let dimensions = &query.group_by;
    let by_executor = dimensions.contains(&TaskDimension::Executor);
    let family = if by_executor {
        &PER_EXECUTOR
    } else {
        &PER_TASK
    };
    // Independent reads: on a pool they run on several connections at once (a transaction
    // runs them one after another).
    let (mut rows, percentiles, all_percentiles, whole) = futures_util::try_join!(
        sources.sums(db, family, dimensions),
        sources.durations(db, family, dimensions),
        sources.durations(db, &PER_TASK, &[]),
        async {
            if by_executor {
                sources.sums(db, &PER_TASK, &[]).await.map(Some)
            } else {
                Ok(None)
            }
        },
    )?;
    let mut total = match whole {
        Some(whole) => whole.into_values().next().unwrap_or_default(),
        None => {
            let mut total = TaskStatsRow::default();
            for row in rows.values() {
                merge_additive_into(&mut total, row);
                total.overdue += row.overdue;
            }
            total
        }
    };
    for row in percentiles {
        if let Some(into) = rows.get_mut(&row.key) {
            into.lead_time_hours = row.lead_time_hours;
            into.cycle_time_hours = row.cycle_time_hours;
        }
    }
    if let Some(all) = all_percentiles.into_iter().next() {
        total.lead_time_hours = all.lead_time_hours;
        total.cycle_time_hours = all.cycle_time_hours;
    }
    Ok(Some(TaskStats {
        rows: rows.into_values().collect(),
        total,
        as_of: refreshed_at,
    }))
}

/// What one rollup answer reads: the query, which days come from where, and the viewer's
/// condition over base rows.
struct Sources<'a> {
    query: &'a TaskStatsQuery,
    coverage: Coverage,
    condition: &'a Condition,
    now: DateTime<Utc>,
}

impl Sources<'_> {
    /// Tasks under the viewer's condition that base rows answer for.
    fn recent(&self) -> Condition {
        self.condition.clone().add(self.coverage.base_rows())
    }

    /// The additive measures and `overdue` per group of `dimensions`, from `family`'s monthly
    /// and daily rollups and base rows.
    async fn sums<C: ConnectionTrait>(
        &self,
        db: &C,
        family: &Family,
        dimensions: &[TaskDimension],
    ) -> AppResult<BTreeMap<TaskKey, TaskStatsRow>> {
        let window = self.query.window;
        // Overdue: of the rolled-up days, the open tasks whose deadline month has passed come
        // from the rollups; base rows count the rest (the base-row days, and deadlines of this
        // month, which only the clock can tell).
        let past_deadlines = Condition::all()
            .add(Expr::col(Alias::new("status")).is_in(open_statuses()))
            .add(Expr::col(Alias::new("deadline_month")).lt(month_text(self.now.date_naive())));
        let overdue_from_base_rows = self.condition.clone().add(
            Condition::any()
                .add(self.coverage.base_rows())
                .add(task::Column::Deadline.gte(start_of(first_of_month(self.now.date_naive())))),
        );
        let months = self.coverage.months();
        let days = self.coverage.days(window);
        let (monthly, daily, base, overdue_monthly, overdue_daily, overdue_base) = futures_util::try_join!(
            rolled_up(db, self.query, dimensions, family.months, months.clone()),
            rolled_up(db, self.query, dimensions, family.days, days.clone()),
            grouped(db, self.recent(), dimensions, self.now),
            rolled_up(
                db,
                self.query,
                dimensions,
                family.months,
                months.add(past_deadlines.clone())
            ),
            rolled_up(
                db,
                self.query,
                dimensions,
                family.days,
                days.add(past_deadlines)
            ),
            grouped_overdue(db, overdue_from_base_rows, dimensions, self.now),
        )?;
        let mut rows: BTreeMap<TaskKey, TaskStatsRow> = BTreeMap::new();
        for row in monthly.into_iter().chain(daily).chain(base) {
            merge_additive(&mut rows, row);
        }
        let overdue = overdue_monthly
            .into_iter()
            .chain(overdue_daily)
            .map(|row| (row.key, row.count))
            .chain(overdue_base.into_iter().map(|row| (row.key, row.overdue)));
        for (key, count) in overdue {
            rows.entry(key.clone())
                .or_insert_with(|| TaskStatsRow {
                    key,
                    ..Default::default()
                })
                .overdue += count;
        }
        too_many_groups(rows.len())?;
        Ok(rows)
    }

    /// The percentiles per group of `dimensions`, ranked over `family`'s rolled-up durations
    /// of the days the coverage gives the rollups and the base rows' done tasks together.
    async fn durations<C: ConnectionTrait>(
        &self,
        db: &C,
        family: &Family,
        dimensions: &[TaskDimension],
    ) -> AppResult<Vec<TaskStatsRow>> {
        let backend = db.get_database_backend();
        let mut rolled = Query::select();
        rolled
            .from(Alias::new(family.durations))
            .cond_where(self.coverage.rolled_days(self.query.window));
        rollup_filter(&mut rolled, self.query);
        for dimension in dimensions {
            rolled.expr_as(
                Expr::col(Alias::new(rollup_column(*dimension))),
                Alias::new(key_alias(*dimension)),
            );
        }
        rolled
            .column(Alias::new("lead_s"))
            .column(Alias::new("cycle_s"));
        let done_recent = self
            .recent()
            .add(task::Column::Status.eq(WorkStatus::Done.as_str()));
        rolled.union(
            UnionType::All,
            task_durations(backend, done_recent, dimensions),
        );
        grouped_percentiles(db, rolled, dimensions).await
    }
}

fn merge_additive(rows: &mut BTreeMap<TaskKey, TaskStatsRow>, row: TaskStatsRow) {
    let into = rows.entry(row.key.clone()).or_insert_with(|| TaskStatsRow {
        key: row.key.clone(),
        ..Default::default()
    });
    merge_additive_into(into, &row);
}

fn merge_additive_into(into: &mut TaskStatsRow, row: &TaskStatsRow) {
    into.count += row.count;
    into.done += row.done;
    into.on_time += row.on_time;
    into.completed_with_deadline += row.completed_with_deadline;
    into.merit_total += row.merit_total;
    into.cash_output_minor += row.cash_output_minor;
    into.progress_sum += row.progress_sum;
}

/// The rollup filters of `query` over a rollup table's columns.
fn rollup_filter(select: &mut SelectStatement, query: &TaskStatsQuery) {
    let col = |name: &str| Expr::col(Alias::new(name));
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
}

/// The sums of `table` (daily or monthly rollups) over the rows `period` picks, under the
/// query's filter.
async fn rolled_up<C: ConnectionTrait>(
    db: &C,
    query: &TaskStatsQuery,
    dimensions: &[TaskDimension],
    table: &str,
    period: Condition,
) -> AppResult<Vec<TaskStatsRow>> {
    let backend = db.get_database_backend();
    let col = |name: &str| Expr::col(Alias::new(name));
    let mut select = Query::select();
    select.from(Alias::new(table)).cond_where(period);
    rollup_filter(&mut select, query);
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
    let rows = db.query_all(super::capped(backend, &select)).await?;
    too_many_groups(rows.len())?;
    let rows = rows
        .iter()
        .map(|row| read_row(row, dimensions, false))
        .collect::<AppResult<Vec<_>>>()?;
    // Over no rollup row at all, the ungrouped sum still returns one row of zeros: skip it
    // rather than invent an empty group.
    Ok(rows.into_iter().filter(|r| r.count > 0).collect())
}
