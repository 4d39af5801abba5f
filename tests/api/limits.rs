//! Document limits under the default settings: standard tools introspect, while depth, tokens,
//! directives, fragment fan-out and complexity arithmetic stay bounded with one short error;
//! GraphQL over HTTP's response shape (and its official audit).

use std::process::Command;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{error_code, repo_file, Backend, TestApp};
use crate::spawn_or_skip;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// POSTs `body` as JSON, returning the status and the parsed body.
async fn post(app: &TestApp, accept: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, accept)
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await?))
}

/// Asserts the body is exactly one error, with `BAD_USER_INPUT` and a message containing
/// `needle`, and no `data`.
fn one_refusal(body: &Value, needle: &str) {
    let errors = body["errors"].as_array().map(Vec::len);
    assert_eq!(errors, Some(1), "{body:.2000}");
    assert_eq!(error_code(body), Some("BAD_USER_INPUT"), "{body:.2000}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message}");
    assert!(message.len() < 200, "{message}");
    assert!(body.get("data").is_none(), "{body:.2000}");
}

async fn refused(app: &TestApp, query: &str, needle: &str) -> anyhow::Result<()> {
    let (status, body) = post(app, GRAPHQL_RESPONSE, &json!({ "query": query })).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.2000}");
    one_refusal(&body, needle);
    Ok(())
}

