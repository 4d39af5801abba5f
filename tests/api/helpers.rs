//! Test harness: the production router on a random port, a fresh database per test.
//!
//! Migrating a database costs more than most tests, so each test process migrates one template
//! once per backend (PostgreSQL: a template database; SQLite: a file's bytes) and every test
//! database starts as a copy of it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use interlink::app::AppState;
use interlink::config::{Config, Sources};
use interlink::http::build_router;
use interlink::platform::db::Db;
use parking_lot::Mutex;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// `.ci/run` drops every database named like this before a run; so does `sweep_stale_databases`
/// for the databases of test processes that are gone.
const DATABASE_PREFIX: &str = "interlink_test_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: SQLite in the data directory, the in-process bus.
    Sqlite,
    /// PostgreSQL from `TEST_DATABASE_URL`, with Redis from `TEST_REDIS_URL` when set.
    Postgres,
}

fn services_required() -> bool {
    std::env::var("INTERLINK_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Polls `check` until it holds, failing with `what` once `limit` has passed: a wait for a
/// condition, where a fixed sleep would be either too short on a slow machine or wasted time.
pub async fn poll_until<F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fresh PostgreSQL database for one test (a copy of the migrated template), or `None` to
/// skip when none is configured.
pub async fn fresh_postgres_url() -> anyhow::Result<Option<String>> {
    let Some(server) = postgres_server()? else {
        return Ok(None);
    };
    let template = postgres_template(&server).await?;
    create_postgres_database(server, Some(template))
        .await
        .map(Some)
}

/// An empty PostgreSQL database, for the tests of migrating from nothing.
pub async fn empty_postgres_url() -> anyhow::Result<Option<String>> {
    let Some(server) = postgres_server()? else {
        return Ok(None);
    };
    create_postgres_database(server, None).await.map(Some)
}

fn postgres_server() -> anyhow::Result<Option<String>> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server) => Ok(Some(server)),
        Err(_) if services_required() => {
            bail!("INTERLINK_REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set")
        }
        Err(_) => Ok(None),
    }
}

async fn create_postgres_database(
    server: String,
    template: Option<&str>,
) -> anyhow::Result<String> {
    let name = format!(
        "{DATABASE_PREFIX}{}_{}",
        std::process::id(),
        Uuid::now_v7().simple()
    );
    let mut admin = PgConnection::connect(&server)
        .await
        .context("connecting to TEST_DATABASE_URL")?;
    let create = match template {
        Some(template) => format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#),
        None => format!(r#"CREATE DATABASE "{name}""#),
    };
    sqlx::query(&create)
        .execute(&mut admin)
        .await
        .with_context(|| create.clone())?;
    admin.close().await?;
    let url = with_database(&server, &name);
    let held = Arc::new(TestDatabase { server, name });
    let mut databases = DATABASES.lock();
    let replaced = databases.pending.insert(url.clone(), held);
    // Dropping a `TestDatabase` takes this lock: never while it is held.
    drop(databases);
    drop(replaced);
    Ok(url)
}

/// The template every PostgreSQL test database is copied from, migrated once per process. A
/// failure is kept too: every test then fails at once with it instead of migrating again.
async fn postgres_template(server: &str) -> anyhow::Result<&'static str> {
    static TEMPLATE: OnceCell<Result<String, String>> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            make_postgres_template(server)
                .await
                .map_err(|e| format!("{e:#}"))
        })
        .await
        .as_deref()
        .map_err(|e| anyhow::anyhow!("making the PostgreSQL template database: {e}"))
}

