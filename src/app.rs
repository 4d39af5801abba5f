//! The node's shared state and the one function that builds its router, used by main and tests alike.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;

use crate::auth::jwt::{JwtKeys, KeySource};
use crate::auth::password::Passwords;
use crate::auth::viewer_cache::ViewerCache;
use crate::config::Config;
use crate::domains::approvals::service::ApprovalSubjects;
use crate::domains::business::service::TransactionApprovals;
use crate::domains::identity::model::IdentityEvent;
use crate::domains::identity::service::{self as identity, FirstAdmin};
use crate::domains::scheduling::builtin::{self, JobDeps};
use crate::domains::tasks::service::TaskApprovals;
use crate::error::AppResult;
use crate::platform::cache::{Cache, InProcessCache, RedisCache};
use crate::platform::db::Db;
use crate::platform::events::relay::Relay;
use crate::platform::events::{Event, EventBus, InProcessBus, RedisBus};
use crate::platform::files::FileStore;
use crate::platform::live_slots::LiveSlots;
use crate::platform::metrics::Metrics;
use crate::platform::outbound::Outbound;
use crate::platform::rate_limit::{Bucket, Budget, Limiters};
use crate::platform::redis::{RedisLink, RedisTarget};
use crate::platform::response_cache::ResponseCache;
use crate::platform::scheduler::{NodeSettings, Scheduler};
use crate::platform::work::{self, Work};

#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub bus: Arc<dyn EventBus>,
    pub cache: Arc<dyn Cache>,
    pub redis: Option<RedisLink>,
    pub jwt: JwtKeys,
    pub metrics: Metrics,
    /// Hashes and verifies passwords, counted on `metrics`.
    pub passwords: Passwords,
    /// Per-client budgets (see `platform::rate_limit`), shared through Redis when configured.
    pub limiters: Limiters,
    pub files: FileStore,
    /// The domains whose records go through approval, for the engine to call back.
    pub approval_subjects: ApprovalSubjects,
    /// This node's job scheduler; `start` it to run jobs (enqueueing needs no start).
    pub scheduler: Scheduler,
    /// Whole query responses, keyed by the data version (see `platform::response_cache`).
    pub responses: Arc<ResponseCache>,
    /// Signed-in viewers, keyed by the identity epoch (see `auth::viewer_cache`).
    pub viewers: Arc<ViewerCache>,
    /// The one client for requests to other systems: public addresses only, unless allowed
    /// (see `platform::outbound`).
    pub outbound: Outbound,
    /// Websockets and the console's live streams open on this node, under the websocket caps
    /// (`INTERLINK_WS_MAX_CONNECTIONS`, `INTERLINK_WS_MAX_CONNECTIONS_PER_USER`): each holds a
    /// subscription to the event log just as the other does.
    pub live: Arc<LiveSlots>,
    /// CSV exports streaming on this node now, from the API or the console, under
    /// `INTERLINK_EXPORT_MAX_CONCURRENT`.
    pub export_streams: Arc<tokio::sync::Semaphore>,
    /// Publishes the event log to the bus while this node leads (see `platform::events::relay`).
    _relay: Relay,
    /// Fans the event log out into webhook deliveries, on nodes that run jobs.
    _webhooks: Option<crate::domains::integrations::jobs::Dispatcher>,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What start-up did that the operator must hear about.
pub struct Startup {
    pub state: AppState,
    pub first_admin: Option<FirstAdmin>,
    pub jwt_key_source: KeySource,
}

fn node_settings(config: &Config) -> NodeSettings {
    let jobs = &config.jobs;
    NodeSettings {
        tags: jobs.node_tags.clone(),
        capacity: jobs.capacity,
        prefetch: jobs.prefetch,
        lease: jobs.lease,
        poll_interval: jobs.poll_interval,
        cron_tick: jobs.cron_tick,
        retention: jobs.retention,
        ..NodeSettings::new(
            jobs.node_id
                .clone()
                .unwrap_or_else(NodeSettings::default_node_id),
        )
    }
}

fn limiters(config: &Config, redis: Option<&RedisLink>) -> Limiters {
    let limits = &config.limits;
    let shared = redis.map(|link| (link, config.redis_prefix.as_str()));
    let requests = std::num::NonZeroU32::new(limits.rate_limit_per_second).map(|rate| {
        let burst =
            std::num::NonZeroU32::new(limits.rate_limit_burst).unwrap_or(std::num::NonZeroU32::MIN);
        Bucket::new("requests", Budget::per_second(rate, burst), shared)
    });
    let attempts = std::num::NonZeroU32::new(limits.login_attempts_per_client)
        .unwrap_or(std::num::NonZeroU32::MIN);
    Limiters {
        requests,
        sign_in: Bucket::new(
            "sign-in",
            Budget::per_window(attempts, limits.login_attempt_window),
            shared,
        ),
    }
}

