//! Portraits over storage: who may see whose, and the figures, each aggregated in SQL by the
//! domain that records its facts (tasks, approvals) and put together here.

use chrono::Utc;
use entities::user;
use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Select,
};
use uuid::Uuid;

use super::model::{
    hours_from_centiseconds, on_time_rate, two_decimals, DecisionHours, Percentiles,
    PortraitAccess, Profile, ProfileWindow,
};
use crate::auth::{AppScope, Viewer};
use crate::domains::approvals::service as approvals;
use crate::domains::identity::service as identity;
use crate::domains::tasks::service as tasks;
use crate::error::{AppError, AppResult};

/// The people whose portrait `viewer` may see, ordered by name then id (alphabetical, never by
/// a measure): themselves; everyone for administrators; for anyone else the people whose
/// department lies under one of their department-scoped grants. An app needs `PROFILES_READ`
/// (else `FORBIDDEN`) and sees its department's subtree, or everyone without a department.
pub fn visible_people_query(viewer: &Viewer) -> AppResult<Select<user::Entity>> {
    let me = viewer.user()?;
    me.require_scope(AppScope::ProfilesRead)?;
    let condition = match PortraitAccess::of(me) {
        PortraitAccess::Everyone => Condition::all(),
        PortraitAccess::AppDepartment(department) => Condition::all()
            .add(user::Column::DepartmentId.in_subquery(identity::departments_under(department))),
        PortraitAccess::Subtrees(paths) => {
            let mut any = Condition::any();
            if me.app.is_none() {
                any = any.add(user::Column::Id.eq(me.id));
            }
            if !paths.is_empty() {
                any = any.add(
                    user::Column::DepartmentId.in_subquery(identity::departments_within(&paths)),
                );
            }
            Condition::all().add(any.add(Expr::cust("1 = 0")))
        }
    };
    Ok(user::Entity::find()
        .filter(condition)
        .order_by_asc(user::Column::Name)
        .order_by_asc(user::Column::Id))
}

/// p50 and p85 (or avg and p50) of the `secs` column of `durations`, linearly interpolated
/// between the two nearest ranks (see `model::percentile_rank`), all in one SQL statement:
/// `ROW_NUMBER`/`COUNT` windows rank the values, and each percentile is the weighted sum of the
/// values at its two ranks, in hundredths of a second. Returns (count, total seconds, p50, p85).
async fn duration_figures<C: ConnectionTrait>(
    db: &C,
    durations: SelectStatement,
) -> AppResult<(i64, i64, i64, i64)> {
    let mut ranked = Query::select();
    ranked
        .column(Alias::new("secs"))
        .expr_as(
            Expr::cust("ROW_NUMBER() OVER (ORDER BY secs) - 1"),
            Alias::new("rn"),
        )
        .expr_as(Expr::cust("COUNT(*) OVER ()"), Alias::new("n"))
        .from_subquery(durations, Alias::new("durations"))
        .and_where(Expr::col(Alias::new("secs")).is_not_null());
    let percentile = |p: i64| {
        format!(
            "CAST(COALESCE(SUM(CASE \
                WHEN rn = ((n - 1) * {p}) / 100 THEN secs * (100 - ((n - 1) * {p}) % 100) \
                WHEN rn = ((n - 1) * {p}) / 100 + 1 THEN secs * (((n - 1) * {p}) % 100) \
                ELSE 0 END), 0) AS BIGINT)"
        )
    };
    let outer = Query::select()
        .expr_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), Alias::new("n"))
        .expr_as(
            Expr::cust("CAST(COALESCE(SUM(secs), 0) AS BIGINT)"),
            Alias::new("total"),
        )
        .expr_as(Expr::cust(percentile(50)), Alias::new("p50"))
        .expr_as(Expr::cust(percentile(85)), Alias::new("p85"))
        .from_subquery(ranked.to_owned(), Alias::new("ranked"))
        .to_owned();
    let row = db
        .query_one(db.get_database_backend().build(&outer))
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("an aggregate returned no row")))?;
    Ok((
        row.try_get("", "n")?,
        row.try_get("", "total")?,
        row.try_get("", "p50")?,
        row.try_get("", "p85")?,
    ))
}

/// One person's portrait over `window`, if `viewer` may see it (`NOT_FOUND` otherwise, as for
/// a missing person, so a portrait's existence is not revealed).
pub async fn profile_of(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    user_id: Uuid,
    window: ProfileWindow,
) -> AppResult<Profile> {
    let visible = visible_people_query(viewer)?
        .filter(user::Column::Id.eq(user_id))
        .count(db)
        .await?;
    if visible == 0 {
        return Err(AppError::not_found("user"));
    }
    let as_of = Utc::now();
    let (from, to) = (window.from(), window.to());
    let backend = db.get_database_backend();
    let work = tasks::executor_figures(db, user_id, from, to).await?;
    let merit_total = tasks::merit_total(db, user_id, from, to).await?;
    let (cycles, _, cycle_p50, cycle_p85) =
        duration_figures(db, tasks::cycle_seconds(backend, user_id, from, to)).await?;
    let (decisions, decision_total, decision_p50, _) =
        duration_figures(db, approvals::decision_seconds(backend, user_id, from, to)).await?;
    let approvals_pending = approvals::pending_count_for(db, user_id).await?;
    Ok(Profile {
        user_id,
        window,
        tasks_open: work.open_created,
        tasks_done: work.done,
        on_time_rate: on_time_rate(work.on_time, work.done_with_deadline).map(|r| {
            // Four decimals: a rate, not money; enough to tell 2/3 from 0.67.
            (r * 10_000.0).round() / 10_000.0
        }),
        on_time_count: work.on_time,
        done_with_deadline: work.done_with_deadline,
        throughput_per_week: two_decimals(work.done as f64 / window.weeks()),
        cycle_time_hours: Percentiles {
            p50: (cycles > 0).then(|| hours_from_centiseconds(cycle_p50)),
            p85: (cycles > 0).then(|| hours_from_centiseconds(cycle_p85)),
        },
        merit_total,
        cash_output_minor: work.cash_output_minor,
        current_workload: work.open_now,
        approvals_pending,
        approval_decision_hours: DecisionHours {
            avg: (decisions > 0).then(|| hours_from_centiseconds(decision_total * 100 / decisions)),
            p50: (decisions > 0).then(|| hours_from_centiseconds(decision_p50)),
        },
        as_of,
    })
}
