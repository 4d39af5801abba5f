//! `approval_stats`: one unit per approver assigned on a step that started, grouped in SQL.

use chrono::Utc;
use entities::{approval_assignment, approval_decision, approval_instance, approval_step};
use sea_orm::sea_query::{Alias, Expr, JoinType, Query, SelectStatement};
use sea_orm::{Condition, ConnectionTrait, DbBackend, QueryResult};

use super::tasks::too_many_groups;
use super::{month, percentile_columns, ranked_and_grouped, read_percentiles, secs, sum};
use crate::auth::{AppScope, Viewer};
use crate::domains::approvals::model::InstanceStatus;
use crate::domains::approvals::service::visible_instances;
use crate::domains::reports::model::{
    parse_dimensions, ApprovalDimension, ApprovalKey, ApprovalStats, ApprovalStatsQuery,
    ApprovalStatsRow, DecisionTime, Window,
};
use crate::error::AppResult;

/// The viewer's approval statistics over the approvals `approval(id)` would show them.
pub async fn approval_stats<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    query: ApprovalStatsQuery,
) -> AppResult<ApprovalStats> {
    let me = viewer.user()?;
    let group_by = parse_dimensions(&query.group_by)?;
    let window = Window::parse(query.window.from, query.window.to)?;
    // An app reads approvals only through APPROVALS_READ, as on every approval field.
    let visible = if me.allows(AppScope::ApprovalsRead) {
        visible_instances(db, viewer).await?
    } else {
        Condition::all().add(Expr::cust("1 = 0"))
    };
    let now = Utc::now();
    let rows = grouped(db, visible.clone(), &group_by, window, now.timestamp()).await?;
    let total = grouped(db, visible, &[], window, now.timestamp())
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    Ok(ApprovalStats {
        rows,
        total,
        as_of: now,
    })
}

fn key_alias(dimension: ApprovalDimension) -> &'static str {
    match dimension {
        ApprovalDimension::Flow => "k_flow",
        ApprovalDimension::Step => "k_step",
        ApprovalDimension::Approver => "k_approver",
        ApprovalDimension::SubjectKind => "k_subject_kind",
        ApprovalDimension::Month => "k_month",
    }
}

/// The flow position of the assignment's step, from the instance's `step_positions` array.
fn position(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "CAST(approval_instances.step_positions ->> approval_assignments.step_index AS INTEGER)"
        }
        _ => {
            "json_extract(approval_instances.step_positions, \
             '$[' || approval_assignments.step_index || ']')"
        }
    }
}

/// Each assignment with its step's start (null for a step the approval never reached), its
/// approver's decision and the step's SLA. A step's start is the instance's start for the
/// first, `step_started_at` for the current, else the decision that closed the step before.
fn assignments(backend: DbBackend, visible: Condition) -> SelectStatement {
    let pending = InstanceStatus::Pending.as_str();
    let mut select = Query::select();
    select
        .from(approval_assignment::Entity)
        .inner_join(
            approval_instance::Entity,
            Expr::col((approval_instance::Entity, approval_instance::Column::Id)).equals((
                approval_assignment::Entity,
                approval_assignment::Column::InstanceId,
            )),
        )
        .join(
            JoinType::LeftJoin,
            approval_decision::Entity,
            Expr::cust(
                "approval_decisions.instance_id = approval_assignments.instance_id \
                 AND approval_decisions.step_index = approval_assignments.step_index \
                 AND approval_decisions.accountable_user_id = approval_assignments.user_id",
            ),
        )
        .join(
            JoinType::LeftJoin,
            approval_step::Entity,
            Expr::cust(format!(
                "approval_steps.flow_id = approval_instances.flow_id \
                 AND approval_steps.version = approval_instances.flow_version \
                 AND approval_steps.position = {}",
                position(backend)
            )),
        );
    let columns = [
        ("k_flow", "approval_instances.flow_id".to_owned()),
        (
            "k_step",
            "COALESCE(approval_steps.name, approval_decisions.step_name)".into(),
        ),
        ("k_approver", "approval_assignments.user_id".into()),
        ("k_subject_kind", "approval_instances.subject_type".into()),
        (
            "step_start",
            "CASE WHEN approval_assignments.step_index > approval_instances.current_index THEN NULL \
             WHEN approval_assignments.step_index = approval_instances.current_index \
               THEN approval_instances.step_started_at \
             WHEN approval_assignments.step_index = 0 THEN approval_instances.started_at \
             ELSE (SELECT MAX(d2.decided_at) FROM approval_decisions d2 \
               WHERE d2.instance_id = approval_assignments.instance_id \
               AND d2.step_index = approval_assignments.step_index - 1) END"
                .into(),
        ),
        ("decided_at", "approval_decisions.decided_at".into()),
        (
            "decided",
            "CASE WHEN approval_decisions.id IS NULL THEN 0 ELSE 1 END".into(),
        ),
        (
            "approved",
            "CASE WHEN approval_decisions.id IS NOT NULL AND approval_decisions.approve \
             THEN 1 ELSE 0 END"
                .into(),
        ),
        (
            "rejected",
            "CASE WHEN approval_decisions.id IS NOT NULL AND NOT approval_decisions.approve \
             THEN 1 ELSE 0 END"
                .into(),
        ),
        (
            "pending",
            format!(
                "CASE WHEN approval_decisions.id IS NULL \
                 AND approval_instances.status = '{pending}' \
                 AND approval_assignments.step_index = approval_instances.current_index \
                 THEN 1 ELSE 0 END"
            ),
        ),
        ("sla_s", "approval_steps.sla_hours * 3600".into()),
    ];
    for (alias, expr) in columns {
        select.expr_as(Expr::cust(expr), Alias::new(alias));
    }
    select.cond_where(visible);
    select.to_owned()
}

