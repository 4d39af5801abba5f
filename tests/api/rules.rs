//! Rules that must fail closed, text that must not leak, sums that must not wrap, reads that
//! must be paged: approval conditions, stored enums, routed failures, type configuration, the
//! submit permission, ledger totals past `i64::MAX`, and the task activity log.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{error_code, poll_until, str_at, Backend, Session, TestApp};
use crate::on_both_backends;
use crate::tasks::person;

on_both_backends!(
    conditions_without_an_exact_fact_keep_their_step,
    a_damaged_budget_policy_stops_postings,
    routed_failures_tell_the_submitter_a_stable_message,
    type_configuration_is_for_administrators_and_operators,
    submitting_needs_business_submit,
    ledger_totals_past_i64_max_are_exact,
    activity_is_paged_and_edits_record_excerpts
);

const SUBMIT: &str = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status error approval { progress { stepCount } } } }";
const CREATE_TYPE: &str =
    "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }";

async fn department(app: &TestApp, admin: &Session, name: &str) -> anyhow::Result<String> {
    let created = app
        .gql_ok(
            Some(&admin.access),
            "mutation($i: CreateDepartmentInput!) { createDepartment(input: $i) { id } }",
            json!({ "i": { "name": name } }),
        )
        .await?;
    str_at(&created, "/createDepartment/id")
}

/// Gives `user` a new role holding `permissions`, over `department` (everywhere when `None`).
async fn grant(
    app: &TestApp,
    admin: &Session,
    user: &Session,
    permissions: &[&str],
    department: Option<&str>,
) -> anyhow::Result<()> {
    let role = app
        .gql_ok(
            Some(&admin.access),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": format!("role {}", uuid::Uuid::now_v7()), "permissions": permissions } }),
        )
        .await?;
    app.gql_ok(
        Some(&admin.access),
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": user.user_id, "r": str_at(&role, "/createRole/id")?, "d": department }),
    )
    .await?;
    Ok(())
}

async fn transaction_count(app: &TestApp) -> anyhow::Result<usize> {
    use sea_orm::EntityTrait;
    Ok(entities::business_transaction::Entity::find()
        .all(&app.state.db.conn)
        .await?
        .len())
}

// ------------------------------------------------------------------ approval conditions

