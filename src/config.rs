//! Typed settings, read once at start from `INTERLINK_*` variables and an optional TOML file.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::platform::outbound::OutboundPolicy;

/// A value that must never reach a log: its `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
    EdDSA,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub env: Environment,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub db_max_connections: u32,
    pub redis_url: Option<Secret>,
    /// Prefixes every Redis key and channel, so several installations can share one Redis.
    pub redis_prefix: String,
    pub auto_migrate: bool,
    pub jwt: JwtConfig,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub limits: Limits,
    pub log_format: LogFormat,
    /// ISO 4217 code of the installation's base currency; every amount is in it.
    pub currency: String,
    /// Attachments go to this S3 bucket when set, else to `<data_dir>/files`.
    pub s3_bucket: Option<String>,
    pub s3_endpoint: Option<String>,
    pub jobs: JobsConfig,
    /// Whole query responses are cached, keyed by a data version every change bumps.
    pub response_cache: bool,
    /// Signed-in viewers are cached, keyed by an identity epoch every identity change bumps.
    pub viewer_cache: bool,
    /// Peers whose `X-Forwarded-For` is believed (load balancers, reverse proxies); for anyone
    /// else the peer address is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `INTERLINK_CORS_ORIGINS`: browser origins (`https://app.example.com`) allowed to call the
    /// API from another site. Empty (the default): no cross-origin access.
    pub cors_origins: Vec<String>,
    /// `INTERLINK_SECURE_COOKIES`: mark the console's cookies `Secure`, for a hub served over
    /// TLS by a proxy that does not send `X-Forwarded-Proto: https`. Off by default, since the
    /// embedded default is plain HTTP on loopback.
    pub secure_cookies: bool,
    /// `INTERLINK_OUTBOUND_ALLOW`: hosts and networks outgoing requests may reach although they
    /// are private (loopback, RFC 1918, link-local...). Empty: public addresses only.
    pub outbound_allow: OutboundPolicy,
    pub webhooks: WebhooksConfig,
    pub exports: ExportsConfig,
    /// Where BI tools connect for the SQL door; `None` takes it from `DATABASE_URL`.
    pub bi: BiConfig,
}

/// CSV exports (`GET /export/{report}.csv`): when they go to the background, and their bounds.
#[derive(Clone, Debug)]
pub struct ExportsConfig {
    /// More rows than this run as a background job (`INTERLINK_EXPORT_MAX_SYNC_ROWS`).
    pub max_sync_rows: u64,
    /// A streamed export (on the wire, or into a file) that runs longer is cut off
    /// (`INTERLINK_EXPORT_TIMEOUT_SECS`).
    pub timeout: Duration,
    /// Exports streaming at once on this node; more are answered 503
    /// (`INTERLINK_EXPORT_MAX_CONCURRENT`).
    pub max_concurrent: usize,
    /// How long a background export's file may be downloaded (`INTERLINK_EXPORT_FILE_TTL_HOURS`).
    pub file_ttl: Duration,
}

/// The address `createBiAccess` hands out: the database server as BI tools reach it, which may
/// differ from how this node reaches it (a proxy, a read replica's address, a public name).
#[derive(Clone, Debug, Default)]
pub struct BiConfig {
    /// `INTERLINK_BI_HOST`
    pub host: Option<String>,
    /// `INTERLINK_BI_PORT`
    pub port: Option<u16>,
}

/// How webhooks are retried, rotated and given up on.
#[derive(Clone, Debug)]
pub struct WebhooksConfig {
    /// The delays before each attempt of a delivery (`INTERLINK_WEBHOOK_RETRY_SCHEDULE`).
    pub retry_schedule: crate::domains::integrations::model::webhooks::RetrySchedule,
    /// How long a rotated-out secret still signs (`INTERLINK_WEBHOOK_SECRET_OVERLAP_SECS`).
    pub secret_overlap: Duration,
    /// An endpoint failing this long without a success is disabled
    /// (`INTERLINK_WEBHOOK_DISABLE_AFTER_SECS`).
    pub disable_after: Duration,
}

/// The scheduler on this node, and the timing of the built-in jobs.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// Whether this node runs jobs (it can always enqueue them).
    pub enabled: bool,
    /// Stable across restarts if set; otherwise unique per process.
    pub node_id: Option<String>,
    pub node_tags: Vec<String>,
    pub capacity: usize,
    pub prefetch: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub cron_tick: Duration,
    pub retention: Duration,
    /// How long the event log keeps entries; subscribers can resume within it.
    pub event_retention: Duration,
    /// When the built-in scans (reminders, overdue, SLA, recurring tasks) run: a cron expression.
    pub scan_cron: String,
    /// How long before a deadline executors are reminded.
    pub reminder_lead: Duration,
}

