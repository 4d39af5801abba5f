//! The durable event log end to end: cursors under concurrent writers, visibility live and
//! replayed, resume after a cursor (on one node and across nodes), retention, a node killed
//! after a burst, and a routed transaction watched to its end.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, Backend, Deployment, Session, TestApp};
use crate::tasks::Company;
use crate::websocket::{connect, init, next, send, Socket};
use crate::{on_both_backends, spawn_or_skip};

const PAGE: &str = "query($after: String, $topics: [EventTopic!]) { events(after: $after, first: 100, topics: $topics) { edges { cursor node { cursor topic kind subjectKind subjectId at payload } } pageInfo { endCursor hasNextPage } } }";
const COMMENT: &str =
    "mutation($t: ID!, $b: String!) { addTaskComment(taskId: $t, body: $b) { id } }";

/// What can answer a GraphQL request: a node in this process, or one in another.
trait Api {
    async fn ask(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value>;
}

impl Api for TestApp {
    async fn ask(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        self.gql_ok(Some(token), query, variables).await
    }
}

impl Api for ProcessApp {
    async fn ask(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        self.gql_ok(Some(token), query, variables).await
    }
}

/// Pages the log from `after` to its current end as `who` sees it; returns the events and the
/// cursor to go on from.
async fn read_log(
    app: &impl Api,
    who: &Session,
    after: Option<String>,
    topics: Value,
) -> anyhow::Result<(Vec<Value>, Option<String>)> {
    let mut events = Vec::new();
    let mut cursor = after;
    loop {
        let data = app
            .ask(
                &who.access,
                PAGE,
                json!({ "after": cursor, "topics": topics }),
            )
            .await?;
        let page = &data["events"];
        for edge in page["edges"].as_array().into_iter().flatten() {
            anyhow::ensure!(edge["cursor"] == edge["node"]["cursor"], "{edge}");
            events.push(edge["node"].clone());
        }
        if let Some(end) = page["pageInfo"]["endCursor"].as_str() {
            cursor = Some(end.to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return Ok((events, cursor));
        }
    }
}

/// A cursor before every event. The tests follow from it and pick out their own subjects: "the
/// end of the log now" is no firm point on PostgreSQL, where readers stop short of entries that
/// an older transaction anywhere on the server still holds back.
const BEFORE_EVERYTHING: &str = "00000000000000000000000000000000";

fn cursors_strictly_increase(events: &[Value]) -> anyhow::Result<()> {
    let cursors: Vec<&str> = events.iter().filter_map(|e| e["cursor"].as_str()).collect();
    anyhow::ensure!(cursors.len() == events.len(), "an event without a cursor");
    for pair in cursors.windows(2) {
        anyhow::ensure!(pair[0] < pair[1], "cursors out of order: {pair:?}");
    }
    Ok(())
}

fn comments_on<'a>(events: &'a [Value], task: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "COMMENT_ADDED" && e["subjectId"] == task)
        .collect()
}

/// A task of the quick category (approved on submission), by the company's initiator.
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

