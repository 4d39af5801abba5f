//! CSV exports: the same rows as the GraphQL lists for each viewer, neutralised cells, the BOM,
//! header-only credentials, typed parameters, app scopes, and background exports whose file
//! equals the streamed one.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::apps::{app_with_key, far_department, task_in};
use crate::helpers::{str_at, Backend, TestApp};
use crate::{on_both_backends, spawn_or_skip};

on_both_backends!(
    tasks_csv_holds_each_viewers_list,
    bad_requests_are_refused_with_their_status,
    finance_reports_match_graphql,
    large_and_async_exports_run_in_the_background,
    expired_export_files_are_refused_and_cleaned_up,
);

struct Csv {
    status: u16,
    disposition: String,
    content_type: String,
    body: Vec<u8>,
}

impl Csv {
    fn records(&self) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
        let text = self
            .body
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(&self.body);
        let mut reader = csv::ReaderBuilder::new().from_reader(text);
        let header = reader.headers()?.iter().map(str::to_owned).collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            rows.push(record?.iter().map(str::to_owned).collect());
        }
        Ok((header, rows))
    }

    fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

async fn get(app: &TestApp, token: Option<&str>, path: &str) -> anyhow::Result<Csv> {
    let mut request = app.http.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (disposition, content_type) = (header("content-disposition"), header("content-type"));
    let status = response.status().as_u16();
    Ok(Csv {
        status,
        disposition,
        content_type,
        body: response.bytes().await?.to_vec(),
    })
}

fn column<'a>(header: &[String], rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let at = header.iter().position(|h| h == name).unwrap_or(usize::MAX);
    rows.iter()
        .map(|r| r.get(at).map(String::as_str).unwrap_or("<missing>"))
        .collect()
}

const LIST: &str = "query($f: TaskFilter, $o: [TaskOrder!]) { tasks(filter: $f, orderBy: $o, first: 100) { totalCount nodes { id title } } }";

/// The ids of the viewer's `tasks` list, in its order.
async fn listed(
    app: &TestApp,
    token: &str,
    filter: Value,
    order: Value,
) -> anyhow::Result<Vec<String>> {
    let data = app
        .gql_ok(Some(token), LIST, json!({ "f": filter, "o": order }))
        .await?;
    let nodes = data["tasks"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        data["tasks"]["totalCount"].as_u64(),
        Some(nodes.len() as u64),
        "the fixture fits one page: {data}"
    );
    nodes
        .iter()
        .map(|n| {
            n["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("no id in {n}"))
        })
        .collect()
}

/// Titles refuse control characters, so a leading tab or carriage return cannot reach a task;
/// those two are covered by the neutraliser's unit test.
const INJECTIONS: [&str; 4] = ["=HYPERLINK(\"http://x\")", "+1+1", "-1+1", "@SUM(A1)"];

async fn tasks_csv_holds_each_viewers_list(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = crate::tasks::company(backend).await? else {
        return Ok(());
    };
    let (app, admin) = (&c.app, c.admin.access.as_str());
    let far = far_department(app, admin).await?;
    for title in INJECTIONS {
        task_in(app, admin, &c.quick_category, &c.north, title).await?;
    }
    let far_task = task_in(app, admin, &c.quick_category, &far, "Far away").await?;
    // A reader of North's tasks, and nothing else.
    let reader = crate::tasks::person(app, &c.north).await?;
    let role = app
        .gql_ok(
            Some(admin),
            "mutation { createRole(input: { name: \"Task reader\", permissions: [\"task.read\"] }) { id } }",
            json!({}),
        )
        .await?;
    app.gql_ok(
        Some(admin),
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": reader.user_id, "r": str_at(&role, "/createRole/id")?, "d": c.north }),
    )
    .await?;

    let filter = json!({ "mainOnly": true });
    let order = json!([{ "field": "TITLE", "direction": "DESC" }]);
    let mut sizes = Vec::new();
    for token in [admin, reader.access.as_str()] {
        let csv = get(
            app,
            Some(token),
            "/export/tasks.csv?mainOnly=true&order=TITLE:DESC",
        )
        .await?;
        assert_eq!(csv.status, 200, "{}", String::from_utf8_lossy(&csv.body));
        assert_eq!(csv.content_type, "text/csv; charset=utf-8");
        let today = chrono::Utc::now().date_naive().format("%Y-%m-%d");
        assert_eq!(
            csv.disposition,
            format!("attachment; filename=\"tasks-{today}.csv\"")
        );
        assert!(!csv.body.starts_with(b"\xEF\xBB\xBF"));
        let (header, rows) = csv.records()?;
        assert_eq!(header.first().map(String::as_str), Some("id"));
        let ids: Vec<String> = column(&header, &rows, "id")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let expected = listed(app, token, filter.clone(), order.clone()).await?;
        assert_eq!(ids.len(), expected.len());
        assert_eq!(
            ids.iter().collect::<BTreeSet<_>>(),
            expected.iter().collect::<BTreeSet<_>>()
        );
        // The same order too.
        assert_eq!(ids, expected);
        let titles = column(&header, &rows, "title");
        for title in INJECTIONS {
            let neutralised = format!("'{title}");
            assert!(
                titles.contains(&neutralised.as_str()),
                "{title:?} in {titles:?}"
            );
        }
        sizes.push((ids.len(), ids.contains(&far_task)));
    }
    // The administrator sees the far department's task; North's reader does not.
    assert_eq!(sizes[0], (INJECTIONS.len() + 1, true), "{sizes:?}");
    assert_eq!(sizes[1], (INJECTIONS.len(), false), "{sizes:?}");

    let with_bom = get(app, Some(admin), "/export/tasks.csv?bom=1&status=OPEN").await?;
    assert_eq!(with_bom.status, 200);
    assert!(with_bom.body.starts_with(b"\xEF\xBB\xBFid,"));
    let (header, rows) = with_bom.records()?;
    let expected = listed(app, admin, json!({ "status": "OPEN" }), json!([])).await?;
    let ids: BTreeSet<&str> = column(&header, &rows, "id").into_iter().collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect());
    Ok(())
}

