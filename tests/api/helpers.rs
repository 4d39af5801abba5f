//! Test harness: the production router on a random port, a fresh database per test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};
use interlink::app::{build_router, AppState};
use interlink::config::{Config, Sources};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

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

/// A fresh PostgreSQL database for one test, or `None` to skip when none is configured.
pub async fn fresh_postgres_url() -> anyhow::Result<Option<String>> {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        if services_required() {
            bail!("INTERLINK_REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set");
        }
        return Ok(None);
    };
    let name = format!("interlink_test_{}", Uuid::now_v7().simple());
    let mut admin = sqlx::PgPool::connect(&base)
        .await
        .context("connecting to TEST_DATABASE_URL")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    admin = sqlx::PgPool::connect(&with_database(&base, &name)).await?;
    admin.close().await;
    Ok(Some(with_database(&base, &name)))
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
            let _ = axum::serve(listener, router).await;
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
