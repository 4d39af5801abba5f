//! The scheduler as deployed: built-in jobs seen through the GraphQL inbox, the operator's API
//! and live feed, routed business transactions, and worker processes killed with SIGKILL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, unique_email, Backend, Deployment, TestApp};
use crate::tasks::Company;
use crate::websocket::{connect, init, next, send};
use crate::{on_both_backends, spawn_or_skip};

/// An HTTP endpoint that records what is POSTed to it. It can hang on the first request (a
/// receiver the worker dies waiting on) or answer each request after a delay.
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<(String, Value)>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(hang_first: bool, delay: Duration) -> anyhow::Result<Self> {
        Self::answering(hang_first, delay, axum::http::StatusCode::OK).await
    }

    pub async fn answering(
        hang_first: bool,
        delay: Duration,
        status: axum::http::StatusCode,
    ) -> anyhow::Result<Self> {
        let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let recorded = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let recorded = recorded.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let first = {
                        let mut seen = recorded.lock();
                        seen.push((key, body.0));
                        seen.len() == 1
                    };
                    if hang_first && first {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(delay).await;
                    (status, "answered")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            seen,
            _server: server,
        })
    }

    pub fn count(&self) -> usize {
        self.seen.lock().len()
    }
}

async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const JOB: &str = "query($id: ID!) { job(id: $id) { id state attempt leaseOwner progress progressMessage lastError cancelRequested } }";
const ENQUEUE: &str =
    "mutation($i: EnqueueJobInput!) { enqueueJob(input: $i) { id state queue kind } }";

async fn job_state(app: &TestApp, token: &str, id: &str) -> anyhow::Result<Value> {
    Ok(app.gql_ok(Some(token), JOB, json!({ "id": id })).await?["job"].clone())
}

/// Scans every second, so built-in jobs show within a test's patience.
const BUSY: &[(&str, &str)] = &[
    ("INTERLINK_SCHEDULER", "true"),
    ("INTERLINK_SCAN_CRON", "* * * * * *"),
    ("INTERLINK_CRON_TICK_MS", "200"),
    ("INTERLINK_JOB_POLL_MS", "100"),
    ("INTERLINK_DEADLINE_REMINDER_MINUTES", "60"),
];

on_both_backends!(
    reminders_and_overdue_escalation_reach_the_inbox,
    operators_see_and_steer_jobs_and_watch_them_live,
    routed_transactions_are_delivered_and_processed_by_jobs,
    recurring_tasks_are_created_once_per_slot,
    approvals_past_their_sla_escalate_to_the_department_head,
);

async fn inbox(
    company: &Company,
    who: &crate::helpers::Session,
    kind: &str,
) -> anyhow::Result<Vec<Value>> {
    let data = company
        .ok_as(
            who,
            "{ notifications(first: 100) { edges { node { kind title body subjectId } } } }",
            json!({}),
        )
        .await?;
    Ok(data["notifications"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["node"].clone())
        .filter(|n| n["kind"] == kind)
        .collect())
}

