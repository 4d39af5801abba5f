//! Editing configuration after the fact: task categories (edit, archive, restore), approval
//! flows (a new version per edit), transaction types, and what each edit refuses.

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;
use crate::tasks::{company, Company};

on_both_backends!(
    a_task_category_is_edited_as_it_is_created,
    an_archived_category_keeps_its_tasks_and_takes_no_new_ones,
    a_running_approval_finishes_on_the_flow_version_it_started_on,
    a_transaction_type_is_edited_as_it_is_created,
);

const CATEGORY: &str =
    "id code name defaultPriority archived customFieldsSchema approvalFlow { id }";

const CREATE_TASK: &str = "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }";

fn field_of(body: &Value) -> Option<&str> {
    body.pointer("/errors/0/extensions/field")
        .and_then(Value::as_str)
}

async fn category(c: &Company, id: &str) -> anyhow::Result<Value> {
    let data = c
        .ok_as(
            &c.admin,
            &format!("query($id: ID!) {{ taskCategory(id: $id) {{ {CATEGORY} }} }}"),
            json!({ "id": id }),
        )
        .await?;
    Ok(data["taskCategory"].clone())
}

async fn update(
    c: &Company,
    who: &crate::helpers::Session,
    id: &str,
    input: Value,
) -> anyhow::Result<Value> {
    c.as_(
        who,
        &format!("mutation($id: ID!, $i: UpdateTaskCategoryInput!) {{ updateTaskCategory(id: $id, input: $i) {{ {CATEGORY} }} }}"),
        json!({ "id": id, "i": input }),
    )
    .await
}

fn new_task(c: &Company, category: &str, custom_fields: Value) -> Value {
    json!({ "i": {
        "categoryId": category,
        "title": "Call the supplier",
        "executorIds": [c.executor.user_id],
        "confirmerId": c.confirmer.user_id,
        "customFields": custom_fields,
    } })
}

async fn a_task_category_is_edited_as_it_is_created(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let before = category(&c, &c.quick_category).await?;
    let flow = category(&c, &c.category).await?["approvalFlow"]["id"].clone();

    // A person without task.configure changes nothing.
    let refused = update(
        &c,
        &c.initiator,
        &c.quick_category,
        json!({ "name": "Mine" }),
    )
    .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    assert_eq!(category(&c, &c.quick_category).await?, before);

    let schema = json!({ "type": "object", "properties": { "region": { "type": "string" } },
        "required": ["region"], "additionalProperties": false });
    let edited = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "name": "Quick jobs", "defaultPriority": 4, "approvalFlowId": flow, "customFieldsSchema": schema }),
    )
    .await?;
    let edited = &edited["data"]["updateTaskCategory"];
    assert_eq!(edited["name"], "Quick jobs", "{edited}");
    assert_eq!(edited["defaultPriority"], 4);
    assert_eq!(edited["code"], "QUICK", "a field left out is kept");
    assert_eq!(edited["approvalFlow"]["id"], flow);
    assert_eq!(edited["customFieldsSchema"], schema);
    assert_eq!(&category(&c, &c.quick_category).await?, edited);

    // The new schema is the one new tasks are held to.
    let old_fields = c
        .as_(
            &c.initiator,
            CREATE_TASK,
            new_task(&c, &c.quick_category, json!({ "customer": "Acme" })),
        )
        .await?;
    assert_eq!(
        error_code(&old_fields),
        Some("BAD_USER_INPUT"),
        "{old_fields}"
    );
    c.ok_as(
        &c.initiator,
        CREATE_TASK,
        new_task(&c, &c.quick_category, json!({ "region": "North" })),
    )
    .await?;

    // Null clears; each bad value is refused as create refuses it, and changes nothing.
    let cleared = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "approvalFlowId": null }),
    )
    .await?;
    assert_eq!(
        cleared["data"]["updateTaskCategory"]["approvalFlow"],
        Value::Null,
        "{cleared}"
    );
    let kept = category(&c, &c.quick_category).await?;
    let bad_schema = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "name": "Not saved", "customFieldsSchema": { "type": 12 } }),
    )
    .await?;
    assert_eq!(
        error_code(&bad_schema),
        Some("BAD_USER_INPUT"),
        "{bad_schema}"
    );
    assert_eq!(field_of(&bad_schema), Some("customFieldsSchema"));
    let bad_priority = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "defaultPriority": 9 }),
    )
    .await?;
    assert_eq!(
        field_of(&bad_priority),
        Some("defaultPriority"),
        "{bad_priority}"
    );
    let no_pool = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "assignmentStrategy": "ROUND_ROBIN" }),
    )
    .await?;
    assert_eq!(field_of(&no_pool), Some("assignmentPool"), "{no_pool}");
    let no_flow = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "approvalFlowId": uuid::Uuid::now_v7().to_string() }),
    )
    .await?;
    assert_eq!(field_of(&no_flow), Some("approvalFlowId"), "{no_flow}");
    let clash = update(
        &c,
        &c.admin,
        &c.quick_category,
        json!({ "code": "REVIEWED" }),
    )
    .await?;
    assert_eq!(error_code(&clash), Some("CONFLICT"), "{clash}");
    assert_eq!(category(&c, &c.quick_category).await?, kept);

    let unknown = update(
        &c,
        &c.admin,
        &uuid::Uuid::now_v7().to_string(),
        json!({ "name": "Ghost" }),
    )
    .await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    Ok(())
}