async fn conditions_without_an_exact_fact_keep_their_step(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let ops = department(&app, &admin, "Ops").await?;
    let cfo = person(&app, &ops).await?;
    let flow = app
        .gql_ok(
            token,
            "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id } }",
            json!({ "i": { "name": "Big spend", "steps": [{ "name": "CFO", "approverUserId": cfo.user_id,
                "condition": { "field": "amount", "op": "GTE", "value": "10000" } }] } }),
        )
        .await?;
    app.gql_ok(
        token,
        CREATE_TYPE,
        json!({ "i": { "code": "SPEND", "name": "Spend", "route": "DATA_PROCESS",
            "approvalFlowId": str_at(&flow, "/createApprovalFlow/id")?,
            "payloadSchema": { "type": "object" } } }),
    )
    .await?;
    let cases = [
        ("small", json!({ "amount": "9999.99" }), false),
        ("small-integer", json!({ "amount": 5000 }), false),
        ("big", json!({ "amount": "20000" }), true),
        ("big-integer", json!({ "amount": 20000 }), true),
        // Not exact (a JSON fraction goes through a binary float), or not a decimal at all, or
        // absent: nothing shows the CFO is not needed, so the step stays.
        ("fraction", json!({ "amount": 20000.5 }), true),
        ("small-fraction", json!({ "amount": 5000.5 }), true),
        ("grouped", json!({ "amount": "20,000" }), true),
        ("spaced", json!({ "amount": " 20000" }), true),
        ("object", json!({ "amount": { "value": "20000" } }), true),
        ("missing", json!({ "note": "no amount" }), true),
    ];
    for (key, payload, needs_cfo) in cases {
        let submitted = app
            .gql_ok(
                token,
                SUBMIT,
                json!({ "i": { "type": "SPEND", "idempotencyKey": key, "payload": payload } }),
            )
            .await?;
        let status = &submitted["submitTransaction"]["status"];
        if needs_cfo {
            assert_eq!(status, "PENDING_APPROVAL", "{key}: {submitted}");
            assert_eq!(
                submitted["submitTransaction"]["approval"]["progress"]["stepCount"], 1,
                "{key}: {submitted}"
            );
        } else {
            // Approved at once: it went straight on to its route.
            assert_eq!(status, "EXECUTING", "{key}: {submitted}");
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ stored enums

async fn a_damaged_budget_policy_stops_postings(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let books = Books::open(&app, &admin).await?;
    app.gql_ok(
        token,
        "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
        json!({ "i": { "costCenterId": books.department, "accountCode": "6000", "period": "2026-11", "amount": "100.00", "policy": "STOP" } }),
    )
    .await?;
    let spend = |amount: &str| {
        json!({ "i": { "memo": "spend", "postingDate": "2026-11-15", "lines": [
            { "accountCode": "6000", "debit": amount, "costCenterId": books.department },
            { "accountCode": "1000", "credit": amount }
        ] } })
    };
    let refused = app.gql(token, POST, spend("150.00")).await?;
    assert_eq!(error_code(&refused), Some("CONFLICT"), "{refused}");

    use sea_orm::ConnectionTrait;
    for damaged in ["stop", "IGNORED", ""] {
        app.state
            .db
            .conn
            .execute_unprepared(&format!("UPDATE budgets SET policy = '{damaged}'"))
            .await?;
        let still_refused = app.gql(token, POST, spend("150.00")).await?;
        assert_eq!(
            error_code(&still_refused),
            Some("CONFLICT"),
            "policy {damaged:?}: {still_refused}"
        );
    }
    let within = app.gql_ok(token, POST, spend("50.00")).await?;
    assert!(within["postJournalEntry"]["id"].is_string(), "{within}");
    let trial = app.gql_ok(token, TRIAL, json!({})).await?;
    assert_eq!(trial["trialBalance"]["totalDebit"], "50.00", "{trial}");
    Ok(())
}

// ------------------------------------------------------------------ what clients read

async fn routed_failures_tell_the_submitter_a_stable_message(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "100"),
        ],
    )
    .await?
    else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let ops = department(&app, &admin, "Ops").await?;
    let submitter = person(&app, &ops).await?;
    grant(&app, &admin, &submitter, &["business.submit"], None).await?;
    let refusing = crate::jobs::Receiver::answering(
        false,
        Duration::ZERO,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?;
    app.gql_ok(
        Some(&admin.access),
        CREATE_TYPE,
        json!({ "i": { "code": "PICKY", "name": "Picky", "route": "APP_FORWARD", "forwardUrl": refusing.url, "payloadSchema": { "type": "object" } } }),
    )
    .await?;
    let submitted = app
        .gql_ok(
            Some(&submitter.access),
            "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id result } }",
            json!({ "i": { "type": "PICKY", "idempotencyKey": "p1", "payload": {} } }),
        )
        .await?;
    let id = str_at(&submitted, "/submitTransaction/id")?;
    let job = str_at(&submitted, "/submitTransaction/result/jobId")?;
    let read = "query($id: ID!) { transaction(id: $id) { status error history { status note } } }";
    poll_until(
        Duration::from_secs(20),
        "the refused delivery to fail",
        || {
            let (token, variables) = (submitter.access.clone(), json!({ "id": id }));
            let app = &app;
            async move {
                let seen = app.gql_ok(Some(&token), read, variables).await?;
                Ok(seen["transaction"]["status"] == "FAILED")
            }
        },
    )
    .await?;
    let failed = app
        .gql_ok(Some(&submitter.access), read, json!({ "id": id }))
        .await?;
    assert_eq!(
        failed["transaction"]["error"], "delivery to the partner system failed",
        "{failed}"
    );
    let text = failed.to_string();
    for leak in ["422", "Unprocessable", "127.0.0.1", "receiver"] {
        assert!(
            !text.contains(leak),
            "{leak:?} reached the submitter: {text}"
        );
    }
    // The operator sees what happened through the job.
    let job = app
        .gql_ok(
            Some(&admin.access),
            "query($id: ID!) { job(id: $id) { state lastError } }",
            json!({ "id": job }),
        )
        .await?;
    assert!(
        job["job"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("422")),
        "{job}"
    );
    Ok(())
}

async fn type_configuration_is_for_administrators_and_operators(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let ops = department(&app, &admin, "Ops").await?;
    let (plain, operator, submitter) = (
        person(&app, &ops).await?,
        person(&app, &ops).await?,
        person(&app, &ops).await?,
    );
    grant(&app, &admin, &operator, &["scheduler.manage"], None).await?;
    grant(&app, &admin, &submitter, &["business.submit"], None).await?;
    for (code, kind) in [("1000", "ASSET"), ("4000", "REVENUE")] {
        app.gql_ok(
            Some(&admin.access),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code } }",
            json!({ "i": { "code": code, "name": code, "type": kind } }),
        )
        .await?;
    }
    app.gql_ok(
        Some(&admin.access),
        CREATE_TYPE,
        json!({ "i": { "code": "NOTE", "name": "Note", "route": "APP_FORWARD",
            "forwardUrl": "http://partner.internal:8443/hook?token=s3cret", "payloadSchema": { "type": "object" } } }),
    )
    .await?;
    app.gql_ok(
        Some(&admin.access),
        CREATE_TYPE,
        json!({ "i": { "code": "SALE", "name": "Sale", "route": "FINANCE_POSTING",
            "payloadSchema": { "type": "object" },
            "postingRule": { "lines": [
                { "account": "1000", "side": "DEBIT", "amountField": "amount" },
                { "account": "4000", "side": "CREDIT", "amountField": "amount" }
            ] } } }),
    )
    .await?;
    let list = "{ transactionTypes { code forwardUrl postingRule } }";
    let config_of = |listed: &Value| -> (Value, Value) {
        let types = listed["transactionTypes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let find = |code: &str| {
            types
                .iter()
                .find(|t| t["code"] == code)
                .cloned()
                .unwrap_or_default()
        };
        (
            find("NOTE")["forwardUrl"].clone(),
            find("SALE")["postingRule"].clone(),
        )
    };
    for who in [&plain, &submitter] {
        let listed = app.gql_ok(Some(&who.access), list, json!({})).await?;
        assert_eq!(listed["transactionTypes"].as_array().map(Vec::len), Some(2));
        assert_eq!(config_of(&listed), (Value::Null, Value::Null), "{listed}");
    }
    for who in [&admin, &operator] {
        let listed = app.gql_ok(Some(&who.access), list, json!({})).await?;
        let (url, rule) = config_of(&listed);
        assert_eq!(url, "http://partner.internal:8443/hook?token=s3cret");
        assert_eq!(rule["lines"][0]["account"], "1000", "{listed}");
    }
    Ok(())
}