async fn reminders_and_overdue_escalation_reach_the_inbox(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, BUSY);
    let company = Company::new(app).await?;
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let reminded = company
        .draft(
            &company.quick_category,
            json!({ "title": "Due within the hour", "deadline": soon }),
        )
        .await?;
    let later = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    company
        .draft(
            &company.quick_category,
            json!({ "title": "Due in days", "deadline": later }),
        )
        .await?;
    let imminent = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let late = company
        .draft(
            &company.quick_category,
            json!({ "title": "About to be late", "deadline": imminent }),
        )
        .await?;

    eventually(Duration::from_secs(30), "the deadline reminder", || async {
        Ok(inbox(&company, &company.executor, "DEADLINE_APPROACHING")
            .await?
            .iter()
            .any(|n| n["subjectId"] == reminded.as_str()))
    })
    .await?;
    eventually(
        Duration::from_secs(30),
        "the overdue escalation",
        || async {
            Ok(!inbox(&company, &company.initiator, "OVERDUE")
                .await?
                .is_empty())
        },
    )
    .await?;
    // Several more scans run; nobody hears anything twice, and far deadlines stay quiet.
    let db = &company.app.state.db.conn;
    let scans = || async {
        use sea_orm::ConnectionTrait;
        let row = db
            .query_one(interlink::platform::db::sql(
                db.get_database_backend(),
                "SELECT MIN(n) AS n FROM (SELECT COUNT(*) AS n FROM jobs \
                 WHERE kind IN ($1, $2) AND state = 'COMPLETED' GROUP BY kind) AS done",
                [
                    interlink::domains::tasks::jobs::DEADLINE_REMINDERS.into(),
                    interlink::domains::tasks::jobs::OVERDUE_ESCALATION.into(),
                ],
            ))
            .await?
            .context("count")?;
        anyhow::Ok(row.try_get::<Option<i64>>("", "n")?.unwrap_or(0))
    };
    let scanned = scans().await?;
    eventually(
        Duration::from_secs(30),
        "three more scans of each",
        || async { Ok(scans().await? >= scanned + 3) },
    )
    .await?;
    let reminders = inbox(&company, &company.executor, "DEADLINE_APPROACHING").await?;
    let titles: Vec<&str> = reminders
        .iter()
        .filter_map(|n| n["title"].as_str())
        .collect();
    assert_eq!(
        titles
            .iter()
            .filter(|t| **t == "Due within the hour")
            .count(),
        1,
        "{titles:?}"
    );
    assert!(!titles.contains(&"Due in days"), "{titles:?}");
    let overdue = inbox(&company, &company.initiator, "OVERDUE").await?;
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0]["subjectId"], late.as_str());
    // The head of the task's department (found up the tree) hears of it too.
    assert_eq!(inbox(&company, &company.head, "OVERDUE").await?.len(), 1);
    let task = company
        .ok_as(
            &company.initiator,
            "query($id: ID!) { task(id: $id) { overdue } }",
            json!({ "id": late }),
        )
        .await?;
    assert_eq!(task["task"]["overdue"], true);
    let fresh = company
        .ok_as(
            &company.initiator,
            "query($id: ID!) { task(id: $id) { overdue } }",
            json!({ "id": reminded }),
        )
        .await?;
    assert_eq!(fresh["task"]["overdue"], false);
    Ok(())
}

