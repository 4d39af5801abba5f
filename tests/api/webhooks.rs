//! Webhooks end to end: real receivers on loopback, signatures checked by an independent
//! verifier (the `standardwebhooks` crate), retries, disabling, replay, several nodes, a node
//! killed mid-attempt, and private addresses refused when saved and when sent.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use parking_lot::Mutex;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::{poll_until, str_at, Backend, Deployment, ServerProcess, Session, TestApp};
use crate::tasks::Company;
use crate::{on_both_backends, spawn_or_skip};

const COMMENT: &str =
    "mutation($t: ID!, $b: String!) { addTaskComment(taskId: $t, body: $b) { id } }";
const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id active disabledReason } } }";
const DELIVERIES: &str = "query($e: ID!) { webhookDeliveries(endpointId: $e, first: 100) { totalCount edges { node { id webhookId eventType cursor status attemptCount nextAttemptAt deliveredAt attempts { at statusCode durationMs error } } } } }";
const ENDPOINTS: &str =
    "query($a: ID!) { webhookEndpoints(appId: $a) { id url active disabledReason topics kinds } }";
/// Tests retry quickly; the shape (a first attempt at once, then later ones) is the default's.
const FAST: &str = "0,0.2,0.2,0.2";

/// One request a receiver got.
#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn id(&self) -> String {
        header(&self.headers, "webhook-id")
    }

    fn json(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A webhook receiver on loopback: it records every request and answers from a script of
/// statuses (then `status`); with `hold` it keeps requests open without answering.
#[derive(Clone, Default)]
struct Receiver {
    addr: Option<SocketAddr>,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    status: Arc<Mutex<u16>>,
    redirect: Arc<Mutex<Option<String>>>,
    hold: Arc<AtomicBool>,
    holding: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(script: &[u16], then: u16) -> anyhow::Result<Self> {
        let mut receiver = Self::default();
        receiver.script.lock().extend(script.iter().copied());
        *receiver.status.lock() = then;
        let state = receiver.clone();
        let app =
            axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.got.lock().push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    if state.hold.load(Ordering::SeqCst) {
                        state.holding.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                    }
                    let status = state
                        .script
                        .lock()
                        .pop_front()
                        .unwrap_or(*state.status.lock());
                    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    let mut response = (code, "ok").into_response();
                    if let Some(location) = state.redirect.lock().clone() {
                        if let Ok(value) = HeaderValue::from_str(&location) {
                            response.headers_mut().insert("location", value);
                        }
                    }
                    response
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        receiver.addr = Some(listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(receiver)
    }

    fn url(&self) -> String {
        match self.addr {
            Some(addr) => format!("http://{addr}/hook"),
            None => String::new(),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().clone()
    }

    fn ids(&self) -> Vec<String> {
        self.got.lock().iter().map(Received::id).collect()
    }

    async fn wait_for(&self, count: usize, what: &str) -> anyhow::Result<()> {
        poll_until(Duration::from_secs(60), what, || async {
            Ok(self.got.lock().len() >= count)
        })
        .await
    }
}

/// A partner app created by `admin`, able to read tasks and transactions and subscribe to events.
async fn partner_app(node: &TestApp, admin: &Session) -> anyhow::Result<String> {
    let data = node
        .gql_ok(
            Some(&admin.access),
            "mutation($i: CreateAppInput!) { createApp(input: $i) { id } }",
            json!({ "i": { "name": "Partner", "scopes": ["TASKS_READ", "BUSINESS_READ", "EVENTS_SUBSCRIBE"] } }),
        )
        .await?;
    str_at(&data, "/createApp/id")
}

/// An endpoint of `app` for task comments; returns its id and signing secret.
async fn endpoint(
    node: &TestApp,
    admin: &Session,
    app: &str,
    url: &str,
) -> anyhow::Result<(String, String)> {
    let data = node
        .gql_ok(
            Some(&admin.access),
            CREATE,
            json!({ "i": { "appId": app, "url": url, "topics": ["TASKS"], "kinds": ["COMMENT_ADDED"], "description": "comments" } }),
        )
        .await?;
    Ok((
        str_at(&data, "/createWebhookEndpoint/endpoint/id")?,
        str_at(&data, "/createWebhookEndpoint/secret")?,
    ))
}

async fn deliveries(node: &TestApp, admin: &Session, endpoint: &str) -> anyhow::Result<Vec<Value>> {
    let data = node
        .gql_ok(Some(&admin.access), DELIVERIES, json!({ "e": endpoint }))
        .await?;
    Ok(data["webhookDeliveries"]["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default())
}

/// A task open for comments, by the company's initiator.
async fn open_task(company: &Company) -> anyhow::Result<String> {
    let task = company.draft(&company.quick_category, json!({})).await?;
    company
        .ok_as(
            &company.initiator,
            "mutation($id: ID!) { submitTask(id: $id) { id } }",
            json!({ "id": task }),
        )
        .await?;
    Ok(task)
}

async fn comment(company: &Company, task: &str, body: &str) -> anyhow::Result<()> {
    company
        .ok_as(&company.initiator, COMMENT, json!({ "t": task, "b": body }))
        .await?;
    Ok(())
}

fn verify(secret: &str, got: &Received) -> anyhow::Result<()> {
    let verifier = standardwebhooks::Webhook::new(secret)?;
    verifier
        .verify(&got.body, &got.headers)
        .map_err(|e| anyhow::anyhow!("the verifier refused {}: {e}", got.id()))
}

async fn signed_deliveries_verify_and_failures_retry_with_the_same_id(
    backend: Backend,
) -> anyhow::Result<()> {
    let node = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            ("INTERLINK_WEBHOOK_RETRY_SCHEDULE", FAST),
        ]
    );
    let company = Company::new(node).await?;
    let node = &company.app;
    let receiver = Receiver::start(&[500, 500], 200).await?;
    let app = partner_app(node, &company.admin).await?;
    let (id, secret) = endpoint(node, &company.admin, &app, &receiver.url()).await?;
    let task = open_task(&company).await?;
    comment(&company, &task, "first").await?;
    receiver.wait_for(3, "three attempts").await?;

    let got = receiver.received();
    let first_id = got[0].id();
    assert!(first_id.starts_with("msg_"), "{first_id}");
    assert!(
        got.iter().all(|r| r.id() == first_id),
        "one webhook-id for every attempt"
    );
    for attempt in &got {
        verify(&secret, attempt)?;
        assert_eq!(header(&attempt.headers, "content-type"), "application/json");
        assert_eq!(attempt.body, got[0].body, "the body is fixed at creation");
    }
    let body = got[0].json()?;
    assert_eq!(body["type"], "tasks.COMMENT_ADDED");
    assert_eq!(body["data"]["subjectId"], task.as_str());
    assert!(body["cursor"]
        .as_str()
        .is_some_and(|c| first_id == format!("msg_{c}")));
    assert!(body["timestamp"].is_string());

    // The independent verifier refuses what was not signed as sent.
    let verifier = standardwebhooks::Webhook::new(&secret)?;
    let mut changed_body = got[0].body.clone();
    changed_body.push(b' ');
    assert!(verifier.verify(&changed_body, &got[0].headers).is_err());
    let mut changed_time = got[0].headers.clone();
    let ts: i64 = header(&changed_time, "webhook-timestamp").parse()?;
    changed_time.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&(ts + 1).to_string())?,
    );
    assert!(verifier.verify(&got[0].body, &changed_time).is_err());
    let old = chrono::Utc::now().timestamp() - 301;
    let mut stale = got[0].headers.clone();
    stale.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&old.to_string())?,
    );
    stale.insert(
        "webhook-signature",
        HeaderValue::from_str(&verifier.sign(&first_id, old, &got[0].body)?)?,
    );
    assert!(matches!(
        verifier.verify(&got[0].body, &stale),
        Err(standardwebhooks::WebhookError::TimestampTooOldError)
    ));

    // The record: three attempts, 500, 500, 200, delivered.
    poll_until(Duration::from_secs(30), "the delivery recorded", || async {
        let rows = deliveries(node, &company.admin, &id).await?;
        Ok(rows.first().is_some_and(|d| d["status"] == "DELIVERED"))
    })
    .await?;
    let rows = deliveries(node, &company.admin, &id).await?;
    assert_eq!(rows.len(), 1);
    let delivery = &rows[0];
    assert_eq!(delivery["webhookId"], first_id.as_str());
    assert_eq!(delivery["eventType"], "tasks.COMMENT_ADDED");
    assert_eq!(delivery["attemptCount"], 3);
    let codes: Vec<i64> = delivery["attempts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["statusCode"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(codes, vec![500, 500, 200]);
    assert_eq!(delivery["attempts"][0]["error"], "receiver answered 500");
    assert!(delivery["deliveredAt"].is_string());

    // A rotation: during the overlap, each delivery verifies under either secret.
    let rotated = node
        .gql_ok(
            Some(&company.admin.access),
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { id } } }",
            json!({ "id": id }),
        )
        .await?;
    let new_secret = str_at(&rotated, "/rotateWebhookSecret/secret")?;
    assert_ne!(new_secret, secret);
    comment(&company, &task, "second").await?;
    receiver
        .wait_for(4, "the delivery after the rotation")
        .await?;
    let after = &receiver.received()[3];
    assert_eq!(
        header(&after.headers, "webhook-signature")
            .split(' ')
            .count(),
        2
    );
    verify(&secret, after)?;
    verify(&new_secret, after)?;

    // The secret is never readable again.
    let listed = node
        .gql_ok(Some(&company.admin.access), ENDPOINTS, json!({ "a": app }))
        .await?;
    assert!(!listed.to_string().contains("whsec_"));
    Ok(())
}

