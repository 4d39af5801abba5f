//! Business transactions: schema-checked payloads, Stripe-style idempotency under concurrency,
//! approval-gated execution, routing to finance.

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, Backend, TestApp};
use crate::on_both_backends;

const SUBMIT: &str = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status error history { status } journalEntry { id lines { debit credit } } approval { id } } }";

async fn setup(app: &TestApp, token: &str, flow: Option<&str>) -> anyhow::Result<()> {
    for (code, kind) in [("1000", "ASSET"), ("4000", "REVENUE")] {
        app.gql(
            Some(token),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code } }",
            json!({ "i": { "code": code, "name": code, "type": kind } }),
        )
        .await?;
    }
    app.gql_ok(
        Some(token),
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }",
        json!({ "i": {
            "code": if flow.is_some() { "GATED_SALE" } else { "SALE" },
            "name": "Sale",
            "route": "FINANCE_POSTING",
            "approvalFlowId": flow,
            "payloadSchema": { "type": "object", "required": ["amount", "customer"],
                "properties": { "amount": { "type": "string" }, "customer": { "type": "string", "minLength": 1 } } },
            "postingRule": { "lines": [
                { "account": "1000", "side": "DEBIT", "amountField": "amount" },
                { "account": "4000", "side": "CREDIT", "amountField": "amount" }
            ] }
        } }),
    )
    .await?;
    Ok(())
}

fn sale(kind: &str, key: &str, amount: &str) -> Value {
    json!({ "i": { "type": kind, "idempotencyKey": key, "payload": { "amount": amount, "customer": "Acme" } } })
}

async fn entries(app: &TestApp) -> anyhow::Result<usize> {
    use sea_orm::EntityTrait;
    Ok(entities::journal_entry::Entity::find()
        .all(&app.state.db.conn)
        .await?
        .len())
}

on_both_backends!(
    one_key_executes_once_even_under_concurrency,
    bad_payloads_change_nothing,
    approval_gates_execution,
    a_forward_url_must_be_public_by_default
);

/// Without `INTERLINK_OUTBOUND_ALLOW` (the helpers allow loopback for their receivers), a type
/// cannot be aimed at this node's own network: the URL is refused when the type is saved.
async fn a_forward_url_must_be_public_by_default(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[("INTERLINK_OUTBOUND_ALLOW", "")]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let create =
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }";
    for (code, url) in [
        ("LOCAL", "http://127.0.0.1:9/x"),
        ("MAPPED", "http://[::ffff:127.0.0.1]:9/x"),
        ("METADATA", "http://169.254.169.254/latest/meta-data/"),
        ("NAMED", "http://localhost:9/x"),
    ] {
        let refused = app
            .gql(
                Some(&admin.access),
                create,
                json!({ "i": { "code": code, "name": code, "route": "APP_FORWARD", "forwardUrl": url, "payloadSchema": { "type": "object" } } }),
            )
            .await?;
        assert_eq!(
            error_code(&refused),
            Some("BAD_USER_INPUT"),
            "{url}: {refused}"
        );
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], "forwardUrl",
            "{refused}"
        );
    }
    let listed = app
        .gql_ok(
            Some(&admin.access),
            "{ transactionTypes { code } }",
            json!({}),
        )
        .await?;
    let codes = listed["transactionTypes"].to_string();
    assert!(
        !codes.contains("LOCAL") && !codes.contains("NAMED"),
        "{listed}"
    );
    Ok(())
}