async fn operators_see_and_steer_jobs_and_watch_them_live(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "100")
        ]
    );
    let admin = app.admin().await?;
    let token = admin.access.as_str();
    let receiver = Receiver::start(false, Duration::ZERO).await?;

    let overview = app
        .gql_ok(Some(token), "{ queues { name paused strategy counts { available completed } } jobKinds { kind operatorEnqueue } nodes { id live capacity } }", json!({}))
        .await?;
    let queues: Vec<&str> = overview["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["name"].as_str())
        .collect();
    for wanted in ["delivery", "maintenance", "processing"] {
        assert!(queues.contains(&wanted), "{overview}");
    }
    assert_eq!(
        overview["nodes"].as_array().map(Vec::len),
        Some(1),
        "{overview}"
    );
    assert_eq!(overview["nodes"][0]["live"], true);

    // The live feed, from the start of the log: nothing about the job can precede it.
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(token)).await?;
    send(&mut socket, json!({ "id": "jobs", "type": "subscribe", "payload": { "query": "subscription { jobEvents(queue: \"delivery\", after: \"00000000000000000000000000000000\") { jobId state progress message } }" } })).await?;

    let webhook = |n: i64| json!({ "i": { "kind": "webhook.deliver", "args": { "url": receiver.url, "payload": { "n": n } } } });
    let enqueued = app.gql_ok(Some(token), ENQUEUE, webhook(1)).await?;
    let id = str_at(&enqueued, "/enqueueJob/id")?;
    let mut states = Vec::new();
    while !states.contains(&"COMPLETED".to_owned()) {
        let message = next(&mut socket, Duration::from_secs(10)).await?;
        let event = &message["payload"]["data"]["jobEvents"];
        if event["jobId"] == id.as_str() {
            if event["progress"] == 100 && event["state"] == "RUNNING" {
                assert_eq!(event["message"], "delivered: HTTP 200");
            }
            states.push(event["state"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(
        states.first().map(String::as_str),
        Some("RUNNING"),
        "{states:?}"
    );
    assert_eq!(receiver.count(), 1);
    assert_eq!(
        receiver.seen.lock()[0].0,
        id,
        "the job id is the idempotency key"
    );

    // Paused: nothing starts. Cancelled while waiting, retried, resumed: it runs.
    let paused = app
        .gql_ok(
            Some(token),
            "mutation { pauseQueue(name: \"delivery\") { paused } }",
            json!({}),
        )
        .await?;
    assert_eq!(paused["pauseQueue"]["paused"], true);
    let held = str_at(
        &app.gql_ok(Some(token), ENQUEUE, webhook(2)).await?,
        "/enqueueJob/id",
    )?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(job_state(&app, token, &held).await?["state"], "AVAILABLE");
    let cancelled = app
        .gql_ok(
            Some(token),
            "mutation($id: ID!) { cancelJob(id: $id) { state } }",
            json!({ "id": held }),
        )
        .await?;
    assert_eq!(cancelled["cancelJob"]["state"], "CANCELLED");
    let retried = app
        .gql_ok(
            Some(token),
            "mutation($id: ID!) { retryJob(id: $id) { state } }",
            json!({ "id": held }),
        )
        .await?;
    assert_eq!(retried["retryJob"]["state"], "AVAILABLE");
    app.gql_ok(
        Some(token),
        "mutation { resumeQueue(name: \"delivery\") { paused } }",
        json!({}),
    )
    .await?;
    eventually(Duration::from_secs(15), "the resumed job", || async {
        Ok(job_state(&app, token, &held).await?["state"] == "COMPLETED")
    })
    .await?;
    assert_eq!(receiver.count(), 2);
    let listed = app
        .gql_ok(Some(token), "{ jobs(filter: { queue: \"delivery\", state: COMPLETED }, first: 1) { totalCount edges { node { id kind } } pageInfo { hasNextPage } } }", json!({}))
        .await?;
    assert_eq!(listed["jobs"]["totalCount"], 2);
    assert_eq!(listed["jobs"]["pageInfo"]["hasNextPage"], true);

    // Refusals, each with its code, and nothing enqueued by them.
    let before = app
        .gql_ok(Some(token), "{ jobs { totalCount } }", json!({}))
        .await?["jobs"]["totalCount"]
        .clone();
    let cases = [
        (json!({ "i": { "kind": "no.such.kind" } }), "BAD_USER_INPUT"),
        (
            json!({ "i": { "kind": "business.forward", "args": {} } }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "i": { "kind": "webhook.deliver", "args": { "url": "file:///etc/passwd", "payload": 1 } } }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "i": { "kind": "webhook.deliver", "args": { "url": receiver.url, "payload": 1, "extra": true } } }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "i": { "kind": "webhook.deliver", "priority": 1000, "args": { "url": receiver.url, "payload": 1 } } }),
            "BAD_USER_INPUT",
        ),
    ];
    for (input, code) in cases {
        let refused = app.gql(Some(token), ENQUEUE, input.clone()).await?;
        assert_eq!(error_code(&refused), Some(code), "{input} -> {refused}");
    }
    let after = app
        .gql_ok(Some(token), "{ jobs { totalCount } }", json!({}))
        .await?["jobs"]["totalCount"]
        .clone();
    assert_eq!(before, after);
    let finished = app
        .gql(
            Some(token),
            "mutation($id: ID!) { retryJob(id: $id) { state } }",
            json!({ "id": id }),
        )
        .await?;
    assert_eq!(error_code(&finished), Some("CONFLICT"), "{finished}");
    let missing = app
        .gql(
            Some(token),
            "mutation { pauseQueue(name: \"nope\") { paused } }",
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&missing), Some("NOT_FOUND"));
    let malformed = app
        .gql(Some(token), JOB, json!({ "id": "not-an-id" }))
        .await?;
    assert_eq!(error_code(&malformed), Some("BAD_USER_INPUT"));

    // Ordinary users see none of it.
    let email = unique_email("nosy");
    app.create_user(token, &email, "a good password").await?;
    let user = app.login(&email, "a good password").await?;
    for query in [
        "{ queues { name } }",
        "{ nodes { id } }",
        "{ jobs { totalCount } }",
    ] {
        let refused = app.gql(Some(&user.access), query, json!({})).await?;
        assert_eq!(
            error_code(&refused),
            Some("FORBIDDEN"),
            "{query}: {refused}"
        );
    }
    let refused = app.gql(Some(&user.access), ENQUEUE, webhook(3)).await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"));
    for (query, variables) in [
        (JOB, json!({ "id": id })),
        ("{ jobKinds { kind } }", json!({})),
        (
            "mutation { pauseQueue(name: \"delivery\") { paused } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { retryJob(id: $id) { state } }",
            json!({ "id": held }),
        ),
        (
            "mutation($id: ID!) { cancelJob(id: $id) { state } }",
            json!({ "id": held }),
        ),
    ] {
        let refused = app.gql(Some(&user.access), query, variables).await?;
        assert_eq!(
            error_code(&refused),
            Some("FORBIDDEN"),
            "{query}: {refused}"
        );
    }
    let queues = app
        .gql_ok(Some(token), "{ queues { name paused } }", json!({}))
        .await?;
    assert!(
        queues["queues"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|q| q["paused"] == false),
        "{queues}"
    );
    let mut nosy = connect(&app).await?;
    init(&mut nosy, Some(&user.access)).await?;
    send(&mut nosy, json!({ "id": "nosy", "type": "subscribe", "payload": { "query": "subscription { jobEvents { jobId } }" } })).await?;
    let refused = next(&mut nosy, Duration::from_secs(5)).await?;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    assert!(refused["payload"]["data"].is_null(), "{refused}");
    Ok(())
}

