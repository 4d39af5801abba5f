//! Limits at the edge under the default settings: multipart fields, websocket caps, load
//! shedding, and 503 while the database is out of reach.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::{error_code, poll_until, Backend, TestApp};
use crate::tasks::Company;
use crate::websocket::{close_code, connect, init, send};
use crate::{on_both_backends, spawn_or_skip};

const MIB: usize = 1024 * 1024;

on_both_backends!(
    multipart_fields_keep_the_body_limit_and_files_the_upload_limit,
    requests_fail_with_503_while_the_database_is_unreachable,
);

async fn post_multipart(
    app: &TestApp,
    token: Option<&str>,
    form: reqwest::multipart::Form,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = app
        .http
        .post(app.url("/graphql"))
        .header("graphql-preflight", "1")
        .multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Padding that makes a JSON document of about `bytes`.
fn padded_operations(bytes: usize) -> String {
    json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(bytes) } }).to_string()
}

async fn multipart_fields_keep_the_body_limit_and_files_the_upload_limit(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let max_body = app.state.config.limits.max_body_bytes;
    let max_upload = app.state.config.limits.max_upload_bytes;
    assert_eq!((max_body, max_upload), (MIB, 10 * MIB), "default limits");

    // `operations` over the JSON body limit: refused, though far under the upload limit.
    let form = reqwest::multipart::Form::new()
        .text("operations", padded_operations(max_body + 1))
        .text("map", "{}");
    let (status, body) = post_multipart(&app, None, form).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), Some("BAD_USER_INPUT"));

    // So is a `map` over it.
    let huge_map = json!({ "0": ["variables.f"], "pad": ["x".repeat(max_body)] }).to_string();
    let form = reqwest::multipart::Form::new()
        .text("operations", padded_operations(10))
        .text("map", huge_map);
    let (status, body) = post_multipart(&app, None, form).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A form just under the limit still runs.
    let form = reqwest::multipart::Form::new()
        .text("operations", padded_operations(max_body - 1024))
        .text("map", "{}");
    let (status, body) = post_multipart(&app, None, form).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__typename"], "QueryRoot");

    // A file twice the body limit is an upload, under its own limit.
    let c = Company::new(app).await?;
    let task = c.draft(&c.category, json!({})).await?;
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(2 * MIB, b' ');
    let upload = |bytes: Vec<u8>| {
        let operations = json!({
            "query": "mutation($t: ID!, $f: Upload!) { uploadTaskAttachment(taskId: $t, file: $f) { sizeBytes } }",
            "variables": { "t": task, "f": null }
        });
        reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.f"] }).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(bytes).file_name("quote.pdf"),
            )
    };
    let (status, body) = post_multipart(&c.app, Some(&c.executor.access), upload(pdf)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["uploadTaskAttachment"]["sizeBytes"],
        2 * MIB as u64,
        "{body}"
    );

    // A file over the upload limit is refused, and so are files that each fit but together
    // pass the sum of both limits.
    let mut too_big = b"%PDF-1.7\n".to_vec();
    too_big.resize(max_upload + 1, b' ');
    let (status, _) = post_multipart(&c.app, Some(&c.executor.access), upload(too_big)).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let mut six = b"%PDF-1.7\n".to_vec();
    six.resize(6 * MIB, b' ');
    let two_files = upload(six.clone()).part(
        "1",
        reqwest::multipart::Part::bytes(six).file_name("second.pdf"),
    );
    // Its declared length is refused before it is read; past the part the server drains, the
    // client may see the connection reset before it reads the 413.
    match post_multipart(&c.app, Some(&c.executor.access), two_files).await {
        Ok((status, _)) => assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE),
        Err(err) => assert!(
            err.downcast_ref::<reqwest::Error>().is_some(),
            "not a transport error: {err}"
        ),
    }

    let listed = c
        .app
        .gql_ok(
            Some(&c.executor.access),
            "query($id: ID!) { task(id: $id) { attachments { sizeBytes } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        listed["task"]["attachments"],
        json!([{ "sizeBytes": 2 * MIB as u64 }]),
        "refused uploads store nothing"
    );
    Ok(())
}