async fn one_key_executes_once_even_under_concurrency(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    setup(&app, &admin.access, None).await?;
    let first = app
        .gql_ok(
            Some(&admin.access),
            SUBMIT,
            sale("SALE", "order-1", "99.90"),
        )
        .await?;
    assert_eq!(first["submitTransaction"]["status"], "COMPLETED", "{first}");
    let statuses: Vec<&str> = first["submitTransaction"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["RECEIVED", "VALIDATED", "EXECUTING", "COMPLETED"]
    );
    let again = app
        .gql_ok(
            Some(&admin.access),
            SUBMIT,
            sale("SALE", "order-1", "99.90"),
        )
        .await?;
    assert_eq!(
        again["submitTransaction"]["id"],
        first["submitTransaction"]["id"]
    );
    let different = app
        .gql(
            Some(&admin.access),
            SUBMIT,
            sale("SALE", "order-1", "100.00"),
        )
        .await?;
    assert_eq!(error_code(&different), Some("CONFLICT"), "{different}");
    app.gql_ok(
        Some(&admin.access),
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }",
        json!({ "i": { "code": "NOTE", "name": "Note", "route": "APP_FORWARD", "forwardUrl": "http://127.0.0.1:9/notes", "payloadSchema": { "type": "object" } } }),
    )
    .await?;
    let other_type = app
        .gql(
            Some(&admin.access),
            SUBMIT,
            sale("NOTE", "order-1", "99.90"),
        )
        .await?;
    assert_eq!(error_code(&other_type), Some("CONFLICT"), "{other_type}");
    assert_eq!(entries(&app).await?, 1);

    // 64 racers with one new key: one execution, one entry; the others get the first result or
    // CONFLICT while it is in flight.
    let racers = (0..64).map(|_| {
        app.gql(
            Some(&admin.access),
            SUBMIT,
            sale("SALE", "order-2", "10.00"),
        )
    });
    let results = futures_util::future::try_join_all(racers).await?;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .filter_map(|r| {
            r["data"]["submitTransaction"]["id"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .all(|r| r.get("errors").is_none() || error_code(r) == Some("CONFLICT")));
    assert_eq!(entries(&app).await?, 2);
    Ok(())
}

async fn bad_payloads_change_nothing(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    setup(&app, &admin.access, None).await?;
    let token = Some(admin.access.as_str());
    let off_schema = app
        .gql(token, SUBMIT, json!({ "i": { "type": "SALE", "idempotencyKey": "k1", "payload": { "amount": "1.00", "customer": "" } } }))
        .await?;
    assert_eq!(error_code(&off_schema), Some("BAD_USER_INPUT"));
    assert!(
        off_schema["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/customer"),
        "{off_schema}"
    );
    let unknown = app.gql(token, SUBMIT, sale("NOPE", "k2", "1.00")).await?;
    assert_eq!(error_code(&unknown), Some("BAD_USER_INPUT"));
    let long_key = app
        .gql(token, SUBMIT, sale("SALE", &"k".repeat(256), "1.00"))
        .await?;
    assert_eq!(error_code(&long_key), Some("BAD_USER_INPUT"));
    // A payload the posting rule cannot use is refused at submission and leaves no row.
    for amount in ["1.001", "0", "-5.00"] {
        let refused = app
            .gql(
                token,
                SUBMIT,
                sale("SALE", &format!("bad-{amount}"), amount),
            )
            .await?;
        assert_eq!(
            error_code(&refused),
            Some("BAD_USER_INPUT"),
            "{amount}: {refused}"
        );
    }
    let none = app
        .gql_ok(token, "{ transactions { totalCount } }", json!({}))
        .await?;
    assert_eq!(none["transactions"]["totalCount"], 0);
    assert_eq!(entries(&app).await?, 0);
    let builtin = app
        .gql(
            token,
            SUBMIT,
            json!({ "i": { "type": "TASK_OUTPUT", "idempotencyKey": "x", "payload": {} } }),
        )
        .await?;
    assert!(
        matches!(error_code(&builtin), Some("BAD_USER_INPUT" | "FORBIDDEN")),
        "{builtin}"
    );
    Ok(())
}

async fn approval_gates_execution(backend: Backend) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let email = crate::helpers::unique_email("approver");
    let approver_id = app
        .create_user(&admin.access, &email, "a good password")
        .await?;
    let approver = app.login(&email, "a good password").await?;
    let flow = app
        .gql_ok(
            Some(&admin.access),
            "mutation($i: CreateApprovalFlowInput!) { createApprovalFlow(input: $i) { id } }",
            json!({ "i": { "name": "Sales approval", "steps": [{ "name": "Check", "approverUserId": approver_id,
                "condition": { "field": "amount", "op": "GTE", "value": "100.00" } }] } }),
        )
        .await?;
    setup(
        &app,
        &admin.access,
        Some(&str_at(&flow, "/createApprovalFlow/id")?),
    )
    .await?;
    let decide = "mutation($a: ID!, $ok: Boolean!, $c: String) { decideApproval(approvalId: $a, approve: $ok, comment: $c) { status } }";
    let read = "query($id: ID!) { transaction(id: $id) { status error journalEntry { id } } }";

    let waiting = app
        .gql_ok(
            Some(&admin.access),
            SUBMIT,
            sale("GATED_SALE", "g1", "500.00"),
        )
        .await?;
    assert_eq!(
        waiting["submitTransaction"]["status"], "PENDING_APPROVAL",
        "{waiting}"
    );
    assert_eq!(entries(&app).await?, 0, "nothing executes before approval");
    let approval = str_at(&waiting, "/submitTransaction/approval/id")?;
    let inbox = app
        .gql_ok(
            Some(&approver.access),
            "{ approvalsPendingForMe { id subjectType subjectId subjectTitle } }",
            json!({}),
        )
        .await?;
    let pending = &inbox["approvalsPendingForMe"][0];
    assert_eq!(pending["id"], approval.as_str(), "{inbox}");
    assert_eq!(pending["subjectId"], waiting["submitTransaction"]["id"]);
    // The approver may decide but not read the transaction: no title for them, the type's
    // name for a reader of every transaction.
    assert!(pending["subjectTitle"].is_null(), "{inbox}");
    let as_admin = app
        .gql_ok(
            Some(&admin.access),
            "query($id: ID!) { approval(id: $id) { subjectTitle } }",
            json!({ "id": approval }),
        )
        .await?;
    assert_eq!(as_admin["approval"]["subjectTitle"], "Sale", "{as_admin}");
    app.gql_ok(
        Some(&approver.access),
        decide,
        json!({ "a": approval, "ok": true }),
    )
    .await?;
    let done = app
        .gql_ok(
            Some(&admin.access),
            read,
            json!({ "id": waiting["submitTransaction"]["id"] }),
        )
        .await?;
    assert_eq!(done["transaction"]["status"], "COMPLETED", "{done}");
    assert!(done["transaction"]["journalEntry"]["id"].is_string());

    let second = app
        .gql_ok(
            Some(&admin.access),
            SUBMIT,
            sale("GATED_SALE", "g2", "700.00"),
        )
        .await?;
    let approval = str_at(&second, "/submitTransaction/approval/id")?;
    app.gql_ok(
        Some(&approver.access),
        decide,
        json!({ "a": approval, "ok": false, "c": "No contract" }),
    )
    .await?;
    let rejected = app
        .gql_ok(
            Some(&admin.access),
            read,
            json!({ "id": second["submitTransaction"]["id"] }),
        )
        .await?;
    assert_eq!(rejected["transaction"]["status"], "FAILED");
    assert!(rejected["transaction"]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("No contract"));
    assert_eq!(
        entries(&app).await?,
        1,
        "a rejected transaction never executes"
    );

    // The condition reads the payload: a small sale needs no approval and runs at once.
    let small = app
        .gql_ok(
            Some(&admin.access),
            SUBMIT,
            sale("GATED_SALE", "g3", "99.99"),
        )
        .await?;
    assert_eq!(small["submitTransaction"]["status"], "COMPLETED", "{small}");
    assert_eq!(entries(&app).await?, 2);
    Ok(())
}