#[tokio::test]
async fn graphql_js_introspection_query_gets_the_full_schema() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    // The output of tests/tooling/introspection-query.mjs: graphql-js's getIntrospectionQuery().
    let query = std::fs::read_to_string(repo_file("tests/fixtures/introspection-query.graphql"))?;
    let (status, body) = post(
        &app,
        GRAPHQL_RESPONSE,
        &json!({ "query": query, "operationName": "IntrospectionQuery" }),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body:.2000}");
    assert!(body.get("errors").is_none(), "{body:.2000}");
    let schema = &body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "QueryRoot");
    assert_eq!(schema["subscriptionType"]["name"], "SubscriptionRoot");
    let types = schema["types"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = types.iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in ["Task", "User", "JournalEntry", "__Type", "Money"] {
        assert!(names.contains(&expected), "no {expected} in {names:?}");
    }
    // The type references resolve all the way down: `[Task!]!`-like wrappers and their names.
    let query_root = types
        .iter()
        .find(|t| t["name"] == "QueryRoot")
        .ok_or_else(|| anyhow::anyhow!("no QueryRoot"))?;
    let tasks = query_root["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["name"] == "tasks"))
        .ok_or_else(|| anyhow::anyhow!("no QueryRoot.tasks"))?;
    assert_eq!(tasks["type"]["kind"], "NON_NULL", "{tasks}");
    assert!(tasks["type"]["ofType"]["name"].is_string(), "{tasks}");
    assert!(!schema["directives"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn deep_documents_are_still_refused() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    // 60 levels of data fields.
    let data = format!(
        "{{ me {{ department {} id {} }} }}",
        "{ parent ".repeat(58),
        "}".repeat(58)
    );
    refused(&app, &data, "nested too deep").await?;
    // Well within the recursion bound, the depth limit itself (12) refuses 14 levels.
    let fourteen = format!(
        "{{ me {{ department {} id {} }} }}",
        "{ parent ".repeat(11),
        "}".repeat(11)
    );
    refused(&app, &fourteen, "at most 12 levels of fields").await?;
    // The same depth spread over fragments counts where the fragments are spread.
    let mut via_fragments = String::from("query { me { department { ...P0 } } }");
    for i in 0..29 {
        via_fragments.push_str(&format!(
            " fragment P{i} on Department {{ parent {{ parent {{ ...P{} }} }} }}",
            i + 1
        ));
    }
    via_fragments.push_str(" fragment P29 on Department { id }");
    refused(&app, &via_fragments, "nested too deep").await?;
    // Introspection has its own bound: a 60-long ofType chain is refused too.
    let chain = format!(
        "{{ __type(name: \"Task\") {} name {} }}",
        "{ ofType ".repeat(60),
        "}".repeat(60)
    );
    refused(&app, &chain, "nested too deep").await?;
    let chain = format!(
        "{{ __type(name: \"Task\") {} name {} }}",
        "{ ofType ".repeat(25),
        "}".repeat(25)
    );
    refused(&app, &chain, "Introspection is nested too deep").await?;
    // And its type lists may not nest, which would multiply the answer by the schema per level.
    refused(
        &app,
        "{ __schema { types { fields { type { ofType { fields { name } } } } } } }",
        "member list",
    )
    .await?;
    // A document too deep even to parse safely is one error, not a crash.
    let nested = format!("{}{}", "{ a ".repeat(3000), "}".repeat(3000));
    let (_, body) = post(&app, GRAPHQL_RESPONSE, &json!({ "query": nested })).await?;
    assert_eq!(
        body["errors"].as_array().map(Vec::len),
        Some(1),
        "{body:.500}"
    );
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body:.500}");
    // Still serving.
    let (status, body) = post(
        &app,
        GRAPHQL_RESPONSE,
        &json!({ "query": "{ __typename }" }),
    )
    .await?;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (StatusCode::OK, &json!("QueryRoot"))
    );
    Ok(())
}

#[tokio::test]
async fn huge_pages_cannot_overflow_the_complexity_sum() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    const MAX: &str = "2147483647";
    // Three nested lists at i32::MAX each: the product overflowed (a panic in a debug build).
    let nested = format!(
        "{{ tasks(first: {MAX}) {{ edges {{ node {{ subtasks(first: {MAX}) {{ edges {{ node {{ \
         comments(first: {MAX}) {{ edges {{ node {{ id }} }} }} }} }} }} }} }} }} }}"
    );
    refused(&app, &nested, "too complex").await?;
    // A sibling that would wrap around cannot make an expensive one look cheap.
    let expensive = "a: tasks(first: 100) { edges { node { subtasks(first: 100) { edges { node { id } } } } } }";
    refused(&app, &format!("{{ {expensive} }}"), "too complex").await?;
    let wrapping = format!(
        "b: tasks(first: {MAX}) {{ edges {{ node {{ subtasks(first: {MAX}) {{ edges {{ node {{ \
         subtasks(first: {MAX}) {{ edges {{ node {{ subtasks(first: {MAX}) {{ totalCount }} }} }} }} }} }} }} }} }} }}"
    );
    refused(
        &app,
        &format!("{{ {expensive} {wrapping} }}"),
        "too complex",
    )
    .await?;

    // `first` is counted as the resolver takes it: a page of at most 100, so a cheap query
    // with a huge `first` passes the limit and the resolver names the argument.
    let session = app.admin().await?;
    let body = app
        .gql(
            Some(&session.access),
            &format!("{{ tasks(first: {MAX}) {{ edges {{ node {{ id }} }} }} }}"),
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("first"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn directives_and_tokens_are_bounded_with_one_error() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    let many = "@a ".repeat(20_000);
    refused(&app, &format!("query Q {many} {{ __typename }}"), "tokens").await?;
    refused(
        &app,
        &format!("query {{ ...F }} fragment F on QueryRoot {many} {{ __typename }}"),
        "tokens",
    )
    .await?;
    refused(
        &app,
        &format!("query {{ ...F {many} }} fragment F on QueryRoot {{ __typename }}"),
        "tokens",
    )
    .await?;
    // Under the token bound, directives anywhere count towards one total.
    let some = "@a ".repeat(30);
    refused(
        &app,
        &format!("query Q($v: Int {some}) {some} {{ __typename }}"),
        "directives",
    )
    .await?;
    refused(
        &app,
        &format!("query {{ ...F {some} }} fragment F on QueryRoot {some} {{ __typename }}"),
        "directives",
    )
    .await?;

    let long = format!("{{ {} }}", "__typename ".repeat(10_000));
    refused(&app, &long, "tokens").await?;
    // Comments and strings are skipped whole: braces inside them are not tokens.
    let commented = format!("# {}\n{{ __typename }}", "{ ".repeat(20_000));
    let (status, body) = post(&app, GRAPHQL_RESPONSE, &json!({ "query": commented })).await?;
    assert_eq!(status, StatusCode::OK, "{body:.500}");
    assert_eq!(body["data"]["__typename"], "QueryRoot");
    let in_string = format!("{{ __type(name: \"{}\") {{ name }} }}", "{ ".repeat(20_000));
    let (status, body) = post(&app, GRAPHQL_RESPONSE, &json!({ "query": in_string })).await?;
    assert_eq!(status, StatusCode::OK, "{body:.500}");
    assert!(body["data"]["__type"].is_null(), "{body:.500}");

    // Fragments that fan out are counted once each, not expanded: 3^20 selections, refused at once.
    let mut fan_out = String::from("query { ...F0 }");
    for i in 0..20 {
        let next = format!("...F{}", i + 1);
        fan_out.push_str(&format!(
            " fragment F{i} on QueryRoot {{ {next} {next} {next} }}"
        ));
    }
    fan_out.push_str(" fragment F20 on QueryRoot { __typename }");
    refused(&app, &fan_out, "expands to more than").await?;
    Ok(())
}

#[tokio::test]
async fn requests_refused_before_execution_have_no_data() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    for (query, status_for_new_type) in [
        ("{ __typename", StatusCode::BAD_REQUEST),
        ("{ noSuchField }", StatusCode::BAD_REQUEST),
    ] {
        let request = json!({ "query": query });
        let (status, body) = post(&app, GRAPHQL_RESPONSE, &request).await?;
        assert_eq!(status, status_for_new_type, "{body}");
        assert!(body.get("data").is_none(), "{body}");
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        let (status, body) = post(&app, "application/json", &request).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("data").is_none(), "{body}");
        assert!(body["errors"].is_array(), "{body}");
    }
    // An operation that ran keeps its data, even when a field failed.
    let (status, body) = post(&app, GRAPHQL_RESPONSE, &json!({ "query": "{ me { id } }" })).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("data").is_some(), "{body}");
    // In a batch, each entry is shaped on its own.
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ noSuchField }" }]);
    let (status, body) = post(&app, "application/json", &batch).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["data"]["__typename"], "QueryRoot", "{body}");
    assert!(body[1].get("data").is_none(), "{body}");
    Ok(())
}