async fn a_410_disables_the_endpoint(backend: Backend) -> anyhow::Result<()> {
    let node = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            ("INTERLINK_WEBHOOK_RETRY_SCHEDULE", FAST),
        ]
    );
    let company = Company::new(node).await?;
    let node = &company.app;
    let receiver = Receiver::start(&[], 410).await?;
    let app = partner_app(node, &company.admin).await?;
    let (id, _) = endpoint(node, &company.admin, &app, &receiver.url()).await?;
    let task = open_task(&company).await?;
    comment(&company, &task, "gone").await?;
    let listed = || async {
        let data = node
            .gql_ok(Some(&company.admin.access), ENDPOINTS, json!({ "a": app }))
            .await?;
        anyhow::Ok(data["webhookEndpoints"][0].clone())
    };
    poll_until(Duration::from_secs(30), "the endpoint disabled", || async {
        Ok(listed().await?["active"] == false)
    })
    .await?;
    let endpoint = listed().await?;
    assert!(endpoint["disabledReason"]
        .as_str()
        .is_some_and(|r| r.contains("410")));
    assert_eq!(receiver.received().len(), 1, "no retry after a 410");
    let rows = deliveries(node, &company.admin, &id).await?;
    assert_eq!(rows[0]["status"], "FAILED");
    // Nothing more is delivered to it.
    comment(&company, &task, "after").await?;
    let after = comment_cursor(&company, 2).await?;
    dispatched_past(node, &after).await?;
    assert_eq!(deliveries(node, &company.admin, &id).await?.len(), 1);
    Ok(())
}