async fn routed_transactions_are_delivered_and_processed_by_jobs(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_SCHEDULER", "true"),
            ("INTERLINK_JOB_POLL_MS", "100")
        ]
    );
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let receiver = Receiver::start(false, Duration::ZERO).await?;
    let create = "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code forwardUrl } }";
    // A type may omit the URL (its transactions go to the webhook endpoints that list it), but
    // a URL it gives must be one that can be delivered to.
    let bad_url = app
        .gql(token, create, json!({ "i": { "code": "NOTE", "name": "Note", "route": "APP_FORWARD", "forwardUrl": "ftp://partner.example/notes", "payloadSchema": { "type": "object" } } }))
        .await?;
    assert_eq!(error_code(&bad_url), Some("BAD_USER_INPUT"), "{bad_url}");
    app.gql_ok(token, create, json!({ "i": { "code": "MEMO", "name": "Memo", "route": "APP_FORWARD", "payloadSchema": { "type": "object" } } }))
        .await?;
    app.gql_ok(token, create, json!({ "i": { "code": "NOTE", "name": "Note", "route": "APP_FORWARD", "forwardUrl": receiver.url, "payloadSchema": { "type": "object" } } }))
        .await?;
    app.gql_ok(token, create, json!({ "i": { "code": "SCAN", "name": "Scan", "route": "DATA_PROCESS", "payloadSchema": { "type": "object" } } }))
        .await?;
    let submit = "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status result } }";
    let read =
        "query($id: ID!) { transaction(id: $id) { status result error history { status } } }";
    let note = app.gql_ok(token, submit, json!({ "i": { "type": "NOTE", "idempotencyKey": "note-1", "payload": { "text": "hello" } } })).await?;
    assert_eq!(note["submitTransaction"]["status"], "EXECUTING", "{note}");
    assert!(
        note["submitTransaction"]["result"]["jobId"].is_string(),
        "{note}"
    );
    let note_id = str_at(&note, "/submitTransaction/id")?;
    let scan = app.gql_ok(token, submit, json!({ "i": { "type": "SCAN", "idempotencyKey": "scan-1", "payload": { "a": 1, "b": 2 } } })).await?;
    let scan_id = str_at(&scan, "/submitTransaction/id")?;
    for id in [&note_id, &scan_id] {
        eventually(
            Duration::from_secs(15),
            "the routed transaction to finish",
            || async {
                Ok(
                    app.gql_ok(token, read, json!({ "id": id })).await?["transaction"]["status"]
                        == "COMPLETED",
                )
            },
        )
        .await?;
    }
    let delivered = app.gql_ok(token, read, json!({ "id": note_id })).await?;
    assert_eq!(
        delivered["transaction"]["result"]["forwarded"]["status"], 200,
        "{delivered}"
    );
    let seen = receiver.seen.lock().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].0, note_id,
        "the transaction id is the idempotency key"
    );
    assert_eq!(seen[0].1["payload"]["text"], "hello");
    // A receiver that refuses for good: the job is dead-lettered and the transaction fails.
    let refusing = Receiver::answering(
        false,
        Duration::ZERO,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?;
    app.gql_ok(token, create, json!({ "i": { "code": "PICKY", "name": "Picky", "route": "APP_FORWARD", "forwardUrl": refusing.url, "payloadSchema": { "type": "object" } } }))
        .await?;
    let picky = app
        .gql_ok(
            token,
            submit,
            json!({ "i": { "type": "PICKY", "idempotencyKey": "picky-1", "payload": {} } }),
        )
        .await?;
    let picky_id = str_at(&picky, "/submitTransaction/id")?;
    eventually(
        Duration::from_secs(15),
        "the refused transaction to fail",
        || async {
            Ok(
                app.gql_ok(token, read, json!({ "id": picky_id })).await?["transaction"]["status"]
                    == "FAILED",
            )
        },
    )
    .await?;
    let failed = app.gql_ok(token, read, json!({ "id": picky_id })).await?;
    // The submitter reads a stable message; the receiver's answer is the job's (see rules.rs).
    assert_eq!(
        failed["transaction"]["error"], "delivery to the partner system failed",
        "{failed}"
    );
    assert_eq!(refusing.count(), 1, "a 4xx is not retried");
    let processed = app.gql_ok(token, read, json!({ "id": scan_id })).await?;
    assert_eq!(
        processed["transaction"]["result"]["processed"]["fields"], 2,
        "{processed}"
    );
    assert_eq!(
        processed["transaction"]["result"]["processed"]["sha256"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    let history: Vec<&str> = processed["transaction"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(history.last(), Some(&"COMPLETED"), "{history:?}");
    Ok(())
}

async fn recurring_tasks_are_created_once_per_slot(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, BUSY);
    let company = Company::new(app).await?;
    let create = "mutation($i: CreateRecurringTaskInput!) { createRecurringTask(input: $i) { id cron active } }";
    let input = |cron: &str| json!({ "i": { "categoryId": company.quick_category, "title": "Daily stand-up notes", "executorIds": [company.executor.user_id], "cron": cron, "deadlineAfterHours": 2 } });
    let bad = company
        .as_(&company.initiator, create, input("every day at nine"))
        .await?;
    assert_eq!(error_code(&bad), Some("BAD_USER_INPUT"), "{bad}");
    let refused = company
        .as_(&company.executor, create, input("* * * * * *"))
        .await?;
    assert_eq!(error_code(&refused), Some("FORBIDDEN"), "{refused}");
    let template = company
        .ok_as(&company.initiator, create, input("* * * * * *"))
        .await?;
    let template_id = str_at(&template, "/createRecurringTask/id")?;
    let count = || async {
        let data = company
            .ok_as(
                &company.initiator,
                "{ tasks(first: 100) { totalCount edges { node { title deadline } } } }",
                json!({}),
            )
            .await?;
        let n = data["tasks"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["node"]["title"] == "Daily stand-up notes")
            .count();
        anyhow::Ok(n)
    };
    eventually(Duration::from_secs(30), "two recurring tasks", || async {
        Ok(count().await? >= 2)
    })
    .await?;
    company
        .ok_as(
            &company.initiator,
            "mutation($id: ID!) { setRecurringTaskActive(id: $id, active: false) { active } }",
            json!({ "id": template_id }),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let created = count().await?;
    let db = &company.app.state.db.conn;
    use sea_orm::ConnectionTrait;
    let fires = db
        .query_one(interlink::platform::db::sql(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM cron_fires WHERE schedule = $1",
            [format!("recurring-task:{template_id}").into()],
        ))
        .await?
        .context("count")?
        .try_get::<i64>("", "n")?;
    assert_eq!(created as i64, fires, "one task per fired slot");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        count().await?,
        created,
        "an inactive template creates nothing"
    );
    Ok(())
}

async fn approvals_past_their_sla_escalate_to_the_department_head(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, BUSY);
    let company = Company::new(app).await?;
    let task = company
        .draft(
            &company.category,
            json!({ "title": "Needs a quick answer" }),
        )
        .await?;
    company
        .ok_as(
            &company.initiator,
            "mutation($id: ID!) { submitTask(id: $id) { id } }",
            json!({ "id": task }),
        )
        .await?;
    let approval = company.approval_of(&task).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        inbox(&company, &company.reviewer, "APPROVAL_ESCALATED")
            .await?
            .is_empty(),
        "escalated before its SLA"
    );
    // The reviewer step's SLA is 24 h: move its start back 25 h.
    let db = &company.app.state.db.conn;
    use sea_orm::ConnectionTrait;
    let past = chrono::Utc::now() - chrono::Duration::hours(25);
    db.execute(interlink::platform::db::sql(
        db.get_database_backend(),
        "UPDATE approval_instances SET step_started_at = $1 WHERE id = $2",
        [past.into(), uuid::Uuid::parse_str(&approval)?.into()],
    ))
    .await?;
    eventually(Duration::from_secs(30), "the escalation", || async {
        Ok(!inbox(&company, &company.head, "APPROVAL_ESCALATED")
            .await?
            .is_empty())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        inbox(&company, &company.reviewer, "APPROVAL_ESCALATED")
            .await?
            .len(),
        1,
        "the approver is told once"
    );
    assert_eq!(
        inbox(&company, &company.head, "APPROVAL_ESCALATED")
            .await?
            .len(),
        1,
        "the head is told once"
    );
    // The head may now decide the overdue step.
    let decided = company.decide(&company.head, &approval, true, None).await?;
    assert_eq!(
        decided["data"]["decideApproval"]["progress"]["stepNumber"], 2,
        "{decided}"
    );
    Ok(())
}

// ------------------------------------------------------------------ worker processes

fn worker(
    deployment: &Deployment,
    node: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<(tokio::process::Child, tempfile::TempDir)> {
    let data_dir = tempfile::tempdir()?;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_interlink"));
    command
        .arg("serve")
        .env_clear()
        .envs(&deployment.vars)
        .env("INTERLINK_SCHEDULER", "true")
        .env("INTERLINK_NODE_ID", node)
        .env("INTERLINK_BIND", "127.0.0.1:0")
        .env("INTERLINK_DATA_DIR", data_dir.path())
        .env("INTERLINK_SCAN_CRON", "0 0 0 1 1 *")
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    Ok((command.spawn()?, data_dir))
}

async fn wait_for_node(app: &TestApp, node: &str) -> anyhow::Result<()> {
    use sea_orm::EntityTrait;
    eventually(
        Duration::from_secs(60),
        "the worker to register",
        || async {
            Ok(
                entities::scheduler_node::Entity::find_by_id(node.to_owned())
                    .one(&app.state.db.conn)
                    .await?
                    .is_some(),
            )
        },
    )
    .await
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_rescued_by_another_node() -> anyhow::Result<()> {
    const LEASE_MS: u64 = 2000;
    let lease = LEASE_MS.to_string();
    let Some(deployment) = Deployment::new(
        Backend::Postgres,
        &[
            ("INTERLINK_JOB_LEASE_MS", &lease),
            ("INTERLINK_JOB_POLL_MS", "100"),
        ],
    )
    .await?
    else {
        return Ok(());
    };
    let api = deployment.node().await?;
    let admin = api.admin().await?;
    let receiver = Receiver::start(true, Duration::ZERO).await?;
    let (mut doomed, _dir) = worker(&deployment, "doomed", &[])?;
    wait_for_node(&api, "doomed").await?;
    let enqueued = api
        .gql_ok(Some(&admin.access), ENQUEUE, json!({ "i": { "kind": "webhook.deliver", "args": { "url": receiver.url, "payload": { "order": 42 } } } }))
        .await?;
    let id = str_at(&enqueued, "/enqueueJob/id")?;
    eventually(
        Duration::from_secs(30),
        "the worker to start delivering",
        || async { Ok(receiver.count() == 1) },
    )
    .await?;
    let running = job_state(&api, &admin.access, &id).await?;
    assert_eq!(
        (
            running["state"].as_str(),
            running["leaseOwner"].as_str(),
            running["attempt"].as_i64()
        ),
        (Some("RUNNING"), Some("doomed"), Some(1))
    );

    doomed.start_kill()?; // SIGKILL: no shutdown code runs
    let killed = Instant::now();
    doomed.wait().await?;
    let rescuer = api.state.scheduler.start().await?;
    eventually(
        Duration::from_secs(30),
        "another node to finish the job",
        || async { Ok(job_state(&api, &admin.access, &id).await?["state"] == "COMPLETED") },
    )
    .await?;
    let took = killed.elapsed();
    let done = job_state(&api, &admin.access, &id).await?;
    assert_eq!(done["attempt"], 2, "{done}");
    let seen = receiver.seen.lock().clone();
    assert_eq!(seen.len(), 2, "delivered again after the rescue");
    assert!(seen
        .iter()
        .all(|(key, body)| *key == id && body["order"] == 42));
    println!("killed worker's job completed by another node {took:?} after SIGKILL (lease {LEASE_MS} ms)");
    rescuer.stop(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_100k_jobs_leaves_worker_memory_bounded() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    let api = deployment.node().await?;
    let receiver = Receiver::start(false, Duration::from_millis(200)).await?;
    let (mut node, _dir) = worker(
        &deployment,
        "steady",
        &[
            ("INTERLINK_NODE_CAPACITY", "4"),
            ("INTERLINK_JOB_PREFETCH", "4"),
        ],
    )?;
    wait_for_node(&api, "steady").await?;
    let pid = node.id().context("worker pid")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid)?;
    const BACKLOG: usize = 100_000;
    let jobs = (0..BACKLOG)
        .map(|i| {
            interlink::platform::scheduler::NewJob::of(
                &interlink::domains::scheduling::jobs::WebhookArgs {
                    url: receiver.url.clone(),
                    payload: json!({ "i": i }),
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let added = interlink::platform::scheduler::enqueue_many(&api.state.db.conn, &jobs).await?;
    assert_eq!(added, BACKLOG as u64);
    drop(jobs);
    let mut samples = Vec::new();
    let mut held_max = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        samples.push(rss_kib(pid)?);
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let held = entities::job::Entity::find()
            .filter(entities::job::Column::State.eq("RUNNING"))
            .filter(entities::job::Column::LeaseOwner.eq("steady"))
            .count(&api.state.db.conn)
            .await?;
        held_max = held_max.max(held);
    }
    let peak = samples.iter().copied().max().unwrap_or_default();
    let delivered = receiver.count();
    println!("worker RSS idle {idle} KiB, peak {peak} KiB under a {BACKLOG}-job backlog; at most {held_max} jobs held; {delivered} delivered in 5 s");
    assert!(
        held_max <= 8,
        "the node held {held_max} jobs; capacity 4 + prefetch 4"
    );
    assert!(delivered > 0, "the node works through the backlog");
    assert!(
        peak < idle + 32 * 1024,
        "RSS grew from {idle} KiB to {peak} KiB"
    );
    node.start_kill()?;
    let _ = node.wait().await;
    Ok(())
}