fn code_and_field(csv: &Csv) -> anyhow::Result<(String, String)> {
    let body = csv.json()?;
    Ok((
        body.pointer("/errors/0/extensions/code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        body.pointer("/errors/0/extensions/field")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    ))
}

async fn bad_requests_are_refused_with_their_status(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());

    let anonymous = get(&app, None, "/export/tasks.csv").await?;
    assert_eq!(anonymous.status, 401);
    assert_eq!(code_and_field(&anonymous)?.0, "UNAUTHENTICATED");

    for (path, field) in [
        ("/export/tasks.csv?status=LATE", "status"),
        ("/export/tasks.csv?colour=red", "colour"),
        ("/export/tasks.csv?executorId=42", "executorId"),
        ("/export/tasks.csv?order=DEADLINE:SIDEWAYS", "order"),
        ("/export/trial-balance.csv?asOf=yesterday", "asOf"),
        ("/export/profit-and-loss.csv?from=2026-01-01", "to"),
        ("/export/tasks.csv?bom=maybe", "bom"),
    ] {
        let refused = get(&app, token, path).await?;
        assert_eq!(refused.status, 400, "{path}");
        assert_eq!(
            code_and_field(&refused)?,
            ("BAD_USER_INPUT".to_owned(), field.to_owned()),
            "{path}"
        );
    }
    // A credential in the URL is refused, even beside a good header, and even alone.
    for path in [
        format!("/export/tasks.csv?token={}", admin.access),
        format!("/export/tasks.csv?access_token={}", admin.access),
        "/export/tasks.csv?apiKey=ilk_whatever".to_owned(),
    ] {
        assert_eq!(get(&app, token, &path).await?.status, 400, "{path}");
        assert_eq!(get(&app, None, &path).await?.status, 400, "{path}");
    }

    let unknown = get(&app, token, "/export/salaries.csv").await?;
    assert_eq!(unknown.status, 404);
    let message = unknown.json()?.to_string();
    assert!(message.contains("trial-balance.csv"), "{message}");

    // Apps need the GraphQL field's scope.
    let (_, tasks_only) = app_with_key(&app, &admin.access, &["TASKS_READ"], None).await?;
    let (_, finance) = app_with_key(&app, &admin.access, &["FINANCE_READ"], None).await?;
    let forbidden = get(&app, Some(&tasks_only), "/export/trial-balance.csv").await?;
    assert_eq!(forbidden.status, 403);
    assert_eq!(code_and_field(&forbidden)?.0, "FORBIDDEN");
    let through_header = app
        .http
        .get(app.url("/export/trial-balance.csv"))
        .header("x-api-key", &finance)
        .send()
        .await?;
    assert_eq!(through_header.status().as_u16(), 200);
    assert_eq!(
        get(&app, Some(&finance), "/export/tasks.csv").await?.status,
        403
    );
    assert_eq!(
        get(&app, Some(&tasks_only), "/export/tasks.csv")
            .await?
            .status,
        200
    );
    Ok(())
}

const POST: &str = "mutation($i: PostJournalEntryInput!) { postJournalEntry(input: $i) { id } }";

/// Accounts 1000 (asset), 4000 (revenue), 6000 (expense), a department, and four entries.
async fn books(app: &TestApp, token: &str) -> anyhow::Result<String> {
    for (code, kind) in [("1000", "ASSET"), ("4000", "REVENUE"), ("6000", "EXPENSE")] {
        app.gql_ok(
            Some(token),
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { code } }",
            json!({ "i": { "code": code, "name": format!("=Account {code}"), "type": kind } }),
        )
        .await?;
    }
    let department = app
        .gql_ok(
            Some(token),
            "mutation { createDepartment(input: { name: \"Ops\" }) { id } }",
            json!({}),
        )
        .await?;
    let department = str_at(&department, "/createDepartment/id")?;
    for (date, memo, debit, credit, amount) in [
        ("2026-10-03", "Sale", "1000", "4000", "120.50"),
        ("2026-10-09", "Rent", "6000", "1000", "80.00"),
        ("2026-11-15", "@Refund", "4000", "1000", "10.25"),
        ("2026-11-20", "Sale", "1000", "4000", "7.00"),
    ] {
        app.gql_ok(
            Some(token),
            POST,
            json!({ "i": { "memo": memo, "postingDate": date, "lines": [
                { "accountCode": debit, "debit": amount, "costCenterId": department },
                { "accountCode": credit, "credit": amount, "costCenterId": department }
            ] } }),
        )
        .await?;
    }
    Ok(department)
}

async fn finance_reports_match_graphql(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let department = books(&app, token).await?;

    let trial = app
        .gql_ok(
            Some(token),
            "{ trialBalance { rows { accountCode debit credit balance } } }",
            json!({}),
        )
        .await?;
    let csv = get(&app, Some(token), "/export/trial-balance.csv").await?;
    assert_eq!(csv.status, 200);
    let (header, rows) = csv.records()?;
    assert_eq!(
        header,
        [
            "accountCode",
            "accountName",
            "debit",
            "credit",
            "balance",
            "currency"
        ]
    );
    let graphql: Vec<Vec<String>> = trial["trialBalance"]["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            ["accountCode", "debit", "credit", "balance"]
                .iter()
                .map(|k| r[*k].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .collect();
    let exported: Vec<Vec<String>> = rows
        .iter()
        .map(|r| vec![r[0].clone(), r[2].clone(), r[3].clone(), r[4].clone()])
        .collect();
    assert_eq!(exported, graphql);
    // Text from users is neutralised; amounts the export formats stay numbers, minus and all.
    assert!(column(&header, &rows, "accountName")
        .iter()
        .all(|n| n.starts_with("'=Account")));
    assert!(
        column(&header, &rows, "balance").contains(&"-117.25"),
        "{rows:?}"
    );

    let ledger = app
        .gql_ok(
            Some(token),
            "{ accountLedger(accountCode: \"1000\", from: \"2026-10-05\", first: 100) { openingBalance lines { entryId balance } } }",
            json!({}),
        )
        .await?;
    let csv = get(
        &app,
        Some(token),
        "/export/ledger.csv?accountCode=1000&from=2026-10-05",
    )
    .await?;
    assert_eq!(csv.status, 200, "{}", String::from_utf8_lossy(&csv.body));
    let (header, rows) = csv.records()?;
    let balances = column(&header, &rows, "balance");
    let mut expected = vec![ledger["accountLedger"]["openingBalance"]
        .as_str()
        .unwrap_or_default()];
    expected.extend(
        ledger["accountLedger"]["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["balance"].as_str().unwrap_or_default()),
    );
    assert_eq!(balances, expected);
    assert_eq!(balances, ["120.50", "40.50", "30.25", "37.25"]);
    let memos = column(&header, &rows, "memo");
    assert!(memos.contains(&"'@Refund"), "{memos:?}");

    let pnl = get(
        &app,
        Some(token),
        "/export/profit-and-loss.csv?from=2026-10-01&to=2026-11-30&groupBy=MONTH,DEPARTMENT",
    )
    .await?;
    assert_eq!(pnl.status, 200, "{}", String::from_utf8_lossy(&pnl.body));
    let (header, rows) = pnl.records()?;
    let months = column(&header, &rows, "month");
    assert_eq!(months, ["2026-10", "2026-11"]);
    assert_eq!(column(&header, &rows, "departmentName"), ["Ops", "Ops"]);
    assert_eq!(column(&header, &rows, "net"), ["40.50", "-3.25"]);

    let lines = get(
        &app,
        Some(token),
        &format!(
            "/export/journal-lines.csv?from=2026-10-05&costCenterId={department}&accountCode=1000"
        ),
    )
    .await?;
    assert_eq!(lines.status, 200);
    let (header, rows) = lines.records()?;
    assert_eq!(
        column(&header, &rows, "postingDate"),
        ["2026-10-09", "2026-11-15", "2026-11-20"]
    );
    assert_eq!(column(&header, &rows, "credit"), ["80.00", "10.25", "0.00"]);
    assert_eq!(
        column(&header, &rows, "accountCode"),
        ["1000", "1000", "1000"]
    );

    // Without finance.read the finance reports are refused, as in GraphQL.
    let plain_email = crate::helpers::unique_email("plain");
    app.create_user(token, &plain_email, "a good password")
        .await?;
    let plain = app.login(&plain_email, "a good password").await?;
    for path in [
        "/export/trial-balance.csv",
        "/export/journal-lines.csv",
        "/export/ledger.csv?accountCode=1000",
    ] {
        assert_eq!(
            get(&app, Some(&plain.access), path).await?.status,
            403,
            "{path}"
        );
    }
    Ok(())
}

/// Polls an export job's status until it reaches `wanted`; fails early on another end state.
async fn poll_state(
    app: &TestApp,
    token: &str,
    status: &str,
    wanted: &str,
) -> anyhow::Result<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = get(app, Some(token), status).await?;
        anyhow::ensure!(seen.status == 200, "status {}", seen.status);
        let body = seen.json()?;
        let state = body["state"].as_str().unwrap_or_default();
        if state == wanted {
            return Ok(body);
        }
        anyhow::ensure!(
            !["COMPLETED", "DISCARDED", "CANCELLED"].contains(&state),
            "ended {state}, not {wanted}: {body}"
        );
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn poll_job(app: &TestApp, token: &str, status: &str) -> anyhow::Result<Value> {
    poll_state(app, token, status, "COMPLETED").await
}

async fn large_and_async_exports_run_in_the_background(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            ("INTERLINK_EXPORT_MAX_SYNC_ROWS", "5"),
        ]
    );
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    books(&app, token).await?;

    // Small enough to stream, asked for in the background: the file equals the stream.
    let streamed = get(&app, Some(token), "/export/trial-balance.csv?bom=1").await?;
    assert_eq!(streamed.status, 200);
    let queued = get(&app, Some(token), "/export/trial-balance.csv?bom=1&async=1").await?;
    assert_eq!(
        queued.status,
        202,
        "{}",
        String::from_utf8_lossy(&queued.body)
    );
    let accepted = queued.json()?;
    let status = str_at(&accepted, "/status")?;
    let job = str_at(&accepted, "/jobId")?;
    assert_eq!(status, format!("/export/jobs/{job}"));
    let done = poll_job(&app, token, &status).await?;
    assert_eq!(done["rowsWritten"], 3, "{done}");
    let link = str_at(&done, "/download")?;
    let file = get(&app, Some(token), &link).await?;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, streamed.body);
    assert!(
        file.disposition.contains("trial-balance-"),
        "{}",
        file.disposition
    );

    // Eight journal lines are over the limit of five: the export goes to the background alone.
    let large = get(&app, Some(token), "/export/journal-lines.csv").await?;
    assert_eq!(
        large.status,
        202,
        "{}",
        String::from_utf8_lossy(&large.body)
    );
    let status = str_at(&large.json()?, "/status")?;
    let done = poll_job(&app, token, &status).await?;
    let file = get(&app, Some(token), &str_at(&done, "/download")?).await?;
    let (_, rows) = file.records()?;
    assert_eq!(rows.len(), 8);
    assert_eq!(done["rowsWritten"], 8, "{done}");

    // Someone else's job does not exist for them; nor does a job that is not an export.
    let other_email = crate::helpers::unique_email("other");
    app.create_user(token, &other_email, "a good password")
        .await?;
    let other = app.login(&other_email, "a good password").await?;
    assert_eq!(get(&app, Some(&other.access), &status).await?.status, 404);
    assert_eq!(
        get(&app, Some(&other.access), &format!("{status}/download"))
            .await?
            .status,
        404
    );
    assert_eq!(get(&app, None, &status).await?.status, 401);
    let nothing = format!("/export/jobs/{}", uuid::Uuid::now_v7());
    assert_eq!(get(&app, Some(token), &nothing).await?.status, 404);

    // A job runs as its requester looked up again: one who is deactivated before it starts
    // gets a failed job, not a file. (The queue is held while they are deactivated.)
    app.gql_ok(
        Some(token),
        "mutation { pauseQueue(name: \"exports\") { paused } }",
        json!({}),
    )
    .await?;
    let queued = get(&app, Some(token), "/export/trial-balance.csv?async=1").await?;
    let leaver_email = crate::helpers::unique_email("leaver");
    let leaver_id = app
        .create_user(token, &leaver_email, "a good password")
        .await?;
    let books_role = app
        .gql_ok(
            Some(token),
            "mutation { createRole(input: { name: \"Books\", permissions: [\"finance.read\"] }) { id } }",
            json!({}),
        )
        .await?;
    app.gql_ok(
        Some(token),
        "mutation($u: ID!, $r: ID!) { grantRole(userId: $u, roleId: $r) { id } }",
        json!({ "u": leaver_id, "r": str_at(&books_role, "/createRole/id")? }),
    )
    .await?;
    let leaver = app.login(&leaver_email, "a good password").await?;
    let theirs = get(
        &app,
        Some(&leaver.access),
        "/export/trial-balance.csv?async=1",
    )
    .await?;
    assert_eq!(
        theirs.status,
        202,
        "{}",
        String::from_utf8_lossy(&theirs.body)
    );
    let theirs = str_at(&theirs.json()?, "/status")?;
    app.gql_ok(
        Some(token),
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": leaver_id }),
    )
    .await?;
    app.gql_ok(
        Some(token),
        "mutation { resumeQueue(name: \"exports\") { paused } }",
        json!({}),
    )
    .await?;
    poll_job(&app, token, &str_at(&queued.json()?, "/status")?).await?;
    // The administrator may look at anyone's export job.
    let failed = poll_state(&app, token, &theirs, "DISCARDED").await?;
    assert!(failed["download"].is_null(), "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("no longer active")),
        "{failed}"
    );

    Ok(())
}

async fn expired_export_files_are_refused_and_cleaned_up(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            ("INTERLINK_EXPORT_FILE_TTL_HOURS", "0"),
        ]
    );
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let queued = get(&app, Some(token), "/export/trial-balance.csv?async=1").await?;
    let accepted = queued.json()?;
    let (status, job) = (str_at(&accepted, "/status")?, str_at(&accepted, "/jobId")?);
    let done = poll_job(&app, token, &status).await?;
    assert!(done["download"].is_null(), "{done}");
    let refused = get(&app, Some(token), &format!("{status}/download")).await?;
    assert_eq!(refused.status, 404);
    assert!(refused.json()?.to_string().contains("expired"));
    let key = format!("exports/{job}.csv");
    assert!(
        app.state.files.stream(&key).await.is_ok(),
        "the file was written"
    );
    let cleanup = app
        .gql_ok(
            Some(token),
            "mutation { enqueueJob(input: { kind: \"reports.export_cleanup\", args: {} }) { id } }",
            json!({}),
        )
        .await?;
    let cleanup = str_at(&cleanup, "/enqueueJob/id")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen = app
            .gql_ok(
                Some(token),
                "query($id: ID!) { job(id: $id) { state } }",
                json!({ "id": cleanup }),
            )
            .await?;
        if seen["job"]["state"] == "COMPLETED" {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "{seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.state.files.stream(&key).await.is_err(),
        "the file is gone"
    );
    Ok(())
}