/// Waits until the fan-out has read the log past `cursor`.
async fn dispatched_past(node: &TestApp, cursor: &str) -> anyhow::Result<()> {
    poll_until(
        Duration::from_secs(30),
        "the fan-out past the cursor",
        || async {
            let row = node
                .state
                .db
                .conn
                .query_one(interlink::platform::db::sql(
                    node.state.db.conn.get_database_backend(),
                    "SELECT tx, position FROM webhook_dispatch_state WHERE id = 1",
                    [],
                ))
                .await?;
            let Some(row) = row else { return Ok(false) };
            let at = format!(
                "{:016x}{:016x}",
                row.try_get::<i64>("", "tx")?,
                row.try_get::<i64>("", "position")?
            );
            Ok(at.as_str() >= cursor)
        },
    )
    .await
}

/// The cursor of the `n`-th comment event (from 1) in the log, once readers see it: an entry
/// is read only when no older transaction on the server is still running (the commit horizon),
/// and other tests share the server, so a read right after the write may not have it yet.
async fn comment_cursor(company: &Company, n: usize) -> anyhow::Result<String> {
    let mut found = None;
    for _ in 0..300 {
        let mut after: Option<String> = None;
        let mut comments = Vec::new();
        loop {
            let data = company
                .ok_as(
                    &company.admin,
                    "query($a: String) { events(after: $a, first: 100, topics: [TASKS]) { edges { node { cursor kind } } pageInfo { endCursor hasNextPage } } }",
                    json!({ "a": after }),
                )
                .await?;
            let page = &data["events"];
            for edge in page["edges"].as_array().into_iter().flatten() {
                if edge["node"]["kind"] == "COMMENT_ADDED" {
                    comments.extend(edge["node"]["cursor"].as_str().map(str::to_owned));
                }
            }
            after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            if page["pageInfo"]["hasNextPage"] != true {
                break;
            }
        }
        if comments.len() >= n {
            found = comments.into_iter().nth(n - 1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found.ok_or_else(|| anyhow::anyhow!("comment {n} never reached the log"))
}

async fn replay_resends_exactly_the_missing_messages(backend: Backend) -> anyhow::Result<()> {
    let node = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            // One attempt each: a failure is given up at once.
            ("INTERLINK_WEBHOOK_RETRY_SCHEDULE", "0"),
        ]
    );
    let company = Company::new(node).await?;
    let node = &company.app;
    let receiver = Receiver::start(&[], 200).await?;
    let app = partner_app(node, &company.admin).await?;
    let (id, _) = endpoint(node, &company.admin, &app, &receiver.url()).await?;
    let task = open_task(&company).await?;
    comment(&company, &task, "a").await?;
    receiver.wait_for(1, "the first message").await?;
    let last_good = comment_cursor(&company, 1).await?;
    let first = receiver.ids();

    // The receiver is down for two messages...
    *receiver.status.lock() = 503;
    comment(&company, &task, "b").await?;
    comment(&company, &task, "c").await?;
    receiver.wait_for(3, "the failed attempts").await?;
    poll_until(Duration::from_secs(30), "both given up", || async {
        let rows = deliveries(node, &company.admin, &id).await?;
        Ok(rows.iter().filter(|d| d["status"] == "FAILED").count() == 2)
    })
    .await?;
    let failed: Vec<String> = receiver.ids()[1..].to_vec();
    // ...then the endpoint is disabled while one more happens, and enabled again.
    let set_active = |active: bool| {
        let (node, token, id) = (node, company.admin.access.clone(), id.clone());
        async move {
            node.gql_ok(
                Some(&token),
                "mutation($id: ID!, $a: Boolean) { updateWebhookEndpoint(id: $id, input: { active: $a }) { active } }",
                json!({ "id": id, "a": active }),
            )
            .await
        }
    };
    set_active(false).await?;
    comment(&company, &task, "d").await?;
    let missed_cursor = comment_cursor(&company, 4).await?;
    // Give the fan-out its chance to (wrongly) deliver to the disabled endpoint.
    dispatched_past(node, &missed_cursor).await?;
    assert_eq!(deliveries(node, &company.admin, &id).await?.len(), 3);
    set_active(true).await?;
    *receiver.status.lock() = 200;

    let replayed = node
        .gql_ok(
            Some(&company.admin.access),
            "mutation($e: ID!, $a: String!) { replayWebhook(endpointId: $e, after: $a) }",
            json!({ "e": id, "a": last_good }),
        )
        .await?;
    assert_eq!(replayed["replayWebhook"], 3);
    receiver.wait_for(6, "the replayed messages").await?;
    let resent: Vec<String> = receiver.ids()[3..].to_vec();
    let mut expected = failed.clone();
    expected.push(format!("msg_{missed_cursor}"));
    let (mut a, mut b) = (resent.clone(), expected.clone());
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "exactly the missing messages, with their original ids"
    );
    assert!(!resent.contains(&first[0]));
    poll_until(Duration::from_secs(30), "all delivered", || async {
        let rows = deliveries(node, &company.admin, &id).await?;
        Ok(rows.len() == 4 && rows.iter().all(|d| d["status"] == "DELIVERED"))
    })
    .await?;
    assert_eq!(receiver.received().len(), 6, "nothing else was sent");

    // A malformed or expired cursor is refused.
    let bad = node
        .gql(
            Some(&company.admin.access),
            "mutation($e: ID!, $a: String!) { replayWebhook(endpointId: $e, after: $a) }",
            json!({ "e": id, "a": "nope" }),
        )
        .await?;
    assert_eq!(crate::helpers::error_code(&bad), Some("BAD_USER_INPUT"));
    Ok(())
}

