//! Approval statistics over a scripted history whose answers are known.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use super::SUBMIT;
use crate::helpers::Backend;
use crate::on_both_backends;
use crate::tasks::{company, Company};

on_both_backends!(approval_stats_give_known_decision_times);

/// Sets an approval's history: its start, its current step's start, and when each decision
/// (in decision order) was taken, as hours after `start`.
async fn script(
    c: &Company,
    task: &str,
    start: chrono::DateTime<Utc>,
    decided_hours: &[i64],
) -> anyhow::Result<()> {
    use entities::{approval_decision as decision, approval_instance as instance};
    use sea_orm::QueryOrder;
    let db = &c.app.state.db.conn;
    let id = uuid::Uuid::parse_str(&c.approval_of(task).await?)?;
    let decisions = decision::Entity::find()
        .filter(decision::Column::InstanceId.eq(id))
        .order_by_asc(decision::Column::StepIndex)
        .all(db)
        .await?;
    assert_eq!(decisions.len(), decided_hours.len());
    let one = instance::Entity::find_by_id(id).one(db).await?;
    let current = one.map(|i| i.current_index).unwrap_or_default();
    // The current step started with the last decision of the steps before it.
    let mut current_start = start;
    for (d, hours) in decisions.iter().zip(decided_hours) {
        let at = start + Duration::hours(*hours);
        if d.step_index < current {
            current_start = current_start.max(at);
        }
        decision::Entity::update_many()
            .col_expr(decision::Column::DecidedAt, Expr::value(at))
            .filter(decision::Column::Id.eq(d.id))
            .exec(db)
            .await?;
    }
    instance::Entity::update_many()
        .col_expr(instance::Column::StartedAt, Expr::value(start))
        .col_expr(instance::Column::StepStartedAt, Expr::value(current_start))
        .filter(instance::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

async fn approval_stats_give_known_decision_times(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let long_ago = Utc::now() - Duration::hours(100);
    // A: approved 2h then 10h. B: 4h, then rejected after 50h (over the head's 48h SLA).
    // C: 30h (over the reviewer's 24h), the head pending for 70h. D: the reviewer pending 1h.
    let a = c.approved(json!({})).await?;
    let b = c.draft(&c.category, json!({})).await?;
    let cc = c.draft(&c.category, json!({})).await?;
    let d = c.draft(&c.category, json!({})).await?;
    for id in [&b, &cc, &d] {
        c.ok_as(&c.initiator, SUBMIT, json!({ "id": id })).await?;
    }
    for id in [&b, &cc] {
        let approval = c.approval_of(id).await?;
        c.decide(&c.reviewer, &approval, true, None).await?;
    }
    let approval = c.approval_of(&b).await?;
    c.decide(&c.head, &approval, false, Some("no budget"))
        .await?;
    script(&c, &a, long_ago, &[2, 12]).await?;
    script(&c, &b, long_ago, &[4, 54]).await?;
    script(&c, &cc, long_ago, &[30]).await?;
    script(&c, &d, Utc::now() - Duration::hours(1), &[]).await?;

    let stats = c
        .ok_as(
            &c.admin,
            "{ approvalStats(groupBy: [FLOW, STEP]) { rows { flow { name } step count approved rejected pending slaBreaches decisionHours { avg p50 p85 } } total { count pending } } }",
            json!({}),
        )
        .await?;
    let rows = stats["approvalStats"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let step = |name: &str| {
        rows.iter()
            .find(|r| r["step"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let close = |v: &Value, want: f64| v.as_f64().is_some_and(|x| (x - want).abs() < 1e-6);
    let reviewer = step("Reviewer");
    assert_eq!(reviewer["flow"]["name"], "Two-step review");
    assert_eq!(
        [
            &reviewer["count"],
            &reviewer["approved"],
            &reviewer["rejected"],
            &reviewer["pending"],
            &reviewer["slaBreaches"]
        ],
        [&json!(4), &json!(3), &json!(0), &json!(1), &json!(1)],
        "{reviewer}"
    );
    let hours = &reviewer["decisionHours"];
    assert!(
        close(&hours["avg"], 12.0) && close(&hours["p50"], 4.0) && close(&hours["p85"], 22.2),
        "{hours}"
    );
    let head = step("Head");
    assert_eq!(
        [
            &head["count"],
            &head["approved"],
            &head["rejected"],
            &head["pending"],
            &head["slaBreaches"]
        ],
        [&json!(3), &json!(1), &json!(1), &json!(1), &json!(2)],
        "{head}"
    );
    let hours = &head["decisionHours"];
    assert!(
        close(&hours["avg"], 30.0) && close(&hours["p50"], 30.0) && close(&hours["p85"], 44.0),
        "{hours}"
    );
    assert_eq!(stats["approvalStats"]["total"]["count"], 7);
    assert_eq!(stats["approvalStats"]["total"]["pending"], 2);

    // The stranger is on no approval and holds no approval.read: nothing is counted.
    let none = c
        .ok_as(
            &c.stranger,
            "{ approvalStats(groupBy: []) { total { count } } }",
            json!({}),
        )
        .await?;
    assert_eq!(none["approvalStats"]["total"]["count"], 0);
    Ok(())
}