async fn subscribe(
    socket: &mut Socket,
    id: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<()> {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await
}

/// The next `next` message's payload data, failing on anything else.
async fn next_data(socket: &mut Socket) -> anyhow::Result<Value> {
    let message = next(socket, Duration::from_secs(20)).await?;
    anyhow::ensure!(
        message["type"] == "next",
        "expected an event, got {message}"
    );
    anyhow::ensure!(
        message["payload"]["errors"].is_null(),
        "unexpected errors: {message}"
    );
    Ok(message["payload"]["data"].clone())
}

/// Reads `events` until a USER_UPDATED about `user`; returns what came before it.
async fn until_renamed(socket: &mut Socket, user: &str) -> anyhow::Result<Vec<Value>> {
    let mut before = Vec::new();
    loop {
        let event = next_data(socket).await?["events"].clone();
        if event["kind"] == "USER_UPDATED" && event["subjectId"] == user {
            return Ok(before);
        }
        before.push(event);
    }
}

on_both_backends!(
    cursors_increase_under_concurrent_writers,
    invisible_tasks_send_no_events_live_or_replayed,
    a_subscriber_resumes_after_its_cursor_without_gap_or_duplicate,
    cursors_past_retention_are_refused,
    transaction_events_follow_a_routed_transaction_to_its_end,
);

async fn cursors_increase_under_concurrent_writers(backend: Backend) -> anyhow::Result<()> {
    const WRITERS: usize = 16;
    const EACH: usize = 8;
    let app = spawn_or_skip!(backend);
    let company = Company::new(app).await?;
    let task = open_task(&company).await?;
    let start = Some(BEFORE_EVERYTHING.to_owned());
    let company = &company;
    let task = task.as_str();
    // A reader pages by cursor while the writers write; it stops once it has seen them all.
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor = start.clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        while comments_on(&seen, task).len() < WRITERS * EACH {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the reader never saw every comment"
            );
            let (events, end) = read_log(
                &company.app,
                &company.admin,
                cursor.clone(),
                json!(["TASKS"]),
            )
            .await?;
            if events.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen.extend(events);
            cursor = end.or(cursor);
        }
        anyhow::Ok(seen)
    };
    let writers = futures_util::future::try_join_all((0..WRITERS).map(|w| async move {
        for n in 0..EACH {
            company
                .ok_as(
                    &company.initiator,
                    COMMENT,
                    json!({ "t": task, "b": format!("writer {w} comment {n}") }),
                )
                .await?;
        }
        anyhow::Ok(())
    }));
    let (seen, _) = tokio::try_join!(reader, writers)?;
    cursors_strictly_increase(&seen)?;
    assert_eq!(
        comments_on(&seen, task).len(),
        WRITERS * EACH,
        "each comment once"
    );
    let distinct: HashSet<&str> = seen.iter().filter_map(|e| e["cursor"].as_str()).collect();
    assert_eq!(distinct.len(), seen.len(), "no event twice");
    Ok(())
}

