//! One person's work as an executor, aggregated in SQL for their portrait (`profiles`).

use chrono::{DateTime, Utc};
use entities::{merit_record, task, task_executor};
use sea_orm::sea_query::{Alias, Expr, Func, Query, SelectStatement, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::domains::tasks::model::WorkStatus;
use crate::error::AppResult;
use crate::platform::db::seconds_between;

/// Counts over the tasks a person executes; "in the window" is `from <= t < to`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutorFigures {
    /// Open (`OPEN`/`IN_PROGRESS`) now, created in the window.
    pub open_created: i64,
    /// Completed in the window (by `completed_at`).
    pub done: i64,
    /// Of those, with a deadline.
    pub done_with_deadline: i64,
    /// Of those, completed at or before the deadline.
    pub on_time: i64,
    /// Sum of the cash output of the tasks completed in the window, each whole.
    pub cash_output_minor: i64,
    /// Open now, whenever created.
    pub open_now: i64,
}

fn executed_by(user_id: Uuid) -> SelectStatement {
    Query::select()
        .column(task_executor::Column::TaskId)
        .from(task_executor::Entity)
        .and_where(task_executor::Column::UserId.eq(user_id))
        .to_owned()
}

fn count_where(condition: Condition) -> SimpleExpr {
    let case: SimpleExpr = Expr::case(condition, 1).finally(0).into();
    Func::cast_as(
        Func::coalesce([Func::sum(case).into(), Expr::val(0).into()]),
        Alias::new("BIGINT"),
    )
    .into()
}

fn done_in(from: DateTime<Utc>, to: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(task::Column::CompletedAt.gte(from))
        .add(task::Column::CompletedAt.lt(to))
}

fn open() -> Condition {
    Condition::all().add(
        task::Column::Status.is_in([WorkStatus::Open.as_str(), WorkStatus::InProgress.as_str()]),
    )
}

pub async fn executor_figures<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<ExecutorFigures> {
    let with_deadline = done_in(from, to).add(task::Column::Deadline.is_not_null());
    let on_time = with_deadline.clone().add(
        Expr::col((task::Entity, task::Column::CompletedAt))
            .lte(Expr::col((task::Entity, task::Column::Deadline))),
    );
    let cash: SimpleExpr = Expr::case(
        done_in(from, to),
        Func::coalesce([
            Expr::col((task::Entity, task::Column::CashOutputMinor)).into(),
            Expr::val(0).into(),
        ]),
    )
    .finally(0)
    .into();
    let cash = Func::cast_as(
        Func::coalesce([Func::sum(cash).into(), Expr::val(0).into()]),
        Alias::new("BIGINT"),
    );
    let open_created = open()
        .add(task::Column::CreatedAt.gte(from))
        .add(task::Column::CreatedAt.lt(to));
    let row: Option<(i64, i64, i64, i64, i64, i64)> = task::Entity::find()
        .select_only()
        .expr_as(count_where(open_created), "open_created")
        .expr_as(count_where(done_in(from, to)), "done")
        .expr_as(count_where(with_deadline), "done_with_deadline")
        .expr_as(count_where(on_time), "on_time")
        .expr_as(cash, "cash_output_minor")
        .expr_as(count_where(open()), "open_now")
        .filter(task::Column::Id.in_subquery(executed_by(user_id)))
        .into_tuple()
        .one(db)
        .await?;
    Ok(
        row.map_or_else(ExecutorFigures::default, |r| ExecutorFigures {
            open_created: r.0,
            done: r.1,
            done_with_deadline: r.2,
            on_time: r.3,
            cash_output_minor: r.4,
            open_now: r.5,
        }),
    )
}

/// The merit points recorded for the person in the window (records are written once, at
/// completion, and never change).
pub async fn merit_total<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> AppResult<i64> {
    let total: Option<i64> = merit_record::Entity::find()
        .select_only()
        .expr_as(
            Func::cast_as(
                Func::coalesce([
                    Func::sum(Expr::col(merit_record::Column::Points)).into(),
                    Expr::val(0).into(),
                ]),
                Alias::new("BIGINT"),
            ),
            "total",
        )
        .filter(merit_record::Column::UserId.eq(user_id))
        .filter(merit_record::Column::CreatedAt.gte(from))
        .filter(merit_record::Column::CreatedAt.lt(to))
        .into_tuple()
        .one(db)
        .await?;
    Ok(total.unwrap_or(0))
}

/// A select of one column `secs`: for each task the person executes that was completed in the
/// window, the seconds from its approval to its completion. The approval is the task's last
/// activity entry setting `reviewStatus` to `APPROVED` (written when a flow approves it, or at
/// submission when no flow applies); a task created approved (a subtask) counts from creation.
pub fn cycle_seconds(
    backend: sea_orm::DbBackend,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> SelectStatement {
    // Constants only, so the correlated sub-select can be plain SQL inside the expression.
    let approved = r#"SELECT MAX(approval."at") FROM task_activity approval
        WHERE approval.task_id = tasks.id AND approval."field" = 'reviewStatus'
        AND approval.new_value = 'APPROVED'"#;
    let secs = seconds_between(
        backend,
        "tasks.completed_at",
        &format!("COALESCE(({approved}), tasks.created_at)"),
    );
    Query::select()
        .expr_as(Expr::cust(secs), Alias::new("secs"))
        .from(task::Entity)
        .and_where(task::Column::Id.in_subquery(executed_by(user_id)))
        .and_where(task::Column::CompletedAt.gte(from))
        .and_where(task::Column::CompletedAt.lt(to))
        .to_owned()
}
