//! Fault tests at the edge: PostgreSQL restarted under load, and a websocket client that stops
//! reading while 100,000 events go by.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use interlink::domains::notifications::model::{NotificationEvent, NotificationKind};
use interlink::platform::db::Db;
use interlink::platform::events::log;
use interlink::platform::scheduler::JobChanges;
use interlink::platform::work::Work;
use parking_lot::Mutex;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{poll_until, str_at, Backend, Deployment, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::jobs::Receiver;
use crate::tasks::Company;
use crate::websocket::Socket;

fn services_required() -> bool {
    std::env::var("INTERLINK_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The real binary as a child process, so its memory is its own; killed on drop.
struct ServerProcess {
    child: tokio::process::Child,
    addr: SocketAddr,
    http: reqwest::Client,
    _data_dir: tempfile::TempDir,
}

impl ServerProcess {
    async fn start(deployment: &Deployment) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_interlink"));
        command
            .env_clear()
            .envs(&deployment.vars)
            .env("INTERLINK_DATA_DIR", data_dir.path())
            .env("INTERLINK_BIND", addr.to_string())
            .env("INTERLINK_SCHEDULER", "false")
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn()?;
        let server = Self {
            child,
            addr,
            http: reqwest::Client::new(),
            _data_dir: data_dir,
        };
        poll_until(Duration::from_secs(60), "the server to start", || async {
            let ready = server.http.get(server.url("/healthz")).send().await;
            Ok(ready.is_ok_and(|r| r.status().is_success()))
        })
        .await?;
        Ok(server)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the server exited"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
    }

    async fn metric(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(text.lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        }))
    }

    /// The administrator's access token and id.
    async fn admin(&self) -> anyhow::Result<(String, String)> {
        let body: Value = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({
                "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { id } } }",
                "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }
            }))
            .send()
            .await?
            .json()
            .await?;
        Ok((
            str_at(&body, "/data/login/accessToken")?,
            str_at(&body, "/data/login/user/id")?,
        ))
    }

    async fn subscriber(&self, token: &str, after: &str, topic: &str) -> anyhow::Result<Socket> {
        let mut request = format!("ws://{}/graphql", self.addr).into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let send = |message: Value| Message::Text(message.to_string().into());
        socket
            .send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
            .await?;
        let ack = crate::websocket::next(&mut socket, Duration::from_secs(10)).await?;
        anyhow::ensure!(ack["type"] == "connection_ack", "expected ack, got {ack}");
        let query = format!(
            "subscription {{ events(after: \"{after}\", topics: [{topic}]) {{ cursor kind }} }}"
        );
        socket
            .send(send(
                json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
            ))
            .await?;
        Ok(socket)
    }
}

const EVENTS: usize = 100_000;
/// Events per unit of work when producing them.
const PER_WORK: usize = 10_000;
/// One event in this many is also addressed to the reading subscriber: it is entitled to
/// those, and reading 100,000 would make the test slow in a debug build for nothing.
const READER_EVERY: usize = 100;
/// What the server may grow by while 100,000 events pass a client that does not read: far
/// below what holding them for it would take (each is a few hundred bytes as a message).
const RSS_GROWTH_LIMIT_KIB: u64 = 150 * 1024;