async fn make_postgres_template(server: &str) -> anyhow::Result<String> {
    sweep_stale_databases(server).await;
    let name = format!(
        "{DATABASE_PREFIX}tpl_{}_{:016x}",
        std::process::id(),
        rand::random::<u64>()
    );
    let mut admin = PgConnection::connect(server)
        .await
        .context("connecting to TEST_DATABASE_URL")?;
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await?;
    let db = Db::connect(Some(&with_database(server, &name)), Path::new(""), 2).await?;
    db.migrate().await?;
    // CREATE DATABASE .. TEMPLATE refuses while anyone is connected to the template: close the
    // pool, and keep connections out for the rest of the run.
    if let Some(pool) = db.postgres_pool() {
        pool.close().await;
    }
    drop(db);
    sqlx::query(&format!(
        r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false"#
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(name)
}

/// Test databases (and templates) of processes that ended without dropping them: a template
/// lives until its process exits, and nothing runs at exit. Only databases named with a pid that
/// no longer runs here and with nobody connected are dropped, so concurrent runs are safe.
async fn sweep_stale_databases(server: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let sweep = async {
        let mut admin = PgConnection::connect(server).await?;
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT datname::text FROM pg_database d WHERE starts_with(datname, $1) \
             AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
        )
        .bind(DATABASE_PREFIX)
        .fetch_all(&mut admin)
        .await?;
        for (name,) in names {
            let rest = &name[DATABASE_PREFIX.len()..];
            let rest = rest.strip_prefix("tpl_").unwrap_or(rest);
            let Some(Ok(pid)) = rest.split_once('_').map(|(pid, _)| pid.parse::<u32>()) else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            // Without FORCE: a database someone has just connected to stays.
            let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}""#))
                .execute(&mut admin)
                .await;
        }
        admin.close().await?;
        anyhow::Ok(())
    };
    if let Err(e) = sweep.await {
        eprintln!("warning: sweeping stale test databases: {e:#}");
    }
}

/// A test's PostgreSQL database, dropped when the last node using it is.
struct TestDatabase {
    server: String,
    name: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        DATABASES
            .lock()
            .live
            .retain(|_, held| held.strong_count() > 0);
        if std::env::var("INTERLINK_KEEP_TEST_DATABASES").is_ok_and(|v| v == "1") {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop has no async, and the test's runtime may be shutting down: a thread of its own
        // with its own runtime, joined so the database is gone when the test ends.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    let mut admin = PgConnection::connect(&server).await?;
                    // FORCE: the node's pool and its background loops may still be connected.
                    sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await?;
                    anyhow::Ok(())
                })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: dropping test database {}: {e:#}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Who holds each test database: the deployment's until its first node starts, then its nodes'.
/// `Deployment` is a plain struct of settings (tests build it from `vars`), so the database's
/// lifetime follows the nodes: a database is dropped once no node of its deployment is left.
#[derive(Default)]
struct Databases {
    pending: HashMap<String, Arc<TestDatabase>>,
    live: HashMap<String, Weak<TestDatabase>>,
}

static DATABASES: std::sync::LazyLock<Mutex<Databases>> =
    std::sync::LazyLock::new(|| Mutex::new(Databases::default()));

fn lease_database(url: &str) -> Option<Arc<TestDatabase>> {
    let mut databases = DATABASES.lock();
    if let Some(held) = databases.pending.remove(url) {
        databases.live.insert(url.to_owned(), Arc::downgrade(&held));
        return Some(held);
    }
    databases.live.get(url).and_then(Weak::upgrade)
}

/// A migrated SQLite database file, made once per process; each node's data directory starts
/// with a copy.
async fn sqlite_template() -> anyhow::Result<&'static [u8]> {
    static TEMPLATE: OnceCell<Result<Vec<u8>, String>> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async { make_sqlite_template().await.map_err(|e| format!("{e:#}")) })
        .await
        .as_deref()
        .map_err(|e| anyhow::anyhow!("making the SQLite template database: {e}"))
}

async fn make_sqlite_template() -> anyhow::Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let db = Db::connect(None, dir.path(), 1).await?;
    db.migrate().await?;
    // Everything into the main file (no -wal beside it), so that its bytes are the database.
    db.conn
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await?;
    db.conn
        .execute_unprepared("PRAGMA journal_mode = DELETE")
        .await?;
    db.conn.close().await?;
    Ok(std::fs::read(dir.path().join("interlink.db"))?)
}

