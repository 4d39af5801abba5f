//! The SQL door for BI tools: the real `psql` as the BI client, reading exactly what GraphQL
//! gives the same app, unable to write or reach anything else, and shut out once revoked.
//! PostgreSQL only (skipped without `TEST_DATABASE_URL`), but for SQLite's refusal.

use std::collections::BTreeSet;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set, Statement};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{error_code, str_at, unique_email, Backend, TestApp};

const CREATE_APP: &str =
    "mutation($i: CreateAppInput!) { createApp(input: $i) { id serviceUserId } }";
const CREATE_KEY: &str = "mutation($a: ID!) { createApiKey(appId: $a, name: \"bi\") { secret } }";
const CREATE_BI: &str = "mutation($a: ID!) { createBiAccess(appId: $a) { appId host port database user password createdAt } }";
const REVOKE_BI: &str = "mutation($a: ID!) { revokeBiAccess(appId: $a) }";
const ALL_SCOPES: &[&str] = &[
    "REPORTS_READ",
    "TASKS_READ",
    "FINANCE_READ",
    "APPROVALS_READ",
];

struct Partner {
    id: String,
    service_user: Uuid,
    key: String,
}

async fn partner(
    app: &TestApp,
    admin: &str,
    scopes: &[&str],
    department: Option<&str>,
) -> anyhow::Result<Partner> {
    let created = app
        .gql_ok(
            Some(admin),
            CREATE_APP,
            json!({ "i": { "name": "BI", "scopes": scopes, "departmentId": department } }),
        )
        .await?;
    let id = str_at(&created, "/createApp/id")?;
    let key = app
        .gql_ok(Some(admin), CREATE_KEY, json!({ "a": id }))
        .await?;
    Ok(Partner {
        service_user: Uuid::parse_str(&str_at(&created, "/createApp/serviceUserId")?)?,
        key: str_at(&key, "/createApiKey/secret")?,
        id,
    })
}