/// A subscriber that never reads is closed (1013) after the send timeout while 100,000 events
/// it may see go by, the server's memory stays bounded meanwhile, and a subscriber that reads
/// gets every event it is entitled to (the administrator's own notifications, one in a hundred
/// of the events, among the job changes that only the slow one follows). PostgreSQL (NOTIFY
/// wakes the server's relay when this process commits); the server is the real binary in a
/// process of its own, so its memory is not the test process's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_is_closed_and_memory_stays_bounded(
) -> anyhow::Result<()> {
    let Some(mut deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    // The in-process bus: relaying 100,000 entries one Redis message each is the Redis fault
    // test's business, and would make this one slow in a debug build.
    deployment.vars.remove("REDIS_URL");
    let url = deployment
        .vars
        .get("DATABASE_URL")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no DATABASE_URL"))?;
    let server = ServerProcess::start(&deployment).await?;
    let (token, admin_id) = server.admin().await?;
    let admin_id: uuid::Uuid = admin_id.parse()?;
    let db = Db::connect(Some(&url), Path::new(""), 2).await?;
    let head = log::head(&db.conn).await?.to_string();

    let mut slow = server.subscriber(&token, &head, "JOBS").await?;
    let reader = server.subscriber(&token, &head, "NOTIFICATIONS").await?;
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let counted = Arc::new(AtomicUsize::new(0));
    let reading = tokio::spawn({
        let (seen, counted) = (seen.clone(), counted.clone());
        async move {
            let mut reader = reader;
            while let Some(Ok(message)) = reader.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(cursor) = message
                    .pointer("/payload/data/events/cursor")
                    .and_then(Value::as_str)
                {
                    let mut seen = seen.lock();
                    seen.insert(cursor.to_owned());
                    counted.store(seen.len(), Ordering::Relaxed);
                }
            }
        }
    });
    poll_until(
        Duration::from_secs(20),
        "both subscribers connected",
        || async { Ok(server.metric("interlink_websocket_connections").await? == Some(2.0)) },
    )
    .await?;
    let before = server.rss_kib()?;

    for _ in 0..EVENTS / PER_WORK {
        let work = Work::begin(&db).await?;
        for i in 0..PER_WORK {
            work.emit(&JobChanges(Vec::new()));
            if i % READER_EVERY == 0 {
                work.emit(&NotificationEvent {
                    id: uuid::Uuid::now_v7(),
                    user_id: admin_id,
                    kind: NotificationKind::Assigned,
                    title: format!("note {i}"),
                    body: String::new(),
                    subject_type: None,
                    subject_id: None,
                    at: chrono::Utc::now(),
                });
            }
        }
        work.commit().await?;
    }

    let peak = AtomicU64::new(before);
    let sample = || -> anyhow::Result<()> {
        peak.fetch_max(server.rss_kib()?, Ordering::Relaxed);
        Ok(())
    };
    poll_until(
        Duration::from_secs(120),
        "the reading subscriber to get every event",
        || async {
            sample()?;
            Ok(counted.load(Ordering::Relaxed) == EVENTS / READER_EVERY)
        },
    )
    .await?;
    poll_until(
        Duration::from_secs(60),
        "the server to close the client that stopped reading",
        || async {
            sample()?;
            Ok(server.metric("interlink_websocket_connections").await? == Some(1.0))
        },
    )
    .await?;
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("slow websocket: server RSS {before} KiB before, {peak} KiB at most while 100,000 events passed");
    assert!(
        peak.saturating_sub(before) < RSS_GROWTH_LIMIT_KIB,
        "server RSS grew from {before} KiB to {peak} KiB"
    );

    // What the slow client finds once it reads again: what fitted in the buffers, then the end
    // (a close frame with 1013 when one could still be sent; a reset or a bare end otherwise).
    let mut slow_events = 0usize;
    let mut close = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), slow.next()).await? {
            Some(Ok(Message::Text(_))) => slow_events += 1,
            Some(Ok(Message::Close(frame))) => {
                close = frame.map(|f| u16::from(f.code));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        slow_events < EVENTS,
        "the slow client was cut off, not served"
    );
    if let Some(code) = close {
        assert_eq!(code, 1013);
    }
    reading.abort();
    Ok(())
}

