//! The ledger: balanced, exact, immutable entries corrected by reversal; budgets that hold under
//! concurrency; the trial balance; permissions.

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, unique_email, Backend, Session, TestApp};
use crate::on_both_backends;

const POST: &str = "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) { id warnings lines { debit credit account { code } } } }";
const TRIAL: &str =
    "{ trialBalance { totalDebit totalCredit rows { accountCode debit credit balance } } }";

struct Books {
    app: TestApp,
    admin: Session,
    department: String,
}

async fn books(backend: Backend) -> anyhow::Result<Option<Books>> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(None);
    };
    let admin = app.admin().await?;
    for (code, kind) in [("1000", "ASSET"), ("4000", "REVENUE"), ("6000", "EXPENSE")] {
        app.gql_ok(
            Some(&admin.access),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code type } }",
            json!({ "i": { "code": code, "name": format!("Account {code}"), "type": kind } }),
        )
        .await?;
    }
    let department = app
        .gql_ok(
            Some(&admin.access),
            "mutation { createDepartment(input: { name: \"Ops\" }) { id } }",
            json!({}),
        )
        .await?;
    let department = str_at(&department, "/createDepartment/id")?;
    Ok(Some(Books {
        app,
        admin,
        department,
    }))
}

fn entry(lines: Value) -> Value {
    json!({ "i": { "memo": "test", "postingDate": "2026-11-15", "lines": lines } })
}

fn spend(amount: &str, department: &str) -> Value {
    entry(json!([
        { "accountCode": "6000", "debit": amount, "costCenterId": department },
        { "accountCode": "1000", "credit": amount }
    ]))
}

on_both_backends!(
    entries_balance_and_money_is_exact,
    reversal_is_the_only_correction,
    budgets_hold_under_concurrency
);

async fn entries_balance_and_money_is_exact(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    for _ in 0..10 {
        b.app
            .gql_ok(token, POST, spend("0.10", &b.department))
            .await?;
    }
    let trial = b.app.gql_ok(token, TRIAL, json!({})).await?;
    assert_eq!(trial["trialBalance"]["totalDebit"], "1.00");
    assert_eq!(trial["trialBalance"]["totalCredit"], "1.00");
    let expense = trial["trialBalance"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["accountCode"] == "6000")
        .cloned()
        .unwrap_or_default();
    assert_eq!(expense["balance"], "1.00");

    let bad = [
        (
            "unbalanced",
            entry(
                json!([{ "accountCode": "6000", "debit": "10.00" }, { "accountCode": "1000", "credit": "9.99" }]),
            ),
        ),
        (
            "zero",
            entry(
                json!([{ "accountCode": "6000", "debit": "0" }, { "accountCode": "1000", "credit": "0" }]),
            ),
        ),
        (
            "negative",
            entry(
                json!([{ "accountCode": "6000", "debit": "-5.00" }, { "accountCode": "1000", "credit": "-5.00" }]),
            ),
        ),
        (
            "both sides",
            entry(
                json!([{ "accountCode": "6000", "debit": "5.00", "credit": "5.00" }, { "accountCode": "1000", "credit": "0.01" }]),
            ),
        ),
        (
            "unknown account",
            entry(
                json!([{ "accountCode": "9999", "debit": "5.00" }, { "accountCode": "1000", "credit": "5.00" }]),
            ),
        ),
        (
            "too many decimals",
            entry(
                json!([{ "accountCode": "6000", "debit": "5.001" }, { "accountCode": "1000", "credit": "5.001" }]),
            ),
        ),
        (
            "float",
            entry(
                json!([{ "accountCode": "6000", "debit": 5.5 }, { "accountCode": "1000", "credit": 5.5 }]),
            ),
        ),
        (
            "one line",
            entry(json!([{ "accountCode": "6000", "debit": "5.00" }])),
        ),
    ];
    for (name, input) in bad {
        let body = b.app.gql(token, POST, input).await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{name}: {body}");
    }
    let after = b.app.gql_ok(token, TRIAL, json!({})).await?;
    assert_eq!(after, trial, "refused entries changed the books");

    // Reading and posting need their permissions.
    let email = unique_email("clerk");
    b.app
        .create_user(&b.admin.access, &email, "a good password")
        .await?;
    let clerk = b.app.login(&email, "a good password").await?;
    assert_eq!(
        error_code(&b.app.gql(Some(&clerk.access), TRIAL, json!({})).await?),
        Some("FORBIDDEN")
    );
    assert_eq!(
        error_code(
            &b.app
                .gql(Some(&clerk.access), POST, spend("1.00", &b.department))
                .await?
        ),
        Some("FORBIDDEN")
    );
    Ok(())
}

