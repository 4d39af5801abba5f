//! Progress reported by executors and confirmed by the confirmer, the merit it awards and the
//! cash output it posts.

use serde_json::json;

use crate::helpers::{error_code, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(progress_is_reported_by_executors_and_confirmed_by_the_confirmer,);

async fn progress_is_reported_by_executors_and_confirmed_by_the_confirmer(
    backend: Backend,
) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let team = json!({ "executorIds": [c.executor.user_id, c.second_executor.user_id, c.observer.user_id], "isTeamTask": true, "hasCashOutput": true, "cashOutputValue": "1500.50" });
    let draft = c.draft(&c.category, team.clone()).await?;
    let report = "mutation($id: ID!, $p: Int!) { reportTaskProgress(taskId: $id, progress: $p, note: \"on it\") { progress reportedProgress status } }";
    let too_early = c
        .as_(&c.executor, report, json!({ "id": draft, "p": 10 }))
        .await?;
    assert_eq!(error_code(&too_early), Some("CONFLICT"));

    let id = c.approved(team).await?;
    let not_executor = c
        .as_(&c.initiator, report, json!({ "id": id, "p": 10 }))
        .await?;
    assert_eq!(error_code(&not_executor), Some("FORBIDDEN"));
    for bad in [-1, 101] {
        let body = c
            .as_(&c.executor, report, json!({ "id": id, "p": bad }))
            .await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    }
    let reported = c
        .ok_as(&c.executor, report, json!({ "id": id, "p": 40 }))
        .await?;
    assert_eq!(reported["reportTaskProgress"]["reportedProgress"], 40);
    assert_eq!(reported["reportTaskProgress"]["progress"], 0);
    assert_eq!(reported["reportTaskProgress"]["status"], "IN_PROGRESS");

    let confirm = "mutation($id: ID!) { confirmTaskProgress(taskId: $id, note: \"ok\") { progress reportedProgress status completedAt } }";
    let wrong = c.as_(&c.executor, confirm, json!({ "id": id })).await?;
    assert_eq!(error_code(&wrong), Some("FORBIDDEN"));
    let confirmed = c.ok_as(&c.confirmer, confirm, json!({ "id": id })).await?;
    assert_eq!(confirmed["confirmTaskProgress"]["progress"], 40);
    let nothing = c.as_(&c.confirmer, confirm, json!({ "id": id })).await?;
    assert_eq!(error_code(&nothing), Some("CONFLICT"));

    c.ok_as(&c.second_executor, report, json!({ "id": id, "p": 100 }))
        .await?;
    let done = c.ok_as(&c.confirmer, confirm, json!({ "id": id })).await?;
    assert_eq!(done["confirmTaskProgress"]["status"], "DONE");
    assert!(done["confirmTaskProgress"]["completedAt"].is_string());

    // 10 merit points over three executors: 4, 3, 3 in executor order.
    let merit = c
        .ok_as(&c.initiator, "query($id: ID!) { task(id: $id) { meritAwards { points user { id } } cashOutputValue } }", json!({ "id": id }))
        .await?;
    let awards: Vec<(String, i64)> = merit["task"]["meritAwards"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["user"]["id"].as_str().unwrap_or_default().to_owned(),
                a["points"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(awards.iter().map(|(_, p)| p).sum::<i64>(), 10);
    assert!(
        awards.contains(&(c.executor.user_id.clone(), 4)),
        "{awards:?}"
    );
    assert_eq!(merit["task"]["cashOutputValue"], "1500.50");

    // The cash output is recorded once; finishing again is refused.
    let again = c
        .as_(&c.second_executor, report, json!({ "id": id, "p": 100 }))
        .await?;
    assert_eq!(error_code(&again), Some("CONFLICT"));
    let outputs = output_postings(&c.app, &id).await?;
    assert_eq!(outputs.len(), 1, "posted once: {outputs:?}");
    assert_eq!(outputs[0].0, 150_050, "exact minor units");
    assert_eq!(
        outputs[0].1.map(|d| d.to_string()),
        Some(c.north.clone()),
        "revenue for the task's department"
    );
    let pnl = c
        .ok_as(&c.admin, "{ profitAndLoss(from: \"2000-01-01\", to: \"2100-01-01\", groupBy: [DEPARTMENT]) { department { id } revenue } }", json!({}))
        .await?;
    assert_eq!(pnl["profitAndLoss"][0]["revenue"], "1500.50", "{pnl}");
    assert_eq!(pnl["profitAndLoss"].as_array().map(Vec::len), Some(1));
    Ok(())
}

/// The task's cash output postings: (amount, cost centre, account code) per revenue line.
async fn output_postings(
    app: &TestApp,
    task_id: &str,
) -> anyhow::Result<Vec<(i64, Option<uuid::Uuid>)>> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let task = uuid::Uuid::parse_str(task_id)?;
    Ok(entities::journal_line::Entity::find()
        .filter(entities::journal_line::Column::TaskId.eq(task))
        .filter(entities::journal_line::Column::CreditMinor.gt(0))
        .all(&app.state.db.conn)
        .await?
        .into_iter()
        .map(|l| (l.credit_minor, l.cost_center_id))
        .collect())
}
