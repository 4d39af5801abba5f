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