#[derive(Clone, Debug)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    pub secret: Option<Secret>,
    pub private_key_file: Option<PathBuf>,
    pub public_key_file: Option<PathBuf>,
    pub key_id: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub max_batch: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_recursive_depth: usize,
    pub max_directives: usize,
    /// Directives anywhere in one document: operations, variables, fragments, spreads, fields.
    pub max_document_directives: usize,
    /// Fields nested inside one `__schema`/`__type` subtree, which `max_depth` does not count.
    pub max_introspection_depth: usize,
    /// Lexical tokens in one document, counted before it is parsed.
    pub max_tokens: usize,
    pub ws_max_subscriptions: usize,
    pub ws_init_timeout: Duration,
    pub login_failures_per_window: i64,
    pub login_failure_window: Duration,
    /// Largest attachment accepted; multipart requests may be this large (plus their form).
    pub max_upload_bytes: usize,
    /// GraphQL operations per second per client (user, or address when anonymous); 0 is off.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Sign-in attempts per client (address), whatever the account, refilled over the window.
    pub login_attempts_per_client: u32,
    pub login_attempt_window: Duration,
    /// Wrong current passwords per user in `changePassword`, per `login_failure_window`.
    pub password_change_failures_per_window: i64,
    /// How long one websocket send may wait for a client that stopped reading.
    pub ws_send_timeout: Duration,
    pub ws_max_connections: usize,
    pub ws_max_connections_per_user: usize,
    /// HTTP requests (websockets aside) running at once; the rest wait up to `queue_timeout`.
    pub max_concurrent_requests: usize,
    pub queue_timeout: Duration,
}

/// The TOML file: every key optional, named like the variable without `INTERLINK_`, lower-cased.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    env: Option<Environment>,
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<Secret>,
    db_max_connections: Option<u32>,
    redis_url: Option<Secret>,
    redis_prefix: Option<String>,
    auto_migrate: Option<bool>,
    jwt_algorithm: Option<JwtAlgorithm>,
    jwt_secret: Option<Secret>,
    jwt_private_key_file: Option<PathBuf>,
    jwt_public_key_file: Option<PathBuf>,
    jwt_key_id: Option<String>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    admin_email: Option<String>,
    admin_password: Option<Secret>,
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    max_batch: Option<usize>,
    max_depth: Option<usize>,
    max_complexity: Option<usize>,
    max_recursive_depth: Option<usize>,
    max_directives: Option<usize>,
    max_document_directives: Option<usize>,
    max_introspection_depth: Option<usize>,
    max_tokens: Option<usize>,
    ws_max_subscriptions: Option<usize>,
    ws_init_timeout_ms: Option<u64>,
    login_failures_per_window: Option<i64>,
    login_failure_window_secs: Option<u64>,
    login_attempts_per_client: Option<u32>,
    login_attempt_window_secs: Option<u64>,
    password_change_failures_per_window: Option<i64>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
    trusted_proxies: Option<String>,
    cors_origins: Option<String>,
    secure_cookies: Option<bool>,
    outbound_allow: Option<String>,
    log_format: Option<LogFormat>,
    currency: Option<String>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    max_upload_bytes: Option<usize>,
    ws_send_timeout_ms: Option<u64>,
    ws_max_connections: Option<usize>,
    ws_max_connections_per_user: Option<usize>,
    max_concurrent_requests: Option<usize>,
    queue_timeout_ms: Option<u64>,
    scheduler: Option<bool>,
    response_cache: Option<bool>,
    viewer_cache: Option<bool>,
    node_id: Option<String>,
    node_tags: Option<String>,
    node_capacity: Option<usize>,
    job_prefetch: Option<usize>,
    job_lease_ms: Option<u64>,
    job_poll_ms: Option<u64>,
    cron_tick_ms: Option<u64>,
    job_retention_hours: Option<u64>,
    event_retention_days: Option<u64>,
    scan_cron: Option<String>,
    deadline_reminder_minutes: Option<u64>,
    webhook_retry_schedule: Option<String>,
    webhook_secret_overlap_secs: Option<u64>,
    webhook_disable_after_secs: Option<u64>,
    export_max_sync_rows: Option<u64>,
    export_timeout_secs: Option<u64>,
    export_max_concurrent: Option<usize>,
    export_file_ttl_hours: Option<u64>,
    bi_host: Option<String>,
    bi_port: Option<u16>,
}

/// Where the settings come from: variables win over the file, the file over defaults.
pub struct Sources<'a> {
    pub vars: &'a HashMap<String, String>,
    pub file: Option<&'a Path>,
}

impl Config {
    /// Reads the process environment; `INTERLINK_CONFIG` or `file` names the TOML file.
    pub fn from_env(file: Option<&Path>) -> anyhow::Result<Self> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let from_var = vars.get("INTERLINK_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_path_buf).or(from_var);
        Self::from_sources(Sources {
            vars: &vars,
            file: file.as_deref(),
        })
    }