/// graphql-http's official audit against the real router: every MUST passes, no SHOULD warns.
/// Needs node and `npm ci --prefix tests/tooling`; skipped without them unless services are
/// required (as in CI).
#[tokio::test]
async fn graphql_over_http_audit_passes() -> anyhow::Result<()> {
    let required = std::env::var("INTERLINK_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let node = Command::new("node").arg("--version").output();
    let installed = repo_file("tests/tooling/node_modules/graphql-http/package.json").exists();
    if !(node.is_ok_and(|o| o.status.success()) && installed) {
        anyhow::ensure!(
            !required,
            "INTERLINK_REQUIRE_SERVICES=1 but node or tests/tooling/node_modules is missing (npm ci --prefix tests/tooling)"
        );
        eprintln!(
            "skipped: the GraphQL-over-HTTP audit needs node and npm ci --prefix tests/tooling"
        );
        return Ok(());
    }
    let app = spawn_or_skip!(Backend::Sqlite);
    let output = tokio::process::Command::new("node")
        .arg(repo_file("tests/tooling/http-audit.mjs"))
        .arg(app.url("/graphql"))
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "audit failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_default();
    assert!(summary.contains(" 0 warnings, 0 errors"), "{summary}");
    let musts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("MUST"))
        .collect();
    let must_ok = musts.iter().filter(|l| l.starts_with("ok ")).count();
    let must = musts.len();
    assert!(must > 0 && must_ok == must, "{stdout}");
    Ok(())
}