async fn an_archived_category_keeps_its_tasks_and_takes_no_new_ones(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let filed = c
        .ok_as(
            &c.initiator,
            CREATE_TASK,
            new_task(&c, &c.quick_category, json!({ "customer": "Acme" })),
        )
        .await?;
    let filed = str_at(&filed, "/createTask/id")?;
    let archive = "mutation($id: ID!) { archiveTaskCategory(id: $id) { id archived } }";
    let restore = "mutation($id: ID!) { restoreTaskCategory(id: $id) { id archived } }";
    let listed = async |include: bool| -> anyhow::Result<Vec<(String, bool)>> {
        let data = c
            .ok_as(
                &c.initiator,
                "query($all: Boolean!) { taskCategories(includeArchived: $all) { id archived } }",
                json!({ "all": include }),
            )
            .await?;
        Ok(data["taskCategories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_owned(),
                    c["archived"] == true,
                )
            })
            .collect())
    };

    let refused = c
        .as_(&c.initiator, archive, json!({ "id": c.quick_category }))
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    assert_eq!(category(&c, &c.quick_category).await?["archived"], false);

    let archived = c
        .ok_as(&c.admin, archive, json!({ "id": c.quick_category }))
        .await?;
    assert_eq!(archived["archiveTaskCategory"]["archived"], true);
    assert!(!listed(false)
        .await?
        .iter()
        .any(|(id, _)| *id == c.quick_category));
    assert!(listed(false).await?.iter().any(|(id, _)| *id == c.category));
    assert!(listed(true)
        .await?
        .contains(&(c.quick_category.clone(), true)));

    let refused_task = c
        .as_(
            &c.initiator,
            CREATE_TASK,
            new_task(&c, &c.quick_category, json!({ "customer": "Acme" })),
        )
        .await?;
    assert_eq!(
        error_code(&refused_task),
        Some("BAD_USER_INPUT"),
        "{refused_task}"
    );
    assert_eq!(field_of(&refused_task), Some("categoryId"));
    let kept = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { id category { id archived } } }",
            json!({ "id": filed }),
        )
        .await?;
    assert_eq!(
        kept["task"]["category"]["id"],
        c.quick_category.as_str(),
        "{kept}"
    );
    assert_eq!(kept["task"]["category"]["archived"], true);

    let refused = c
        .as_(&c.initiator, restore, json!({ "id": c.quick_category }))
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let restored = c
        .ok_as(&c.admin, restore, json!({ "id": c.quick_category }))
        .await?;
    assert_eq!(restored["restoreTaskCategory"]["archived"], false);
    assert!(listed(false)
        .await?
        .contains(&(c.quick_category.clone(), false)));
    c.ok_as(
        &c.initiator,
        CREATE_TASK,
        new_task(&c, &c.quick_category, json!({ "customer": "Acme" })),
    )
    .await?;

    let ghost = uuid::Uuid::now_v7().to_string();
    let unknown = c.as_(&c.admin, archive, json!({ "id": ghost })).await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    let unknown = c.as_(&c.admin, restore, json!({ "id": ghost })).await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    let absent = c
        .ok_as(
            &c.admin,
            "query($id: ID!) { taskCategory(id: $id) { id } }",
            json!({ "id": ghost }),
        )
        .await?;
    assert_eq!(absent["taskCategory"], Value::Null);
    Ok(())
}