async fn urls_to_private_addresses_are_refused_when_saved(backend: Backend) -> anyhow::Result<()> {
    let node = spawn_or_skip!(backend, &[("INTERLINK_OUTBOUND_ALLOW", "")]);
    let admin = node.admin().await?;
    let app = partner_app(&node, &admin).await?;
    let receiver = Receiver::start(&[], 200).await?;
    let port = receiver.addr.map_or(9, |a| a.port());
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        "http://[::1]/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://169.254.169.254/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        format!("http://localhost:{port}/hook"),
    ] {
        let body = node
            .gql(
                Some(&admin.access),
                CREATE,
                json!({ "i": { "appId": app, "url": url } }),
            )
            .await?;
        assert_eq!(
            crate::helpers::error_code(&body),
            Some("BAD_USER_INPUT"),
            "{url}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "url", "{url}");
    }
    Ok(())
}

/// An APP_FORWARD type without a URL goes to the endpoints that list it, signed, and its
/// transaction completes once each has answered 2xx.
async fn app_forward_types_deliver_to_their_endpoints(backend: Backend) -> anyhow::Result<()> {
    let node = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            ("INTERLINK_WEBHOOK_RETRY_SCHEDULE", FAST),
        ]
    );
    let admin = node.admin().await?;
    let token = Some(admin.access.as_str());
    node.gql_ok(
        token,
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }",
        json!({ "i": { "code": "ORDER", "name": "Order", "route": "APP_FORWARD", "payloadSchema": { "type": "object" } } }),
    )
    .await?;
    let app = partner_app(&node, &admin).await?;
    let first = Receiver::start(&[500], 200).await?;
    let second = Receiver::start(&[], 200).await?;
    let mut secrets = Vec::new();
    for receiver in [&first, &second] {
        let data = node
            .gql_ok(
                token,
                CREATE,
                json!({ "i": { "appId": app, "url": receiver.url(), "topics": ["FINANCE"], "kinds": ["NONE_OF_THESE"], "transactionTypes": ["ORDER"] } }),
            )
            .await?;
        secrets.push(str_at(&data, "/createWebhookEndpoint/secret")?);
    }
    let submitted = node
        .gql_ok(
            token,
            "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }",
            json!({ "i": { "type": "ORDER", "idempotencyKey": "order-1", "payload": { "sku": "A-1", "qty": 2 } } }),
        )
        .await?;
    let id = str_at(&submitted, "/submitTransaction/id")?;
    let status = || async {
        let data = node
            .gql_ok(
                token,
                "query($id: ID!) { transaction(id: $id) { status result } }",
                json!({ "id": id }),
            )
            .await?;
        anyhow::Ok(data["transaction"].clone())
    };
    poll_until(
        Duration::from_secs(30),
        "the transaction completed",
        || async { Ok(status().await?["status"] == "COMPLETED") },
    )
    .await?;
    assert_eq!(first.received().len(), 2, "a failure, then the retry");
    assert_eq!(second.received().len(), 1);
    for (receiver, secret) in [(&first, &secrets[0]), (&second, &secrets[1])] {
        for got in receiver.received() {
            verify(secret, &got)?;
            let body = got.json()?;
            assert_eq!(body["type"], "business.FORWARDED");
            assert_eq!(body["data"]["transactionId"], id.as_str());
            assert_eq!(body["data"]["type"], "ORDER");
            assert_eq!(body["data"]["payload"]["sku"], "A-1");
        }
    }
    assert_eq!(
        first.ids()[0],
        second.ids()[0],
        "one webhook-id per transaction"
    );
    assert_eq!(status().await?["result"]["forwarded"]["endpoints"], 2);
    Ok(())
}

