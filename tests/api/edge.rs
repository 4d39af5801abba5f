//! The HTTP/GraphQL edge: GraphQL-over-HTTP, CSRF-safe content types, limits, errors, health.

use futures_util::stream;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::{error_code, Backend, TestApp};
use crate::{on_both_backends, spawn_or_skip};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

on_both_backends!(
    status_codes_follow_graphql_over_http,
    get_runs_queries_only,
    browser_simple_content_types_are_refused,
    oversized_bodies_get_413,
    batches_are_capped,
    query_limits_are_enforced,
    internal_errors_hide_their_cause,
    health_readiness_and_metrics,
);

async fn post_raw(
    app: &TestApp,
    accept: Option<&str>,
    body: &str,
) -> anyhow::Result<(StatusCode, String, Value)> {
    let mut request = app
        .http
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_owned());
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, content_type, body))
}

async fn status_codes_follow_graphql_over_http(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let ok = json!({ "query": "{ __typename }" }).to_string();
    let (status, content_type, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), &ok).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
    assert_eq!(body["data"]["__typename"], "QueryRoot");

    let (status, content_type, _) = post_raw(&app, Some("application/json"), &ok).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"));

    // A validation error never executes: 400 under the new media type, 200 under the legacy one.
    let invalid = json!({ "query": "{ noSuchField }" }).to_string();
    let (status, _, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), &invalid).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let (status, _, body) = post_raw(&app, Some("application/json"), &invalid).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    // An execution error (signed out) did execute: 200, with the code.
    let me = json!({ "query": "{ me { id } }" }).to_string();
    let (status, _, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), &me).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));

    // Malformed JSON, an unknown operation and a mistyped variable.
    let (status, _, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), "{\"query\": ").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let unknown_op = json!({ "query": "query A { __typename }", "operationName": "B" }).to_string();
    let (status, _, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), &unknown_op).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    let mistyped = json!({
        "query": "query($id: ID!) { user(id: $id) { id } }",
        "variables": { "id": { "not": "an id" } }
    })
    .to_string();
    let (status, _, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), &mistyped).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    // Subscriptions belong on the websocket.
    let subscription = json!({ "query": "subscription { identityEvents { kind } }" }).to_string();
    let (status, _, body) = post_raw(&app, Some(GRAPHQL_RESPONSE), &subscription).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    // Nothing we can produce, including an explicit refusal of both.
    let (status, _, _) = post_raw(
        &app,
        Some("application/json;q=0, application/graphql-response+json;q=0"),
        &ok,
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    let (status, _, _) = post_raw(&app, Some("text/html"), &ok).await?;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);

    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await?;
    assert!(response.headers().contains_key("x-request-id"));
    Ok(())
}

async fn get_runs_queries_only(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(body["data"]["__typename"], "QueryRoot");

    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { logout(allSessions: true) }")])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let body: Value = response.json().await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    // A named mutation in a multi-operation document is refused too.
    let response = app
        .http
        .get(app.url("/graphql"))
        .query(&[
            (
                "query",
                "query Q { __typename } mutation M { logout(allSessions: true) }",
            ),
            ("operationName", "M"),
        ])
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

async fn browser_simple_content_types_are_refused(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let session = app.admin().await?;
    let users_before = count_users(&app, &session.access).await?;
    let email = crate::helpers::unique_email("csrf");
    let mutation = json!({
        "query": "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
        "variables": { "i": { "email": email, "name": "x", "password": "long enough password" } }
    })
    .to_string();
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
    ] {
        let response = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&session.access)
            .header(CONTENT_TYPE, content_type)
            .body(mutation.clone())
            .send()
            .await?;
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        let body: Value = response.json().await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));
    }
    assert_eq!(count_users(&app, &session.access).await?, users_before);

    // Multipart with the preflight header is a real GraphQL multipart request.
    let operations = json!({ "query": "{ __typename }" }).to_string();
    let form = reqwest::multipart::Form::new()
        .text("operations", operations)
        .text("map", "{}");
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("graphql-preflight", "1")
        .multipart(form)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(body["data"]["__typename"], "QueryRoot");
    Ok(())
}

async fn count_users(app: &TestApp, token: &str) -> anyhow::Result<u64> {
    let data = app
        .gql_ok(Some(token), "{ users(first: 0) { totalCount } }", json!({}))
        .await?;
    data["users"]["totalCount"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no totalCount in {data}"))
}

async fn oversized_bodies_get_413(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_MAX_BODY_BYTES", "4096"),
            ("INTERLINK_MAX_UPLOAD_BYTES", "4096")
        ]
    );
    let padding = "x".repeat(8192);
    let body = json!({ "query": "{ __typename }", "variables": { "pad": padding } }).to_string();
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let json_body: Value = response.json().await?;
    assert_eq!(error_code(&json_body), Some("BAD_USER_INPUT"));

    // Chunked, with no Content-Length to reject up front.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Multipart goes through the same limit.
    let form = reqwest::multipart::Form::new()
        .text(
            "operations",
            json!({ "query": "{ __typename }" }).to_string(),
        )
        .text("map", "{}")
        .text("pad", "y".repeat(16384));
    let response = app
        .http
        .post(app.url("/graphql"))
        .header("graphql-preflight", "1")
        .multipart(form)
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    Ok(())
}