fn with_database(url: &str, name: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = before_query.find("://").map_or(0, |i| i + 3);
    let base = match before_query[scheme_end..].find('/') {
        Some(slash) => &before_query[..scheme_end + slash],
        None => before_query,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub fn redis_url() -> anyhow::Result<Option<String>> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) => Ok(Some(url)),
        Err(_) if services_required() => {
            bail!("INTERLINK_REQUIRE_SERVICES=1 but TEST_REDIS_URL is not set")
        }
        Err(_) => Ok(None),
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    /// Kept alive for the node's lifetime; dropped (deleted) with it.
    _data_dir: tempfile::TempDir,
    server: JoinHandle<()>,
    /// The node's scheduler loops, when `INTERLINK_SCHEDULER` is on for the deployment.
    _jobs: Option<interlink::platform::scheduler::SchedulerHandle>,
    /// Last, so that the database goes after the node that used it.
    _database: Option<Arc<TestDatabase>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The settings of one deployment; several nodes built from one `Deployment` share it.
#[derive(Clone)]
pub struct Deployment {
    pub vars: HashMap<String, String>,
}

impl Deployment {
    /// `None` when the backend's services are not configured (and not required).
    pub async fn new(backend: Backend, extra: &[(&str, &str)]) -> anyhow::Result<Option<Self>> {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("INTERLINK_ADMIN_EMAIL".into(), ADMIN_EMAIL.into()),
            ("INTERLINK_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("INTERLINK_JWT_SECRET".into(), JWT_SECRET.into()),
            // Tests that exercise jobs switch the scheduler on; others stay free of background work.
            ("INTERLINK_SCHEDULER".into(), "false".into()),
            // Tests that seed or change rows behind the API's back would read cached answers;
            // the cache has its own tests.
            ("INTERLINK_RESPONSE_CACHE".into(), "false".into()),
            // The receivers tests deliver to listen on loopback, and `partner.internal` stands
            // for a partner's endpoint (allowed by name, so never resolved when saved). A test
            // of the default (public addresses only) sets it back to empty.
            (
                "INTERLINK_OUTBOUND_ALLOW".into(),
                "127.0.0.1, partner.internal".into(),
            ),
        ]);
        if backend == Backend::Postgres {
            let Some(url) = fresh_postgres_url().await? else {
                return Ok(None);
            };
            vars.insert("DATABASE_URL".into(), url);
            if let Some(redis) = redis_url()? {
                vars.insert("REDIS_URL".into(), redis);
                vars.insert(
                    "INTERLINK_REDIS_PREFIX".into(),
                    format!("test-{}", Uuid::now_v7().simple()),
                );
            }
        }
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        Ok(Some(Self { vars }))
    }

    pub async fn node(&self) -> anyhow::Result<TestApp> {
        let data_dir = tempfile::tempdir()?;
        let mut vars = self.vars.clone();
        let database = match vars.get("DATABASE_URL") {
            Some(url) => lease_database(url),
            None => {
                // A data directory the test chose may hold its own database already.
                if !vars.contains_key("INTERLINK_DATA_DIR") {
                    std::fs::write(
                        data_dir.path().join("interlink.db"),
                        sqlite_template().await?,
                    )?;
                }
                None
            }
        };
        vars.entry("INTERLINK_DATA_DIR".into())
            .or_insert_with(|| data_dir.path().to_string_lossy().into_owned());
        let config = Config::from_sources(Sources {
            vars: &vars,
            file: None,
        })?;
        let startup = AppState::initialize(config).await?;
        let router = build_router(startup.state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        let jobs = if startup.state.config.jobs.enabled {
            Some(startup.state.scheduler.start().await?)
        } else {
            None
        };
        Ok(TestApp {
            addr,
            state: startup.state,
            http: reqwest::Client::new(),
            _data_dir: data_dir,
            server,
            _jobs: jobs,
            _database: database,
        })
    }
}

impl TestApp {
    pub async fn spawn_with(
        backend: Backend,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Option<Self>> {
        match Deployment::new(backend, extra).await? {
            Some(deployment) => Ok(Some(deployment.node().await?)),
            None => Ok(None),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// POSTs an operation as `application/json`, returning the parsed body whatever the status.
    pub async fn gql(
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
        Ok(request.send().await?.json().await?)
    }

    /// Like `gql`, but fails unless the response has data and no errors.
    pub async fn gql_ok(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let body = self.gql(token, query, variables).await?;
        if body.get("errors").is_some() {
            bail!("unexpected errors: {body}");
        }
        Ok(body["data"].clone())
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Session> {
        let data = self
            .gql_ok(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id } } }",
                json!({ "e": email, "p": password }),
            )
            .await?;
        Ok(Session {
            access: str_at(&data, "/login/accessToken")?,
            refresh: str_at(&data, "/login/refreshToken")?,
            user_id: str_at(&data, "/login/user/id")?,
        })
    }

    pub async fn admin(&self) -> anyhow::Result<Session> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user through the API as `admin_token`; returns the id.
    pub async fn create_user(
        &self,
        admin_token: &str,
        email: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let data = self
            .gql_ok(
                Some(admin_token),
                "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }",
                json!({ "i": { "email": email, "name": email, "password": password } }),
            )
            .await?;
        str_at(&data, "/createUser/id")
    }
}

pub struct Session {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

pub fn str_at(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no string at {pointer} in {value}"))
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(body: &Value) -> Option<&str> {
    body.pointer("/errors/0/extensions/code")
        .and_then(Value::as_str)
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", Uuid::now_v7().simple())
}

pub fn repo_file(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs `$test(Backend)` once on SQLite and once on PostgreSQL (skipped, or failed when
/// services are required, if PostgreSQL is not configured).
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() -> anyhow::Result<()> {
                    super::$test($crate::helpers::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() -> anyhow::Result<()> {
                    super::$test($crate::helpers::Backend::Postgres).await
                }
            }
        )+
    };
}

/// Spawns an app or returns early (a skip) when its backend is not configured.
#[macro_export]
macro_rules! spawn_or_skip {
    ($backend:expr) => {
        spawn_or_skip!($backend, &[])
    };
    ($backend:expr, $extra:expr) => {
        match $crate::helpers::TestApp::spawn_with($backend, $extra).await? {
            Some(app) => app,
            None => return Ok(()),
        }
    };
}

/// A loopback port nobody listens on right now, for a child process that binds it itself.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The real binary serving as a node of its own, for tests that kill a node (SIGKILL: nothing
/// of it runs after) or measure its memory apart from the test process. Killed on drop. Its
/// stderr is kept, so a test can look for panics in what it logged.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub child: tokio::process::Child,
    pub stderr: Arc<Mutex<Stderr>>,
    _data_dir: tempfile::TempDir,
}

/// What a node process wrote to stderr: every line that reports a panic, and the latest others.
#[derive(Default)]
pub struct Stderr {
    pub panics: Vec<String>,
    pub recent: std::collections::VecDeque<String>,
}

impl ServerProcess {
    /// `interlink serve` with exactly the deployment's settings plus `extra`; returns once it
    /// answers `/healthz`.
    pub async fn start(deployment: &Deployment, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let data_dir = tempfile::tempdir()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_interlink"));
        command
            .arg("serve")
            .env_clear()
            .envs(&deployment.vars)
            .env("INTERLINK_BIND", addr.to_string())
            .env("INTERLINK_DATA_DIR", data_dir.path())
            .env("RUST_LOG", "warn")
            .envs(extra.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stderr: Arc<Mutex<Stderr>> = Arc::default();
        if let Some(pipe) = child.stderr.take() {
            let kept = stderr.clone();
            // Drained to the end, or a chatty child would block on a full pipe.
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut kept = kept.lock();
                    if line.contains("panicked") {
                        kept.panics.push(line);
                    } else {
                        if kept.recent.len() == 200 {
                            kept.recent.pop_front();
                        }
                        kept.recent.push_back(line);
                    }
                }
            });
        }
        let mut server = Self {
            addr,
            child,
            stderr,
            _data_dir: data_dir,
        };
        let http = reqwest::Client::new();
        let healthz = format!("http://{addr}/healthz");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the node exited with {status}: {:?}",
                    server.stderr.lock().recent
                );
            }
            let up = http
                .get(&healthz)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the node at {addr} never served");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the node has exited")
    }

    /// Resident memory of the node process, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")
    }

    /// SIGKILL: no shutdown code runs, leases and connections are left as a crash leaves them.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}