/// A PostgreSQL server of this test's own (so it can be stopped), on a free loopback port, run
/// as the `postgres` user; stopped at once on drop.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn binaries() -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists() && bin.join("initdb").exists())
            .collect();
        found.sort();
        found.pop()
    }

    fn as_postgres(&self, tool: &str) -> std::process::Command {
        let mut command = std::process::Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(bin: PathBuf) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let server = Self { bin, dir, port };
        let chown = std::process::Command::new("chown")
            .arg("postgres:")
            .arg(server.dir.path())
            .status()?;
        anyhow::ensure!(chown.success(), "chown of the PostgreSQL directory failed");
        let status = server
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(server.data())
            .status()?;
        anyhow::ensure!(status.success(), "initdb failed");
        Ok(server)
    }

    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -h 127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let status = self
            .as_postgres("pg_ctl")
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data())
            .arg("start")
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctl start failed");
        Ok(())
    }

    fn stop(&self) -> anyhow::Result<()> {
        let status = self
            .as_postgres("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctl stop failed");
        Ok(())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Already stopped is fine; anything else must not outlive the test.
        let _ = self.stop();
    }
}

/// What one client saw while writing through the outage.
#[derive(Default)]
struct Tally {
    ok: usize,
    unavailable: usize,
    other: Vec<String>,
}

const CREATE_TASK: &str = "mutation($i: CreateTaskInput!) { createTask(input: $i) { id } }";
const ADD_COMMENT: &str =
    "mutation($t: ID!, $b: String!) { addTaskComment(taskId: $t, body: $b) { id } }";