/// The psql URL of a `createBiAccess` answer.
fn bi_url(answer: &Value) -> anyhow::Result<String> {
    let a = &answer["createBiAccess"];
    Ok(format!(
        "postgresql://{}:{}@{}:{}/{}",
        str_at(a, "/user")?,
        str_at(a, "/password")?,
        str_at(a, "/host")?,
        a["port"],
        str_at(a, "/database")?
    ))
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `psql -X -At -v ON_ERROR_STOP=1 -c ...`: each command its own transaction, stopping at the
/// first error.
async fn psql(url: &str, commands: &[&str]) -> anyhow::Result<Run> {
    let mut command = tokio::process::Command::new("psql");
    command
        .arg(url)
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
        .env("PGCONNECT_TIMEOUT", "10");
    for c in commands {
        command.arg("-c").arg(c);
    }
    let out = command.output().await?;
    Ok(Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

async fn ids_over_psql(url: &str, sql: &str) -> anyhow::Result<BTreeSet<String>> {
    let run = psql(url, &[sql]).await?;
    anyhow::ensure!(run.ok, "{sql}: {}", run.stderr);
    Ok(run.stdout.lines().map(str::to_owned).collect())
}

/// Roles outlive the test database: drop the ones `body` made, whatever its outcome (a failed
/// assertion included).
async fn dropping_roles(
    app: &TestApp,
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    use futures_util::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    let cleanup = app
        .state
        .db
        .conn
        .execute_unprepared(
            "DO $$ DECLARE r record; BEGIN \
             FOR r IN SELECT role_name FROM public.bi_access LOOP \
             PERFORM public.bi_drop_role(r.role_name); END LOOP; END $$",
        )
        .await;
    match outcome {
        Ok(result) => {
            result?;
            cleanup?;
            Ok(())
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn department(app: &TestApp, admin: &str, name: &str) -> anyhow::Result<String> {
    let d = app
        .gql_ok(
            Some(admin),
            "mutation($n: String!) { createDepartment(input: { name: $n }) { id } }",
            json!({ "n": name }),
        )
        .await?;
    str_at(&d, "/createDepartment/id")
}

async fn insert_task(
    app: &TestApp,
    category: Uuid,
    department: Option<Uuid>,
    parent: Option<Uuid>,
    initiator: Uuid,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let id = Uuid::now_v7();
    entities::task::ActiveModel {
        id: Set(id),
        category_id: Set(category),
        parent_id: Set(parent),
        title: Set(format!("task {id}")),
        key_points: Set(String::new()),
        initiator_id: Set(initiator),
        department_id: Set(department),
        is_team_task: Set(false),
        confirmer_id: Set(None),
        has_cash_output: Set(false),
        cash_output_minor: Set(None),
        currency: Set("CNY".into()),
        start_at: Set(None),
        deadline: Set(None),
        priority: Set(2),
        progress: Set(0),
        reported_progress: Set(None),
        merit_points: Set(0),
        review_status: Set("DRAFT".into()),
        rejection_reason: Set(None),
        status: Set("OPEN".into()),
        custom_fields: Set(json!({})),
        version: Set(1),
        approval_instance_id: Set(None),
        overdue: Set(false),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.state.db.conn)
    .await?;
    Ok(id)
}

async fn insert_approval(
    app: &TestApp,
    flow: Uuid,
    department: Option<Uuid>,
    initiator: Uuid,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let id = Uuid::now_v7();
    entities::approval_instance::ActiveModel {
        id: Set(id),
        flow_id: Set(flow),
        flow_version: Set(1),
        subject_type: Set("business_transaction".into()),
        subject_id: Set(Uuid::now_v7()),
        subject_department_id: Set(department),
        initiator_id: Set(initiator),
        status: Set("APPROVED".into()),
        step_positions: Set(json!([0])),
        current_index: Set(0),
        facts: Set(json!({})),
        started_at: Set(now),
        step_started_at: Set(now),
        decided_at: Set(Some(now)),
    }
    .insert(&app.state.db.conn)
    .await?;
    entities::approval_decision::ActiveModel {
        id: Set(Uuid::now_v7()),
        instance_id: Set(id),
        step_index: Set(0),
        step_name: Set("Check".into()),
        accountable_user_id: Set(initiator),
        decided_by: Set(initiator),
        approve: Set(true),
        comment: Set(None),
        decided_at: Set(now),
    }
    .insert(&app.state.db.conn)
    .await?;
    Ok(id)
}

/// The ids the database holds for `sql`, read as the owner (no row-level security).
async fn ids_as_owner(app: &TestApp, sql: &str) -> anyhow::Result<BTreeSet<String>> {
    let rows = app
        .state
        .db
        .conn
        .query_all(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql.to_owned(),
        ))
        .await?;
    rows.iter()
        .map(|r| Ok(r.try_get_by_index::<Uuid>(0)?.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bi_role_sees_what_graphql_gives_the_app() -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    dropping_roles(&app, sees_what_graphql_gives(&app)).await
}

async fn sees_what_graphql_gives(app: &TestApp) -> anyhow::Result<()> {
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let a = department(app, token, "North").await?;
    let b = department(app, token, "South").await?;
    let (ua, ub) = (Uuid::parse_str(&a)?, Uuid::parse_str(&b)?);
    let app_a = partner(app, token, ALL_SCOPES, Some(&a)).await?;
    let app_b = partner(app, token, ALL_SCOPES, Some(&b)).await?;
    let category = app
        .gql_ok(
            Some(token),
            "mutation { createTaskCategory(input: { code: \"OPS\", name: \"Ops\", defaultPriority: 2 }) { id } }",
            json!({}),
        )
        .await?;
    let category = Uuid::parse_str(&str_at(&category, "/createTaskCategory/id")?)?;
    let person = Uuid::parse_str(&admin.user_id)?;
    let bystander = app
        .create_user(token, &unique_email("bystander"), "bystander-password-1")
        .await?;

    // Tasks: one per department; a subtask of North's filed nowhere (visible through its
    // parent); one in South started by app A's service account (visible to A as initiator);
    // one in no department at all (nobody's).
    let north = insert_task(app, category, Some(ua), None, person).await?;
    let under_north = insert_task(app, category, None, Some(north), person).await?;
    let south = insert_task(app, category, Some(ub), None, person).await?;
    let by_a = insert_task(app, category, Some(ub), None, app_a.service_user).await?;
    insert_task(app, category, None, None, person).await?;
    let ids = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<BTreeSet<_>>();
    let expected_tasks = [ids(&[north, under_north, by_a]), ids(&[south, by_a])];

    // Journal lines: spending in each cost centre, credited to a line with none.
    for (code, kind) in [("1000", "ASSET"), ("6000", "EXPENSE")] {
        app.gql_ok(
            Some(token),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code } }",
            json!({ "i": { "code": code, "name": code, "type": kind } }),
        )
        .await?;
    }
    for (centre, amount) in [(&a, "10.00"), (&b, "20.00"), (&a, "30.00")] {
        app.gql_ok(
            Some(token),
            "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) { id } }",
            json!({ "i": { "memo": "spend", "postingDate": "2026-11-15", "lines": [
                { "accountCode": "6000", "debit": amount, "costCenterId": centre },
                { "accountCode": "1000", "credit": amount }
            ] } }),
        )
        .await?;
    }

    // Approvals: one per subject department, one with none, one in North started by app B.
    let flow = app
        .gql_ok(
            Some(token),
            "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id } }",
            json!({ "i": { "name": "Spend", "steps": [{ "name": "Check", "approverUserId": admin.user_id }] } }),
        )
        .await?;
    let flow = Uuid::parse_str(&str_at(&flow, "/createApprovalFlow/id")?)?;
    let mut approvals = vec![
        insert_approval(app, flow, Some(ua), person).await?,
        insert_approval(app, flow, Some(ub), person).await?,
        insert_approval(app, flow, None, person).await?,
        insert_approval(app, flow, Some(ua), app_b.service_user).await?,
    ];
    approvals.sort();

    for ((partner, centre), expected_tasks) in
        [(&app_a, &a), (&app_b, &b)].into_iter().zip(expected_tasks)
    {
        let answer = app
            .gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
            .await?;
        let url = bi_url(&answer)?;

        let listed = app
            .gql_ok(
                Some(&partner.key),
                "{ tasks(first: 100) { nodes { id } } }",
                json!({}),
            )
            .await?;
        let graphql: BTreeSet<String> = listed["tasks"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["id"].as_str().map(str::to_owned))
            .collect();
        let sql = ids_over_psql(&url, "SELECT id FROM bi.tasks").await?;
        assert_eq!(sql, graphql, "bi.tasks against the tasks list");
        assert_eq!(sql, expected_tasks);
        let executors =
            ids_over_psql(&url, "SELECT DISTINCT task_id FROM bi.task_executors").await?;
        assert!(executors.is_subset(&sql));

        // Department finance.read: the lines of the app's cost-centre subtree, no others and
        // none without a cost centre. (GraphQL refuses department-scoped finance.read in this
        // tree, so the expected rows come from what was posted.)
        let expected = ids_as_owner(
            app,
            &format!("SELECT id FROM journal_lines WHERE cost_center_id = '{centre}'"),
        )
        .await?;
        assert_eq!(expected.len(), if centre == &a { 2 } else { 1 });
        assert_eq!(
            ids_over_psql(&url, "SELECT id FROM bi.journal_lines").await?,
            expected
        );
        let codes = psql(&url, &["SELECT code FROM bi.accounts ORDER BY code"]).await?;
        assert_eq!(codes.stdout, "1000\n6000\n", "{}", codes.stderr);

        // Approvals: each one GraphQL's `approval(id)` shows the app, and no other.
        let mut shown = BTreeSet::new();
        for id in &approvals {
            let one = app
                .gql_ok(
                    Some(&partner.key),
                    "query($id: ID!) { approval(id: $id) { id } }",
                    json!({ "id": id }),
                )
                .await?;
            if let Some(id) = one["approval"]["id"].as_str() {
                shown.insert(id.to_owned());
            }
        }
        let sql = ids_over_psql(&url, "SELECT id FROM bi.approvals").await?;
        assert!(!sql.is_empty());
        assert_eq!(sql, shown, "bi.approvals against approval(id)");
        assert_eq!(
            ids_over_psql(
                &url,
                "SELECT DISTINCT approval_id FROM bi.approval_decisions"
            )
            .await?,
            sql
        );

        // The people its records name (the admin initiated every task), nobody else, and
        // nobody's department without PROFILES_READ.
        let named = ids_over_psql(&url, "SELECT id FROM bi.users").await?;
        assert!(named.contains(&admin.user_id), "{named:?}");
        assert!(
            !named.contains(&bystander),
            "a person no record names: {named:?}"
        );
        let users = psql(
            &url,
            &["SELECT count(*), count(department_id) FROM bi.users"],
        )
        .await?;
        assert!(users.ok, "{}", users.stderr);
        let counts: Vec<i64> = users
            .stdout
            .trim()
            .split('|')
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        assert!(counts[0] >= 1 && counts[1] == 0, "{counts:?}");
        let departments = ids_over_psql(&url, "SELECT id FROM bi.departments").await?;
        assert!(departments.contains(&a) && departments.contains(&b));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bi_role_cannot_write_or_escape() -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    dropping_roles(&app, cannot_write_or_escape(&app)).await
}

async fn cannot_write_or_escape(app: &TestApp) -> anyhow::Result<()> {
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let one = partner(app, token, ALL_SCOPES, None).await?;
    let other = partner(app, token, ALL_SCOPES, None).await?;
    let url = bi_url(
        &app.gql_ok(Some(token), CREATE_BI, json!({ "a": one.id }))
            .await?,
    )?;
    let other_role = str_at(
        &app.gql_ok(Some(token), CREATE_BI, json!({ "a": other.id }))
            .await?,
        "/createBiAccess/user",
    )?;

    // The door works, through a schema the role may not use: security_invoker views do not
    // need USAGE on the base tables' schema, only SELECT on what they read.
    let fine = psql(
        &url,
        &["SELECT has_schema_privilege('public', 'USAGE'), count(*) FROM bi.users"],
    )
    .await?;
    assert!(fine.ok, "{}", fine.stderr);
    assert!(fine.stdout.starts_with("f|"), "{}", fine.stdout);

    // Every view is security_invoker (else it would read as its owner, past every policy).
    let views = app
        .state
        .db
        .conn
        .query_one(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE reloptions @> ARRAY['security_invoker=true']), \
             count(*) FROM pg_class WHERE relnamespace = 'bi'::regnamespace AND relkind = 'v'",
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    let (invoker, all): (i64, i64) = (views.try_get_by_index(0)?, views.try_get_by_index(1)?);
    assert!(
        all >= 9 && invoker == all,
        "{invoker} of {all} views are security_invoker"
    );

    // Writes are refused by privilege, not only by the read-only default the role starts with.
    let writable = "SET default_transaction_read_only = off";
    let set_role_other = format!("SET ROLE {other_role}");
    let refused: Vec<(&str, &str)> = vec![
        (
            "INSERT INTO bi.tasks (id) VALUES (gen_random_uuid())",
            "permission denied for view tasks",
        ),
        (
            "DELETE FROM bi.departments",
            "permission denied for view departments",
        ),
        (
            "SELECT * FROM public.tasks",
            "permission denied for schema public",
        ),
        ("SELECT * FROM tasks", "does not exist"),
        (
            "SELECT email FROM bi.users",
            "column \"email\" does not exist",
        ),
        (
            "SELECT email FROM public.users",
            "permission denied for schema public",
        ),
        ("SELECT password_hash FROM bi.users", "does not exist"),
        ("SET ROLE postgres", "permission denied to set role"),
        (&set_role_other, "permission denied to set role"),
        ("CREATE TABLE x ()", "ERROR"),
        (
            "CREATE TABLE public.x ()",
            "permission denied for schema public",
        ),
        ("CREATE TABLE bi.x ()", "permission denied for schema bi"),
        (
            "CREATE TEMP TABLE x ()",
            "permission denied to create temporary tables",
        ),
        ("CREATE SCHEMA mine", "permission denied for database"),
        ("SELECT * FROM bi_access", "does not exist"),
        (
            "SELECT * FROM public.bi_access",
            "permission denied for schema public",
        ),
        (
            "SELECT * FROM public.bi_visible_task_ids()",
            "permission denied for schema public",
        ),
    ];
    for (statement, error) in refused {
        let run = psql(&url, &[writable, statement]).await?;
        assert!(!run.ok, "{statement} succeeded: {}", run.stdout);
        assert!(
            run.stderr.contains(error),
            "{statement}: expected {error:?}, got {}",
            run.stderr
        );
    }
    // And without lifting the default, a write stops even earlier.
    let run = psql(&url, &["CREATE TABLE x ()"]).await?;
    assert!(!run.ok);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ends_the_door() -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    dropping_roles(&app, revoking(&app)).await
}

async fn revoking(app: &TestApp) -> anyhow::Result<()> {
    use sqlx::Connection;

    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let partner = partner(app, token, ALL_SCOPES, None).await?;
    let answer = app
        .gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    let url = bi_url(&answer)?;
    let user = str_at(&answer, "/createBiAccess/user")?;
    assert_eq!(user, format!("bi_{}", partner.id.replace('-', "")));
    let info = app
        .gql_ok(
            Some(token),
            "query($id: ID!) { app(id: $id) { biAccess { user createdAt } } }",
            json!({ "id": partner.id }),
        )
        .await?;
    assert_eq!(info["app"]["biAccess"]["user"], user.as_str());

    // Asking again rotates the password and keeps the role.
    let again = app
        .gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    assert_eq!(str_at(&again, "/createBiAccess/user")?, user);
    assert_ne!(
        str_at(&again, "/createBiAccess/password")?,
        str_at(&answer, "/createBiAccess/password")?
    );

    // A session open before the revocation.
    let mut open = sqlx::PgConnection::connect(&url).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM bi.departments")
        .fetch_one(&mut open)
        .await?;
    assert!(n >= 0);

    let revoked = app
        .gql_ok(Some(token), REVOKE_BI, json!({ "a": partner.id }))
        .await?;
    assert_eq!(revoked["revokeBiAccess"], true);
    let after = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM bi.departments")
        .fetch_one(&mut open)
        .await;
    assert!(after.is_err(), "the open session still reads: {after:?}");

    let run = psql(&url, &["SELECT 1"]).await?;
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains(&format!("role \"{user}\" does not exist")),
        "{}",
        run.stderr
    );
    let info = app
        .gql_ok(
            Some(token),
            "query($id: ID!) { app(id: $id) { biAccess { user } } }",
            json!({ "id": partner.id }),
        )
        .await?;
    assert!(info["app"]["biAccess"].is_null());
    let twice = app
        .gql_ok(Some(token), REVOKE_BI, json!({ "a": partner.id }))
        .await?;
    assert_eq!(twice["revokeBiAccess"], false);

    // Taking REPORTS_READ away ends the door too.
    let answer = app
        .gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    let url = bi_url(&answer)?;
    assert!(psql(&url, &["SELECT 1"]).await?.ok);
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $i: UpdateAppInput!) { updateApp(id: $id, input: $i) { id } }",
        json!({ "id": partner.id, "i": { "scopes": ["TASKS_READ"] } }),
    )
    .await?;
    let run = psql(&url, &["SELECT 1"]).await?;
    assert!(
        !run.ok && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );

    // So does deactivating the app.
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $i: UpdateAppInput!) { updateApp(id: $id, input: $i) { id } }",
        json!({ "id": partner.id, "i": { "scopes": ALL_SCOPES } }),
    )
    .await?;
    let answer = app
        .gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    let url = bi_url(&answer)?;
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $i: UpdateAppInput!) { updateApp(id: $id, input: $i) { id } }",
        json!({ "id": partner.id, "i": { "active": false } }),
    )
    .await?;
    let run = psql(&url, &["SELECT 1"]).await?;
    assert!(
        !run.ok && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    let inactive = app
        .gql(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    assert_eq!(error_code(&inactive), Some("BAD_USER_INPUT"), "{inactive}");

    // A role dropped behind Interlink's back (the mapping kept) is made again on request.
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $i: UpdateAppInput!) { updateApp(id: $id, input: $i) { id } }",
        json!({ "id": partner.id, "i": { "active": true } }),
    )
    .await?;
    app.gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    app.state
        .db
        .conn
        .execute_unprepared(&format!("SELECT public.bi_drop_role('{user}')"))
        .await?;
    let answer = app
        .gql_ok(Some(token), CREATE_BI, json!({ "a": partner.id }))
        .await?;
    let run = psql(&bi_url(&answer)?, &["SELECT count(*) FROM bi.departments"]).await?;
    assert!(run.ok, "{}", run.stderr);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_managers_give_bi_access_to_apps_with_reports_read() -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    dropping_roles(&app, only_managers(&app)).await
}