async fn a_running_approval_finishes_on_the_flow_version_it_started_on(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let reviewer_step = json!({ "name": "Reviewer", "approverRole": "Reviewer", "requiredApprovals": 1, "slaHours": 24 });
    let head_step = json!({ "name": "Head", "departmentHead": true });
    let flow = c
        .ok_as(
            &c.admin,
            "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id version } }",
            json!({ "i": { "name": "One step", "steps": [reviewer_step] } }),
        )
        .await?;
    assert_eq!(flow["createApprovalFlow"]["version"], 1);
    let flow = str_at(&flow, "/createApprovalFlow/id")?;
    let category = c
        .ok_as(
            &c.admin,
            "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }",
            json!({ "i": { "code": "VERSIONED", "name": "Versioned", "approvalFlowId": flow } }),
        )
        .await?;
    let category = str_at(&category, "/createTaskCategory/id")?;
    let submitted = async |task: &str| -> anyhow::Result<String> {
        c.ok_as(
            &c.initiator,
            "mutation($id: ID!) { submitTask(id: $id) { id } }",
            json!({ "id": task }),
        )
        .await?;
        c.approval_of(task).await
    };
    let running = submitted(&c.draft(&category, json!({})).await?).await?;

    let update = "mutation($id: ID!, $i: UpdateApprovalFlowInput!) { updateApprovalFlow(id: $id, input: $i) { id name version steps { name } } }";
    let read_flow = "query($id: ID!) { approvalFlow(id: $id) { version steps { name } } }";
    let v1 = c.ok_as(&c.admin, read_flow, json!({ "id": flow })).await?;

    // Refusals change nothing, the version included.
    let refused = c
        .as_(
            &c.initiator,
            update,
            json!({ "id": flow, "i": { "steps": [reviewer_step, head_step] } }),
        )
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let empty = c
        .as_(
            &c.admin,
            update,
            json!({ "id": flow, "i": { "name": "Renamed", "steps": [] } }),
        )
        .await?;
    assert_eq!(error_code(&empty), Some("BAD_USER_INPUT"), "{empty}");
    assert_eq!(field_of(&empty), Some("steps"));
    let no_role = c
        .as_(&c.admin, update, json!({ "id": flow, "i": { "steps": [{ "name": "Nobody", "approverRole": "No such role" }] } }))
        .await?;
    assert_eq!(field_of(&no_role), Some("approverRole"), "{no_role}");
    let unknown = c
        .as_(
            &c.admin,
            update,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "i": { "name": "Ghost" } }),
        )
        .await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    assert_eq!(
        c.ok_as(&c.admin, read_flow, json!({ "id": flow })).await?,
        v1
    );

    let v2 = c
        .ok_as(
            &c.admin,
            update,
            json!({ "id": flow, "i": { "steps": [reviewer_step, head_step] } }),
        )
        .await?;
    assert_eq!(v2["updateApprovalFlow"]["version"], 2, "{v2}");
    assert_eq!(
        v2["updateApprovalFlow"]["name"], "One step",
        "a name left out is kept"
    );
    assert_eq!(
        v2["updateApprovalFlow"]["steps"],
        json!([{ "name": "Reviewer" }, { "name": "Head" }])
    );
    let fresh = submitted(&c.draft(&category, json!({})).await?).await?;

    // The approval started on version 1 needs its one decision only.
    let decided = c.decide(&c.reviewer, &running, true, None).await?;
    assert_eq!(
        decided["data"]["decideApproval"]["status"], "APPROVED",
        "{decided}"
    );
    assert_eq!(
        decided["data"]["decideApproval"]["progress"]["stepCount"],
        1
    );

    // The one started on version 2 needs both.
    let first = c.decide(&c.reviewer, &fresh, true, None).await?;
    assert_eq!(
        first["data"]["decideApproval"]["status"], "PENDING",
        "{first}"
    );
    assert_eq!(first["data"]["decideApproval"]["progress"]["stepCount"], 2);
    let second = c.decide(&c.head, &fresh, true, None).await?;
    assert_eq!(
        second["data"]["decideApproval"]["status"], "APPROVED",
        "{second}"
    );

    // An edit that leaves the steps out still makes a version, with the same steps.
    let v3 = c
        .ok_as(
            &c.admin,
            update,
            json!({ "id": flow, "i": { "name": "Two steps" } }),
        )
        .await?;
    assert_eq!(v3["updateApprovalFlow"]["version"], 3);
    assert_eq!(v3["updateApprovalFlow"]["name"], "Two steps");
    assert_eq!(
        v3["updateApprovalFlow"]["steps"],
        v2["updateApprovalFlow"]["steps"]
    );
    Ok(())
}