async fn submitting_needs_business_submit(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let (ops, sales) = (
        department(&app, &admin, "Ops").await?,
        department(&app, &admin, "Sales").await?,
    );
    let (plain, scoped, everywhere) = (
        person(&app, &ops).await?,
        person(&app, &ops).await?,
        person(&app, &ops).await?,
    );
    grant(&app, &admin, &scoped, &["business.submit"], Some(&ops)).await?;
    grant(&app, &admin, &everywhere, &["business.submit"], None).await?;
    app.gql_ok(
        Some(&admin.access),
        CREATE_TYPE,
        json!({ "i": { "code": "SCAN", "name": "Scan", "route": "DATA_PROCESS", "payloadSchema": { "type": "object" } } }),
    )
    .await?;
    let submit = |who: &Session, key: &str, payload: Value| {
        let token = who.access.clone();
        let variables =
            json!({ "i": { "type": "SCAN", "idempotencyKey": key, "payload": payload } });
        let app = &app;
        async move { app.gql(Some(&token), SUBMIT, variables).await }
    };
    let refusals = [
        (&plain, "plain", json!({})),
        (&plain, "plain-dept", json!({ "departmentId": ops })),
        (&scoped, "no-dept", json!({})),
        (&scoped, "other-dept", json!({ "departmentId": sales })),
        (&scoped, "bad-dept", json!({ "departmentId": "not an id" })),
    ];
    for (who, key, payload) in refusals {
        let refused = submit(who, key, payload).await?;
        assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{key}: {refused}");
        assert!(refused["data"].is_null(), "{key}: {refused}");
    }
    // An unknown type is refused the same way: the caller learns nothing of which exist.
    let unknown = app
        .gql(
            Some(&plain.access),
            SUBMIT,
            json!({ "i": { "type": "NOPE", "idempotencyKey": "n", "payload": {} } }),
        )
        .await?;
    assert_eq!(error_code(&unknown), Some("FORBIDDEN"), "{unknown}");
    assert_eq!(
        transaction_count(&app).await?,
        0,
        "a refusal changes nothing"
    );

    for (who, key, payload) in [
        (&scoped, "own-dept", json!({ "departmentId": ops })),
        (&scoped, "own-center", json!({ "costCenterId": ops })),
        (&everywhere, "anywhere", json!({})),
        (&everywhere, "other", json!({ "departmentId": sales })),
    ] {
        let accepted = submit(who, key, payload).await?;
        assert!(accepted.get("errors").is_none(), "{key}: {accepted}");
        assert_eq!(accepted["data"]["submitTransaction"]["status"], "EXECUTING");
    }
    assert_eq!(transaction_count(&app).await?, 4);
    Ok(())
}