fn grouped_statement(
    backend: DbBackend,
    visible: Condition,
    dimensions: &[ApprovalDimension],
    window: Window,
    now_secs: i64,
) -> SelectStatement {
    let start = secs(backend, "step_start");
    let decided = secs(backend, "decided_at");
    let mut units = Query::select();
    units
        .from_subquery(assignments(backend, visible), Alias::new("a"))
        .columns(["k_flow", "k_step", "k_approver", "k_subject_kind"].map(Alias::new))
        .expr_as(
            Expr::cust(month(backend, "step_start")),
            Alias::new("k_month"),
        )
        .columns(["approved", "rejected", "pending"].map(Alias::new))
        .expr_as(
            Expr::cust(format!(
                "CASE WHEN decided = 1 THEN {decided} - {start} END"
            )),
            Alias::new("dec_s"),
        )
        .expr_as(
            // `now_secs` is the server's clock, an integer: nothing of the caller's is spliced.
            Expr::cust(format!(
                "CASE WHEN sla_s IS NOT NULL AND ((decided = 1 AND {decided} - {start} > sla_s) \
                 OR (pending = 1 AND {now_secs} - {start} > sla_s)) THEN 1 ELSE 0 END"
            )),
            Alias::new("breach"),
        )
        .and_where(Expr::col(Alias::new("step_start")).is_not_null());
    if let Some(from) = window.from {
        units.and_where(Expr::col(Alias::new("step_start")).gte(from));
    }
    if let Some(to) = window.to {
        units.and_where(Expr::col(Alias::new("step_start")).lt(to));
    }
    let keys: Vec<String> = dimensions
        .iter()
        .map(|d| key_alias(*d).to_owned())
        .collect();
    let mut outer = ranked_and_grouped(units.to_owned(), &["dec_s"], &keys);
    for measure in ["approved", "rejected", "pending"] {
        outer.expr_as(Expr::cust(sum(measure)), Alias::new(measure));
    }
    outer.expr_as(Expr::cust(sum("breach")), Alias::new("sla_breaches"));
    outer.expr_as(Expr::cust(sum("dec_s")), Alias::new("dec_sum"));
    for (alias, expr) in percentile_columns("dec_s") {
        outer.expr_as(Expr::cust(expr), Alias::new(alias));
    }
    outer.to_owned()
}

async fn grouped<C: ConnectionTrait>(
    db: &C,
    visible: Condition,
    dimensions: &[ApprovalDimension],
    window: Window,
    now_secs: i64,
) -> AppResult<Vec<ApprovalStatsRow>> {
    let backend = db.get_database_backend();
    let statement = grouped_statement(backend, visible, dimensions, window, now_secs);
    let rows = db.query_all(super::capped(backend, &statement)).await?;
    too_many_groups(rows.len())?;
    let mut out = rows
        .iter()
        .map(|row| read_row(row, dimensions))
        .collect::<AppResult<Vec<_>>>()?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn read_row(row: &QueryResult, dimensions: &[ApprovalDimension]) -> AppResult<ApprovalStatsRow> {
    let mut key = ApprovalKey::default();
    for dimension in dimensions {
        let alias = key_alias(*dimension);
        match dimension {
            ApprovalDimension::Flow => key.flow = row.try_get("", alias)?,
            ApprovalDimension::Step => key.step = row.try_get("", alias)?,
            ApprovalDimension::Approver => key.approver = row.try_get("", alias)?,
            ApprovalDimension::SubjectKind => key.subject_kind = row.try_get("", alias)?,
            ApprovalDimension::Month => key.month = row.try_get("", alias)?,
        }
    }
    let percentiles = read_percentiles(row, "dec_s")?;
    let decided: Option<i64> = row.try_get("", "dec_s_cnt")?;
    let decided = decided.unwrap_or(0);
    let dec_sum: i64 = row.try_get("", "dec_sum")?;
    Ok(ApprovalStatsRow {
        key,
        count: row.try_get("", "count")?,
        approved: row.try_get("", "approved")?,
        rejected: row.try_get("", "rejected")?,
        pending: row.try_get("", "pending")?,
        sla_breaches: row.try_get("", "sla_breaches")?,
        decision_hours: DecisionTime {
            avg: (decided > 0)
                .then(|| crate::domains::reports::model::hours(dec_sum as f64 / decided as f64)),
            p50: percentiles.p50,
            p85: percentiles.p85,
        },
    })
}