async fn invisible_tasks_send_no_events_live_or_replayed(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let company = Company::new(app).await?;
    let start = Some(BEFORE_EVERYTHING.to_owned());

    // Live: the executor and a stranger both follow every topic.
    let mut executor = connect(&company.app).await?;
    init(&mut executor, Some(&company.executor.access)).await?;
    let mut stranger = connect(&company.app).await?;
    init(&mut stranger, Some(&company.stranger.access)).await?;
    // From `start`, so that what commits while the subscriptions are being set up still
    // reaches them (a subscription without a cursor starts wherever the log is when it attaches).
    let all = "subscription($a: String) { events(after: $a) { cursor topic kind subjectId } }";
    subscribe(&mut executor, "e", all, json!({ "a": start })).await?;
    subscribe(&mut stranger, "s", all, json!({ "a": start })).await?;
    // A first event for each, a change to their own user (which each may see), shows the
    // subscriptions are live before the task is made.
    let rename =
        "mutation($id: ID!, $n: String!) { updateUser(id: $id, input: { name: $n }) { id } }";
    for (who, socket) in [
        (&company.executor, &mut executor),
        (&company.stranger, &mut stranger),
    ] {
        company
            .ok_as(
                &company.admin,
                rename,
                json!({ "id": who.user_id, "n": "Attached" }),
            )
            .await?;
        // (Older events the fixture made may come first on PostgreSQL, where `start` can be
        // short of them; none is about a task yet.)
        let before = until_renamed(socket, &who.user_id).await?;
        assert!(before.iter().all(|e| e["topic"] != "TASKS"), "{before:?}");
    }

    let task = open_task(&company).await?;
    company
        .ok_as(
            &company.initiator,
            COMMENT,
            json!({ "t": task, "b": "for the people on it" }),
        )
        .await?;
    // The executor hears about the task…
    let mut executor_saw = Vec::new();
    while !executor_saw
        .iter()
        .any(|e: &Value| e["kind"] == "COMMENT_ADDED")
    {
        executor_saw.push(next_data(&mut executor).await?["events"].clone());
    }
    assert!(executor_saw.iter().any(|e| e["subjectId"] == task.as_str()));
    // …and the stranger's next event is the one after it in the log, a change to themselves:
    // the stream is in log order, so everything about the task was skipped for them.
    company
        .ok_as(
            &company.admin,
            rename,
            json!({ "id": company.stranger.user_id, "n": "Fence" }),
        )
        .await?;
    let before_fence = until_renamed(&mut stranger, &company.stranger.user_id).await?;
    assert!(
        before_fence
            .iter()
            .all(|e| e["topic"] != "TASKS" && e["subjectId"] != task.as_str()),
        "the stranger heard of the task: {before_fence:?}"
    );

    // Replayed, through the query and through the subscription: the same holds.
    let (replayed, _) =
        read_log(&company.app, &company.stranger, start.clone(), Value::Null).await?;
    assert!(
        replayed
            .iter()
            .all(|e| e["subjectId"] != task.as_str() && e["topic"] != "TASKS"),
        "{replayed:?}"
    );
    assert!(replayed
        .iter()
        .any(|e| e["subjectId"] == company.stranger.user_id.as_str()));
    let (visible, _) =
        read_log(&company.app, &company.executor, start.clone(), Value::Null).await?;
    assert!(!comments_on(&visible, &task).is_empty());

    let mut late = connect(&company.app).await?;
    init(&mut late, Some(&company.stranger.access)).await?;
    subscribe(
        &mut late,
        "r",
        "subscription($a: String) { events(after: $a) { cursor topic kind subjectId } }",
        json!({ "a": start }),
    )
    .await?;
    // Both renames of the stranger were logged after `start`; the replay brings them, and
    // nothing about the task on the way.
    for _ in 0..2 {
        let before = until_renamed(&mut late, &company.stranger.user_id).await?;
        assert!(before.iter().all(|e| e["topic"] != "TASKS"), "{before:?}");
    }
    Ok(())
}

async fn a_subscriber_resumes_after_its_cursor_without_gap_or_duplicate(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let company = Company::new(app).await?;
    let task = open_task(&company).await?;
    let start = Some(BEFORE_EVERYTHING.to_owned());
    for n in 0..5 {
        company
            .ok_as(
                &company.initiator,
                COMMENT,
                json!({ "t": task, "b": format!("before {n}") }),
            )
            .await?;
    }
    // A subscriber that stopped at `start` comes back: the five it missed, then live ones.
    let mut socket = connect(&company.app).await?;
    init(&mut socket, Some(&company.executor.access)).await?;
    subscribe(
        &mut socket,
        "t",
        "subscription($a: String, $t: ID) { taskEvents(taskId: $t, after: $a) { cursor kind task { id } } }",
        json!({ "a": start, "t": task }),
    )
    .await?;
    // (The task's own earlier events may come first: on PostgreSQL `start` can be short of them
    // while another transaction in the cluster holds readers back.)
    let mut cursors = Vec::new();
    while cursors.len() < 5 {
        let event = next_data(&mut socket).await?;
        if event["taskEvents"]["kind"] == "COMMENT_ADDED" {
            cursors.push(str_at(&event, "/taskEvents/cursor")?);
        }
    }
    for n in 0..5 {
        company
            .ok_as(
                &company.initiator,
                COMMENT,
                json!({ "t": task, "b": format!("after {n}") }),
            )
            .await?;
        let event = next_data(&mut socket).await?;
        assert_eq!(event["taskEvents"]["kind"], "COMMENT_ADDED", "{event}");
        cursors.push(str_at(&event, "/taskEvents/cursor")?);
    }
    for pair in cursors.windows(2) {
        assert!(pair[0] < pair[1], "{cursors:?}");
    }
    // Resuming from the middle brings the rest, each once.
    let mut again = connect(&company.app).await?;
    init(&mut again, Some(&company.executor.access)).await?;
    subscribe(
        &mut again,
        "t",
        "subscription($a: String, $t: ID) { taskEvents(taskId: $t, after: $a) { cursor } }",
        json!({ "a": cursors[4], "t": task }),
    )
    .await?;
    for expected in &cursors[5..] {
        let event = next_data(&mut again).await?;
        assert_eq!(event["taskEvents"]["cursor"], expected.as_str());
    }
    // Malformed cursors are bad input, not an empty stream.
    let bad = company
        .as_(&company.executor, PAGE, json!({ "after": "not-a-cursor" }))
        .await?;
    assert_eq!(error_code(&bad), Some("BAD_USER_INPUT"), "{bad}");
    Ok(())
}