/// The token comes in `connection_init`, so a user's cap closes the socket right after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_are_capped_per_user() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    let cap = app.state.config.limits.ws_max_connections_per_user;
    assert_eq!(cap, 16, "the default cap");
    let admin = app.admin().await?;
    let mut open = Vec::new();
    for _ in 0..cap {
        let mut socket = connect(&app).await?;
        init(&mut socket, Some(&admin.access)).await?;
        open.push(socket);
    }
    let mut over = connect(&app).await?;
    send(
        &mut over,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", admin.access) } }),
    )
    .await?;
    assert_eq!(close_code(&mut over).await?, 4429);

    // Another user is not affected, and anonymous sockets count towards nobody's cap.
    let other_email = crate::helpers::unique_email("ws-cap");
    app.create_user(&admin.access, &other_email, "other-password-1")
        .await?;
    let other = app.login(&other_email, "other-password-1").await?;
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&other.access)).await?;
    let mut anonymous = connect(&app).await?;
    init(&mut anonymous, None).await?;

    // A closed socket frees its place.
    let mut first = open.remove(0);
    first.close(None).await?;
    poll_until(
        Duration::from_secs(10),
        "a freed place under the cap",
        || {
            let (app, token) = (&app, &admin.access);
            async move {
                let mut socket = connect(app).await?;
                Ok(init(&mut socket, Some(token)).await.is_ok())
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_are_capped_per_node() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite, &[("INTERLINK_WS_MAX_CONNECTIONS", "3")]);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut socket = connect(&app).await?;
        init(&mut socket, None).await?;
        open.push(socket);
    }
    let Err(refused) = connect(&app).await else {
        anyhow::bail!("the upgrade past the cap was not refused");
    };
    let Some(tokio_tungstenite::tungstenite::Error::Http(response)) = refused.downcast_ref() else {
        anyhow::bail!("the upgrade past the cap failed otherwise: {refused:#}");
    };
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default())?;
    assert_eq!(error_code(&body), Some("UNAVAILABLE"));
    // Plain HTTP is not counted against the websockets.
    let health = app.http.get(app.url("/healthz")).send().await?;
    assert_eq!(health.status(), StatusCode::OK);

    open.pop();
    poll_until(Duration::from_secs(10), "a freed websocket slot", || {
        let app = &app;
        async move { Ok(connect(app).await.is_ok()) }
    })
    .await?;
    Ok(())
}

/// Requests that hold their slot: headers sent, the body never, until the socket is dropped.
async fn hold_request(app: &TestApp) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(app.addr).await?;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await?;
    Ok(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_limit_are_shed_while_health_stays_answerable() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    let limits = &app.state.config.limits;
    assert_eq!(limits.max_concurrent_requests, 64, "4 x the default pool");
    let mut holders = Vec::new();
    for _ in 0..limits.max_concurrent_requests {
        holders.push(hold_request(&app).await?);
    }
    let probe = || async {
        let response = app
            .http
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await?;
        let status = response.status();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let body: Value = response.json().await?;
        anyhow::Ok((status, retry_after, body))
    };
    let shed = parking_lot::Mutex::new(None);
    poll_until(
        Duration::from_secs(20),
        "a request shed once every slot is held",
        || async {
            let (status, retry_after, body) = probe().await?;
            if status == StatusCode::SERVICE_UNAVAILABLE {
                *shed.lock() = Some((retry_after, body));
                return Ok(true);
            }
            anyhow::ensure!(status == StatusCode::OK, "probe got {status}: {body}");
            Ok(false)
        },
    )
    .await?;
    let (retry_after, body) = shed.into_inner().unwrap_or_default();
    assert!(
        retry_after.is_some(),
        "a shed request is told when to retry"
    );
    assert_eq!(error_code(&body), Some("UNAVAILABLE"));

    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = app.http.get(app.url(path)).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{path} while shedding");
    }

    drop(holders);
    poll_until(
        Duration::from_secs(20),
        "requests admitted again",
        || async { Ok(probe().await?.0 == StatusCode::OK) },
    )
    .await?;
    Ok(())
}

async fn requests_fail_with_503_while_the_database_is_unreachable(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    app.state.db.conn.close_by_ref().await?;

    // Signed in: the token's session is checked against the database.
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&admin.access)
        .json(&json!({ "query": "{ users(first: 1) { totalCount } }" }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(RETRY_AFTER));
    let body: Value = response.json().await?;
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");

    // Anonymous: the resolver reaches the database and fails there.
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation { login(email: \"nobody@example.com\", password: \"not-the-password\") { accessToken } }"
        }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(RETRY_AFTER));
    let body: Value = response.json().await?;
    assert_eq!(error_code(&body), Some("INTERNAL"), "{body}");
    assert_eq!(body["errors"][0]["message"], "internal error");

    // An error of the client's own making is still a GraphQL answer, not a 503.
    let response = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ nosuchfield }" }))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}