    pub fn from_sources(sources: Sources<'_>) -> anyhow::Result<Self> {
        let file: FileSettings = match sources.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let var = |name: &str| {
            sources
                .vars
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        fn parsed<T: std::str::FromStr>(
            name: &str,
            raw: Option<String>,
        ) -> anyhow::Result<Option<T>>
        where
            T::Err: fmt::Display,
        {
            raw.map(|v| {
                v.parse::<T>()
                    .map_err(|e| anyhow::anyhow!("{name}: cannot parse {v:?}: {e}"))
            })
            .transpose()
        }

        let env = match var("INTERLINK_ENV").as_deref() {
            Some("production") | Some("prod") => Environment::Production,
            Some("development") | Some("dev") => Environment::Development,
            Some(other) => bail!("INTERLINK_ENV must be development or production, not {other:?}"),
            None => file.env.unwrap_or(Environment::Development),
        };
        let algorithm = match var("INTERLINK_JWT_ALGORITHM").as_deref() {
            Some("HS256") => JwtAlgorithm::HS256,
            Some("RS256") => JwtAlgorithm::RS256,
            Some("EdDSA") => JwtAlgorithm::EdDSA,
            Some(other) => {
                bail!("INTERLINK_JWT_ALGORITHM must be HS256, RS256 or EdDSA, not {other:?}")
            }
            None => file.jwt_algorithm.unwrap_or(JwtAlgorithm::HS256),
        };
        let log_format = match var("INTERLINK_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => bail!("INTERLINK_LOG_FORMAT must be text or json, not {other:?}"),
            None => file.log_format.unwrap_or(LogFormat::Text),
        };

        let db_max_connections = parsed(
            "INTERLINK_DB_MAX_CONNECTIONS",
            var("INTERLINK_DB_MAX_CONNECTIONS"),
        )?
        .or(file.db_max_connections)
        .unwrap_or(16);
        let config = Config {
            env,
            bind: parsed("INTERLINK_BIND", var("INTERLINK_BIND"))?
                .or(file.bind)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: var("INTERLINK_DATA_DIR")
                .map(PathBuf::from)
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
            database_url: var("DATABASE_URL").map(Secret).or(file.database_url),
            db_max_connections,
            redis_url: var("REDIS_URL").map(Secret).or(file.redis_url),
            redis_prefix: var("INTERLINK_REDIS_PREFIX")
                .or(file.redis_prefix)
                .unwrap_or_else(|| "interlink".to_owned()),
            auto_migrate: parsed("INTERLINK_AUTO_MIGRATE", var("INTERLINK_AUTO_MIGRATE"))?
                .or(file.auto_migrate)
                .unwrap_or(true),
            jwt: JwtConfig {
                algorithm,
                secret: var("INTERLINK_JWT_SECRET").map(Secret).or(file.jwt_secret),
                private_key_file: var("INTERLINK_JWT_PRIVATE_KEY_FILE")
                    .map(PathBuf::from)
                    .or(file.jwt_private_key_file),
                public_key_file: var("INTERLINK_JWT_PUBLIC_KEY_FILE")
                    .map(PathBuf::from)
                    .or(file.jwt_public_key_file),
                key_id: var("INTERLINK_JWT_KEY_ID").or(file.jwt_key_id),
                issuer: var("INTERLINK_JWT_ISSUER")
                    .or(file.jwt_issuer)
                    .unwrap_or_else(|| "interlink".to_owned()),
                audience: var("INTERLINK_JWT_AUDIENCE")
                    .or(file.jwt_audience)
                    .unwrap_or_else(|| "interlink-api".to_owned()),
                access_ttl: Duration::from_secs(
                    parsed(
                        "INTERLINK_ACCESS_TOKEN_TTL_SECS",
                        var("INTERLINK_ACCESS_TOKEN_TTL_SECS"),
                    )?
                    .or(file.access_token_ttl_secs)
                    .unwrap_or(15 * 60),
                ),
                refresh_ttl: Duration::from_secs(
                    parsed(
                        "INTERLINK_REFRESH_TOKEN_TTL_SECS",
                        var("INTERLINK_REFRESH_TOKEN_TTL_SECS"),
                    )?
                    .or(file.refresh_token_ttl_secs)
                    .unwrap_or(30 * 24 * 3600),
                ),
            },
            admin_email: var("INTERLINK_ADMIN_EMAIL").or(file.admin_email),
            admin_password: var("INTERLINK_ADMIN_PASSWORD")
                .map(Secret)
                .or(file.admin_password),
            limits: Limits {
                max_body_bytes: parsed(
                    "INTERLINK_MAX_BODY_BYTES",
                    var("INTERLINK_MAX_BODY_BYTES"),
                )?
                .or(file.max_body_bytes)
                .unwrap_or(1024 * 1024),
                request_timeout: Duration::from_millis(
                    parsed(
                        "INTERLINK_REQUEST_TIMEOUT_MS",
                        var("INTERLINK_REQUEST_TIMEOUT_MS"),
                    )?
                    .or(file.request_timeout_ms)
                    .unwrap_or(30_000),
                ),
                max_batch: parsed("INTERLINK_MAX_BATCH", var("INTERLINK_MAX_BATCH"))?
                    .or(file.max_batch)
                    .unwrap_or(10),
                max_depth: parsed("INTERLINK_MAX_DEPTH", var("INTERLINK_MAX_DEPTH"))?
                    .or(file.max_depth)
                    .unwrap_or(12),
                max_complexity: parsed(
                    "INTERLINK_MAX_COMPLEXITY",
                    var("INTERLINK_MAX_COMPLEXITY"),
                )?
                .or(file.max_complexity)
                .unwrap_or(20_000),
                max_recursive_depth: parsed(
                    "INTERLINK_MAX_RECURSIVE_DEPTH",
                    var("INTERLINK_MAX_RECURSIVE_DEPTH"),
                )?
                .or(file.max_recursive_depth)
                .unwrap_or(32),
                max_directives: parsed(
                    "INTERLINK_MAX_DIRECTIVES",
                    var("INTERLINK_MAX_DIRECTIVES"),
                )?
                .or(file.max_directives)
                .unwrap_or(8),
                max_document_directives: parsed(
                    "INTERLINK_MAX_DOCUMENT_DIRECTIVES",
                    var("INTERLINK_MAX_DOCUMENT_DIRECTIVES"),
                )?
                .or(file.max_document_directives)
                .unwrap_or(50),
                // graphql-js's getIntrospectionQuery() nests 15 deep (its ofType chain).
                max_introspection_depth: parsed(
                    "INTERLINK_MAX_INTROSPECTION_DEPTH",
                    var("INTERLINK_MAX_INTROSPECTION_DEPTH"),
                )?
                .or(file.max_introspection_depth)
                .unwrap_or(20),
                max_tokens: parsed("INTERLINK_MAX_TOKENS", var("INTERLINK_MAX_TOKENS"))?
                    .or(file.max_tokens)
                    .unwrap_or(10_000),
                ws_max_subscriptions: parsed(
                    "INTERLINK_WS_MAX_SUBSCRIPTIONS",
                    var("INTERLINK_WS_MAX_SUBSCRIPTIONS"),
                )?
                .or(file.ws_max_subscriptions)
                .unwrap_or(32),
                ws_init_timeout: Duration::from_millis(
                    parsed(
                        "INTERLINK_WS_INIT_TIMEOUT_MS",
                        var("INTERLINK_WS_INIT_TIMEOUT_MS"),
                    )?
                    .or(file.ws_init_timeout_ms)
                    .unwrap_or(10_000),
                ),
                login_failures_per_window: parsed(
                    "INTERLINK_LOGIN_FAILURES_PER_WINDOW",
                    var("INTERLINK_LOGIN_FAILURES_PER_WINDOW"),
                )?
                .or(file.login_failures_per_window)
                .unwrap_or(10),
                max_upload_bytes: parsed(
                    "INTERLINK_MAX_UPLOAD_BYTES",
                    var("INTERLINK_MAX_UPLOAD_BYTES"),
                )?
                .or(file.max_upload_bytes)
                .unwrap_or(10 * 1024 * 1024),
                ws_send_timeout: Duration::from_millis(
                    parsed(
                        "INTERLINK_WS_SEND_TIMEOUT_MS",
                        var("INTERLINK_WS_SEND_TIMEOUT_MS"),
                    )?
                    .or(file.ws_send_timeout_ms)
                    .unwrap_or(5_000),
                ),
                ws_max_connections: parsed(
                    "INTERLINK_WS_MAX_CONNECTIONS",
                    var("INTERLINK_WS_MAX_CONNECTIONS"),
                )?
                .or(file.ws_max_connections)
                .unwrap_or(10_000),
                ws_max_connections_per_user: parsed(
                    "INTERLINK_WS_MAX_CONNECTIONS_PER_USER",
                    var("INTERLINK_WS_MAX_CONNECTIONS_PER_USER"),
                )?
                .or(file.ws_max_connections_per_user)
                .unwrap_or(16),
                // A request holds a pooled connection for only part of its life (parsing,
                // authentication, serialising, the gaps between its statements), so four per
                // connection keep the pool busy; more would only queue inside the pool, where
                // no one is told to come back later.
                max_concurrent_requests: parsed(
                    "INTERLINK_MAX_CONCURRENT_REQUESTS",
                    var("INTERLINK_MAX_CONCURRENT_REQUESTS"),
                )?
                .or(file.max_concurrent_requests)
                .unwrap_or(4 * db_max_connections.max(2) as usize),
                queue_timeout: Duration::from_millis(
                    parsed(
                        "INTERLINK_QUEUE_TIMEOUT_MS",
                        var("INTERLINK_QUEUE_TIMEOUT_MS"),
                    )?
                    .or(file.queue_timeout_ms)
                    .unwrap_or(250),
                ),
                login_failure_window: Duration::from_secs(
                    parsed(
                        "INTERLINK_LOGIN_FAILURE_WINDOW_SECS",
                        var("INTERLINK_LOGIN_FAILURE_WINDOW_SECS"),
                    )?
                    .or(file.login_failure_window_secs)
                    .unwrap_or(15 * 60),
                ),
                login_attempts_per_client: parsed(
                    "INTERLINK_LOGIN_ATTEMPTS_PER_CLIENT",
                    var("INTERLINK_LOGIN_ATTEMPTS_PER_CLIENT"),
                )?
                .or(file.login_attempts_per_client)
                .unwrap_or(30),
                login_attempt_window: Duration::from_secs(
                    parsed(
                        "INTERLINK_LOGIN_ATTEMPT_WINDOW_SECS",
                        var("INTERLINK_LOGIN_ATTEMPT_WINDOW_SECS"),
                    )?
                    .or(file.login_attempt_window_secs)
                    .unwrap_or(5 * 60),
                ),
                password_change_failures_per_window: parsed(
                    "INTERLINK_PASSWORD_CHANGE_FAILURES_PER_WINDOW",
                    var("INTERLINK_PASSWORD_CHANGE_FAILURES_PER_WINDOW"),
                )?
                .or(file.password_change_failures_per_window)
                .unwrap_or(5),
                rate_limit_per_second: parsed(
                    "INTERLINK_RATE_LIMIT_PER_SECOND",
                    var("INTERLINK_RATE_LIMIT_PER_SECOND"),
                )?
                .or(file.rate_limit_per_second)
                .unwrap_or(50),
                rate_limit_burst: parsed(
                    "INTERLINK_RATE_LIMIT_BURST",
                    var("INTERLINK_RATE_LIMIT_BURST"),
                )?
                .or(file.rate_limit_burst)
                .unwrap_or(500),
            },
            log_format,
            currency: var("INTERLINK_CURRENCY")
                .or(file.currency)
                .unwrap_or_else(|| "CNY".to_owned()),
            s3_bucket: var("INTERLINK_S3_BUCKET").or(file.s3_bucket),
            s3_endpoint: var("INTERLINK_S3_ENDPOINT").or(file.s3_endpoint),
            response_cache: parsed("INTERLINK_RESPONSE_CACHE", var("INTERLINK_RESPONSE_CACHE"))?
                .or(file.response_cache)
                .unwrap_or(false),
            viewer_cache: parsed("INTERLINK_VIEWER_CACHE", var("INTERLINK_VIEWER_CACHE"))?
                .or(file.viewer_cache)
                .unwrap_or(true),
            trusted_proxies: parse_trusted_proxies(
                var("INTERLINK_TRUSTED_PROXIES")
                    .or(file.trusted_proxies)
                    .as_deref()
                    .unwrap_or_default(),
            )?,
            secure_cookies: parsed("INTERLINK_SECURE_COOKIES", var("INTERLINK_SECURE_COOKIES"))?
                .or(file.secure_cookies)
                .unwrap_or(false),
            cors_origins: parse_cors_origins(
                var("INTERLINK_CORS_ORIGINS")
                    .or(file.cors_origins)
                    .as_deref()
                    .unwrap_or_default(),
            )?,
            outbound_allow: OutboundPolicy::parse(
                var("INTERLINK_OUTBOUND_ALLOW")
                    .or(file.outbound_allow)
                    .as_deref()
                    .unwrap_or_default(),
            )
            .map_err(anyhow::Error::msg)?,
            bi: BiConfig {
                host: var("INTERLINK_BI_HOST")
                    .or(file.bi_host)
                    .filter(|h| !h.trim().is_empty()),
                port: parsed("INTERLINK_BI_PORT", var("INTERLINK_BI_PORT"))?.or(file.bi_port),
            },
            webhooks: WebhooksConfig {
                retry_schedule:
                    crate::domains::integrations::model::webhooks::RetrySchedule::parse(
                        &var("INTERLINK_WEBHOOK_RETRY_SCHEDULE")
                            .or(file.webhook_retry_schedule)
                            .unwrap_or_else(|| {
                                crate::domains::integrations::model::webhooks::RetrySchedule::DEFAULT
                                    .to_owned()
                            }),
                    )
                    .map_err(|e| anyhow::anyhow!("INTERLINK_WEBHOOK_RETRY_SCHEDULE: {e}"))?,
                secret_overlap: Duration::from_secs(
                    parsed(
                        "INTERLINK_WEBHOOK_SECRET_OVERLAP_SECS",
                        var("INTERLINK_WEBHOOK_SECRET_OVERLAP_SECS"),
                    )?
                    .or(file.webhook_secret_overlap_secs)
                    .unwrap_or(86_400),
                ),
                disable_after: Duration::from_secs(
                    parsed(
                        "INTERLINK_WEBHOOK_DISABLE_AFTER_SECS",
                        var("INTERLINK_WEBHOOK_DISABLE_AFTER_SECS"),
                    )?
                    .or(file.webhook_disable_after_secs)
                    .unwrap_or(432_000),
                ),
            },
            exports: ExportsConfig {
                max_sync_rows: parsed(
                    "INTERLINK_EXPORT_MAX_SYNC_ROWS",
                    var("INTERLINK_EXPORT_MAX_SYNC_ROWS"),
                )?
                .or(file.export_max_sync_rows)
                .unwrap_or(100_000),
                timeout: Duration::from_secs(
                    parsed(
                        "INTERLINK_EXPORT_TIMEOUT_SECS",
                        var("INTERLINK_EXPORT_TIMEOUT_SECS"),
                    )?
                    .or(file.export_timeout_secs)
                    .unwrap_or(1800),
                ),
                max_concurrent: parsed(
                    "INTERLINK_EXPORT_MAX_CONCURRENT",
                    var("INTERLINK_EXPORT_MAX_CONCURRENT"),
                )?
                .or(file.export_max_concurrent)
                .unwrap_or(4)
                .max(1),
                file_ttl: Duration::from_secs(
                    3600 * parsed::<u64>(
                        "INTERLINK_EXPORT_FILE_TTL_HOURS",
                        var("INTERLINK_EXPORT_FILE_TTL_HOURS"),
                    )?
                    .or(file.export_file_ttl_hours)
                    .unwrap_or(24),
                ),
            },
            jobs: JobsConfig {
                enabled: parsed("INTERLINK_SCHEDULER", var("INTERLINK_SCHEDULER"))?
                    .or(file.scheduler)
                    .unwrap_or(true),
                node_id: var("INTERLINK_NODE_ID").or(file.node_id),
                node_tags: var("INTERLINK_NODE_TAGS")
                    .or(file.node_tags)
                    .map(|tags| {
                        tags.split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                capacity: parsed("INTERLINK_NODE_CAPACITY", var("INTERLINK_NODE_CAPACITY"))?
                    .or(file.node_capacity)
                    .unwrap_or(16),
                prefetch: parsed("INTERLINK_JOB_PREFETCH", var("INTERLINK_JOB_PREFETCH"))?
                    .or(file.job_prefetch)
                    .unwrap_or(16),
                lease: Duration::from_millis(
                    parsed("INTERLINK_JOB_LEASE_MS", var("INTERLINK_JOB_LEASE_MS"))?
                        .or(file.job_lease_ms)
                        .unwrap_or(30_000),
                ),
                poll_interval: Duration::from_millis(
                    parsed("INTERLINK_JOB_POLL_MS", var("INTERLINK_JOB_POLL_MS"))?
                        .or(file.job_poll_ms)
                        .unwrap_or(1_000),
                ),
                cron_tick: Duration::from_millis(
                    parsed("INTERLINK_CRON_TICK_MS", var("INTERLINK_CRON_TICK_MS"))?
                        .or(file.cron_tick_ms)
                        .unwrap_or(1_000),
                ),
                retention: Duration::from_secs(
                    3600u64.saturating_mul(
                        parsed(
                            "INTERLINK_JOB_RETENTION_HOURS",
                            var("INTERLINK_JOB_RETENTION_HOURS"),
                        )?
                        .or(file.job_retention_hours)
                        .unwrap_or(7 * 24),
                    ),
                ),
                event_retention: Duration::from_secs(
                    86_400u64.saturating_mul(
                        parsed(
                            "INTERLINK_EVENT_RETENTION_DAYS",
                            var("INTERLINK_EVENT_RETENTION_DAYS"),
                        )?
                        .or(file.event_retention_days)
                        .unwrap_or(30),
                    ),
                ),
                scan_cron: var("INTERLINK_SCAN_CRON")
                    .or(file.scan_cron)
                    .unwrap_or_else(|| "0 * * * * *".to_owned()),
                reminder_lead: Duration::from_secs(
                    60u64.saturating_mul(
                        parsed(
                            "INTERLINK_DEADLINE_REMINDER_MINUTES",
                            var("INTERLINK_DEADLINE_REMINDER_MINUTES"),
                        )?
                        .or(file.deadline_reminder_minutes)
                        .unwrap_or(24 * 60),
                    ),
                ),
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.is_production() {
            let has_keys = match self.jwt.algorithm {
                JwtAlgorithm::HS256 => self.jwt.secret.is_some(),
                JwtAlgorithm::RS256 | JwtAlgorithm::EdDSA => {
                    self.jwt.private_key_file.is_some() && self.jwt.public_key_file.is_some()
                }
            };
            if !has_keys {
                bail!("INTERLINK_ENV=production needs an explicit JWT key: set INTERLINK_JWT_SECRET (HS256) or the key files for RS256/EdDSA");
            }
        }
        if let Some(secret) = &self.jwt.secret {
            if secret.expose().len() < 32 {
                bail!("INTERLINK_JWT_SECRET must be at least 32 characters");
            }
        }
        if self.jwt.access_ttl.is_zero() || self.jwt.refresh_ttl.is_zero() {
            bail!("token lifetimes must be positive");
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            bail!("INTERLINK_CURRENCY must be an ISO 4217 code such as CNY or USD");
        }
        if self.limits.max_body_bytes == 0 {
            bail!("INTERLINK_MAX_BODY_BYTES must be positive");
        }
        if self.limits.max_concurrent_requests == 0
            || self.limits.ws_max_connections == 0
            || self.limits.ws_max_connections_per_user == 0
        {
            bail!("INTERLINK_MAX_CONCURRENT_REQUESTS, INTERLINK_WS_MAX_CONNECTIONS and INTERLINK_WS_MAX_CONNECTIONS_PER_USER must be positive");
        }
        if self.limits.ws_send_timeout.is_zero() {
            bail!("INTERLINK_WS_SEND_TIMEOUT_MS must be positive");
        }
        if self.jobs.capacity == 0 || self.jobs.lease < Duration::from_millis(300) {
            bail!(
                "INTERLINK_NODE_CAPACITY must be positive and INTERLINK_JOB_LEASE_MS at least 300"
            );
        }
        if self.jobs.poll_interval < Duration::from_millis(10)
            || self.jobs.cron_tick < Duration::from_millis(10)
        {
            bail!("INTERLINK_JOB_POLL_MS and INTERLINK_CRON_TICK_MS must be at least 10");
        }
        if self.jobs.event_retention > Duration::from_secs(10 * 366 * 24 * 3600)
            || self.jobs.event_retention.is_zero()
        {
            bail!("INTERLINK_EVENT_RETENTION_DAYS must be from 1 day to ten years");
        }
        if self.jobs.retention > Duration::from_secs(10 * 366 * 24 * 3600) {
            bail!("INTERLINK_JOB_RETENTION_HOURS must be at most ten years");
        }
        let limits = &self.limits;
        if limits.rate_limit_per_second > 0 && limits.rate_limit_burst == 0 {
            bail!("INTERLINK_RATE_LIMIT_BURST must be positive while the rate limit is on");
        }
        if limits.login_attempts_per_client == 0 || limits.login_attempt_window.is_zero() {
            bail!("INTERLINK_LOGIN_ATTEMPTS_PER_CLIENT and INTERLINK_LOGIN_ATTEMPT_WINDOW_SECS must be positive");
        }
        if limits.login_failures_per_window < 1
            || limits.password_change_failures_per_window < 1
            || limits.login_failure_window.is_zero()
        {
            bail!("INTERLINK_LOGIN_FAILURES_PER_WINDOW, INTERLINK_PASSWORD_CHANGE_FAILURES_PER_WINDOW and INTERLINK_LOGIN_FAILURE_WINDOW_SECS must be positive");
        }
        crate::platform::scheduler::parse_cron(&self.jobs.scan_cron)
            .context("INTERLINK_SCAN_CRON")?;
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.env == Environment::Production
    }

    /// GraphiQL, introspection and field suggestions are development conveniences.
    pub fn dev_tools_enabled(&self) -> bool {
        !self.is_production()
    }
}

/// `INTERLINK_TRUSTED_PROXIES`: comma-separated addresses (`10.0.0.7`) and networks (`10.0.0.0/8`).
fn parse_trusted_proxies(raw: &str) -> anyhow::Result<Vec<ipnet::IpNet>> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "INTERLINK_TRUSTED_PROXIES: {p:?} is not an address or a network"
                    )
                })
        })
        .collect()
}

