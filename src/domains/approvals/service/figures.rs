//! One person's work as an approver, aggregated in SQL for their portrait (`profiles`).

use chrono::{DateTime, Utc};
use entities::{approval_assignment, approval_decision, approval_instance};
use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::domains::approvals::model::InstanceStatus;
use crate::error::AppResult;
use crate::platform::db::{least, seconds_between};

use super::delegators_of;

/// How many approvals wait on `user_id` now: the same rule as `pending_for` (the current step
/// has an assignment of the person, or of someone who delegates to them now, without that
/// assignee's decision at the step), counted in SQL.
pub async fn pending_count_for<C: ConnectionTrait>(db: &C, user_id: Uuid) -> AppResult<u64> {
    let mut people = vec![user_id];
    people.extend(delegators_of(db, user_id, Utc::now()).await?);
    let waiting = Query::select()
        .expr(Expr::val(1))
        .from_as(approval_assignment::Entity, Alias::new("waiting"))
        .and_where(
            Expr::col((
                Alias::new("waiting"),
                approval_assignment::Column::InstanceId,
            ))
            .equals((approval_instance::Entity, approval_instance::Column::Id)),
        )
        .and_where(
            Expr::col((
                Alias::new("waiting"),
                approval_assignment::Column::StepIndex,
            ))
            .equals((
                approval_instance::Entity,
                approval_instance::Column::CurrentIndex,
            )),
        )
        .and_where(
            Expr::col((Alias::new("waiting"), approval_assignment::Column::UserId)).is_in(people),
        )
        .and_where(Expr::exists(decision_by_assignee()).not())
        .to_owned();
    Ok(approval_instance::Entity::find()
        .filter(approval_instance::Column::Status.eq(InstanceStatus::Pending.as_str()))
        .filter(Expr::exists(waiting))
        .count(db)
        .await?)
}

fn decision_by_assignee() -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from_as(approval_decision::Entity, Alias::new("done"))
        .and_where(
            Expr::col((Alias::new("done"), approval_decision::Column::InstanceId)).equals((
                Alias::new("waiting"),
                approval_assignment::Column::InstanceId,
            )),
        )
        .and_where(
            Expr::col((Alias::new("done"), approval_decision::Column::StepIndex)).equals((
                Alias::new("waiting"),
                approval_assignment::Column::StepIndex,
            )),
        )
        .and_where(
            Expr::col((
                Alias::new("done"),
                approval_decision::Column::AccountableUserId,
            ))
            .equals((Alias::new("waiting"), approval_assignment::Column::UserId)),
        )
        .to_owned()
}

/// A select of one column `secs`: for each decision counted for `user_id` (as the accountable
/// approver, whoever clicked) in `[from, to)`, the seconds from the moment the step was theirs
/// to decide to the decision. That moment is the later of when their step became current (the
/// approval's start for the first step, else the last decision of the step before) and when
/// they were assigned to it; both are recorded once and never change.
pub fn decision_seconds(
    backend: sea_orm::DbBackend,
    user_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> SelectStatement {
    let step_start = "CASE WHEN approval_decisions.step_index = 0 \
        THEN (SELECT started.started_at FROM approval_instances started \
              WHERE started.id = approval_decisions.instance_id) \
        ELSE (SELECT MAX(previous.decided_at) FROM approval_decisions previous \
              WHERE previous.instance_id = approval_decisions.instance_id \
              AND previous.step_index = approval_decisions.step_index - 1) END";
    let assigned = "(SELECT MIN(assigned.created_at) FROM approval_assignments assigned \
        WHERE assigned.instance_id = approval_decisions.instance_id \
        AND assigned.step_index = approval_decisions.step_index \
        AND assigned.user_id = approval_decisions.accountable_user_id)";
    let since_step = seconds_between(backend, "approval_decisions.decided_at", step_start);
    let since_assigned = seconds_between(backend, "approval_decisions.decided_at", assigned);
    // Either may be unknown; PostgreSQL's LEAST skips a NULL where SQLite's MIN returns it, so
    // each side falls back to the other and both backends agree.
    let secs = least(
        backend,
        &format!("COALESCE({since_step}, {since_assigned})"),
        &format!("COALESCE({since_assigned}, {since_step})"),
    );
    Query::select()
        .expr_as(Expr::cust(secs), Alias::new("secs"))
        .from(approval_decision::Entity)
        .and_where(approval_decision::Column::AccountableUserId.eq(user_id))
        .and_where(approval_decision::Column::DecidedAt.gte(from))
        .and_where(approval_decision::Column::DecidedAt.lt(to))
        .to_owned()
}