async fn only_managers(app: &TestApp) -> anyhow::Result<()> {
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let with = partner(app, token, ALL_SCOPES, None).await?;
    let without = partner(app, token, &["TASKS_READ"], None).await?;

    let email = unique_email("bi");
    app.create_user(token, &email, "a long enough password")
        .await?;
    let someone = app.login(&email, "a long enough password").await?;
    for (who, code) in [
        (someone.access.as_str(), "FORBIDDEN"),
        (with.key.as_str(), "FORBIDDEN"),
    ] {
        for mutation in [CREATE_BI, REVOKE_BI] {
            let body = app
                .gql(Some(who), mutation, json!({ "a": with.id }))
                .await?;
            assert_eq!(error_code(&body), Some(code), "{body}");
        }
    }
    let body = app
        .gql(Some(token), CREATE_BI, json!({ "a": without.id }))
        .await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body.to_string().contains("REPORTS_READ"), "{body}");
    let body = app
        .gql(Some(token), CREATE_BI, json!({ "a": Uuid::now_v7() }))
        .await?;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_door_needs_postgresql() -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let with = partner(&app, token, ALL_SCOPES, None).await?;
    let body = app
        .gql(Some(token), CREATE_BI, json!({ "a": with.id }))
        .await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body.to_string().contains("needs PostgreSQL"), "{body}");
    let info = app
        .gql_ok(
            Some(token),
            "query($id: ID!) { app(id: $id) { biAccess { user } } }",
            json!({ "id": with.id }),
        )
        .await?;
    assert!(info["app"]["biAccess"].is_null());
    let revoked = app
        .gql_ok(Some(token), REVOKE_BI, json!({ "a": with.id }))
        .await?;
    assert_eq!(revoked["revokeBiAccess"], false);
    Ok(())
}
