//! The review flow: the category's approval steps, what cannot bypass them, one person per
//! seat, cancelling withdrawing the approval, delegates and conditional steps.

use serde_json::{json, Value};

use super::CREATE_TASK;
use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;

on_both_backends!(
    review_runs_the_category_flow,
    delegates_decide_on_behalf_and_conditions_pick_steps,
    review_cannot_be_bypassed,
    cancelling_withdraws_the_approval,
    one_person_is_one_seat,
);

async fn review_runs_the_category_flow(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.draft(&c.category, json!({})).await?;
    let submit = "mutation($id: ID!) { submitTask(id: $id) { reviewStatus } }";
    let refused = c.as_(&c.executor, submit, json!({ "id": id })).await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"));
    assert_eq!(
        c.ok_as(&c.initiator, submit, json!({ "id": id })).await?["submitTask"]["reviewStatus"],
        "PENDING"
    );
    let again = c.as_(&c.initiator, submit, json!({ "id": id })).await?;
    assert_eq!(error_code(&again), Some("CONFLICT"));
    let approval = c.approval_of(&id).await?;

    // The reviewer is pending for me; the head is not yet.
    let pending = "{ approvalsPendingForMe { id subjectType subjectId subjectTitle progress { stepNumber stepCount currentStepName pendingApprovers { id } } } }";
    let mine = c.ok_as(&c.reviewer, pending, json!({})).await?;
    assert_eq!(mine["approvalsPendingForMe"][0]["id"], approval.as_str());
    // The inbox says what each approval is about and links to it.
    assert_eq!(mine["approvalsPendingForMe"][0]["subjectType"], "task");
    assert_eq!(mine["approvalsPendingForMe"][0]["subjectId"], id.as_str());
    assert_eq!(
        mine["approvalsPendingForMe"][0]["subjectTitle"],
        "Visit the customer"
    );
    assert_eq!(
        mine["approvalsPendingForMe"][0]["progress"]["stepNumber"],
        1
    );
    assert_eq!(mine["approvalsPendingForMe"][0]["progress"]["stepCount"], 2);
    assert_eq!(
        mine["approvalsPendingForMe"][0]["progress"]["pendingApprovers"][0]["id"],
        c.reviewer.user_id.as_str()
    );
    assert_eq!(
        c.ok_as(&c.head, pending, json!({})).await?["approvalsPendingForMe"],
        json!([])
    );

    // Wrong people, missing reasons and double decisions are refused and change nothing.
    let head_too_early = c.decide(&c.head, &approval, true, None).await?;
    assert_eq!(error_code(&head_too_early), Some("FORBIDDEN"));
    let self_approval = c.decide(&c.initiator, &approval, true, None).await?;
    assert_eq!(error_code(&self_approval), Some("FORBIDDEN"));
    let stranger = c.decide(&c.stranger, &approval, true, None).await?;
    assert_eq!(error_code(&stranger), Some("NOT_FOUND"));
    let no_reason = c.decide(&c.reviewer, &approval, false, Some("  ")).await?;
    assert_eq!(error_code(&no_reason), Some("BAD_USER_INPUT"));

    let first = c.decide(&c.reviewer, &approval, true, Some("fine")).await?;
    assert_eq!(
        first["data"]["decideApproval"]["progress"]["stepNumber"], 2,
        "{first}"
    );
    assert_eq!(first["data"]["decideApproval"]["status"], "PENDING");
    let twice = c.decide(&c.reviewer, &approval, true, None).await?;
    assert_eq!(error_code(&twice), Some("FORBIDDEN"), "{twice}");

    // The head rejects: the reason becomes the task's rejection reason.
    let rejected = c
        .decide(&c.head, &approval, false, Some("Budget is missing"))
        .await?;
    assert_eq!(
        rejected["data"]["decideApproval"]["status"], "REJECTED",
        "{rejected}"
    );
    let task = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { reviewStatus rejectionReason approval { decisions { approve comment stepName decidedBy { id } } cycleTime { totalSeconds steps { stepName } } } } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(task["task"]["reviewStatus"], "REJECTED");
    assert_eq!(task["task"]["rejectionReason"], "Budget is missing");
    let decisions = &task["task"]["approval"]["decisions"];
    assert_eq!(decisions.as_array().map(Vec::len), Some(2));
    assert_eq!(decisions[1]["approve"], false);
    assert_eq!(decisions[1]["decidedBy"]["id"], c.head.user_id.as_str());
    assert!(task["task"]["approval"]["cycleTime"]["totalSeconds"].is_i64());
    assert_eq!(
        task["task"]["approval"]["cycleTime"]["steps"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let after_end = c.decide(&c.head, &approval, true, None).await?;
    assert_eq!(error_code(&after_end), Some("CONFLICT"));

    // Edit and resubmit: a new approval, the old one kept as history.
    let version = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await?["task"]["version"]
        .clone();
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!, $v: Int!) { updateTask(id: $id, version: $v, input: { keyPoints: \"Budget attached\" }) { id } }",
        json!({ "id": id, "v": version }),
    )
    .await?;
    c.ok_as(&c.initiator, submit, json!({ "id": id })).await?;
    let second = c.approval_of(&id).await?;
    assert_ne!(second, approval);
    c.decide(&c.reviewer, &second, true, None).await?;
    let done = c.decide(&c.head, &second, true, Some("ok")).await?;
    assert_eq!(done["data"]["decideApproval"]["status"], "APPROVED");
    let task = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { reviewStatus rejectionReason } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(task["task"]["reviewStatus"], "APPROVED");
    assert_eq!(task["task"]["rejectionReason"], Value::Null);
    let old = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { approval(id: $id) { status } }",
            json!({ "id": approval }),
        )
        .await?;
    assert_eq!(old["approval"]["status"], "REJECTED");

    // A category without a flow approves on submission.
    let quick = c.draft(&c.quick_category, json!({})).await?;
    assert_eq!(
        c.ok_as(&c.initiator, submit, json!({ "id": quick }))
            .await?["submitTask"]["reviewStatus"],
        "APPROVED"
    );
    Ok(())
}

async fn delegates_decide_on_behalf_and_conditions_pick_steps(
    backend: Backend,
) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let flow = c
        .ok_as(
            &c.admin,
            "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id steps { name condition { field op value } } } }",
            json!({ "i": { "name": "Big money", "steps": [
                { "name": "Head", "departmentHead": true },
                { "name": "Finance check", "approverUserId": c.observer.user_id, "condition": { "field": "cashOutputValue", "op": "GTE", "value": "10000" } }
            ] } }),
        )
        .await?;
    assert_eq!(
        flow["createApprovalFlow"]["steps"][1]["condition"]["op"],
        "GTE"
    );
    let flow_id = str_at(&flow, "/createApprovalFlow/id")?;
    let category = c
        .ok_as(
            &c.admin,
            "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }",
            json!({ "i": { "code": "MONEY", "name": "Money", "approvalFlowId": flow_id } }),
        )
        .await?;
    let category = str_at(&category, "/createTaskCategory/id")?;

    // The head is out of office: the reviewer decides in their place.
    c.ok_as(
        &c.head,
        "mutation($i: DelegateApprovalsInput!) { delegateApprovals(input: $i) { id } }",
        json!({ "i": { "toUserId": c.reviewer.user_id, "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z" } }),
    )
    .await?;
    let small = c
        .draft(
            &category,
            json!({ "hasCashOutput": true, "cashOutputValue": "9999.99" }),
        )
        .await?;
    let big = c
        .draft(
            &category,
            json!({ "hasCashOutput": true, "cashOutputValue": "10000.00" }),
        )
        .await?;
    for id in [&small, &big] {
        c.ok_as(
            &c.initiator,
            "mutation($id: ID!) { submitTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await?;
    }
    let small_approval = c.approval_of(&small).await?;
    let big_approval = c.approval_of(&big).await?;
    let steps = "query($id: ID!) { approval(id: $id) { progress { stepCount } } }";
    assert_eq!(
        c.ok_as(&c.initiator, steps, json!({ "id": small_approval }))
            .await?["approval"]["progress"]["stepCount"],
        1
    );
    assert_eq!(
        c.ok_as(&c.initiator, steps, json!({ "id": big_approval }))
            .await?["approval"]["progress"]["stepCount"],
        2
    );

    let decided = c
        .decide(&c.reviewer, &small_approval, true, Some("for the head"))
        .await?;
    assert_eq!(
        decided["data"]["decideApproval"]["status"], "APPROVED",
        "{decided}"
    );
    let record = c
        .ok_as(&c.initiator, "query($id: ID!) { approval(id: $id) { decisions { decidedBy { id } onBehalfOf { id } } } }", json!({ "id": small_approval }))
        .await?;
    assert_eq!(
        record["approval"]["decisions"][0]["decidedBy"]["id"],
        c.reviewer.user_id.as_str()
    );
    assert_eq!(
        record["approval"]["decisions"][0]["onBehalfOf"]["id"],
        c.head.user_id.as_str()
    );

    c.decide(&c.reviewer, &big_approval, true, None).await?;
    let finance = c.decide(&c.observer, &big_approval, true, None).await?;
    assert_eq!(
        finance["data"]["decideApproval"]["status"], "APPROVED",
        "{finance}"
    );
    Ok(())
}

/// What reviewers approved is what gets done: no edits after approval, no self-confirmation,
/// no merit or cash minted on unreviewed subtasks, no confirming a value nobody saw.
async fn review_cannot_be_bypassed(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let self_confirming = c
        .as_(&c.initiator, CREATE_TASK, json!({ "i": { "categoryId": c.category, "title": "t", "executorIds": [c.executor.user_id], "confirmerId": c.executor.user_id } }))
        .await?;
    assert_eq!(
        error_code(&self_confirming),
        Some("BAD_USER_INPUT"),
        "{self_confirming}"
    );

    let id = c.approved(json!({})).await?;
    let version = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await?["task"]["version"]
        .clone();
    let edit = c
        .as_(&c.initiator, "mutation($id: ID!, $v: Int!) { updateTask(id: $id, version: $v, input: { meritPoints: 999 }) { id } }", json!({ "id": id, "v": version }))
        .await?;
    assert_eq!(error_code(&edit), Some("CONFLICT"), "{edit}");

    let sub = |extra: Value| {
        let mut input =
            json!({ "parentId": id, "title": "Step", "executorIds": [c.executor.user_id] });
        if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                i.insert(k.clone(), v.clone());
            }
        }
        json!({ "i": input })
    };
    let minted = c
        .as_(
            &c.executor,
            CREATE_TASK,
            sub(json!({ "meritPoints": 1000 })),
        )
        .await?;
    assert_eq!(error_code(&minted), Some("BAD_USER_INPUT"), "{minted}");
    let cash = c
        .as_(
            &c.executor,
            CREATE_TASK,
            sub(json!({ "hasCashOutput": true, "cashOutputValue": "5.00" })),
        )
        .await?;
    assert_eq!(error_code(&cash), Some("BAD_USER_INPUT"), "{cash}");
    let subtask = c
        .ok_as(
            &c.executor,
            "mutation($i: CreateTaskInput!) { createTask(input: $i) { id confirmer { id } } }",
            sub(json!({})),
        )
        .await?;
    assert_eq!(
        subtask["createTask"]["confirmer"]["id"],
        c.confirmer.user_id.as_str(),
        "the main task's confirmer confirms its subtasks"
    );
    let subtask = str_at(&subtask, "/createTask/id")?;
    c.ok_as(
        &c.executor,
        "mutation($id: ID!) { reportTaskProgress(taskId: $id, progress: 100) { id } }",
        json!({ "id": subtask }),
    )
    .await?;
    let own = c
        .as_(
            &c.executor,
            "mutation($id: ID!) { confirmTaskProgress(taskId: $id) { id } }",
            json!({ "id": subtask }),
        )
        .await?;
    assert_eq!(error_code(&own), Some("FORBIDDEN"), "{own}");

    // Confirming names the value seen; a newer report makes it fail.
    let report =
        "mutation($id: ID!, $p: Int!) { reportTaskProgress(taskId: $id, progress: $p) { id } }";
    let confirm = "mutation($id: ID!, $p: Int) { confirmTaskProgress(taskId: $id, progress: $p) { progress status } }";
    c.ok_as(&c.executor, report, json!({ "id": id, "p": 40 }))
        .await?;
    c.ok_as(&c.executor, report, json!({ "id": id, "p": 100 }))
        .await?;
    let stale = c
        .as_(&c.confirmer, confirm, json!({ "id": id, "p": 40 }))
        .await?;
    assert_eq!(error_code(&stale), Some("CONFLICT"), "{stale}");
    let done = c
        .ok_as(&c.confirmer, confirm, json!({ "id": id, "p": 100 }))
        .await?;
    assert_eq!(done["confirmTaskProgress"]["status"], "DONE");

    // A cursor from nowhere is bad input, not a crash.
    use base64::Engine;
    for cursor in ["offset:18446744073709551615", "offset:-1", "nonsense"] {
        let after = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(cursor);
        let body = c
            .as_(
                &c.initiator,
                "query($a: String) { tasks(after: $a) { totalCount } }",
                json!({ "a": after }),
            )
            .await?;
        assert_eq!(
            error_code(&body),
            Some("BAD_USER_INPUT"),
            "{cursor}: {body}"
        );
    }
    Ok(())
}

