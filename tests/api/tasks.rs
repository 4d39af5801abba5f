//! Tasks and the approval engine end to end: the seed's rules, visibility, the activity log,
//! assignment, progress, merit, cash output, notifications and the statement bound.

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, unique_email, Backend, Session, TestApp};
use crate::on_both_backends;

pub struct Company {
    pub app: TestApp,
    pub admin: Session,
    pub _sales: String,
    pub north: String,
    pub initiator: Session,
    pub executor: Session,
    pub second_executor: Session,
    pub confirmer: Session,
    pub reviewer: Session,
    pub head: Session,
    pub observer: Session,
    pub stranger: Session,
    /// Reviewed by a Reviewer of the department, then its head.
    pub category: String,
    /// No approval flow: submission approves at once.
    pub quick_category: String,
}

const CREATE_TASK: &str =
    "mutation($i: CreateTaskInput!) { createTask(input: $i) { id version reviewStatus status } }";

impl Company {
    pub async fn new(app: TestApp) -> anyhow::Result<Self> {
        let admin = app.admin().await?;
        let token = Some(admin.access.as_str());
        let dept =
            |name: &str, parent: Option<&str>| json!({ "i": { "name": name, "parentId": parent } });
        let create_dept =
            "mutation($i: CreateDepartmentInput!) { createDepartment(input: $i) { id } }";
        let sales = str_at(
            &app.gql_ok(token, create_dept, dept("Sales", None)).await?,
            "/createDepartment/id",
        )?;
        let north = str_at(
            &app.gql_ok(token, create_dept, dept("North", Some(&sales)))
                .await?,
            "/createDepartment/id",
        )?;
        let elsewhere = str_at(
            &app.gql_ok(token, create_dept, dept("Elsewhere", None))
                .await?,
            "/createDepartment/id",
        )?;

        let role = |name: &str, permissions: &[&str]| json!({ "i": { "name": name, "permissions": permissions } });
        let create_role = "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }";
        let creator_role = str_at(
            &app.gql_ok(token, create_role, role("Creator", &["task.create_main"]))
                .await?,
            "/createRole/id",
        )?;
        let reviewer_role = str_at(
            &app.gql_ok(token, create_role, role("Reviewer", &["task.review"]))
                .await?,
            "/createRole/id",
        )?;
        let observer_role = str_at(
            &app.gql_ok(token, create_role, role("Observer", &["finance.read"]))
                .await?,
            "/createRole/id",
        )?;

        let person = |department: &str| {
            let department = department.to_owned();
            let app = &app;
            let admin = &admin;
            async move {
                let email = unique_email("person");
                let data = app
                    .gql_ok(
                        Some(&admin.access),
                        "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                        json!({ "i": { "email": email, "name": email, "password": "a good password", "departmentId": department } }),
                    )
                    .await?;
                str_at(&data, "/createUser/id")?;
                app.login(&email, "a good password").await
            }
        };
        let initiator = person(&north).await?;
        let executor = person(&north).await?;
        let second_executor = person(&north).await?;
        let confirmer = person(&north).await?;
        let reviewer = person(&sales).await?;
        let head = person(&sales).await?;
        let observer = person(&sales).await?;
        let stranger = person(&elsewhere).await?;

        let grant = "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }";
        app.gql_ok(
            token,
            grant,
            json!({ "u": initiator.user_id, "r": creator_role, "d": north }),
        )
        .await?;
        app.gql_ok(
            token,
            grant,
            json!({ "u": reviewer.user_id, "r": reviewer_role, "d": sales }),
        )
        .await?;
        app.gql_ok(
            token,
            grant,
            json!({ "u": observer.user_id, "r": observer_role, "d": sales }),
        )
        .await?;
        app.gql_ok(
            token,
            "mutation($id: ID!, $h: ID!) { updateDepartment(id: $id, input: { headUserId: $h }) { id } }",
            json!({ "id": sales, "h": head.user_id }),
        )
        .await?;

        let flow = app
            .gql_ok(
                token,
                "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id steps { name } } }",
                json!({ "i": { "name": "Two-step review", "steps": [
                    { "name": "Reviewer", "approverRole": "Reviewer", "requiredApprovals": 1, "slaHours": 24 },
                    { "name": "Head", "departmentHead": true, "slaHours": 48 }
                ] } }),
            )
            .await?;
        let flow_id = str_at(&flow, "/createApprovalFlow/id")?;
        let category = |code: &str, flow: Option<&str>| {
            json!({ "i": { "code": code, "name": code, "defaultPriority": 2, "approvalFlowId": flow,
                "customFieldsSchema": { "type": "object", "properties": { "customer": { "type": "string" } }, "additionalProperties": false } } })
        };
        let create_category =
            "mutation($i: CreateTaskCategoryInput!) { createTaskCategory(input: $i) { id } }";
        let reviewed = str_at(
            &app.gql_ok(token, create_category, category("REVIEWED", Some(&flow_id)))
                .await?,
            "/createTaskCategory/id",
        )?;
        let quick = str_at(
            &app.gql_ok(token, create_category, category("QUICK", None))
                .await?,
            "/createTaskCategory/id",
        )?;
        Ok(Self {
            app,
            admin,
            _sales: sales,
            north,
            initiator,
            executor,
            second_executor,
            confirmer,
            reviewer,
            head,
            observer,
            stranger,
            category: reviewed,
            quick_category: quick,
        })
    }

