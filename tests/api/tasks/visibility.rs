//! Who sees a task: invisible tasks do not exist for outsiders; subtasks need an approved
//! parent and its people.

use serde_json::{json, Value};

use super::CREATE_TASK;
use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;

on_both_backends!(
    subtasks_need_an_approved_parent_and_its_people,
    invisible_tasks_do_not_exist,
);

async fn subtasks_need_an_approved_parent_and_its_people(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let sub = |parent: &str| json!({ "i": { "parentId": parent, "title": "Step", "executorIds": [c.second_executor.user_id] } });
    let draft = c.draft(&c.category, json!({})).await?;
    let early = c.as_(&c.initiator, CREATE_TASK, sub(&draft)).await?;
    assert_eq!(error_code(&early), Some("BAD_USER_INPUT"), "{early}");
    assert!(early["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("approved"));

    let parent = c.approved(json!({})).await?;
    let by_initiator = c.ok_as(&c.initiator, CREATE_TASK, sub(&parent)).await?;
    assert_eq!(by_initiator["createTask"]["reviewStatus"], "APPROVED");
    c.ok_as(&c.executor, CREATE_TASK, sub(&parent)).await?;
    let stranger = c.as_(&c.stranger, CREATE_TASK, sub(&parent)).await?;
    assert_eq!(
        error_code(&stranger),
        Some("BAD_USER_INPUT"),
        "a stranger cannot even see the parent: {stranger}"
    );
    let observer = c.as_(&c.observer, CREATE_TASK, sub(&parent)).await?;
    assert_eq!(error_code(&observer), Some("FORBIDDEN"), "{observer}");
    let nested = c
        .as_(
            &c.initiator,
            CREATE_TASK,
            sub(str_at(&by_initiator, "/createTask/id")?.as_str()),
        )
        .await?;
    assert_eq!(error_code(&nested), Some("BAD_USER_INPUT"));

    let subtasks = c
        .ok_as(&c.initiator, "query($id: ID!) { task(id: $id) { subtasks(first: 1) { totalCount edges { node { title parent { id } } } pageInfo { hasNextPage endCursor } } } }", json!({ "id": parent }))
        .await?;
    assert_eq!(subtasks["task"]["subtasks"]["totalCount"], 2);
    assert_eq!(
        subtasks["task"]["subtasks"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        subtasks["task"]["subtasks"]["pageInfo"]["hasNextPage"],
        true
    );
    assert_eq!(
        subtasks["task"]["subtasks"]["edges"][0]["node"]["parent"]["id"],
        parent.as_str()
    );
    let cursor = subtasks["task"]["subtasks"]["pageInfo"]["endCursor"].clone();
    let next = c
        .ok_as(&c.initiator, "query($id: ID!, $a: String) { task(id: $id) { subtasks(first: 1, after: $a) { totalCount edges { node { id } } pageInfo { hasNextPage } } } }", json!({ "id": parent, "a": cursor }))
        .await?;
    assert_eq!(
        next["task"]["subtasks"]["edges"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(next["task"]["subtasks"]["pageInfo"]["hasNextPage"], false);
    Ok(())
}

async fn invisible_tasks_do_not_exist(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.draft(&c.category, json!({})).await?;
    let read = "query($id: ID!) { task(id: $id) { id title } }";
    for who in [
        &c.initiator,
        &c.executor,
        &c.confirmer,
        &c.observer,
        &c.admin,
    ] {
        assert_eq!(
            c.ok_as(who, read, json!({ "id": id })).await?["task"]["id"],
            id.as_str()
        );
    }
    // The head of Sales holds no scoped role and is not on the task (yet): invisible.
    for who in [&c.stranger, &c.head] {
        assert_eq!(
            c.ok_as(who, read, json!({ "id": id })).await?["task"],
            Value::Null
        );
        let comment = c
            .as_(
                who,
                "mutation($id: ID!) { addTaskComment(taskId: $id, body: \"hi\") { id } }",
                json!({ "id": id }),
            )
            .await?;
        assert_eq!(error_code(&comment), Some("NOT_FOUND"));
        let progress = c
            .as_(
                who,
                "mutation($id: ID!) { reportTaskProgress(taskId: $id, progress: 10) { id } }",
                json!({ "id": id }),
            )
            .await?;
        assert_eq!(error_code(&progress), Some("NOT_FOUND"));
        let list = c
            .ok_as(
                who,
                "{ tasks { totalCount edges { node { id } } } }",
                json!({}),
            )
            .await?;
        assert_eq!(list["tasks"]["totalCount"], 0);
    }
    // A missing task answers exactly like an invisible one.
    let missing = uuid::Uuid::now_v7().to_string();
    let ghost = c
        .as_(
            &c.stranger,
            "mutation($id: ID!) { addTaskComment(taskId: $id, body: \"hi\") { id } }",
            json!({ "id": missing }),
        )
        .await?;
    assert_eq!(error_code(&ghost), Some("NOT_FOUND"));

    // Once submitted, the head becomes an approver and can see it.
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { submitTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await?;
    assert_eq!(
        c.ok_as(&c.head, read, json!({ "id": id })).await?["task"]["id"],
        id.as_str()
    );
    let list = c
        .ok_as(
            &c.observer,
            "{ tasks(filter: { mainOnly: true }) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(list["tasks"]["totalCount"], 1);
    Ok(())
}
