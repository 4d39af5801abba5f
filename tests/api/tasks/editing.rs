//! Creating and editing tasks: who may start main tasks, stale versions, bad input, and
//! comments.

use serde_json::{json, Value};

use super::CREATE_TASK;
use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;

on_both_backends!(
    only_task_creators_start_main_tasks,
    stale_versions_conflict_and_the_activity_log_is_atomic,
    bad_task_input_changes_nothing,
    comments_are_edited_and_deleted_by_their_authors,
);

async fn only_task_creators_start_main_tasks(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let input = json!({ "i": { "categoryId": c.category, "title": "x", "executorIds": [c.executor.user_id] } });
    let refused = c.as_(&c.executor, CREATE_TASK, input.clone()).await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let created = c.ok_as(&c.initiator, CREATE_TASK, input).await?;
    assert_eq!(created["createTask"]["reviewStatus"], "DRAFT");
    assert_eq!(created["createTask"]["status"], "OPEN");
    let task = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { priority department { id } initiator { id } } }",
            json!({ "id": created["createTask"]["id"] }),
        )
        .await?;
    assert_eq!(task["task"]["priority"], 2, "category default priority");
    assert_eq!(task["task"]["department"]["id"], c.north.as_str());
    Ok(())
}

async fn stale_versions_conflict_and_the_activity_log_is_atomic(
    backend: Backend,
) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.draft(&c.category, json!({})).await?;
    let update = "mutation($id: ID!, $v: Int!, $t: String!) { updateTask(id: $id, version: $v, input: { title: $t, priority: 1 }) { version title } }";
    let updated = c
        .ok_as(
            &c.initiator,
            update,
            json!({ "id": id, "v": 1, "t": "Renamed" }),
        )
        .await?;
    assert_eq!(updated["updateTask"]["version"], 2);
    let stale = c
        .as_(
            &c.initiator,
            update,
            json!({ "id": id, "v": 1, "t": "Lost update" }),
        )
        .await?;
    assert_eq!(error_code(&stale), Some("CONFLICT"));
    let by_executor = c
        .as_(
            &c.executor,
            update,
            json!({ "id": id, "v": 2, "t": "Mine" }),
        )
        .await?;
    assert_eq!(error_code(&by_executor), Some("FORBIDDEN"));

    let activity = "query($id: ID!) { task(id: $id) { title version activity { nodes { action field oldValue newValue actor { id } } } } }";
    let log = c.ok_as(&c.initiator, activity, json!({ "id": id })).await?;
    let entries = log["task"]["activity"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let title_change = entries
        .iter()
        .find(|e| e["field"] == "title")
        .cloned()
        .unwrap_or_default();
    assert_eq!(title_change["oldValue"], "Visit the customer");
    assert_eq!(title_change["newValue"], "Renamed");
    assert_eq!(title_change["actor"]["id"], c.initiator.user_id.as_str());
    assert!(entries
        .iter()
        .any(|e| e["field"] == "priority" && e["oldValue"] == "2" && e["newValue"] == "1"));
    assert!(entries.iter().any(|e| e["action"] == "created"));
    let before = entries.len();

    // Break the activity log: the change that cannot be logged does not happen either.
    use sea_orm::ConnectionTrait;
    c.app
        .state
        .db
        .conn
        .execute_unprepared("ALTER TABLE task_activity RENAME TO task_activity_gone")
        .await?;
    let failed = c
        .as_(
            &c.initiator,
            update,
            json!({ "id": id, "v": 2, "t": "Unlogged" }),
        )
        .await?;
    assert_eq!(error_code(&failed), Some("INTERNAL"), "{failed}");
    c.app
        .state
        .db
        .conn
        .execute_unprepared("ALTER TABLE task_activity_gone RENAME TO task_activity")
        .await?;
    let after = c.ok_as(&c.initiator, activity, json!({ "id": id })).await?;
    assert_eq!(after["task"]["title"], "Renamed");
    assert_eq!(after["task"]["version"], 2);
    assert_eq!(
        after["task"]["activity"]["nodes"].as_array().map(Vec::len),
        Some(before)
    );
    Ok(())
}