async fn reversal_is_the_only_correction(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    let posted = b
        .app
        .gql_ok(token, POST, spend("250.00", &b.department))
        .await?;
    let id = str_at(&posted, "/postJournalEntry/id")?;
    let reverse = "mutation($id: ID!) { reverseJournalEntry(id: $id, memo: \"typo\") { id reversalOf lines { debit credit } } }";
    let reversal = b.app.gql_ok(token, reverse, json!({ "id": id })).await?;
    assert_eq!(reversal["reverseJournalEntry"]["reversalOf"], id.as_str());
    assert_eq!(
        reversal["reverseJournalEntry"]["lines"][0]["credit"],
        "250.00"
    );
    let twice = b.app.gql(token, reverse, json!({ "id": id })).await?;
    assert_eq!(error_code(&twice), Some("CONFLICT"), "{twice}");
    let of_reversal = b
        .app
        .gql(
            token,
            reverse,
            json!({ "id": reversal["reverseJournalEntry"]["id"] }),
        )
        .await?;
    assert_eq!(
        error_code(&of_reversal),
        Some("BAD_USER_INPUT"),
        "{of_reversal}"
    );
    let unknown = b
        .app
        .gql(
            token,
            reverse,
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await?;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"));
    let trial = b.app.gql_ok(token, TRIAL, json!({})).await?;
    let rows = trial["trialBalance"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows.len(), 2, "{trial}");
    for row in rows {
        assert_eq!(row["balance"], "0.00", "{trial}");
    }
    // The original and its reversal each debit 250.00.
    assert_eq!(trial["trialBalance"]["totalDebit"], "500.00");
    Ok(())
}

async fn budgets_hold_under_concurrency(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    let budget = "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { period budgeted actual remaining } }";
    let created = b
        .app
        .gql_ok(token, budget, json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2026-11", "amount": "1000.00", "policy": "STOP" } }))
        .await?;
    assert_eq!(created["createBudget"]["period"], "2026-11");
    assert_eq!(created["createBudget"]["remaining"], "1000.00");

    // 32 postings of 100.00 race for a 1,000.00 budget: exactly ten fit.
    let attempts = (0..32).map(|_| b.app.gql(token, POST, spend("100.00", &b.department)));
    let results = futures_util::future::try_join_all(attempts).await?;
    let accepted = results.iter().filter(|r| r.get("errors").is_none()).count();
    let refused = results
        .iter()
        .filter(|r| error_code(r) == Some("CONFLICT"))
        .count();
    assert_eq!((accepted, refused), (10, 22), "{results:?}");
    let usage = b
        .app
        .gql_ok(token, "{ budgetUsage { actual remaining } }", json!({}))
        .await?;
    assert_eq!(usage["budgetUsage"][0]["actual"], "1000.00");
    assert_eq!(usage["budgetUsage"][0]["remaining"], "0.00");

    // Outside the period the budget does not apply; a WARN budget accepts and says so.
    let december = json!({ "i": { "memo": "dec", "postingDate": "2026-12-01", "lines": [
        { "accountCode": "6000", "debit": "5000.00", "costCenterId": b.department },
        { "accountCode": "1000", "credit": "5000.00" }
    ] } });
    b.app.gql_ok(token, POST, december).await?;
    b.app
        .gql_ok(token, budget, json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2027", "amount": "1.00", "policy": "WARN" } }))
        .await?;
    let warned = b
        .app
        .gql_ok(
            token,
            POST,
            json!({ "i": { "memo": "jan", "postingDate": "2027-01-10", "lines": [
            { "accountCode": "6000", "debit": "2.00", "costCenterId": b.department },
            { "accountCode": "1000", "credit": "2.00" }
        ] } }),
        )
        .await?;
    assert_eq!(
        warned["postJournalEntry"]["warnings"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{warned}"
    );
    // A quarter STOP holds even when a month budget for the same account also exists.
    b.app
        .gql_ok(token, budget, json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2027-02", "amount": "1000000.00", "policy": "IGNORE" } }))
        .await?;
    b.app
        .gql_ok(token, budget, json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2027-Q1", "amount": "10.00", "policy": "STOP" } }))
        .await?;
    let over_quarter = b
        .app
        .gql(
            token,
            POST,
            json!({ "i": { "memo": "feb", "postingDate": "2027-02-10", "lines": [
            { "accountCode": "6000", "debit": "20.00", "costCenterId": b.department },
            { "accountCode": "1000", "credit": "20.00" }
        ] } }),
        )
        .await?;
    assert_eq!(
        error_code(&over_quarter),
        Some("CONFLICT"),
        "{over_quarter}"
    );
    let huge = b
        .app
        .gql(token, POST, spend("90000000000000000.00", &b.department))
        .await?;
    assert_eq!(error_code(&huge), Some("BAD_USER_INPUT"), "{huge}");
    for date in ["+10000-01-01", "0999-01-01", "2026-1-1"] {
        let body = b
            .app
            .gql(
                token,
                "query($d: Date) { trialBalance(asOf: $d) { totalDebit } }",
                json!({ "d": date }),
            )
            .await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{date}: {body}");
    }
    let duplicate = b
        .app
        .gql(token, budget, json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2026-11", "amount": "5.00", "policy": "STOP" } }))
        .await?;
    assert_eq!(error_code(&duplicate), Some("CONFLICT"));
    let bad_period = b
        .app
        .gql(token, budget, json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2026-13", "amount": "5.00", "policy": "STOP" } }))
        .await?;
    assert_eq!(error_code(&bad_period), Some("BAD_USER_INPUT"));
    Ok(())
}

on_both_backends!(reports_group_profit_and_carry_running_balances);

async fn reports_group_profit_and_carry_running_balances(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    let sale = |date: &str, amount: &str| {
        json!({ "i": { "memo": "sale", "postingDate": date, "lines": [
            { "accountCode": "1000", "debit": amount },
            { "accountCode": "4000", "credit": amount, "costCenterId": b.department }
        ] } })
    };
    b.app
        .gql_ok(token, POST, sale("2026-10-05", "300.00"))
        .await?;
    b.app
        .gql_ok(token, POST, sale("2026-11-05", "500.00"))
        .await?;
    b.app
        .gql_ok(token, POST, spend("120.25", &b.department))
        .await?;

    let pnl = "query($g: [PnlGroup!]) { profitAndLoss(from: \"2026-10-01\", to: \"2026-11-30\", groupBy: $g) { department { id } month revenue expense net } }";
    let by_month = b
        .app
        .gql_ok(token, pnl, json!({ "g": ["DEPARTMENT", "MONTH"] }))
        .await?;
    let rows = by_month["profitAndLoss"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(rows.len(), 2, "{by_month}");
    assert_eq!(rows[0]["month"], "2026-10");
    assert_eq!(rows[0]["revenue"], "300.00");
    assert_eq!(rows[1]["month"], "2026-11");
    assert_eq!(rows[1]["net"], "379.75");
    assert_eq!(rows[1]["department"]["id"], b.department.as_str());
    let total = b.app.gql_ok(token, pnl, json!({ "g": [] })).await?;
    assert_eq!(total["profitAndLoss"][0]["net"], "679.75");

    let ledger = "query($a: String) { accountLedger(accountCode: \"1000\", from: \"2026-11-01\", first: 1, after: $a) { openingBalance totalCount hasNextPage endCursor lines { debit credit balance memo } } }";
    let page = b.app.gql_ok(token, ledger, json!({ "a": null })).await?;
    assert_eq!(page["accountLedger"]["openingBalance"], "300.00");
    assert_eq!(page["accountLedger"]["totalCount"], 2);
    assert_eq!(page["accountLedger"]["lines"][0]["balance"], "800.00");
    let next = b
        .app
        .gql_ok(
            token,
            ledger,
            json!({ "a": page["accountLedger"]["endCursor"] }),
        )
        .await?;
    assert_eq!(next["accountLedger"]["lines"][0]["credit"], "120.25");
    assert_eq!(next["accountLedger"]["lines"][0]["balance"], "679.75");
    assert_eq!(next["accountLedger"]["hasNextPage"], false);
    Ok(())
}

on_both_backends!(the_ledger_balances_under_concurrent_posting);

/// 32 workers post random balanced entries while a reader checks the trial balance: every read
/// sums to zero, every entry balances, and every amount reads back exactly as written.
async fn the_ledger_balances_under_concurrent_posting(backend: Backend) -> anyhow::Result<()> {
    use rand::{Rng, SeedableRng};
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = b.admin.access.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let workers = (0..32u64).map(|seed| {
        let app = &b.app;
        let token = token.clone();
        let department = b.department.clone();
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut posted = Vec::new();
            while std::time::Instant::now() < deadline {
                let minor: i64 = rng.gen_range(1..100_000_000);
                let amount = format!("{}.{:02}", minor / 100, minor % 100);
                let split: i64 = rng.gen_range(1..=minor);
                let (first, second) = (split, minor - split);
                let mut lines = vec![json!({ "accountCode": "1000", "credit": amount.clone() })];
                for part in [first, second].into_iter().filter(|p| *p > 0) {
                    lines.push(json!({ "accountCode": "6000", "debit": format!("{}.{:02}", part / 100, part % 100), "costCenterId": department }));
                }
                let body = app.gql(Some(&token), POST, entry(Value::Array(lines))).await?;
                anyhow::ensure!(body.get("errors").is_none(), "{body}");
                posted.push((str_at(&body, "/data/postJournalEntry/id")?, amount));
            }
            Ok::<_, anyhow::Error>(posted)
        }
    });
    let reader = async {
        let mut reads = 0;
        while std::time::Instant::now() < deadline {
            let trial = b.app.gql_ok(Some(&token), TRIAL, json!({})).await?;
            anyhow::ensure!(
                trial["trialBalance"]["totalDebit"] == trial["trialBalance"]["totalCredit"],
                "unbalanced read: {trial}"
            );
            reads += 1;
        }
        Ok::<_, anyhow::Error>(reads)
    };
    let (posted, reads) = tokio::try_join!(futures_util::future::try_join_all(workers), reader)?;
    let posted: Vec<(String, String)> = posted.into_iter().flatten().collect();
    assert!(
        posted.len() >= 32 && reads > 0,
        "{} entries, {reads} reads",
        posted.len()
    );
    let trial = b.app.gql_ok(Some(&token), TRIAL, json!({})).await?;
    assert_eq!(
        trial["trialBalance"]["totalDebit"],
        trial["trialBalance"]["totalCredit"]
    );
    // A sample of entries: each balances, and its credit reads back exactly as written.
    for (id, amount) in posted.iter().step_by(7) {
        let read = b
            .app
            .gql_ok(
                Some(&token),
                "query($id: ID!) { journalEntry(id: $id) { lines { debit credit } } }",
                json!({ "id": id }),
            )
            .await?;
        let lines = read["journalEntry"]["lines"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let credit = lines
            .iter()
            .find(|l| l["credit"] != "0.00")
            .map(|l| l["credit"].clone());
        assert_eq!(credit, Some(json!(amount)), "{read}");
        let cents = |v: &Value| -> i64 {
            let text = v.as_str().unwrap_or("0");
            text.replace('.', "").parse().unwrap_or(0)
        };
        let debits: i64 = lines.iter().map(|l| cents(&l["debit"])).sum();
        let credits: i64 = lines.iter().map(|l| cents(&l["credit"])).sum();
        assert_eq!(debits, credits, "{read}");
    }
    Ok(())
}

on_both_backends!(
    department_finance_readers_see_their_subtree_only,
    journal_entries_filter_and_page
);

const ENTRIES: &str = "query($f: JournalEntryFilter, $n: Int, $a: String) { journalEntries(filter: $f, first: $n, after: $a) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id memo postingDate source lines { debit credit costCenter { id } } } } } }";

async fn child_of(b: &Books, name: &str, parent: Option<&str>) -> anyhow::Result<String> {
    let created = b
        .app
        .gql_ok(
            Some(&b.admin.access),
            "mutation($i: CreateDepartmentInput!) { createDepartment(input: $i) { id } }",
            json!({ "i": { "name": name, "parentId": parent } }),
        )
        .await?;
    str_at(&created, "/createDepartment/id")
}

async fn finance_reader(b: &Books, department: &str) -> anyhow::Result<Session> {
    let email = unique_email("controller");
    let id = b
        .app
        .create_user(&b.admin.access, &email, "a good password")
        .await?;
    let role = b
        .app
        .gql_ok(
            Some(&b.admin.access),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": format!("Controller {}", uuid::Uuid::now_v7()), "permissions": ["finance.read"] } }),
        )
        .await?;
    b.app
        .gql_ok(
            Some(&b.admin.access),
            "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
            json!({ "u": id, "r": str_at(&role, "/createRole/id")?, "d": department }),
        )
        .await?;
    b.app.login(&email, "a good password").await
}

async fn as_key(app: &TestApp, key: &str, query: &str) -> anyhow::Result<Value> {
    Ok(app
        .http
        .post(app.url("/graphql"))
        .header("x-api-key", key)
        .json(&json!({ "query": query }))
        .send()
        .await?
        .json()
        .await?)
}

async fn department_finance_readers_see_their_subtree_only(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    // Ops (b.department) has a child East; Sales is elsewhere.
    let east = child_of(&b, "East", Some(&b.department)).await?;
    let sales = child_of(&b, "Sales", None).await?;
    let ops_entry = b
        .app
        .gql_ok(token, POST, spend("10.00", &b.department))
        .await?;
    let east_entry = b.app.gql_ok(token, POST, spend("5.00", &east)).await?;
    let sales_entry = b.app.gql_ok(token, POST, spend("20.00", &sales)).await?;
    let sales_id = str_at(&sales_entry, "/postJournalEntry/id")?;

    let reader = finance_reader(&b, &b.department).await?;
    let mine = Some(reader.access.as_str());
    let listed = b.app.gql_ok(mine, ENTRIES, json!({})).await?;
    assert_eq!(listed["journalEntries"]["totalCount"], 2, "{listed}");
    let ids: Vec<&str> = listed["journalEntries"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["id"].as_str())
        .collect();
    assert!(ids.contains(&str_at(&ops_entry, "/postJournalEntry/id")?.as_str()));
    assert!(ids.contains(&str_at(&east_entry, "/postJournalEntry/id")?.as_str()));
    // Only the cost-centre line of each entry: the asset line has no cost centre.
    for edge in listed["journalEntries"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(
            edge["node"]["lines"].as_array().map(Vec::len),
            Some(1),
            "{edge}"
        );
    }
    let trial = b.app.gql_ok(mine, TRIAL, json!({})).await?;
    assert_eq!(trial["trialBalance"]["totalDebit"], "15.00", "{trial}");
    assert_eq!(trial["trialBalance"]["totalCredit"], "0.00", "{trial}");
    let ledger = "{ accountLedger(accountCode: \"6000\") { totalCount lines { balance } } }";
    let scoped_ledger = b.app.gql_ok(mine, ledger, json!({})).await?;
    assert_eq!(
        scoped_ledger["accountLedger"]["totalCount"], 2,
        "{scoped_ledger}"
    );
    assert_eq!(
        scoped_ledger["accountLedger"]["lines"][1]["balance"],
        "15.00"
    );
    let pnl = b
        .app
        .gql_ok(
            mine,
            "{ profitAndLoss(from: \"2026-01-01\", to: \"2026-12-31\") { expense } }",
            json!({}),
        )
        .await?;
    assert_eq!(pnl["profitAndLoss"][0]["expense"], "15.00", "{pnl}");
    let hidden = b
        .app
        .gql(
            mine,
            "query($id: ID!) { journalEntry(id: $id) { id } }",
            json!({ "id": sales_id }),
        )
        .await?;
    // Out of the subtree reads exactly as a missing entry: `null`, like any lookup by id.
    let missing = b
        .app
        .gql(
            mine,
            "query($id: ID!) { journalEntry(id: $id) { id } }",
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await?;
    assert_eq!(hidden, missing);
    assert_eq!(hidden["data"]["journalEntry"], Value::Null, "{hidden}");

    // Budgets of visible cost centres only.
    let budget = "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }";
    for center in [&east, &sales] {
        b.app
            .gql_ok(token, budget, json!({ "i": { "costCenterId": center, "accountCode": "6000", "period": "2026-11", "amount": "100.00", "policy": "WARN" } }))
            .await?;
    }
    let usage = "{ budgetUsage { actual costCenter { id } } }";
    let scoped_usage = b.app.gql_ok(mine, usage, json!({})).await?;
    assert_eq!(
        scoped_usage["budgetUsage"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(scoped_usage["budgetUsage"][0]["actual"], "5.00");
    let all_usage = b.app.gql_ok(token, usage, json!({})).await?;
    assert_eq!(all_usage["budgetUsage"].as_array().map(Vec::len), Some(2));

    // The admin sees everything.
    let all = b.app.gql_ok(token, ENTRIES, json!({})).await?;
    assert_eq!(all["journalEntries"]["totalCount"], 3, "{all}");
    let full = b.app.gql_ok(token, TRIAL, json!({})).await?;
    assert_eq!(full["trialBalance"]["totalDebit"], "35.00");
    let sales_read = b
        .app
        .gql_ok(
            token,
            "query($id: ID!) { journalEntry(id: $id) { lines { debit } } }",
            json!({ "id": sales_id }),
        )
        .await?;
    assert_eq!(
        sales_read["journalEntry"]["lines"].as_array().map(Vec::len),
        Some(2)
    );

    // No finance.read anywhere: still FORBIDDEN.
    let email = unique_email("nobody");
    b.app
        .create_user(&b.admin.access, &email, "a good password")
        .await?;
    let nobody = b.app.login(&email, "a good password").await?;
    let refused = b.app.gql(Some(&nobody.access), ENTRIES, json!({})).await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");

    // Apps: FINANCE_READ over East sees East's entry only; without a department, all three;
    // without FINANCE_READ, refused.
    let count = "{ journalEntries { totalCount } trialBalance { totalDebit } }";
    let (east_app, east_key) =
        crate::apps::app_with_key(&b.app, &b.admin.access, &["FINANCE_READ"], Some(&east)).await?;
    // The export's query: the same rows, the visible lines only.
    {
        use interlink::domains::finance::{model::JournalLineFilter, service};
        use sea_orm::EntityTrait;
        let db = &b.app.state.db.conn;
        let viewer = interlink::domains::integrations::service::app_viewer(
            db,
            uuid::Uuid::parse_str(&east_app)?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .ok_or_else(|| anyhow::anyhow!("the app has no viewer"))?;
        let lines = service::journal_lines_query(&viewer, &JournalLineFilter::default())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .all(db)
            .await?;
        assert_eq!(lines.len(), 1);
        assert_eq!(
            lines[0].cost_center_id.map(|c| c.to_string()),
            Some(east.clone())
        );
        let everything = entities::journal_line::Entity::find().all(db).await?.len();
        assert_eq!(everything, 6);
    }
    let east_view = as_key(&b.app, &east_key, count).await?;
    assert_eq!(
        east_view["data"]["journalEntries"]["totalCount"], 1,
        "{east_view}"
    );
    assert_eq!(
        east_view["data"]["trialBalance"]["totalDebit"], "5.00",
        "{east_view}"
    );
    let (_, global_key) =
        crate::apps::app_with_key(&b.app, &b.admin.access, &["FINANCE_READ"], None).await?;
    let global_view = as_key(&b.app, &global_key, count).await?;
    assert_eq!(
        global_view["data"]["journalEntries"]["totalCount"], 3,
        "{global_view}"
    );
    let (_, tasks_key) =
        crate::apps::app_with_key(&b.app, &b.admin.access, &["TASKS_READ"], None).await?;
    let tasks_view = as_key(&b.app, &tasks_key, count).await?;
    assert_eq!(error_code(&tasks_view), Some("FORBIDDEN"), "{tasks_view}");
    Ok(())
}

async fn journal_entries_filter_and_page(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    let other = child_of(&b, "Other", None).await?;
    let dated = |date: &str, center: &str| {
        json!({ "i": { "memo": date, "postingDate": date, "lines": [
            { "accountCode": "6000", "debit": "1.00", "costCenterId": center },
            { "accountCode": "1000", "credit": "1.00" }
        ] } })
    };
    let mut ids = Vec::new();
    for date in ["2026-10-05", "2026-11-15", "2026-11-20", "2026-12-01"] {
        let posted = b
            .app
            .gql_ok(token, POST, dated(date, &b.department))
            .await?;
        ids.push(str_at(&posted, "/postJournalEntry/id")?);
    }
    b.app
        .gql_ok(token, POST, dated("2026-11-16", &other))
        .await?;
    let sale = json!({ "i": { "memo": "sale", "postingDate": "2026-11-17", "lines": [
        { "accountCode": "1000", "debit": "3.00" },
        { "accountCode": "4000", "credit": "3.00" }
    ] } });
    b.app.gql_ok(token, POST, sale).await?;
    b.app
        .gql_ok(
            token,
            "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }",
            json!({ "i": {
                "code": "SALE", "name": "Sale", "route": "FINANCE_POSTING",
                "payloadSchema": { "type": "object", "required": ["amount"], "properties": { "amount": { "type": "string" } } },
                "postingRule": { "lines": [
                    { "account": "1000", "side": "DEBIT", "amountField": "amount" },
                    { "account": "4000", "side": "CREDIT", "amountField": "amount" }
                ] }
            } }),
        )
        .await?;
    b.app
        .gql_ok(
            token,
            "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id } }",
            json!({ "i": { "type": "SALE", "idempotencyKey": "sale-1", "payload": { "amount": "7.00" } } }),
        )
        .await?;
    let reversal = b
        .app
        .gql_ok(
            token,
            "mutation($id: ID!) { reverseJournalEntry(id: $id) { id } }",
            json!({ "id": ids[0] }),
        )
        .await?;
    let reversal_id = str_at(&reversal, "/reverseJournalEntry/id")?;
    let total = |body: &Value| body["journalEntries"]["totalCount"].clone();

    let november = b
        .app
        .gql_ok(
            token,
            ENTRIES,
            json!({ "f": { "from": "2026-11-01", "to": "2026-11-30" } }),
        )
        .await?;
    assert_eq!(total(&november), 4, "{november}");
    let dates: Vec<&str> = november["journalEntries"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["node"]["postingDate"].as_str())
        .collect();
    assert_eq!(
        dates,
        ["2026-11-15", "2026-11-16", "2026-11-17", "2026-11-20"]
    );
    let revenue = b
        .app
        .gql_ok(token, ENTRIES, json!({ "f": { "accountCode": "4000" } }))
        .await?;
    assert_eq!(total(&revenue), 2, "{revenue}");
    let ops = b
        .app
        .gql_ok(
            token,
            ENTRIES,
            json!({ "f": { "costCenterId": b.department } }),
        )
        .await?;
    // Four postings, and the reversal of the first (its lines keep the cost centre).
    assert_eq!(total(&ops), 5, "{ops}");
    let reversals = b
        .app
        .gql_ok(token, ENTRIES, json!({ "f": { "source": "REVERSAL" } }))
        .await?;
    assert_eq!(total(&reversals), 1);
    assert_eq!(
        reversals["journalEntries"]["edges"][0]["node"]["id"],
        reversal_id.as_str()
    );
    assert_eq!(
        reversals["journalEntries"]["edges"][0]["node"]["source"],
        "REVERSAL"
    );
    let manual = b
        .app
        .gql_ok(token, ENTRIES, json!({ "f": { "source": "MANUAL" } }))
        .await?;
    assert_eq!(total(&manual), 6, "{manual}");
    let posted = b
        .app
        .gql_ok(token, ENTRIES, json!({ "f": { "source": "TRANSACTION" } }))
        .await?;
    assert_eq!(total(&posted), 1, "{posted}");
    assert_eq!(
        posted["journalEntries"]["edges"][0]["node"]["source"],
        "TRANSACTION"
    );
    // No task's cash output was posted here.
    let none = b
        .app
        .gql_ok(token, ENTRIES, json!({ "f": { "source": "TASK" } }))
        .await?;
    assert_eq!(total(&none), 0, "{none}");

    // Pages of two over all eight, in order, without repeats.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = b
            .app
            .gql_ok(token, ENTRIES, json!({ "n": 2, "a": after }))
            .await?;
        assert_eq!(total(&page), 8);
        for edge in page["journalEntries"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
        {
            seen.push(
                edge["node"]["postingDate"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        if page["journalEntries"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["journalEntries"]["pageInfo"]["endCursor"].clone();
        assert!(seen.len() < 10, "paging does not end");
    }
    assert_eq!(seen.len(), 8);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);

    for bad in [
        json!({ "f": { "accountCode": "9999" } }),
        json!({ "f": { "from": "2026-12-01", "to": "2026-11-01" } }),
        json!({ "n": 101 }),
    ] {
        let body = b.app.gql(token, ENTRIES, bad.clone()).await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{bad}: {body}");
    }
    Ok(())
}

on_both_backends!(
    accounts_are_edited_and_closed_without_touching_history,
    budgets_are_edited_in_place
);

const ACCOUNTS: &str = "{ accounts { code name type active } }";

fn account_row(accounts: &Value, code: &str) -> Value {
    accounts["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["code"] == code)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn accounts_are_edited_and_closed_without_touching_history(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    let id_of = async |code: &str| -> anyhow::Result<String> {
        let data = b
            .app
            .gql_ok(token, "{ accounts { id code } }", json!({}))
            .await?;
        let found = data["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["code"] == code)
            .and_then(|a| a["id"].as_str())
            .map(str::to_owned);
        found.ok_or_else(|| anyhow::anyhow!("no account {code}"))
    };
    let (expense, revenue) = (id_of("6000").await?, id_of("4000").await?);
    let update = "mutation($id: ID!, $i: UpdateAccountInput!) { updateAccount(id: $id, input: $i) { code name type active } }";
    let deactivate = "mutation($id: ID!) { deactivateAccount(id: $id) { code active } }";
    let reactivate = "mutation($id: ID!) { reactivateAccount(id: $id) { code active } }";

    // Nothing is posted to 4000 yet, so its type may still change; the code never does.
    let edited = b
        .app
        .gql_ok(
            token,
            update,
            json!({ "id": revenue, "i": { "name": "Other income", "type": "LIABILITY" } }),
        )
        .await?;
    assert_eq!(
        edited["updateAccount"],
        json!({ "code": "4000", "name": "Other income", "type": "LIABILITY", "active": true })
    );
    let posted = b
        .app
        .gql_ok(token, POST, spend("40.00", &b.department))
        .await?;
    let entry = str_at(&posted, "/postJournalEntry/id")?;

    let before = b.app.gql_ok(token, ACCOUNTS, json!({})).await?;
    let reader = finance_reader(&b, &b.department).await?;
    let refusals = [
        (
            Some(reader.access.as_str()),
            update,
            json!({ "id": expense, "i": { "name": "Mine" } }),
            "FORBIDDEN",
        ),
        (
            Some(reader.access.as_str()),
            deactivate,
            json!({ "id": expense }),
            "FORBIDDEN",
        ),
        (
            token,
            update,
            json!({ "id": expense, "i": { "type": "ASSET" } }),
            "CONFLICT",
        ),
        (
            token,
            update,
            json!({ "id": expense, "i": { "name": "  " } }),
            "BAD_USER_INPUT",
        ),
        (
            token,
            update,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "i": { "name": "Ghost" } }),
            "NOT_FOUND",
        ),
        (
            token,
            deactivate,
            json!({ "id": "not-an-id" }),
            "BAD_USER_INPUT",
        ),
    ];
    for (who, query, variables, code) in refusals {
        let body = b.app.gql(who, query, variables.clone()).await?;
        assert_eq!(error_code(&body), Some(code), "{variables}: {body}");
    }
    assert_eq!(b.app.gql_ok(token, ACCOUNTS, json!({})).await?, before);
    // The same type is no change, even under postings.
    b.app
        .gql_ok(
            token,
            update,
            json!({ "id": expense, "i": { "type": "EXPENSE", "name": "Costs" } }),
        )
        .await?;

    let closed = b
        .app
        .gql_ok(token, deactivate, json!({ "id": expense }))
        .await?;
    assert_eq!(closed["deactivateAccount"]["active"], false);
    let again = b
        .app
        .gql_ok(token, deactivate, json!({ "id": expense }))
        .await?;
    assert_eq!(again["deactivateAccount"]["active"], false);
    let trial_before = b.app.gql_ok(token, TRIAL, json!({})).await?;
    let refused = b.app.gql(token, POST, spend("1.00", &b.department)).await?;
    assert_eq!(error_code(&refused), Some("BAD_USER_INPUT"), "{refused}");
    assert_eq!(
        refused.pointer("/errors/0/extensions/field"),
        Some(&json!("lines")),
        "{refused}"
    );
    let no_budget = b
        .app
        .gql(
            token,
            "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
            json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2026-11", "amount": "5.00", "policy": "STOP" } }),
        )
        .await?;
    assert_eq!(
        no_budget.pointer("/errors/0/extensions/field"),
        Some(&json!("accountCode")),
        "{no_budget}"
    );
    assert_eq!(b.app.gql_ok(token, TRIAL, json!({})).await?, trial_before);
    let listed = b.app.gql_ok(token, ACCOUNTS, json!({})).await?;
    assert_eq!(account_row(&listed, "6000")["active"], false, "{listed}");
    assert_eq!(account_row(&listed, "1000")["active"], true, "{listed}");

    // History stays correctable: the entry on the closed account is reversed.
    b.app
        .gql_ok(
            token,
            "mutation($id: ID!) { reverseJournalEntry(id: $id) { id } }",
            json!({ "id": entry }),
        )
        .await?;
    let opened = b
        .app
        .gql_ok(token, reactivate, json!({ "id": expense }))
        .await?;
    assert_eq!(opened["reactivateAccount"]["active"], true);
    b.app
        .gql_ok(token, POST, spend("1.00", &b.department))
        .await?;
    let trial = b.app.gql_ok(token, TRIAL, json!({})).await?;
    assert_eq!(trial["trialBalance"]["totalDebit"], "81.00", "{trial}");
    Ok(())
}

async fn budgets_are_edited_in_place(backend: Backend) -> anyhow::Result<()> {
    let Some(b) = books(backend).await? else {
        return Ok(());
    };
    let token = Some(b.admin.access.as_str());
    let created = b
        .app
        .gql_ok(
            token,
            "mutation($i: CreateBudgetInput!) { createBudget(input: $i) { id } }",
            json!({ "i": { "costCenterId": b.department, "accountCode": "6000", "period": "2026-11", "amount": "100.00", "policy": "WARN" } }),
        )
        .await?;
    let id = str_at(&created, "/createBudget/id")?;
    let update = "mutation($id: ID!, $i: UpdateBudgetInput!) { updateBudget(id: $id, input: $i) { id period policy budgeted actual remaining } }";
    let usage = "{ budgetUsage { id period policy budgeted actual remaining } }";
    b.app
        .gql_ok(token, POST, spend("60.00", &b.department))
        .await?;

    let before = b.app.gql_ok(token, usage, json!({})).await?;
    let reader = finance_reader(&b, &b.department).await?;
    let refusals = [
        (
            Some(reader.access.as_str()),
            json!({ "id": id, "i": { "amount": "1.00" } }),
            "FORBIDDEN",
        ),
        (
            token,
            json!({ "id": id, "i": { "amount": "-1.00" } }),
            "BAD_USER_INPUT",
        ),
        (
            token,
            json!({ "id": id, "i": { "amount": "1.001" } }),
            "BAD_USER_INPUT",
        ),
        (
            token,
            json!({ "id": id, "i": { "policy": "SOMETIMES" } }),
            "BAD_USER_INPUT",
        ),
        (
            token,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "i": { "amount": "1.00" } }),
            "NOT_FOUND",
        ),
    ];
    for (who, variables, code) in refusals {
        let body = b.app.gql(who, update, variables.clone()).await?;
        assert_eq!(error_code(&body), Some(code), "{variables}: {body}");
    }
    assert_eq!(b.app.gql_ok(token, usage, json!({})).await?, before);

    // Lowered below what is spent and made STOP: it shows as overrun and takes no more.
    let edited = b
        .app
        .gql_ok(
            token,
            update,
            json!({ "id": id, "i": { "amount": "50.00", "policy": "STOP" } }),
        )
        .await?;
    assert_eq!(
        edited["updateBudget"],
        json!({ "id": id, "period": "2026-11", "policy": "STOP", "budgeted": "50.00", "actual": "60.00", "remaining": "-10.00" })
    );
    assert_eq!(
        b.app.gql_ok(token, usage, json!({})).await?["budgetUsage"][0],
        edited["updateBudget"]
    );
    let stopped = b.app.gql(token, POST, spend("1.00", &b.department)).await?;
    assert_eq!(error_code(&stopped), Some("CONFLICT"), "{stopped}");
    // Only the amount is given: the policy is kept.
    let raised = b
        .app
        .gql_ok(
            token,
            update,
            json!({ "id": id, "i": { "amount": "61.00" } }),
        )
        .await?;
    assert_eq!(raised["updateBudget"]["policy"], "STOP");
    b.app
        .gql_ok(token, POST, spend("1.00", &b.department))
        .await?;
    let full = b.app.gql(token, POST, spend("0.01", &b.department)).await?;
    assert_eq!(error_code(&full), Some("CONFLICT"), "{full}");
    Ok(())
}