    pub async fn as_(&self, who: &Session, query: &str, variables: Value) -> anyhow::Result<Value> {
        self.app.gql(Some(&who.access), query, variables).await
    }

    pub async fn ok_as(
        &self,
        who: &Session,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        self.app.gql_ok(Some(&who.access), query, variables).await
    }

    /// A main task by the initiator, executed by the executor, confirmed by the confirmer.
    pub async fn draft(&self, category: &str, extra: Value) -> anyhow::Result<String> {
        let mut input = json!({
            "categoryId": category,
            "title": "Visit the customer",
            "keyPoints": "Bring the contract",
            "executorIds": [self.executor.user_id],
            "confirmerId": self.confirmer.user_id,
            "meritPoints": 10,
        });
        if let (Some(base), Some(more)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in more {
                base.insert(k.clone(), v.clone());
            }
        }
        let data = self
            .ok_as(&self.initiator, CREATE_TASK, json!({ "i": input }))
            .await?;
        str_at(&data, "/createTask/id")
    }

    /// A main task taken through both review steps.
    pub async fn approved(&self, extra: Value) -> anyhow::Result<String> {
        let id = self.draft(&self.category, extra).await?;
        self.ok_as(
            &self.initiator,
            "mutation($id: ID!) { submitTask(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await?;
        let approval = self.approval_of(&id).await?;
        self.decide(&self.reviewer, &approval, true, None).await?;
        self.decide(&self.head, &approval, true, None).await?;
        Ok(id)
    }

    pub async fn approval_of(&self, task: &str) -> anyhow::Result<String> {
        let data = self
            .ok_as(
                &self.initiator,
                "query($id: ID!) { task(id: $id) { approval { id } } }",
                json!({ "id": task }),
            )
            .await?;
        str_at(&data, "/task/approval/id")
    }

    pub async fn decide(
        &self,
        who: &Session,
        approval: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> anyhow::Result<Value> {
        self.as_(
            who,
            "mutation($a: ID!, $ok: Boolean!, $c: String) { decideApproval(approvalId: $a, approve: $ok, comment: $c) { id status progress { stepNumber stepCount } } }",
            json!({ "a": approval, "ok": approve, "c": comment }),
        )
        .await
    }
}

on_both_backends!(
    only_task_creators_start_main_tasks,
    review_runs_the_category_flow,
    subtasks_need_an_approved_parent_and_its_people,
    invisible_tasks_do_not_exist,
    progress_is_reported_by_executors_and_confirmed_by_the_confirmer,
    stale_versions_conflict_and_the_activity_log_is_atomic,
    bad_task_input_changes_nothing,
    comments_are_edited_and_deleted_by_their_authors,
    round_robin_assignment_stays_even_under_concurrency,
    least_loaded_assignment_picks_the_idlest,
    notifications_reach_the_right_inboxes,
    delegates_decide_on_behalf_and_conditions_pick_steps,
);

async fn company(backend: Backend) -> anyhow::Result<Option<Company>> {
    match TestApp::spawn_with(backend, &[]).await? {
        Some(app) => Ok(Some(Company::new(app).await?)),
        None => Ok(None),
    }
}

macro_rules! company_or_skip {
    ($backend:expr) => {
        match company($backend).await? {
            Some(c) => c,
            None => return Ok(()),
        }
    };
}

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
    let pending = "{ approvalsPendingForMe { id progress { stepNumber stepCount currentStepName pendingApprovers { id } } } }";
    let mine = c.ok_as(&c.reviewer, pending, json!({})).await?;
    assert_eq!(mine["approvalsPendingForMe"][0]["id"], approval.as_str());
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

    let activity = "query($id: ID!) { task(id: $id) { title version activity { action field oldValue newValue actor { id } } } }";
    let log = c.ok_as(&c.initiator, activity, json!({ "id": id })).await?;
    let entries = log["task"]["activity"]
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
        after["task"]["activity"].as_array().map(Vec::len),
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

async fn notifications_reach_the_right_inboxes(backend: Backend) -> anyhow::Result<()> {
    let c = company_or_skip!(backend);
    let id = c.approved(json!({})).await?;
    let inbox = "{ notifications(first: 50) { totalCount edges { node { id kind subjectId read } } } unreadNotificationCount }";
    let kinds = |v: &Value| -> Vec<String> {
        v["notifications"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["node"]["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let executor = c.ok_as(&c.executor, inbox, json!({})).await?;
    assert!(
        kinds(&executor).contains(&"ASSIGNED".to_owned()),
        "{executor}"
    );
    assert!(
        kinds(&executor).contains(&"REVIEW_DECIDED".to_owned()),
        "{executor}"
    );
    assert!(kinds(&c.ok_as(&c.reviewer, inbox, json!({})).await?)
        .contains(&"REVIEW_REQUESTED".to_owned()));
    assert!(
        kinds(&c.ok_as(&c.head, inbox, json!({})).await?).contains(&"REVIEW_REQUESTED".to_owned())
    );
    c.ok_as(
        &c.executor,
        "mutation($id: ID!) { reportTaskProgress(taskId: $id, progress: 50) { id } }",
        json!({ "id": id }),
    )
    .await?;
    assert!(kinds(&c.ok_as(&c.confirmer, inbox, json!({})).await?)
        .contains(&"PROGRESS_REPORTED".to_owned()));
    c.ok_as(
        &c.confirmer,
        "mutation($id: ID!) { addTaskComment(taskId: $id, body: \"Looks good\") { id } }",
        json!({ "id": id }),
    )
    .await?;
    let initiator = c.ok_as(&c.initiator, inbox, json!({})).await?;
    assert!(
        kinds(&initiator).contains(&"COMMENTED".to_owned()),
        "{initiator}"
    );
    // The stranger's inbox stays empty, and one cannot mark another's notifications read.
    assert_eq!(
        c.ok_as(&c.stranger, inbox, json!({})).await?["notifications"]["totalCount"],
        0
    );
    let someone_elses = executor["notifications"]["edges"][0]["node"]["id"].clone();
    let changed = c
        .ok_as(
            &c.stranger,
            "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }",
            json!({ "ids": [someone_elses] }),
        )
        .await?;
    assert_eq!(changed["markNotificationsRead"], 0);
    let unread = c.ok_as(&c.executor, inbox, json!({})).await?["unreadNotificationCount"]
        .as_u64()
        .unwrap_or_default();
    assert!(unread >= 3, "assigned, review decided, commented: {unread}");
    let all = c
        .ok_as(
            &c.executor,
            "mutation { markAllNotificationsRead }",
            json!({}),
        )
        .await?;
    assert_eq!(all["markAllNotificationsRead"].as_u64(), Some(unread));
    assert_eq!(
        c.ok_as(&c.executor, inbox, json!({})).await?["unreadNotificationCount"],
        0
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

/// The board: 50 main tasks with executors and department, 10 subtasks each with executors,
/// 5 comments each with authors, and the comment count, in a bounded number of statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_query_runs_a_bounded_number_of_statements() -> anyhow::Result<()> {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
            continue;
        };
        let admin = app.admin().await?;
        let mut counts = Vec::new();
        let mut seeded = 0;
        for target in [5usize, 50] {
            crate::board::seed_board(&app, &admin.user_id, target - seeded).await?;
            seeded = target;
            let before = app.state.db.statement_count();
            let data = app
                .gql_ok(Some(&admin.access), crate::board::BOARD, json!({}))
                .await?;
            let statements = app.state.db.statement_count() - before;
            assert_eq!(data["tasks"]["totalCount"], target as u64);
            let first = &data["tasks"]["edges"][0]["node"];
            assert_eq!(
                first["subtasks"]["edges"].as_array().map(Vec::len),
                Some(10)
            );
            assert_eq!(first["comments"]["edges"].as_array().map(Vec::len), Some(5));
            assert_eq!(first["comments"]["totalCount"], 6);
            assert!(first["executors"][0]["name"].is_string());
            assert!(first["department"]["name"].is_string());
            counts.push(statements);
        }
        println!("board statements on {backend:?}: {counts:?}");
        assert_eq!(
            counts[0], counts[1],
            "statement count grows with the page: {counts:?}"
        );
        assert!(counts[1] <= 10, "{counts:?}");
    }
    Ok(())
}

async fn upload(
    c: &Company,
    who: &Session,
    task: &str,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let operations = json!({
        "query": "mutation($t: ID!, $f: Upload!) { uploadTaskAttachment(taskId: $t, file: $f) { id filename contentType sizeBytes sha256 downloadUrl } }",
        "variables": { "t": task, "f": null }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.f"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    let response = c
        .app
        .http
        .post(c.app.url("/graphql"))
        .bearer_auth(&who.access)
        .header("graphql-preflight", "1")
        .multipart(form)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

on_both_backends!(attachments_are_typed_by_their_bytes_and_downloaded_by_link);

async fn attachments_are_typed_by_their_bytes_and_downloaded_by_link(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[("INTERLINK_MAX_UPLOAD_BYTES", "4096")]).await?
    else {
        return Ok(());
    };
    let c = Company::new(app).await?;
    let task = c.draft(&c.category, json!({})).await?;
    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec();
    let (status, body) = upload(&c, &c.executor, &task, "../../quote.pdf", pdf.clone()).await?;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let file = &body["data"]["uploadTaskAttachment"];
    assert_eq!(file["contentType"], "application/pdf", "{body}");
    assert_eq!(file["filename"], "quote.pdf");
    assert_eq!(file["sizeBytes"], pdf.len() as u64);

    let url = file["downloadUrl"].as_str().unwrap_or_default().to_owned();
    let downloaded = c.app.http.get(c.app.url(&url)).send().await?;
    assert_eq!(downloaded.status(), reqwest::StatusCode::OK);
    assert_eq!(
        downloaded
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    assert_eq!(downloaded.bytes().await?.to_vec(), pdf);
    let tampered = c.app.http.get(c.app.url(&format!("{url}x"))).send().await?;
    assert_eq!(tampered.status(), reqwest::StatusCode::UNAUTHORIZED);
    let access_token_as_link = format!(
        "/files/{}?token={}",
        file["id"].as_str().unwrap_or_default(),
        c.initiator.access
    );
    assert_eq!(
        c.app
            .http
            .get(c.app.url(&access_token_as_link))
            .send()
            .await?
            .status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    let listed = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { attachments { filename uploadedBy { id } } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        listed["task"]["attachments"][0]["uploadedBy"]["id"],
        c.executor.user_id.as_str()
    );

    // Refusals: empty, executable, too large, from someone off the task or unable to see it.
    let (_, empty) = upload(&c, &c.executor, &task, "empty.txt", Vec::new()).await?;
    assert_eq!(error_code(&empty), Some("BAD_USER_INPUT"), "{empty}");
    let (_, elf) = upload(
        &c,
        &c.executor,
        &task,
        "tool.pdf",
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0rest".to_vec(),
    )
    .await?;
    assert_eq!(error_code(&elf), Some("BAD_USER_INPUT"), "{elf}");
    let (status, _) = upload(&c, &c.executor, &task, "big.txt", vec![b'a'; 8192]).await?;
    assert_eq!(status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let (_, observer) = upload(&c, &c.observer, &task, "note.txt", b"hello".to_vec()).await?;
    assert_eq!(error_code(&observer), Some("FORBIDDEN"), "{observer}");
    let (_, stranger) = upload(&c, &c.stranger, &task, "note.txt", b"hello".to_vec()).await?;
    assert_eq!(error_code(&stranger), Some("NOT_FOUND"), "{stranger}");
    let listed = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { attachments { id } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        listed["task"]["attachments"].as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}

on_both_backends!(
    review_cannot_be_bypassed,
    cancelling_withdraws_the_approval,
    one_person_is_one_seat
);

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