async fn bad_task_input_changes_nothing(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let base =
        json!({ "categoryId": c.category, "title": "t", "executorIds": [c.executor.user_id] });
    let with = |patch: Value| {
        let mut input = base.clone();
        if let (Some(i), Some(p)) = (input.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                i.insert(k.clone(), v.clone());
            }
        }
        json!({ "i": input })
    };
    let cases = [
        (
            "unknown category",
            with(json!({ "categoryId": uuid::Uuid::now_v7().to_string() })),
            "categoryId",
        ),
        (
            "unknown executor",
            with(json!({ "executorIds": [uuid::Uuid::now_v7().to_string()] })),
            "executorIds",
        ),
        (
            "deadline before start",
            with(json!({ "startAt": "2026-12-10T00:00:00Z", "deadline": "2026-12-01T00:00:00Z" })),
            "deadline",
        ),
        (
            "custom fields off schema",
            with(json!({ "customFields": { "customer": 42 } })),
            "customFields",
        ),
        (
            "unknown custom field",
            with(json!({ "customFields": { "nope": "x" } })),
            "customFields",
        ),
        (
            "two executors, not a team",
            with(json!({ "executorIds": [c.executor.user_id, c.second_executor.user_id] })),
            "executorIds",
        ),
        (
            "cash without value",
            with(json!({ "hasCashOutput": true })),
            "cashOutputValue",
        ),
        (
            "too many decimals",
            with(json!({ "hasCashOutput": true, "cashOutputValue": "1.005" })),
            "cashOutputValue",
        ),
        ("blank title", with(json!({ "title": "   " })), "title"),
        (
            "priority out of range",
            with(json!({ "priority": 9 })),
            "priority",
        ),
    ];
    for (name, input, field) in cases {
        let body = c.as_(&c.initiator, CREATE_TASK, input).await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{name}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{name}: {body}"
        );
    }
    let float_money = c
        .as_(
            &c.initiator,
            CREATE_TASK,
            with(json!({ "hasCashOutput": true, "cashOutputValue": 12.5 })),
        )
        .await?;
    assert_eq!(
        error_code(&float_money),
        Some("BAD_USER_INPUT"),
        "{float_money}"
    );
    let schema_error = c
        .as_(
            &c.initiator,
            CREATE_TASK,
            with(json!({ "customFields": { "customer": 42 } })),
        )
        .await?;
    assert!(
        schema_error["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/customer"),
        "{schema_error}"
    );
    let list = c
        .ok_as(&c.initiator, "{ tasks { totalCount } }", json!({}))
        .await?;
    assert_eq!(list["tasks"]["totalCount"], 0);
    Ok(())
}

async fn comments_are_edited_and_deleted_by_their_authors(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.draft(&c.category, json!({})).await?;
    let add = "mutation($id: ID!, $b: String!) { addTaskComment(taskId: $id, body: $b) { id body author { id } } }";
    let mine = c
        .ok_as(&c.executor, add, json!({ "id": id, "b": "First" }))
        .await?;
    let comment = str_at(&mine, "/addTaskComment/id")?;
    c.ok_as(&c.initiator, add, json!({ "id": id, "b": "Second" }))
        .await?;
    let empty = c
        .as_(&c.initiator, add, json!({ "id": id, "b": "  " }))
        .await?;
    assert_eq!(error_code(&empty), Some("BAD_USER_INPUT"));

    let edit =
        "mutation($id: ID!, $b: String!) { editTaskComment(id: $id, body: $b) { body edited } }";
    let not_mine = c
        .as_(
            &c.initiator,
            edit,
            json!({ "id": comment, "b": "Hijacked" }),
        )
        .await?;
    assert_eq!(error_code(&not_mine), Some("FORBIDDEN"));
    let stranger = c
        .as_(&c.stranger, edit, json!({ "id": comment, "b": "Hijacked" }))
        .await?;
    assert_eq!(error_code(&stranger), Some("NOT_FOUND"));
    let edited = c
        .ok_as(
            &c.executor,
            edit,
            json!({ "id": comment, "b": "First, edited" }),
        )
        .await?;
    assert_eq!(edited["editTaskComment"]["body"], "First, edited");

    let delete = "mutation($id: ID!) { deleteTaskComment(id: $id) }";
    let not_mine = c
        .as_(&c.initiator, delete, json!({ "id": comment }))
        .await?;
    assert_eq!(error_code(&not_mine), Some("FORBIDDEN"));
    c.ok_as(&c.executor, delete, json!({ "id": comment }))
        .await?;
    let list = c
        .ok_as(&c.initiator, "query($id: ID!) { task(id: $id) { comments(first: 10) { totalCount edges { node { body author { id } } } } } }", json!({ "id": id }))
        .await?;
    assert_eq!(list["task"]["comments"]["totalCount"], 1);
    assert_eq!(
        list["task"]["comments"]["edges"][0]["node"]["body"],
        "Second"
    );
    Ok(())
}