/// Whether anything was pruned yet: a page after the very start is refused once it has.
async fn log_has_been_pruned(company: &Company) -> anyhow::Result<bool> {
    let answer = company
        .as_(&company.admin, PAGE, json!({ "after": BEFORE_EVERYTHING }))
        .await?;
    Ok(error_code(&answer) == Some("CURSOR_EXPIRED"))
}

async fn cursors_past_retention_are_refused(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let company = Company::new(app).await?;
    let task = open_task(&company).await?;
    let old = Some(BEFORE_EVERYTHING.to_owned());
    company
        .ok_as(
            &company.initiator,
            COMMENT,
            json!({ "t": task, "b": "soon pruned" }),
        )
        .await?;
    // Prune everything up to now, as the retention job would after 30 days. Pruning stops at
    // what the relay has published, so go on until the comment is gone.
    let db = company.app.state.db.clone();
    let prune = || async {
        interlink::platform::work::write(&db, async |work| {
            interlink::platform::events::log::prune(
                work,
                chrono::Utc::now() + chrono::Duration::seconds(1),
                100_000,
            )
            .await
        })
        .await
    };
    let comment_readable = || async {
        let (left, _) = read_log(&company.app, &company.admin, None, json!(["TASKS"])).await?;
        anyhow::Ok(!comments_on(&left, &task).is_empty())
    };
    // First until the comment is readable (on PostgreSQL another transaction on the server may
    // hold it back a moment): from then on, its absence can only mean it was pruned.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !comment_readable().await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the comment never became readable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    loop {
        prune().await?;
        if !comment_readable().await? && log_has_been_pruned(&company).await? {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the comment was never pruned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = company
        .as_(&company.admin, PAGE, json!({ "after": old }))
        .await?;
    assert_eq!(error_code(&refused), Some("CURSOR_EXPIRED"), "{refused}");
    let mut socket = connect(&company.app).await?;
    init(&mut socket, Some(&company.admin.access)).await?;
    subscribe(
        &mut socket,
        "x",
        "subscription($a: String) { events(after: $a) { cursor } }",
        json!({ "a": old }),
    )
    .await?;
    let message = next(&mut socket, Duration::from_secs(10)).await?;
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "CURSOR_EXPIRED",
        "{message}"
    );
    // From the start of what is kept, reading works again.
    let (events, _) = read_log(&company.app, &company.admin, None, Value::Null).await?;
    assert!(
        events.iter().all(|e| e["kind"] != "COMMENT_ADDED"),
        "{events:?}"
    );
    Ok(())
}