// ------------------------------------------------------------------ money past i64::MAX

const POST: &str =
    "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) { id warnings } }";
const TRIAL: &str =
    "{ trialBalance { totalDebit totalCredit rows { accountCode debit credit balance } } }";

struct Books {
    department: String,
}

impl Books {
    async fn open(app: &TestApp, admin: &Session) -> anyhow::Result<Self> {
        for (code, kind) in [("1000", "ASSET"), ("4000", "REVENUE"), ("6000", "EXPENSE")] {
            app.gql_ok(
                Some(&admin.access),
                "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code } }",
                json!({ "i": { "code": code, "name": code, "type": kind } }),
            )
            .await?;
        }
        Ok(Self {
            department: department(app, admin, "Books").await?,
        })
    }
}

/// The largest line amount (10^15 minor units, in CNY's two decimals).
const LINE: &str = "10000000000000.00";
/// Lines of `LINE` per side of one entry (the entry has twice as many).
const PER_SIDE: usize = 100;
/// Entries until the expense account's debits pass `i64::MAX` (9.22 × 10^18): 93 × 10^17.
const ENTRIES: usize = 93;

async fn ledger_totals_past_i64_max_are_exact(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let books = Books::open(&app, &admin).await?;
    // A WARN budget makes every posting read the budget's use, which passes i64 on the way.
    app.gql_ok(
        token,
        "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
        json!({ "i": { "costCenterId": books.department, "accountCode": "6000", "period": "2026-11", "amount": "1.00", "policy": "WARN" } }),
    )
    .await?;
    let entry = |date: &str, amount: &str, lines: usize| {
        let mut all = Vec::with_capacity(lines * 2);
        for _ in 0..lines {
            all.push(
                json!({ "accountCode": "6000", "debit": amount, "costCenterId": books.department }),
            );
            all.push(json!({ "accountCode": "4000", "credit": amount }));
        }
        json!({ "i": { "memo": "big", "postingDate": date, "lines": all } })
    };
    // All but the last on the 14th, so the ledger from the 15th opens just under i64::MAX.
    for n in 0..ENTRIES {
        let date = if n + 1 == ENTRIES {
            "2026-11-15"
        } else {
            "2026-11-14"
        };
        let posted = app.gql(token, POST, entry(date, LINE, PER_SIDE)).await?;
        assert!(posted.get("errors").is_none(), "entry {n}: {posted}");
    }
    // One more, once the budget's use is past i64: still read exactly, so it warns.
    let after = app
        .gql_ok(token, POST, entry("2026-11-16", "1.00", 1))
        .await?;
    assert_eq!(
        after["postJournalEntry"]["warnings"][0], "exceeds the budget for account 6000",
        "{after}"
    );

    let total = "93000000000000001.00";
    let trial = app.gql_ok(token, TRIAL, json!({})).await?;
    assert_eq!(trial["trialBalance"]["totalDebit"], total, "{trial}");
    assert_eq!(trial["trialBalance"]["totalCredit"], total, "{trial}");
    let rows = trial["trialBalance"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let expense = rows
        .iter()
        .find(|r| r["accountCode"] == "6000")
        .cloned()
        .unwrap_or_default();
    assert_eq!(expense["debit"], total);
    assert_eq!(expense["balance"], total);
    let revenue = rows
        .iter()
        .find(|r| r["accountCode"] == "4000")
        .cloned()
        .unwrap_or_default();
    assert_eq!(revenue["balance"], format!("-{total}"));

    let usage = app
        .gql_ok(token, "{ budgetUsage { actual remaining } }", json!({}))
        .await?;
    assert_eq!(usage["budgetUsage"][0]["actual"], total, "{usage}");
    assert_eq!(
        usage["budgetUsage"][0]["remaining"], "-93000000000000000.00",
        "{usage}"
    );

    let pnl = app
        .gql_ok(
            token,
            "{ profitAndLoss(from: \"2026-11-01\", to: \"2026-11-30\", groupBy: [DEPARTMENT]) { department { id } revenue expense net } }",
            json!({}),
        )
        .await?;
    let cells = pnl["profitAndLoss"].as_array().cloned().unwrap_or_default();
    let center = cells
        .iter()
        .find(|c| c["department"]["id"] == books.department.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(center["expense"], total, "{pnl}");
    let uncentred = cells
        .iter()
        .find(|c| c["department"].is_null())
        .cloned()
        .unwrap_or_default();
    assert_eq!(uncentred["revenue"], total, "{pnl}");

    let ledger = app
        .gql_ok(
            token,
            "{ accountLedger(accountCode: \"6000\", from: \"2026-11-15\", to: \"2026-11-15\", first: 100) { openingBalance totalCount lines { balance } } }",
            json!({}),
        )
        .await?;
    let ledger = &ledger["accountLedger"];
    assert_eq!(ledger["openingBalance"], "92000000000000000.00", "{ledger}");
    assert_eq!(ledger["totalCount"], PER_SIDE);
    assert_eq!(ledger["lines"][0]["balance"], "92010000000000000.00");
    assert_eq!(
        ledger["lines"][PER_SIDE - 1]["balance"],
        "93000000000000000.00",
        "{ledger}"
    );
    Ok(())
}

// ------------------------------------------------------------------ the activity log

async fn activity_is_paged_and_edits_record_excerpts(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let c = crate::tasks::Company::new(app).await?;
    let task = c.draft(&c.quick_category, json!({})).await?;
    let add = "mutation($id: ID!, $b: String!) { addTaskComment(taskId: $id, body: $b) { id } }";
    for n in 0..25 {
        c.ok_as(
            &c.initiator,
            add,
            json!({ "id": task, "b": format!("note {n}") }),
        )
        .await?;
    }
    let read = "query($id: ID!, $first: Int, $after: String) { task(id: $id) { activity(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { action field oldValue newValue } } } }";
    let page = |first: Option<i32>, after: Option<String>| {
        let variables = json!({ "id": task, "first": first, "after": after });
        let c = &c;
        async move { c.as_(&c.initiator, read, variables).await }
    };
    let first = page(None, None).await?;
    let activity = &first["data"]["task"]["activity"];
    let total = activity["totalCount"].as_u64().unwrap_or_default();
    assert!(total >= 26, "{first}");
    assert_eq!(
        activity["nodes"].as_array().map(Vec::len),
        Some(20),
        "{first}"
    );
    assert_eq!(activity["pageInfo"]["hasNextPage"], true);
    assert_eq!(activity["nodes"][0]["action"], "commented", "newest first");
    let rest = page(
        Some(100),
        activity["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned),
    )
    .await?;
    let rest = &rest["data"]["task"]["activity"];
    assert_eq!(
        rest["nodes"].as_array().map(Vec::len),
        Some(total as usize - 20)
    );
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let oldest = rest["nodes"].as_array().cloned().unwrap_or_default();
    assert!(oldest.iter().any(|e| e["action"] == "created"), "{rest}");
    let too_many = page(Some(101), None).await?;
    assert_eq!(error_code(&too_many), Some("BAD_USER_INPUT"), "{too_many}");

    // The longest comment there can be (10,000 characters of four bytes), edited: the log keeps
    // excerpts, not both bodies.
    let long = "😀".repeat(10_000);
    let comment = c
        .ok_as(&c.initiator, add, json!({ "id": task, "b": long }))
        .await?;
    let comment = str_at(&comment, "/addTaskComment/id")?;
    let edit = "mutation($id: ID!, $b: String!) { editTaskComment(id: $id, body: $b) { id } }";
    let other = "🙂".repeat(10_000);
    c.ok_as(&c.initiator, edit, json!({ "id": comment, "b": other }))
        .await?;
    let latest = page(Some(1), None).await?;
    let entry = &latest["data"]["task"]["activity"]["nodes"][0];
    assert_eq!(entry["action"], "comment_edited", "{latest}");
    for (side, text) in [("oldValue", "😀"), ("newValue", "🙂")] {
        let kept = entry[side].as_str().unwrap_or_default();
        assert!(
            kept.chars().count() <= 2_100,
            "{side} keeps {} characters",
            kept.chars().count()
        );
        assert!(kept.starts_with(&text.repeat(100)), "{side}");
        assert!(kept.ends_with("(10000 characters)"), "{side}: {kept}");
    }
    // A 100 KB body is refused, and the log gains nothing.
    let huge = c
        .as_(
            &c.initiator,
            edit,
            json!({ "id": comment, "b": "x".repeat(100 * 1024) }),
        )
        .await?;
    assert_eq!(error_code(&huge), Some("BAD_USER_INPUT"), "{huge}");
    let after = page(Some(1), None).await?;
    assert_eq!(
        after["data"]["task"]["activity"]["totalCount"].as_u64(),
        Some(total + 2)
    );
    Ok(())
}
