//! Prometheus metrics for the node: HTTP traffic, GraphQL errors, websockets, pool, bus and jobs.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub graphql_errors: IntCounterVec,
    pub websocket_connections: IntGauge,
    pub db_pool_size: IntGauge,
    pub db_pool_idle: IntGauge,
    pub db_statements: IntGauge,
    pub db_round_trips: IntGauge,
    pub event_subscribers: IntGauge,
    /// argon2 hashes and verifications run by this node: what sign-in floods cost.
    pub password_hashes: IntCounter,
    /// Requests and sign-in attempts refused by a rate limit, by budget.
    pub rate_limited: IntCounterVec,
    pub scheduler: SchedulerMetrics,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("interlink".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency"),
            &["method", "route"],
        )?;
        let graphql_errors = IntCounterVec::new(
            Opts::new("graphql_errors_total", "GraphQL errors by extensions.code"),
            &["code"],
        )?;
        let websocket_connections = IntGauge::new(
            "websocket_connections",
            "Open GraphQL websocket connections",
        )?;
        let db_pool_size = IntGauge::new("db_pool_connections", "Database pool connections")?;
        let db_pool_idle =
            IntGauge::new("db_pool_idle_connections", "Idle database pool connections")?;
        let db_statements = IntGauge::new("db_statements", "SQL statements run since start")?;
        let db_round_trips = IntGauge::new(
            "db_round_trips",
            "Exchanges with the database since start: statements and idle-connection pings",
        )?;
        let event_subscribers =
            IntGauge::new("event_subscribers", "Local subscribers of the event bus")?;
        let password_hashes = IntCounter::new(
            "password_hashes_total",
            "Password hashes and verifications run on this node",
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Refusals by a rate limit, by budget"),
            &["budget"],
        )?;
        registry.register(Box::new(password_hashes.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(graphql_errors.clone()))?;
        registry.register(Box::new(websocket_connections.clone()))?;
        registry.register(Box::new(db_pool_size.clone()))?;
        registry.register(Box::new(db_pool_idle.clone()))?;
        registry.register(Box::new(event_subscribers.clone()))?;
        registry.register(Box::new(db_statements.clone()))?;
        registry.register(Box::new(db_round_trips.clone()))?;
        let scheduler = SchedulerMetrics::new()?;
        scheduler.register(&registry)?;
        Ok(Self {
            registry,
            http_requests,
            http_latency,
            graphql_errors,
            websocket_connections,
            db_pool_size,
            db_pool_idle,
            db_statements,
            db_round_trips,
            event_subscribers,
            password_hashes,
            rate_limited,
            scheduler,
        })
    }

    pub fn render(&self) -> anyhow::Result<String> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8(buffer)?)
    }
}

/// The scheduler's series; cheap to clone (each is a shared handle).
#[derive(Clone)]
pub struct SchedulerMetrics {
    pub completed: IntCounterVec,
    pub failed: IntCounterVec,
    pub running: IntGaugeVec,
    pub depth: IntGaugeVec,
    pub pickup_latency: HistogramVec,
    pub run_time: HistogramVec,
}

impl SchedulerMetrics {
    pub fn new() -> anyhow::Result<Self> {
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
        ];
        Ok(Self {
            completed: IntCounterVec::new(
                Opts::new("jobs_completed_total", "Jobs completed on this node"),
                &["queue"],
            )?,
            failed: IntCounterVec::new(
                Opts::new(
                    "jobs_failed_total",
                    "Failed job attempts on this node, by what followed (RETRYABLE, DISCARDED, CANCELLED)",
                ),
                &["queue", "outcome"],
            )?,
            running: IntGaugeVec::new(
                Opts::new("jobs_running", "Jobs claimed by this node and not yet finished"),
                &["queue"],
            )?,
            depth: IntGaugeVec::new(
                Opts::new("jobs_queue_depth", "Jobs per queue and live state, cluster-wide"),
                &["queue", "state"],
            )?,
            pickup_latency: HistogramVec::new(
                HistogramOpts::new(
                    "job_pickup_seconds",
                    "From a job's run_at to its claim",
                )
                .buckets(latency_buckets.clone()),
                &["queue"],
            )?,
            run_time: HistogramVec::new(
                HistogramOpts::new("job_run_seconds", "Handler run time per attempt")
                    .buckets(latency_buckets),
                &["queue", "kind"],
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> anyhow::Result<()> {
        registry.register(Box::new(self.completed.clone()))?;
        registry.register(Box::new(self.failed.clone()))?;
        registry.register(Box::new(self.running.clone()))?;
        registry.register(Box::new(self.depth.clone()))?;
        registry.register(Box::new(self.pickup_latency.clone()))?;
        registry.register(Box::new(self.run_time.clone()))?;
        Ok(())
    }
}
