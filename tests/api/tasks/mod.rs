//! Tasks and the approval engine end to end: the seed's rules, visibility, the activity log,
//! assignment, progress, merit, cash output, notifications and the statement bound.

use serde_json::{json, Value};

use crate::helpers::{str_at, unique_email, Backend, Session, TestApp};

/// Every fixture person's password.
pub const PASSWORD: &str = "a good password";

/// The argon2 hash of `PASSWORD`, computed once per test process: hashing is what a fixture
/// of eight people would spend most of its time on.
async fn password_hash() -> anyhow::Result<&'static str> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let hash = HASH
        .get_or_try_init(|| async {
            interlink::auth::password::Passwords::unmetered()
                .hash(PASSWORD.to_owned())
                .await
                .map_err(|e| anyhow::anyhow!("hashing the fixture password: {e:?}"))
        })
        .await?;
    Ok(hash.as_str())
}

/// A person of `department`, inserted directly with the shared hash, and signed in with an access
/// token minted by the node's own keys (they can sign in with `PASSWORD` too). The session has no
/// refresh token: the identity tests exercise those through the API.
pub async fn person(app: &TestApp, department: &str) -> anyhow::Result<Session> {
    use sea_orm::ActiveModelTrait;
    let email = unique_email("person");
    let now = chrono::Utc::now();
    let user = entities::user::ActiveModel {
        id: sea_orm::Set(uuid::Uuid::now_v7()),
        email_normalized: sea_orm::Set(email.to_lowercase()),
        email: sea_orm::Set(email.clone()),
        name: sea_orm::Set(email),
        department_id: sea_orm::Set(Some(uuid::Uuid::parse_str(department)?)),
        password_hash: sea_orm::Set(password_hash().await?.to_owned()),
        is_active: sea_orm::Set(true),
        token_version: sea_orm::Set(0),
        created_at: sea_orm::Set(now),
        updated_at: sea_orm::Set(now),
    }
    .insert(&app.state.db.conn)
    .await?;
    let access = app
        .state
        .jwt
        .issue(user.id, user.token_version)
        .map_err(|e| anyhow::anyhow!("issuing a fixture token: {e:?}"))?;
    Ok(Session {
        access,
        refresh: String::new(),
        user_id: user.id.to_string(),
    })
}

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

        let initiator = person(&app, &north).await?;
        let executor = person(&app, &north).await?;
        let second_executor = person(&app, &north).await?;
        let confirmer = person(&app, &north).await?;
        let reviewer = person(&app, &sales).await?;
        let head = person(&app, &sales).await?;
        let observer = person(&app, &sales).await?;
        let stranger = person(&app, &elsewhere).await?;

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

pub(crate) async fn company(backend: Backend) -> anyhow::Result<Option<Company>> {
    match TestApp::spawn_with(backend, &[]).await? {
        Some(app) => Ok(Some(Company::new(app).await?)),
        None => Ok(None),
    }
}

macro_rules! company_or_skip {
    ($backend:expr) => {
        match $crate::tasks::company($backend).await? {
            Some(c) => c,
            None => return Ok(()),
        }
    };
}

mod assignment;
mod attachments;
mod editing;
mod notifications;
mod progress;
mod review;
mod staffing;
mod statements;
mod visibility;