async fn transaction_events_follow_a_routed_transaction_to_its_end(
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
    let accepting = crate::jobs::Receiver::start(false, Duration::ZERO).await?;
    let refusing = crate::jobs::Receiver::answering(
        false,
        Duration::ZERO,
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?;
    let create =
        "mutation($i: CreateTransactionTypeInput!) { createTransactionType(input: $i) { code } }";
    for (code, url) in [("NOTE", &accepting.url), ("PICKY", &refusing.url)] {
        app.gql_ok(token, create, json!({ "i": { "code": code, "name": code, "route": "APP_FORWARD", "forwardUrl": url, "payloadSchema": { "type": "object" } } }))
            .await?;
    }
    let submit =
        "mutation($i: SubmitTransactionInput!) { submitTransaction(input: $i) { id status } }";
    let watch = "subscription($id: ID, $a: String) { transactionEvents(transactionId: $id, after: $a) { cursor status transaction { id status } } }";
    let start = Some(BEFORE_EVERYTHING.to_owned());
    for (code, last) in [("NOTE", "COMPLETED"), ("PICKY", "FAILED")] {
        let submitted = app
            .gql_ok(token, submit, json!({ "i": { "type": code, "idempotencyKey": format!("{code}-1"), "payload": {} } }))
            .await?;
        let id = str_at(&submitted, "/submitTransaction/id")?;
        // The submitter watches from before it submitted: the whole history, then the end.
        let mut socket = connect(&app).await?;
        init(&mut socket, token).await?;
        subscribe(&mut socket, "w", watch, json!({ "id": id, "a": start })).await?;
        let mut statuses = Vec::new();
        while statuses.last().map(String::as_str) != Some(last) {
            anyhow::ensure!(statuses.len() < 10, "no {last} among {statuses:?}");
            let event = next_data(&mut socket).await?;
            assert_eq!(event["transactionEvents"]["transaction"]["id"], id.as_str());
            statuses.push(str_at(&event, "/transactionEvents/status")?);
        }
        assert!(statuses.iter().any(|s| s == "EXECUTING"), "{statuses:?}");
    }
    Ok(())
}

/// Two nodes on PostgreSQL and Redis: a subscriber cut off on A resumes on B from its cursor
/// and receives every later event exactly once, while a writer keeps writing through the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_moves_between_nodes_without_gap_or_duplicate() -> anyhow::Result<()> {
    const COMMENTS: usize = 60;
    let Some(deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    if !deployment.vars.contains_key("REDIS_URL") {
        return Ok(());
    }
    let a = deployment.node().await?;
    let b = deployment.node().await?;
    let company = Company::new(a).await?;
    let task = open_task(&company).await?;
    let start = Some(BEFORE_EVERYTHING.to_owned());
    let watch =
        "subscription($a: String, $t: ID) { taskEvents(taskId: $t, after: $a) { cursor kind } }";
    // The comments' cursors, in the order received (the task's earlier events may come first).
    async fn comment_cursor(socket: &mut Socket) -> anyhow::Result<String> {
        loop {
            let event = next_data(socket).await?;
            if event["taskEvents"]["kind"] == "COMMENT_ADDED" {
                return str_at(&event, "/taskEvents/cursor");
            }
        }
    }
    let variables = |after: &Option<String>| json!({ "a": after, "t": task });

    let company_ref = &company;
    let task_ref = task.as_str();
    let writer = async move {
        for n in 0..COMMENTS {
            company_ref
                .ok_as(
                    &company_ref.initiator,
                    COMMENT,
                    json!({ "t": task_ref, "b": format!("c{n}") }),
                )
                .await?;
        }
        anyhow::Ok(())
    };
    let subscriber = async {
        let mut cursors: Vec<String> = Vec::new();
        let mut on_a = connect(&company.app).await?;
        init(&mut on_a, Some(&company.executor.access)).await?;
        subscribe(&mut on_a, "a", watch, variables(&start)).await?;
        while cursors.len() < COMMENTS / 3 {
            cursors.push(comment_cursor(&mut on_a).await?);
        }
        drop(on_a);
        let mut on_b = connect(&b).await?;
        init(&mut on_b, Some(&company.executor.access)).await?;
        subscribe(&mut on_b, "b", watch, variables(&cursors.last().cloned())).await?;
        while cursors.len() < COMMENTS {
            cursors.push(comment_cursor(&mut on_b).await?);
        }
        anyhow::Ok(cursors)
    };
    let ((), cursors) = tokio::try_join!(writer, subscriber)?;
    for pair in cursors.windows(2) {
        assert!(pair[0] < pair[1], "a gap or a duplicate at {pair:?}");
    }
    // And it is the log's own sequence of the task's comments (read once all are readable).
    let deadline = Instant::now() + Duration::from_secs(30);
    let logged = loop {
        let (logged, _) = read_log(
            &company.app,
            &company.admin,
            start.clone(),
            json!(["TASKS"]),
        )
        .await?;
        let logged: Vec<String> = comments_on(&logged, &task)
            .iter()
            .filter_map(|e| e["cursor"].as_str().map(str::to_owned))
            .collect();
        if logged.len() >= COMMENTS || Instant::now() > deadline {
            break logged;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(logged, cursors);
    Ok(())
}

/// A node process killed (SIGKILL) in the middle of a burst of writes: after a restart, the log
/// holds exactly one event per committed change, in order, counted against the activity log.
async fn a_killed_node_loses_no_committed_event(backend: Backend) -> anyhow::Result<()> {
    const BURST: usize = 40;
    let Some(deployment) = Deployment::new(backend, &[]).await? else {
        return Ok(());
    };
    let data_dir = tempfile::tempdir()?;
    let node = Node::start(&deployment, data_dir.path()).await?;
    let admin = node.app.admin_session().await?;
    let category = str_at(
        &node
            .app
            .gql_ok(
                Some(&admin.access),
                "mutation { createTaskCategory(input: { code: \"KILL\", name: \"Kill\" }) { id } }",
                json!({}),
            )
            .await?,
        "/createTaskCategory/id",
    )?;
    let created = node
        .app
        .gql_ok(
            Some(&admin.access),
            "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }",
            json!({ "i": { "categoryId": category, "title": "Survive", "keyPoints": "-", "executorIds": [admin.user_id] } }),
        )
        .await?;
    let task = str_at(&created, "/createTask/id")?;
    node.app
        .gql_ok(
            Some(&admin.access),
            "mutation($id: ID!) { submitTask(id: $id) { id } }",
            json!({ "id": task }),
        )
        .await?;
    let start = Some(BEFORE_EVERYTHING.to_owned());

    // The burst, all at once; the node dies once half of it has been answered.
    let (answered_tx, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..BURST {
        let (http, url, token, task, answered) = (
            node.app.http.clone(),
            node.app.url("/graphql"),
            admin.access.clone(),
            task.clone(),
            answered_tx.clone(),
        );
        burst.spawn(async move {
            let sent = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": COMMENT, "variables": { "t": task, "b": format!("burst {n}") } }))
                .send()
                .await;
            if let Ok(response) = sent {
                if response.json::<Value>().await.is_ok_and(|b| b["errors"].is_null()) {
                    let _ = answered.send(());
                }
            }
        });
    }
    for _ in 0..BURST / 2 {
        answered.recv().await;
    }
    node.kill().await?;
    let confirmed = BURST / 2 + std::iter::from_fn(|| answered.try_recv().ok()).count();
    while burst.join_next().await.is_some() {}

    let node = Node::start(&deployment, data_dir.path()).await?;
    let admin = node.app.admin_session().await?;
    let activity = node
        .app
        .gql_ok(
            Some(&admin.access),
            // One page holds the whole log: the task's creation and at most BURST comments.
            "query($id: ID!) { task(id: $id) { activity(first: 100) { nodes { action } } } }",
            json!({ "id": task }),
        )
        .await?;
    let committed = activity["task"]["activity"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["action"] == "commented")
        .count();
    // Read until the log has caught up (on PostgreSQL another transaction on the server may hold
    // readers back for a moment), then the counts must match exactly.
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let (events, _) = read_log(&node.app, &admin, start.clone(), json!(["TASKS"])).await?;
        if comments_on(&events, &task).len() >= committed || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cursors_strictly_increase(&events)?;
    let logged = comments_on(&events, &task).len();
    assert_eq!(logged, committed, "one event per committed comment");
    assert!(
        committed >= confirmed,
        "{committed} committed, {confirmed} answered"
    );
    node.kill().await?;
    Ok(())
}

on_both_backends!(a_killed_node_loses_no_committed_event);

/// The real binary, serving the deployment's settings on a port of its own.
struct Node {
    child: tokio::process::Child,
    app: ProcessApp,
}

/// Just enough of `TestApp` to talk to a node in another process.
struct ProcessApp {
    http: reqwest::Client,
    addr: std::net::SocketAddr,
}

impl ProcessApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn gql_ok(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await?.json().await?;
        anyhow::ensure!(body["errors"].is_null(), "unexpected errors: {body}");
        Ok(body["data"].clone())
    }

    async fn admin_session(&self) -> anyhow::Result<Session> {
        let data = self
            .gql_ok(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id } } }",
                json!({ "e": crate::helpers::ADMIN_EMAIL, "p": crate::helpers::ADMIN_PASSWORD }),
            )
            .await?;
        Ok(Session {
            access: str_at(&data, "/login/accessToken")?,
            refresh: str_at(&data, "/login/refreshToken")?,
            user_id: str_at(&data, "/login/user/id")?,
        })
    }
}

