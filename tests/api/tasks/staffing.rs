//! An approved task keeps what was approved, but its executors, confirmer and deadline can
//! change: by the initiator or a `task.configure` holder over its department, logged, and told
//! to the people concerned.

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;
use crate::tasks::person;

on_both_backends!(
    approved_tasks_change_hands_and_deadlines,
    people_who_approved_stay_on_the_task,
);

const UPDATE: &str = "mutation($id: ID!, $v: Int!, $i: UpdateTaskInput!) {
    updateTask(id: $id, version: $v, input: $i) {
        version reviewStatus deadline executors { id } confirmer { id } } }";

const INBOX: &str = "{ notifications(first: 50) { edges { node { kind subjectId } } } }";

fn kinds_for(inbox: &Value, task: &str) -> Vec<String> {
    inbox["notifications"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["node"]["subjectId"] == task)
        .filter_map(|e| e["node"]["kind"].as_str().map(str::to_owned))
        .collect()
}

async fn approved_tasks_change_hands_and_deadlines(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.approved(json!({})).await?;
    let version = |data: &Value| data["updateTask"]["version"].as_i64().unwrap_or(0);
    let current = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await?;
    let v1 = current["task"]["version"].as_i64().unwrap_or(0);

    // What was approved stays: a title change is refused and changes nothing.
    let renamed = c
        .as_(
            &c.initiator,
            UPDATE,
            json!({ "id": id, "v": v1, "i": { "title": "Something else" } }),
        )
        .await?;
    assert_eq!(error_code(&renamed), Some("CONFLICT"), "{renamed}");
    // Not the initiator, and no task.configure: refused.
    let meddling = c
        .as_(
            &c.executor,
            UPDATE,
            json!({ "id": id, "v": v1, "i": { "executorIds": [c.executor.user_id] } }),
        )
        .await?;
    assert_eq!(error_code(&meddling), Some("FORBIDDEN"), "{meddling}");

    // The initiator hands the task to the second executor, with a new confirmer.
    let deputy = person(&c.app, &c.north).await?;
    let handed = c
        .ok_as(
            &c.initiator,
            UPDATE,
            json!({ "id": id, "v": v1, "i": {
                "executorIds": [c.second_executor.user_id],
                "confirmerId": deputy.user_id } }),
        )
        .await?;
    assert_eq!(handed["updateTask"]["reviewStatus"], "APPROVED");
    assert_eq!(
        handed["updateTask"]["executors"],
        json!([{ "id": c.second_executor.user_id }])
    );
    assert_eq!(
        handed["updateTask"]["confirmer"]["id"],
        deputy.user_id.as_str()
    );
    assert!(
        kinds_for(&c.ok_as(&c.second_executor, INBOX, json!({})).await?, &id)
            .contains(&"ASSIGNED".to_owned())
    );
    assert!(
        kinds_for(&c.ok_as(&c.executor, INBOX, json!({})).await?, &id)
            .contains(&"UNASSIGNED".to_owned())
    );
    assert!(
        kinds_for(&c.ok_as(&deputy, INBOX, json!({})).await?, &id).contains(&"ASSIGNED".to_owned())
    );
    assert!(
        kinds_for(&c.ok_as(&c.confirmer, INBOX, json!({})).await?, &id)
            .contains(&"UNASSIGNED".to_owned())
    );

    // A task.configure holder over North moves the deadline; the executor hears of it.
    let admin = Some(c.admin.access.as_str());
    let planner = person(&c.app, &c.north).await?;
    let role = str_at(
        &c.app
            .gql_ok(
                admin,
                "mutation { createRole(input: { name: \"Planner\", permissions: [\"task.configure\"] }) { id } }",
                json!({}),
            )
            .await?,
        "/createRole/id",
    )?;
    c.app
        .gql_ok(
            admin,
            "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
            json!({ "u": planner.user_id, "r": role, "d": c.north }),
        )
        .await?;
    let moved = c
        .ok_as(
            &planner,
            UPDATE,
            json!({ "id": id, "v": version(&handed), "i": { "deadline": "2031-03-01T09:00:00Z" } }),
        )
        .await?;
    assert_eq!(moved["updateTask"]["deadline"], "2031-03-01T09:00:00+00:00");
    assert!(
        kinds_for(&c.ok_as(&c.second_executor, INBOX, json!({})).await?, &id)
            .contains(&"DEADLINE_CHANGED".to_owned())
    );
    // The same role over another department does not reach this task: it is not even seen.
    let sales = c
        .app
        .gql_ok(admin, "{ departments { id name } }", json!({}))
        .await?;
    let other = sales["departments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == "Elsewhere")
        .and_then(|d| d["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("the Elsewhere department"))?
        .to_owned();
    let elsewhere = person(&c.app, &other).await?;
    c.app
        .gql_ok(
            admin,
            "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
            json!({ "u": elsewhere.user_id, "r": role, "d": other }),
        )
        .await?;
    let out_of_reach = c
        .as_(
            &elsewhere,
            UPDATE,
            json!({ "id": id, "v": version(&moved), "i": { "deadline": "2032-01-01T09:00:00Z" } }),
        )
        .await?;
    assert_eq!(
        error_code(&out_of_reach),
        Some("NOT_FOUND"),
        "{out_of_reach}"
    );

    // Every change is in the activity log, with who made it.
    let log = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { deadline activity { nodes { field actor { id } } } } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(
        log["task"]["deadline"], "2031-03-01T09:00:00+00:00",
        "unchanged by the refusal"
    );
    let entries = log["task"]["activity"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by = |field: &str| {
        entries
            .iter()
            .filter(|e| e["field"] == field)
            .filter_map(|e| e["actor"]["id"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        by("executorIds"),
        std::slice::from_ref(&c.initiator.user_id)
    );
    assert_eq!(
        by("confirmerId"),
        std::slice::from_ref(&c.initiator.user_id)
    );
    assert_eq!(by("deadline"), std::slice::from_ref(&planner.user_id));
    assert!(by("title").is_empty());
    Ok(())
}

/// A flow whose step is the executor accepting: the executor approved the task, so another
/// cannot take their place afterwards, though the deadline may still move.
async fn people_who_approved_stay_on_the_task(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let admin = Some(c.admin.access.as_str());
    let flow = str_at(
        &c.app
            .gql_ok(
                admin,
                "mutation { createApprovalFlow(input: { name: \"Executor accepts\", steps: [
                    { name: \"Accept\", approverField: \"executorIds\" }] }) { id } }",
                json!({}),
            )
            .await?,
        "/createApprovalFlow/id",
    )?;
    let category = str_at(
        &c.app
            .gql_ok(
                admin,
                "mutation($f: ID!) { createTaskCategory(input: { code: \"ACCEPTED\", name: \"Accepted\", approvalFlowId: $f }) { id } }",
                json!({ "f": flow }),
            )
            .await?,
        "/createTaskCategory/id",
    )?;
    let id = c.draft(&category, json!({})).await?;
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { submitTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await?;
    let approval = c.approval_of(&id).await?;
    let decided = c.decide(&c.executor, &approval, true, None).await?;
    assert_eq!(
        decided["data"]["decideApproval"]["status"], "APPROVED",
        "{decided}"
    );
    let version = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await?["task"]["version"]
        .clone();
    let swapped = c
        .as_(
            &c.initiator,
            UPDATE,
            json!({ "id": id, "v": version, "i": { "executorIds": [c.second_executor.user_id] } }),
        )
        .await?;
    assert_eq!(error_code(&swapped), Some("CONFLICT"), "{swapped}");
    let moved = c
        .ok_as(
            &c.initiator,
            UPDATE,
            json!({ "id": id, "v": version, "i": { "deadline": "2031-05-01T09:00:00Z" } }),
        )
        .await?;
    assert_eq!(
        moved["updateTask"]["executors"],
        json!([{ "id": c.executor.user_id }])
    );
    Ok(())
}