async fn cancelling_withdraws_the_approval(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.draft(&c.category, json!({})).await?;
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { submitTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await?;
    let approval = c.approval_of(&id).await?;
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { cancelTask(id: $id) { status } }",
        json!({ "id": id }),
    )
    .await?;
    let status = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { approval(id: $id) { status } }",
            json!({ "id": approval }),
        )
        .await?;
    assert_eq!(status["approval"]["status"], "CANCELLED");
    assert_eq!(
        c.ok_as(&c.reviewer, "{ approvalsPendingForMe { id } }", json!({}))
            .await?["approvalsPendingForMe"],
        json!([])
    );
    let late = c.decide(&c.reviewer, &approval, true, None).await?;
    assert_eq!(error_code(&late), Some("CONFLICT"), "{late}");
    let task = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { status reviewStatus } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(task["task"]["status"], "CANCELLED");
    assert_eq!(task["task"]["reviewStatus"], "PENDING");

    // The approvers of a finished round still see the task, in the list and by id alike.
    for who in [&c.reviewer, &c.head] {
        let one = c
            .ok_as(
                who,
                "query($id: ID!) { task(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await?;
        let listed = c
            .ok_as(who, "{ tasks { edges { node { id } } } }", json!({}))
            .await?;
        let in_list = listed["tasks"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["node"]["id"] == id.as_str());
        assert_eq!(
            one["task"]["id"] == id.as_str(),
            in_list,
            "task(id) and tasks disagree"
        );
        assert!(in_list);
    }
    Ok(())
}