/// PostgreSQL stopped at once under a write load and started again: requests meanwhile get
/// 503 (never a 500, never a hang past the request deadline), the pool recovers by itself, no
/// half-done change is left (every task has its `created` activity, written in the same unit
/// of work), and jobs enqueued before and after the outage all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load() -> anyhow::Result<()> {
    let Some(bin) = PrivatePostgres::binaries() else {
        anyhow::ensure!(
            !services_required(),
            "INTERLINK_REQUIRE_SERVICES=1 but no PostgreSQL binaries in /usr/lib/postgresql"
        );
        eprintln!("skipped: no PostgreSQL binaries in /usr/lib/postgresql/*/bin");
        return Ok(());
    };
    let pg = PrivatePostgres::init(bin)?;
    pg.start()?;
    let Some(mut deployment) = Deployment::new(Backend::Sqlite, &[]).await? else {
        anyhow::bail!("SQLite deployments always exist");
    };
    deployment.vars.extend(
        [
            ("DATABASE_URL", pg.url()),
            ("INTERLINK_SCHEDULER", "true".into()),
            ("INTERLINK_JOB_POLL_MS", "100".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let app = deployment.node().await?;
    let request_timeout = app.state.config.limits.request_timeout;
    let c = Arc::new(Company::new(app).await?);
    let receiver = Receiver::start(false, Duration::ZERO).await?;
    let enqueue = |n: i64| {
        let (c, url) = (c.clone(), receiver.url.clone());
        async move {
            c.app
                .gql_ok(
                    Some(&c.admin.access),
                    "mutation($i: EnqueueJobInput!) { enqueueJob(input: $i) { id } }",
                    json!({ "i": { "kind": "webhook.deliver", "args": { "url": url, "payload": { "n": n } } } }),
                )
                .await
        }
    };
    for n in 0..5 {
        enqueue(n).await?;
    }

    // Writers: each creates a task and comments on it, over and over, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(request_timeout + Duration::from_secs(5))
        .build()?;
    let mut writers = Vec::new();
    for w in 0..4 {
        let (c, stop, http) = (c.clone(), stop.clone(), http.clone());
        writers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let post = |query: &'static str, variables: Value| {
                let (c, http) = (c.clone(), http.clone());
                async move {
                    let response = http
                        .post(c.app.url("/graphql"))
                        .bearer_auth(&c.initiator.access)
                        .json(&json!({ "query": query, "variables": variables }))
                        .send()
                        .await?;
                    let status = response.status();
                    let body: Value = response.json().await?;
                    anyhow::Ok((status, body))
                }
            };
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let input = json!({ "i": {
                    "categoryId": c.category,
                    "title": format!("writer {w} task {i}"),
                    "keyPoints": "Bring the contract",
                    "executorIds": [c.executor.user_id],
                    "confirmerId": c.confirmer.user_id,
                    "meritPoints": 1,
                } });
                let task = match post(CREATE_TASK, input).await {
                    Ok((StatusCode::OK, body)) if body["errors"].is_null() => {
                        tally.ok += 1;
                        body["data"]["createTask"]["id"].as_str().map(str::to_owned)
                    }
                    Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => {
                        tally.unavailable += 1;
                        None
                    }
                    Ok((status, body)) => {
                        tally.other.push(format!("{status}: {body}"));
                        None
                    }
                    Err(err) => {
                        tally.other.push(format!("{err:#}"));
                        None
                    }
                };
                if let Some(task) = task {
                    let comment = json!({ "t": task, "b": format!("comment {i}") });
                    match post(ADD_COMMENT, comment).await {
                        Ok((StatusCode::OK, body)) if body["errors"].is_null() => tally.ok += 1,
                        Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => tally.unavailable += 1,
                        Ok((status, body)) => tally.other.push(format!("{status}: {body}")),
                        Err(err) => tally.other.push(format!("{err:#}")),
                    }
                }
            }
            tally
        }));
    }
    let tasks = |c: Arc<Company>| async move {
        let row = c
            .app
            .state
            .db
            .conn
            .query_one(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) AS n FROM tasks",
            ))
            .await?;
        anyhow::Ok(
            row.map(|r| r.try_get::<i64>("", "n"))
                .transpose()?
                .unwrap_or(0),
        )
    };
    let before = tasks(c.clone()).await?;
    poll_until(Duration::from_secs(60), "writes under way", || {
        let c = c.clone();
        async move { Ok(tasks(c).await? >= before + 8) }
    })
    .await?;

    pg.stop()?;
    // During the outage: a request made now is refused with 503, however it fails inside.
    let probe = || async {
        let response = http
            .post(c.app.url("/graphql"))
            .bearer_auth(&c.initiator.access)
            .json(&json!({ "query": "{ tasks(first: 1) { totalCount } }" }))
            .send()
            .await?;
        anyhow::Ok(response.status())
    };
    for _ in 0..2 {
        assert_eq!(probe().await?, StatusCode::SERVICE_UNAVAILABLE);
    }
    let outage_started = Instant::now();
    pg.start()?;
    poll_until(Duration::from_secs(60), "the pool to recover", || async {
        Ok(probe().await? == StatusCode::OK)
    })
    .await?;
    let recovered_after = outage_started.elapsed();
    let written = tasks(c.clone()).await?;
    poll_until(Duration::from_secs(60), "writes after the outage", || {
        let c = c.clone();
        async move { Ok(tasks(c).await? >= written + 8) }
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for writer in writers {
        let tally = writer.await?;
        total.ok += tally.ok;
        total.unavailable += tally.unavailable;
        total.other.extend(tally.other);
    }
    assert!(
        total.other.is_empty(),
        "only 200 or 503 (ok {}, unavailable {}): {:?}",
        total.ok,
        total.unavailable,
        total.other
    );

    // Every task that exists has the activity its unit of work wrote with it.
    let orphans = c
        .app
        .state
        .db
        .conn
        .query_one(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) AS n FROM tasks t WHERE NOT EXISTS \
             (SELECT 1 FROM task_activity a WHERE a.task_id = t.id AND a.action = 'created')",
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?;
    assert_eq!(orphans, Some(0), "tasks without their activity");

    // Queued work drains: the jobs from before the outage and some from after it.
    for n in 5..10 {
        enqueue(n).await?;
    }
    poll_until(
        Duration::from_secs(60),
        "every webhook delivered",
        || async {
            let delivered: HashSet<i64> = receiver
                .seen
                .lock()
                .iter()
                .filter_map(|(_, body)| body["n"].as_i64())
                .collect();
            Ok(delivered.len() == 10)
        },
    )
    .await?;
    eprintln!(
        "postgres restart: {} ok, {} answered 503, recovered {recovered_after:?} after restart began",
        total.ok, total.unavailable
    );
    drop(c);
    drop(pg);
    Ok(())
}
