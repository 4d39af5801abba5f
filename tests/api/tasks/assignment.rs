//! Automatic assignment: round robin stays even under concurrency, least loaded picks the
//! idlest.

use serde_json::json;

use super::CREATE_TASK;
use crate::helpers::{str_at, Backend};
use crate::on_both_backends;

on_both_backends!(
    round_robin_assignment_stays_even_under_concurrency,
    least_loaded_assignment_picks_the_idlest,
);

async fn round_robin_assignment_stays_even_under_concurrency(
    backend: Backend,
) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let category = c
        .ok_as(
            &c.admin,
            "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }",
            json!({ "i": { "code": "RR", "name": "Round robin", "assignmentStrategy": "ROUND_ROBIN", "assignmentPool": { "departmentId": c.north } } }),
        )
        .await?;
    let category = str_at(&category, "/createTaskCategory/id")?;
    // North's members: initiator, executor, second executor, confirmer.
    let creations = (0..24).map(|i| {
        let input = json!({ "i": { "categoryId": category, "title": format!("rr {i}") } });
        c.ok_as(&c.initiator, CREATE_TASK, input)
    });
    futures_util::future::try_join_all(creations).await?;
    let mut counts = std::collections::HashMap::new();
    let list = c
        .ok_as(&c.admin, "query($c: ID!) { tasks(first: 100, filter: { categoryId: $c }) { totalCount edges { node { executors { id } } } } }", json!({ "c": category }))
        .await?;
    assert_eq!(list["tasks"]["totalCount"], 24);
    for edge in list["tasks"]["edges"].as_array().into_iter().flatten() {
        let executor = edge["node"]["executors"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *counts.entry(executor).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(counts.values().all(|n| *n == 6), "uneven: {counts:?}");
    Ok(())
}

async fn least_loaded_assignment_picks_the_idlest(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    // Give the executor two open tasks and the confirmer one.
    for who in [&c.executor, &c.executor, &c.confirmer, &c.second_executor] {
        c.draft(
            &c.quick_category,
            json!({ "executorIds": [who.user_id], "confirmerId": c.initiator.user_id }),
        )
        .await?;
    }
    let category = c
        .ok_as(
            &c.admin,
            "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }",
            json!({ "i": { "code": "LL", "name": "Least loaded", "assignmentStrategy": "LEAST_LOADED", "assignmentPool": { "departmentId": c.north } } }),
        )
        .await?;
    let category = str_at(&category, "/createTaskCategory/id")?;
    let task = c
        .ok_as(
            &c.initiator,
            "mutation($i: CreateTaskInput!) { createTask(input: $i) { executors { id } } }",
            json!({ "i": { "categoryId": category, "title": "ll" } }),
        )
        .await?;
    assert_eq!(
        task["createTask"]["executors"][0]["id"],
        c.initiator.user_id.as_str(),
        "the initiator has no open task: {task}"
    );
    Ok(())
}