/// `INTERLINK_CORS_ORIGINS`: comma-separated origins, each a scheme, a host and an optional
/// port, exactly as a browser sends them in `Origin`. A wildcard is refused: the allow-list is
/// the point.
fn parse_cors_origins(raw: &str) -> anyhow::Result<Vec<String>> {
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let refuse = |why: &str| anyhow::anyhow!("INTERLINK_CORS_ORIGINS: {origin:?} {why}");
            let url = reqwest::Url::parse(origin).map_err(|_| refuse("is not an origin"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(refuse("is not an http(s) origin"));
            }
            let bare = url.origin().ascii_serialization();
            if bare != origin.trim_end_matches('/') {
                return Err(refuse(&format!("has more than an origin: write {bare:?}")));
            }
            Ok(bare)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_exact_origins() -> anyhow::Result<()> {
        let c = config(&[(
            "INTERLINK_CORS_ORIGINS",
            "https://app.example.com, http://127.0.0.1:5173/",
        )])?;
        assert_eq!(
            c.cors_origins,
            ["https://app.example.com", "http://127.0.0.1:5173"]
        );
        assert!(config(&[])?.cors_origins.is_empty());
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x.org",
        ] {
            assert!(
                config(&[("INTERLINK_CORS_ORIGINS", bad)]).is_err(),
                "{bad} was accepted"
            );
        }
        Ok(())
    }

    fn config(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_sources(Sources {
            vars: &vars,
            file: None,
        })
    }

    #[test]
    fn defaults_are_the_embedded_development_setup() -> anyhow::Result<()> {
        let c = config(&[])?;
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.database_url.is_none() && c.redis_url.is_none());
        assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
        assert!(c.dev_tools_enabled());
        Ok(())
    }

    #[test]
    fn production_refuses_to_start_without_a_key() {
        assert!(config(&[("INTERLINK_ENV", "production")]).is_err());
        let secret = "x".repeat(40);
        assert!(config(&[
            ("INTERLINK_ENV", "production"),
            ("INTERLINK_JWT_SECRET", &secret)
        ])
        .is_ok());
    }

    #[test]
    fn the_bi_address_overrides_are_optional_and_checked() -> anyhow::Result<()> {
        let c = config(&[])?;
        assert!(c.bi.host.is_none() && c.bi.port.is_none());
        let c = config(&[
            ("INTERLINK_BI_HOST", "bi.example.com"),
            ("INTERLINK_BI_PORT", "6432"),
        ])?;
        assert_eq!(c.bi.host.as_deref(), Some("bi.example.com"));
        assert_eq!(c.bi.port, Some(6432));
        assert!(config(&[("INTERLINK_BI_PORT", "70000")]).is_err());
        assert!(config(&[("INTERLINK_BI_HOST", " ")])?.bi.host.is_none());
        Ok(())
    }

    #[test]
    fn scheduler_settings_are_checked() {
        assert!(config(&[("INTERLINK_JOB_POLL_MS", "0")]).is_err());
        assert!(config(&[("INTERLINK_JOB_LEASE_MS", "5")]).is_err());
        assert!(config(&[("INTERLINK_SCAN_CRON", "whenever")]).is_err());
        assert!(config(&[("INTERLINK_JOB_RETENTION_HOURS", "18446744073709551615")]).is_err());
        assert!(config(&[("INTERLINK_NODE_TAGS", "gpu, eu-west ,")])
            .is_ok_and(|c| c.jobs.node_tags == ["gpu", "eu-west"]));
    }

    #[test]
    fn trusted_proxies_are_addresses_and_networks() -> anyhow::Result<()> {
        let c = config(&[("INTERLINK_TRUSTED_PROXIES", "10.0.0.7, 192.168.0.0/16,::1")])?;
        let listed: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(listed, ["10.0.0.7/32", "192.168.0.0/16", "::1/128"]);
        assert!(config(&[])?.trusted_proxies.is_empty());
        assert!(config(&[("INTERLINK_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")]).is_err());
        assert!(config(&[("INTERLINK_RATE_LIMIT_BURST", "0")]).is_err());
        assert!(config(&[
            ("INTERLINK_RATE_LIMIT_PER_SECOND", "0"),
            ("INTERLINK_RATE_LIMIT_BURST", "0")
        ])
        .is_ok());
        Ok(())
    }

    #[test]
    fn the_outbound_allow_list_is_checked_at_start() -> anyhow::Result<()> {
        assert_eq!(config(&[])?.outbound_allow, OutboundPolicy::none());
        let c = config(&[(
            "INTERLINK_OUTBOUND_ALLOW",
            "localhost, 127.0.0.1,10.0.0.0/8",
        )])?;
        assert_ne!(c.outbound_allow, OutboundPolicy::none());
        let err = config(&[("INTERLINK_OUTBOUND_ALLOW", "10.0.0.0/99")])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("INTERLINK_OUTBOUND_ALLOW"), "{err}");
        Ok(())
    }

    #[test]
    fn secrets_do_not_print() -> anyhow::Result<()> {
        let secret = "super-secret-value-that-is-long-enough";
        let c = config(&[
            ("INTERLINK_JWT_SECRET", secret),
            ("DATABASE_URL", "postgres://user:hunter2@localhost/db"),
        ])?;
        let printed = format!("{c:?}");
        assert!(!printed.contains(secret));
        assert!(!printed.contains("hunter2"));
        Ok(())
    }

    #[test]
    fn file_is_overridden_by_variables() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("interlink-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("interlink.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\nmax_batch = 3\n")?;
        let vars = HashMap::from([("INTERLINK_MAX_BATCH".to_owned(), "5".to_owned())]);
        let c = Config::from_sources(Sources {
            vars: &vars,
            file: Some(&path),
        })?;
        assert_eq!(c.bind.port(), 9000);
        assert_eq!(c.limits.max_batch, 5);
        std::fs::write(&path, "no_such_key = 1\n")?;
        assert!(Config::from_sources(Sources {
            vars: &vars,
            file: Some(&path)
        })
        .is_err());
        Ok(())
    }
}
