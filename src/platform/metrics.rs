//! Prometheus metrics for the node: HTTP traffic, GraphQL errors, websockets, pool and bus.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
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
    pub event_subscribers: IntGauge,
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
        let event_subscribers =
            IntGauge::new("event_subscribers", "Local subscribers of the event bus")?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(graphql_errors.clone()))?;
        registry.register(Box::new(websocket_connections.clone()))?;
        registry.register(Box::new(db_pool_size.clone()))?;
        registry.register(Box::new(db_pool_idle.clone()))?;
        registry.register(Box::new(event_subscribers.clone()))?;
        registry.register(Box::new(db_statements.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_latency,
            graphql_errors,
            websocket_connections,
            db_pool_size,
            db_pool_idle,
            db_statements,
            event_subscribers,
        })
    }

    pub fn render(&self) -> anyhow::Result<String> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8(buffer)?)
    }
}
