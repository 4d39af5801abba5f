//! The summary CSVs (task and approval statistics, portraits) hold what the GraphQL fields give
//! the same viewer, are refused to apps without the field's scope, and parse `groupBy` as the
//! GraphQL enums.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::apps::{app_with_key, far_department, task_in};
use crate::helpers::{str_at, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(summary_csvs_match_graphql_for_each_viewer);

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn cell<'a>(&'a self, row: &'a [String], name: &str) -> &'a str {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|at| row.get(at))
            .map_or("<missing>", String::as_str)
    }
}

async fn fetch(app: &TestApp, key: (&str, &str), path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let response = app
        .http
        .get(app.url(path))
        .header(key.0, key.1)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

async fn table(app: &TestApp, token: &str, path: &str) -> anyhow::Result<Table> {
    let bearer = format!("Bearer {token}");
    let (status, body) = fetch(app, ("authorization", &bearer), path).await?;
    anyhow::ensure!(
        status == 200,
        "{path}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let mut reader = csv::ReaderBuilder::new().from_reader(body.as_slice());
    let header = reader.headers()?.iter().map(str::to_owned).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record?.iter().map(str::to_owned).collect());
    }
    Ok(Table { header, rows })
}

async fn refusal(app: &TestApp, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    let bearer = format!("Bearer {token}");
    let (status, body) = fetch(app, ("authorization", &bearer), path).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Department id ("" for none) → (count, done, merit), as text.
type ByDepartment = BTreeMap<String, (String, String, String)>;

const TASK_STATS: &str = "{ taskStats(filter: { mainOnly: true }, groupBy: [DEPARTMENT]) { rows { department { id } count done meritTotal } total { count } } }";

/// GraphQL's groups, and the total count.
async fn task_stats_by_graphql(
    app: &TestApp,
    token: &str,
) -> anyhow::Result<(ByDepartment, String)> {
    let data = app.gql_ok(Some(token), TASK_STATS, json!({})).await?;
    let mut rows = BTreeMap::new();
    for row in data["taskStats"]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        rows.insert(
            row["department"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (
                row["count"].to_string(),
                row["done"].to_string(),
                row["meritTotal"].to_string(),
            ),
        );
    }
    Ok((rows, data["taskStats"]["total"]["count"].to_string()))
}

fn task_stats_by_csv(t: &Table) -> (ByDepartment, Vec<String>) {
    let mut rows = BTreeMap::new();
    let mut totals = Vec::new();
    for row in &t.rows {
        if t.cell(row, "scope") == "total" {
            totals.push(t.cell(row, "count").to_owned());
            continue;
        }
        rows.insert(
            t.cell(row, "departmentId").to_owned(),
            (
                t.cell(row, "count").to_owned(),
                t.cell(row, "done").to_owned(),
                t.cell(row, "meritTotal").to_owned(),
            ),
        );
    }
    (rows, totals)
}

async fn summary_csvs_match_graphql_for_each_viewer(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = crate::tasks::company(backend).await? else {
        return Ok(());
    };
    let (app, admin) = (&c.app, c.admin.access.as_str());
    let far = far_department(app, admin).await?;
    for title in ["One", "Two"] {
        task_in(app, admin, &c.quick_category, &c.north, title).await?;
    }
    task_in(app, admin, &c.quick_category, &far, "Far away").await?;
    // North's task reader: a department-scoped grant, so fewer tasks than the administrator.
    let reader = crate::tasks::person(app, &c.north).await?;
    let role = app
        .gql_ok(
            Some(admin),
            "mutation { createRole(input: { name: \"North reader\", permissions: [\"task.read\"] }) { id } }",
            json!({}),
        )
        .await?;
    app.gql_ok(
        Some(admin),
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": reader.user_id, "r": str_at(&role, "/createRole/id")?, "d": c.north }),
    )
    .await?;

    // Task statistics: the CSV's groups and total are GraphQL's, for each viewer.
    let mut totals = Vec::new();
    for token in [admin, reader.access.as_str()] {
        let csv = table(
            app,
            token,
            "/export/task-stats.csv?mainOnly=true&groupBy=DEPARTMENT",
        )
        .await?;
        let (csv_rows, csv_totals) = task_stats_by_csv(&csv);
        let (graphql_rows, graphql_total) = task_stats_by_graphql(app, token).await?;
        assert_eq!(csv_rows, graphql_rows);
        assert_eq!(csv_totals, vec![graphql_total.clone()]);
        totals.push(graphql_total.parse::<u64>()?);
    }
    assert!(totals[1] < totals[0], "the reader sees fewer: {totals:?}");
    assert!(totals[1] >= 2, "{totals:?}");

    // `groupBy` is parsed as the GraphQL enum and checked as GraphQL checks it.
    for (path, field) in [
        ("/export/task-stats.csv?groupBy=NOPE", "groupBy"),
        ("/export/task-stats.csv?groupBy=STATUS,STATUS", "groupBy"),
        ("/export/task-stats.csv?order=TITLE", "order"),
        ("/export/tasks.csv?groupBy=STATUS", "groupBy"),
        ("/export/approval-stats.csv?groupBy=DEPARTMENT", "groupBy"),
        (
            "/export/approval-stats.csv?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "from",
        ),
        ("/export/profiles.csv?from=yesterday", "from"),
    ] {
        let (status, body) = refusal(app, admin, path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{path}"
        );
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{path}: {body}"
        );
    }

    // Approval statistics: the total row is GraphQL's total.
    let approvals = table(app, admin, "/export/approval-stats.csv?groupBy=FLOW,STEP").await?;
    let data = app
        .gql_ok(
            Some(admin),
            "{ approvalStats(groupBy: [FLOW, STEP]) { rows { count } total { count approved pending } } }",
            json!({}),
        )
        .await?;
    let last = approvals.rows.last().cloned().unwrap_or_default();
    assert_eq!(approvals.cell(&last, "scope"), "total");
    assert_eq!(
        approvals.cell(&last, "count"),
        data["approvalStats"]["total"]["count"].to_string()
    );
    assert_eq!(
        approvals.rows.len(),
        data["approvalStats"]["rows"].as_array().map_or(0, Vec::len) + 1
    );

    // Portraits: one row per person the viewer may see, each equal to `User.profile`.
    let portrait = "query($id: ID!) { user(id: $id) { profile { tasksOpen currentWorkload tasksDone meritTotal } } }";
    let own = table(app, &c.stranger.access, "/export/profiles.csv").await?;
    assert_eq!(
        own.rows.len(),
        1,
        "a person without grants sees only their own"
    );
    assert_eq!(own.cell(&own.rows[0], "userId"), c.stranger.user_id);
    let everyone = table(app, admin, "/export/profiles.csv").await?;
    let users = app
        .gql_ok(Some(admin), "{ users(first: 0) { totalCount } }", json!({}))
        .await?;
    assert_eq!(
        everyone.rows.len() as u64,
        users["users"]["totalCount"].as_u64().unwrap_or_default()
    );
    let executor = everyone
        .rows
        .iter()
        .find(|r| everyone.cell(r, "userId") == c.executor.user_id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the executor is not in the administrator's file"))?;
    let profile = app
        .gql_ok(Some(admin), portrait, json!({ "id": c.executor.user_id }))
        .await?;
    for field in ["tasksOpen", "currentWorkload", "tasksDone", "meritTotal"] {
        assert_eq!(
            everyone.cell(&executor, field),
            profile["user"]["profile"][field].to_string(),
            "{field}"
        );
    }

    // An app reads a summary only with the scope of its GraphQL field.
    let (_, tasks_only) = app_with_key(app, admin, &["TASKS_READ"], None).await?;
    for path in ["/export/task-stats.csv", "/export/profiles.csv"] {
        let (status, _) = fetch(app, ("x-api-key", &tasks_only), path).await?;
        assert_eq!(status, 403, "{path}");
    }
    let (_, reports) = app_with_key(app, admin, &["TASKS_READ", "REPORTS_READ"], None).await?;
    let (status, body) = fetch(
        app,
        ("x-api-key", &reports),
        "/export/task-stats.csv?groupBy=DEPARTMENT",
    )
    .await?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    Ok(())
}