/// An endpoint whose deliveries keep failing past `INTERLINK_WEBHOOK_DISABLE_AFTER_SECS` is
/// disabled, its app's owner is told, and its pending retries stop.
async fn an_endpoint_failing_for_too_long_is_disabled_and_its_owner_told(
    backend: Backend,
) -> anyhow::Result<()> {
    let node = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "50"),
            (
                "INTERLINK_WEBHOOK_RETRY_SCHEDULE",
                "0,0.3,0.3,0.3,0.3,0.3,0.3,0.3,60"
            ),
            ("INTERLINK_WEBHOOK_DISABLE_AFTER_SECS", "1"),
        ]
    );
    let company = Company::new(node).await?;
    let node = &company.app;
    let receiver = Receiver::start(&[], 500).await?;
    let app = partner_app(node, &company.admin).await?;
    let (id, _) = endpoint(node, &company.admin, &app, &receiver.url()).await?;
    let task = open_task(&company).await?;
    comment(&company, &task, "never accepted").await?;
    let listed = || async {
        let data = node
            .gql_ok(Some(&company.admin.access), ENDPOINTS, json!({ "a": app }))
            .await?;
        anyhow::Ok(data["webhookEndpoints"][0].clone())
    };
    poll_until(Duration::from_secs(30), "the endpoint disabled", || async {
        Ok(listed().await?["active"] == false)
    })
    .await?;
    let disabled = listed().await?;
    assert!(
        disabled["disabledReason"]
            .as_str()
            .is_some_and(|r| r.contains("failed since")),
        "{disabled}"
    );
    let inbox = node
        .gql_ok(
            Some(&company.admin.access),
            "{ notifications(first: 20) { edges { node { kind subjectId } } } }",
            json!({}),
        )
        .await?;
    let told = inbox["notifications"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["node"]["kind"] == "WEBHOOK_DISABLED" && e["node"]["subjectId"] == id.as_str());
    assert!(told, "{inbox}");
    // The retry already queued finds the endpoint disabled and gives the delivery up.
    poll_until(Duration::from_secs(30), "the delivery given up", || async {
        let rows = deliveries(node, &company.admin, &id).await?;
        Ok(rows.first().is_some_and(|d| d["status"] == "FAILED"))
    })
    .await?;
    let sent = receiver.received().len();
    assert!(sent >= 2, "{sent}");
    let rows = deliveries(node, &company.admin, &id).await?;
    assert_eq!(rows[0]["attemptCount"].as_i64(), Some(sent as i64));
    Ok(())
}