impl Node {
    async fn start(deployment: &Deployment, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_interlink"));
        command
            .env_clear()
            .envs(&deployment.vars)
            .env("INTERLINK_DATA_DIR", data_dir)
            .env("INTERLINK_BIND", addr.to_string())
            .env("INTERLINK_SCHEDULER", "false")
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn()?;
        let app = ProcessApp {
            http: reqwest::Client::new(),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = app.http.get(app.url("/healthz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(Self { child, app });
            }
            anyhow::ensure!(Instant::now() < deadline, "the node did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown hook runs.
    async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// A recurring task is created inside the slot's unit of work; its events are in the log with
/// it, so nobody hears of the task while that work is still open. PostgreSQL only: on SQLite the
/// one connection keeps every reader waiting until the work ends anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_task_is_announced_only_when_its_slot_commits() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Postgres);
    let company = Company::new(app).await?;
    let created = company
        .ok_as(
            &company.initiator,
            "mutation($i: CreateRecurringTaskInput!) { createRecurringTask(input: $i) { id } }",
            json!({ "i": { "categoryId": company.quick_category, "title": "Held open", "executorIds": [company.executor.user_id], "cron": "0 0 * * * *" } }),
        )
        .await?;
    let template_id = uuid::Uuid::parse_str(&str_at(&created, "/createRecurringTask/id")?)?;
    let start = Some(BEFORE_EVERYTHING.to_owned());
    let state = &company.app.state;
    let template = {
        use sea_orm::EntityTrait;
        entities::recurring_task::Entity::find_by_id(template_id)
            .one(&state.db.conn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("template missing"))?
    };
    let slot = chrono::Utc::now() + chrono::Duration::hours(1);
    let work = interlink::platform::work::Work::begin(&state.db).await?;
    let made = interlink::domains::tasks::service::create_recurring_slot(
        &work,
        &state.config.currency,
        &template,
        slot,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert!(made, "the slot was free");
    // The work is open: the task's events are not in anyone's view of the log yet.
    let (during, _) = read_log(
        &company.app,
        &company.admin,
        start.clone(),
        json!(["TASKS"]),
    )
    .await?;
    let held_open =
        |e: &Value| e["kind"] == "CREATED" && e["payload"]["task"]["title"] == "Held open";
    assert!(!during.iter().any(held_open), "{during:?}");
    work.commit().await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (after, _) = read_log(
            &company.app,
            &company.admin,
            start.clone(),
            json!(["TASKS"]),
        )
        .await?;
        if after.iter().any(held_open) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "never announced: {after:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