async fn one_person_is_one_seat(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    // A second Reviewer in Sales, who delegates to the first.
    let roles = c
        .ok_as(&c.admin, "{ roles { id name } }", json!({}))
        .await?;
    let reviewer_role = roles["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "Reviewer")
        .map(|r| r["id"].clone())
        .unwrap_or_default();
    c.ok_as(
        &c.admin,
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": c.observer.user_id, "r": reviewer_role, "d": c._sales }),
    )
    .await?;
    c.ok_as(
        &c.observer,
        "mutation($i: DelegateApprovalsInput!) { delegateApprovals(input: $i) { id } }",
        json!({ "i": { "toUserId": c.reviewer.user_id, "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z" } }),
    )
    .await?;
    let flow = c
        .ok_as(&c.admin, "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id } }", json!({ "i": { "name": "Two reviewers", "steps": [{ "name": "Both", "approverRole": "Reviewer", "requiredApprovals": 2 }] } }))
        .await?;
    let category = c
        .ok_as(&c.admin, "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }", json!({ "i": { "code": "PAIR", "name": "Pair", "approvalFlowId": str_at(&flow, "/createApprovalFlow/id")? } }))
        .await?;
    let id = c
        .draft(&str_at(&category, "/createTaskCategory/id")?, json!({}))
        .await?;
    c.ok_as(
        &c.initiator,
        "mutation($id: ID!) { submitTask(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await?;
    let approval = c.approval_of(&id).await?;
    let first = c.decide(&c.reviewer, &approval, true, None).await?;
    assert_eq!(
        first["data"]["decideApproval"]["status"], "PENDING",
        "{first}"
    );
    let second_seat = c.decide(&c.reviewer, &approval, true, None).await?;
    assert_eq!(
        error_code(&second_seat),
        Some("CONFLICT"),
        "one person cannot fill two seats: {second_seat}"
    );
    let other = c.decide(&c.observer, &approval, true, None).await?;
    assert_eq!(
        other["data"]["decideApproval"]["status"], "APPROVED",
        "{other}"
    );
    Ok(())
}