async fn a_transaction_type_is_edited_as_it_is_created(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let create =
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { id } }";
    let new_type = |code: &str| json!({ "i": { "code": code, "name": code, "payloadSchema": { "type": "object" }, "route": "DATA_PROCESS" } });
    let id = str_at(
        &c.ok_as(&c.admin, create, new_type("NOTE")).await?,
        "/createTransactionType/id",
    )?;
    c.ok_as(&c.admin, create, new_type("OTHER")).await?;
    let read = async || -> anyhow::Result<Value> {
        let data = c
            .ok_as(
                &c.admin,
                "{ transactionTypes { id code name route payloadSchema } }",
                json!({}),
            )
            .await?;
        Ok(data["transactionTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["id"] == id.as_str())
            .cloned()
            .unwrap_or(Value::Null))
    };
    let update = "mutation($id: ID!, $i: UpdateTransactionTypeInput!) { updateTransactionType(id: $id, input: $i) { id code name route payloadSchema } }";
    let before = read().await?;
    assert_eq!(before["code"], "NOTE", "{before}");

    let refused = c
        .as_(
            &c.initiator,
            update,
            json!({ "id": id, "i": { "name": "Mine" } }),
        )
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let bad_schema = c
        .as_(
            &c.admin,
            update,
            json!({ "id": id, "i": { "name": "Not saved", "payloadSchema": { "type": 12 } } }),
        )
        .await?;
    assert_eq!(field_of(&bad_schema), Some("payloadSchema"), "{bad_schema}");
    let stray_rule = c
        .as_(
            &c.admin,
            update,
            json!({ "id": id, "i": { "postingRule": { "lines": [] } } }),
        )
        .await?;
    assert_eq!(field_of(&stray_rule), Some("postingRule"), "{stray_rule}");
    let no_rule = c
        .as_(
            &c.admin,
            update,
            json!({ "id": id, "i": { "route": "FINANCE_POSTING" } }),
        )
        .await?;
    assert_eq!(field_of(&no_rule), Some("postingRule"), "{no_rule}");
    let clash = c
        .as_(
            &c.admin,
            update,
            json!({ "id": id, "i": { "code": "other" } }),
        )
        .await?;
    assert_eq!(error_code(&clash), Some("CONFLICT"), "{clash}");
    let unknown = c
        .as_(
            &c.admin,
            update,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "i": { "name": "Ghost" } }),
        )
        .await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");
    assert_eq!(read().await?, before);

    let schema = json!({ "type": "object", "required": ["amount"] });
    let edited = c
        .ok_as(
            &c.admin,
            update,
            json!({ "id": id, "i": { "name": "Expense note", "payloadSchema": schema } }),
        )
        .await?;
    let edited = &edited["updateTransactionType"];
    assert_eq!(edited["name"], "Expense note", "{edited}");
    assert_eq!(edited["code"], "NOTE", "a field left out is kept");
    assert_eq!(edited["route"], "DATA_PROCESS");
    assert_eq!(edited["payloadSchema"], schema);
    assert_eq!(&read().await?, edited);
    Ok(())
}