async fn batches_are_capped(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, &[("INTERLINK_MAX_BATCH", "3")]);
    let op = json!({ "query": "{ __typename }" });
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!([op, op, op]))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(body.as_array().map(Vec::len), Some(3));

    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!([op, op, op, op]))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!([]))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

async fn query_limits_are_enforced(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_MAX_DEPTH", "6"),
            ("INTERLINK_MAX_COMPLEXITY", "500"),
            ("INTERLINK_MAX_DIRECTIVES", "1"),
            ("INTERLINK_MAX_RECURSIVE_DEPTH", "20"),
        ]
    );
    let session = app.admin().await?;
    let token = Some(session.access.as_str());

    let deep =
        "{ me { department { parent { parent { parent { parent { parent { id } } } } } } } }";
    let body = app.gql(token, deep, json!({})).await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nested too deep"),
        "{body}"
    );

    // List sizes count: 100 users each with their department costs far more than 500.
    let wide = "{ users(first: 100) { edges { node { id name email department { id name } } } } }";
    let body = app.gql(token, wide, json!({})).await?;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("complex"),
        "{body}"
    );
    let narrow = "{ users(first: 5) { edges { node { id name } } } }";
    assert!(app
        .gql(token, narrow, json!({}))
        .await?
        .get("errors")
        .is_none());

    let one = "{ me { id @include(if: true) } }";
    assert!(app
        .gql(token, one, json!({}))
        .await?
        .get("errors")
        .is_none());
    let two = "{ me { id @include(if: true) @skip(if: false) } }";
    let body = app.gql(token, two, json!({})).await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("directives"),
        "{body}"
    );

    // Recursion is checked while parsing, whatever the depth limit says.
    let lenient = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_MAX_DEPTH", "1000"),
            ("INTERLINK_MAX_RECURSIVE_DEPTH", "20")
        ]
    );
    let nested = format!(
        "{{ {} __typename {} }}",
        "... on QueryRoot { ".repeat(30),
        "}".repeat(30)
    );
    let body = lenient.gql(None, &nested, json!({})).await?;
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("recursion"),
        "{body}"
    );
    let shallow = format!(
        "{{ {} __typename {} }}",
        "... on QueryRoot { ".repeat(3),
        "}".repeat(3)
    );
    assert!(lenient
        .gql(None, &shallow, json!({}))
        .await?
        .get("errors")
        .is_none());
    Ok(())
}

async fn internal_errors_hide_their_cause(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    // Break storage underneath a running node: login must fail as INTERNAL, naming nothing.
    app.state
        .db
        .conn
        .execute_unprepared("DROP TABLE refresh_tokens")
        .await?;
    let body = app
        .gql(
            None,
            "mutation { login(email: \"admin@example.com\", password: \"admin-password-123\") { accessToken } }",
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    let text = body.to_string();
    assert!(!text.to_lowercase().contains("refresh_tokens"), "{text}");
    assert!(!text.to_lowercase().contains("insert"), "{text}");
    assert_eq!(body["errors"][0]["message"], "internal error");
    Ok(())
}

async fn health_readiness_and_metrics(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    assert_eq!(
        app.http.get(app.url("/healthz")).send().await?.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http.get(app.url("/readyz")).send().await?.status(),
        StatusCode::OK
    );
    app.gql(None, "{ me { id } }", json!({})).await?;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for name in [
        "interlink_http_requests_total",
        "interlink_http_request_duration_seconds",
        "interlink_graphql_errors_total{code=\"UNAUTHENTICATED\"}",
        "interlink_websocket_connections",
        "interlink_db_pool_connections",
        "interlink_event_subscribers",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }

    // The query page is a development tool.
    let page = app.http.get(app.url("/graphiql")).send().await?;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await?.contains("graphiql"));

    // Readiness reflects a lost database; liveness does not.
    app.state.db.conn.clone().close().await?;
    assert_eq!(
        app.http.get(app.url("/readyz")).send().await?.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        app.http.get(app.url("/healthz")).send().await?.status(),
        StatusCode::OK
    );
    Ok(())
}

#[tokio::test]
async fn production_hides_dev_tools() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite, &[("INTERLINK_ENV", "production")]);
    assert_eq!(
        app.http.get(app.url("/graphiql")).send().await?.status(),
        StatusCode::NOT_FOUND
    );
    let body = app
        .gql(None, "{ __schema { types { name } } }", json!({}))
        .await?;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection answered: {body}"
    );
    let body = app
        .gql(
            None,
            "{ __type(name: \"User\") { fields { name } } }",
            json!({}),
        )
        .await?;
    assert!(
        body["data"]["__type"].is_null(),
        "introspection answered: {body}"
    );
    let body = app.gql(None, "{ departmens { id } }", json!({})).await?;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("Did you mean"), "{message}");

    let dev = spawn_or_skip!(Backend::Sqlite);
    let body = dev.gql(None, "{ departmens { id } }", json!({})).await?;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Did you mean"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_slow_request_times_out() -> anyhow::Result<()> {
    // Password hashing alone takes longer than a millisecond.
    let app = spawn_or_skip!(Backend::Sqlite, &[("INTERLINK_REQUEST_TIMEOUT_MS", "1")]);
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": "mutation { login(email: \"admin@example.com\", password: \"admin-password-123\") { accessToken } }" }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    let body: Value = response.json().await?;
    assert!(error_code(&body).is_some(), "{body}");
    Ok(())
}