on_both_backends!(
    app_forward_types_deliver_to_their_endpoints,
    an_endpoint_failing_for_too_long_is_disabled_and_its_owner_told,
    signed_deliveries_verify_and_failures_retry_with_the_same_id,
    a_410_disables_the_endpoint,
    replay_resends_exactly_the_missing_messages,
    urls_to_private_addresses_are_refused_when_saved,
);

/// Two nodes on one database: one saves endpoints to a loopback receiver (it allows it), the
/// other sends and does not. The attempt fails with a reason, and the receiver gets nothing;
/// a receiver's redirect to a private address is not followed either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_vetted_again_when_sent_and_redirects_are_not_followed() -> anyhow::Result<()>
{
    let Some(deployment) = Deployment::new(
        Backend::Postgres,
        &[
            ("INTERLINK_WEBHOOK_RETRY_SCHEDULE", "0"),
            ("INTERLINK_JOB_POLL_MS", "50"),
        ],
    )
    .await?
    else {
        return Ok(());
    };
    let mut saving = deployment.clone();
    saving
        .vars
        .insert("INTERLINK_OUTBOUND_ALLOW".into(), "127.0.0.1".into());
    let mut sending = deployment.clone();
    sending
        .vars
        .insert("INTERLINK_OUTBOUND_ALLOW".into(), String::new());
    sending
        .vars
        .insert("INTERLINK_SCHEDULER".into(), "true".into());
    let company = Company::new(saving.node().await?).await?;
    let node = &company.app;
    let receiver = Receiver::start(&[], 200).await?;
    let app = partner_app(node, &company.admin).await?;
    let (refused, _) = endpoint(node, &company.admin, &app, &receiver.url()).await?;
    let task = open_task(&company).await?;
    let sender = sending.node().await?;
    comment(&company, &task, "to a private address").await?;
    poll_until(Duration::from_secs(30), "the refused attempt", || async {
        let rows = deliveries(node, &company.admin, &refused).await?;
        Ok(rows.first().is_some_and(|d| d["status"] == "FAILED"))
    })
    .await?;
    let rows = deliveries(node, &company.admin, &refused).await?;
    let attempt = &rows[0]["attempts"][0];
    assert!(attempt["statusCode"].is_null());
    assert!(
        attempt["error"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1") && e.contains("not allowed")),
        "{attempt}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
    drop(sender);

    // A redirect: the sender allows loopback now, the receiver answers 302 to another one.
    let mut allowing = deployment.clone();
    allowing
        .vars
        .insert("INTERLINK_OUTBOUND_ALLOW".into(), "127.0.0.1".into());
    allowing
        .vars
        .insert("INTERLINK_SCHEDULER".into(), "true".into());
    let _sender = allowing.node().await?;
    let target = Receiver::start(&[], 200).await?;
    let redirecting = Receiver::start(&[], 302).await?;
    *redirecting.redirect.lock() = Some(target.url());
    node.gql_ok(
        Some(&company.admin.access),
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
        json!({ "id": refused }),
    )
    .await?;
    let (redirected, _) = endpoint(node, &company.admin, &app, &redirecting.url()).await?;
    comment(&company, &task, "redirected").await?;
    poll_until(
        Duration::from_secs(30),
        "the redirected attempt",
        || async {
            let rows = deliveries(node, &company.admin, &redirected).await?;
            Ok(rows.first().is_some_and(|d| d["status"] == "FAILED"))
        },
    )
    .await?;
    let rows = deliveries(node, &company.admin, &redirected).await?;
    assert_eq!(rows[0]["attempts"][0]["statusCode"], 302);
    assert_eq!(rows[0]["attempts"][0]["error"], "receiver answered 302");
    assert_eq!(redirecting.received().len(), 1);
    assert!(
        target.received().is_empty(),
        "the redirect was not followed"
    );
    Ok(())
}

/// Three nodes (PostgreSQL and Redis), two endpoints, 1,000 events: each endpoint gets each
/// message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_deliver_each_message_once() -> anyhow::Result<()> {
    const EVENTS: usize = 1_000;
    let Some(deployment) = Deployment::new(
        Backend::Postgres,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "100"),
            ("INTERLINK_RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await?
    else {
        return Ok(());
    };
    let started = Instant::now();
    let company = Company::new(deployment.node().await?).await?;
    let _others = [deployment.node().await?, deployment.node().await?];
    let node = &company.app;
    let receivers = [
        Receiver::start(&[], 200).await?,
        Receiver::start(&[], 200).await?,
    ];
    let app = partner_app(node, &company.admin).await?;
    let mut endpoints = Vec::new();
    for receiver in &receivers {
        endpoints.push(
            endpoint(node, &company.admin, &app, &receiver.url())
                .await?
                .0,
        );
    }
    let task = open_task(&company).await?;
    let company_ref = &company;
    let task_ref = task.as_str();
    futures_util::future::try_join_all((0..8).map(|w| async move {
        for n in (w..EVENTS).step_by(8) {
            comment(company_ref, task_ref, &format!("comment {n}")).await?;
        }
        anyhow::Ok(())
    }))
    .await?;
    let written = started.elapsed();
    for receiver in &receivers {
        poll_until(
            Duration::from_secs(180),
            "every message delivered",
            || async {
                let ids: std::collections::HashSet<String> = receiver.ids().into_iter().collect();
                Ok(ids.len() >= EVENTS)
            },
        )
        .await?;
    }
    // Settled: no delivery is waiting or being sent.
    let backend = node.state.db.conn.get_database_backend();
    poll_until(
        Duration::from_secs(60),
        "every delivery settled",
        || async {
            let row = node
                .state
                .db
                .conn
                .query_one(interlink::platform::db::sql(
                    backend,
                    "SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status <> 'DELIVERED'",
                    [],
                ))
                .await?;
            Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()? == Some(0))
        },
    )
    .await?;
    for receiver in &receivers {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for id in receiver.ids() {
            *counts.entry(id).or_default() += 1;
        }
        assert_eq!(counts.len(), EVENTS);
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    }
    eprintln!(
        "three nodes, {EVENTS} events, two endpoints: written in {written:?}, all delivered after {:?}",
        started.elapsed()
    );
    Ok(())
}

/// The node sending a message is killed (SIGKILL) while the receiver holds the request; another
/// node sends it again, with the same `webhook-id`, once the lease has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_followed_by_another_with_the_same_id() -> anyhow::Result<()> {
    let Some(deployment) =
        Deployment::new(Backend::Postgres, &[("INTERLINK_JOB_POLL_MS", "100")]).await?
    else {
        return Ok(());
    };
    // The API node runs no jobs; at first only the doomed node delivers.
    let company = Company::new(deployment.node().await?).await?;
    let node = &company.app;
    let receiver = Receiver::start(&[], 200).await?;
    receiver.hold.store(true, Ordering::SeqCst);
    let app = partner_app(node, &company.admin).await?;
    let (id, secret) = endpoint(node, &company.admin, &app, &receiver.url()).await?;
    let task = open_task(&company).await?;
    let delivering = [
        ("INTERLINK_SCHEDULER", "true"),
        ("INTERLINK_JOB_LEASE_MS", "1500"),
        ("INTERLINK_JOB_POLL_MS", "100"),
    ];
    let mut doomed = ServerProcess::start(&deployment, &delivering).await?;
    comment(&company, &task, "in flight").await?;
    poll_until(
        Duration::from_secs(60),
        "the request in the receiver's hands",
        || async { Ok(receiver.holding.load(Ordering::SeqCst) == 1) },
    )
    .await?;
    doomed.kill().await?;
    receiver.hold.store(false, Ordering::SeqCst);
    let _successor = ServerProcess::start(&deployment, &delivering).await?;
    receiver.wait_for(2, "the message sent again").await?;
    let got = receiver.received();
    assert_eq!(got[0].id(), got[1].id(), "the same webhook-id");
    verify(&secret, &got[1])?;
    poll_until(Duration::from_secs(30), "the delivery recorded", || async {
        let rows = deliveries(node, &company.admin, &id).await?;
        Ok(rows.first().is_some_and(|d| d["status"] == "DELIVERED"))
    })
    .await?;
    Ok(())
}