impl AppState {
    /// Opens storage, runs migrations (unless switched off), connects Redis when configured
    /// and creates the first administrator when there is no user yet.
    pub async fn initialize(config: Config) -> anyhow::Result<Startup> {
        let (jwt, jwt_key_source) = JwtKeys::load(&config.jwt, &config.data_dir)?;
        let db = Db::connect(
            config.database_url.as_ref().map(|s| s.expose()),
            &config.data_dir,
            config.db_max_connections,
        )
        .await?;
        if config.auto_migrate {
            db.migrate().await?;
        } else {
            db.ensure_migrated().await?;
        }
        let (bus, cache, redis): (Arc<dyn EventBus>, Arc<dyn Cache>, _) = match &config.redis_url {
            Some(url) => {
                let target = RedisTarget::parse(url.expose())?;
                let link = RedisLink::connect(&target).await?;
                let prefix = &config.redis_prefix;
                let bus = RedisBus::connect(&target, link.clone(), prefix).await?;
                let cache = RedisCache::new(link.clone(), prefix);
                (Arc::new(bus), Arc::new(cache), Some(link))
            }
            None => (
                Arc::new(InProcessBus::new()),
                Arc::new(InProcessCache::default()),
                None,
            ),
        };
        let (email, password) = (
            config.admin_email.as_deref(),
            config.admin_password.as_ref().map(|s| s.expose()),
        );
        let metrics = Metrics::new()?;
        let passwords = Passwords::new(metrics.password_hashes.clone());
        let first_admin = work::write(&db, async |work| {
            identity::ensure_first_admin(work, &passwords, email, password).await
        })
        .await
        .map_err(|e| anyhow::anyhow!("creating the first administrator: {e:?}"))
        .context("first start")?;
        let limiters = limiters(&config, redis.as_ref());
        let files = FileStore::from_config(&config)?;
        let currency = config.currency.clone();
        let shared_cache = redis.is_some().then(|| cache.clone());
        let responses = Arc::new(ResponseCache::new(
            shared_cache.clone(),
            config.response_cache,
        ));
        responses.follow(bus.as_ref());
        let viewers = Arc::new(ViewerCache::new(shared_cache, config.viewer_cache));
        viewers.follow(bus.as_ref(), IdentityEvent::TOPIC);
        let outbound = Outbound::new(config.outbound_allow.clone())?;
        let registry = builtin::registry(JobDeps {
            db: db.clone(),
            currency: currency.clone(),
            reminder_lead: config.jobs.reminder_lead,
            outbound: outbound.clone(),
            scan_cron: config.jobs.scan_cron.clone(),
            event_retention: config.jobs.event_retention,
            webhooks: config.webhooks.clone(),
            files: files.clone(),
            exports: config.exports.clone(),
        })?;
        let webhooks = config.jobs.enabled.then(|| {
            crate::domains::integrations::jobs::Dispatcher::start(
                db.clone(),
                bus.clone(),
                config.webhooks.clone(),
                config.jobs.poll_interval,
            )
        });
        let relay = Relay::start(db.clone(), bus.clone());
        let scheduler = Scheduler::new(
            db.clone(),
            bus.clone(),
            node_settings(&config),
            registry,
            metrics.scheduler.clone(),
        );
        let live = Arc::new(LiveSlots::new(
            config.limits.ws_max_connections,
            config.limits.ws_max_connections_per_user,
        ));
        let export_streams = Arc::new(tokio::sync::Semaphore::new(config.exports.max_concurrent));
        Ok(Startup {
            state: AppState(Arc::new(AppInner {
                config,
                db,
                bus,
                cache,
                redis,
                jwt,
                metrics,
                passwords,
                limiters,
                files,
                approval_subjects: ApprovalSubjects::new(vec![
                    Arc::new(TaskApprovals),
                    Arc::new(TransactionApprovals {
                        currency: currency.clone(),
                    }),
                ]),
                scheduler,
                responses,
                viewers,
                outbound,
                live,
                export_streams,
                _relay: relay,
                _webhooks: webhooks,
            })),
            first_admin,
            jwt_key_source,
        })
    }

    /// One unit of work for a request: `step` writes through it; once it commits, every
    /// cached response from before it is out of date, and so is every cached viewer if it
    /// changed a user, a role, a grant or a department (each of which emits an identity event).
    pub async fn write<T>(&self, step: impl AsyncFnOnce(&Work) -> AppResult<T>) -> AppResult<T> {
        let (value, committed) = work::write_reporting(&self.db, step).await?;
        if committed.touched(IdentityEvent::TOPIC) {
            self.viewers.bump().await;
        }
        self.responses.bump().await;
        Ok(value)
    }

    /// What checking a password stands on, for every transport that signs people in.
    pub fn credentials(&self) -> identity::Credentials<'_> {
        identity::Credentials {
            passwords: &self.passwords,
            cache: self.cache.as_ref(),
            attempts: &self.limiters.sign_in,
            policy: identity::LoginPolicy::from(&self.config),
        }
    }

    /// Database and, when configured, Redis (commands and the event subscription).
    pub async fn check_ready(&self) -> anyhow::Result<()> {
        self.db.ping().await?;
        if let Some(redis) = &self.redis {
            redis.ping().await.context("redis ping")?;
        }
        self.bus.ready().await
    }
}
