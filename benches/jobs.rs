//! Scheduler throughput and pickup latency on PostgreSQL. Not a test: it prints figures.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench jobs`
//!
//! It creates a fresh database next to the one named (and drops it afterwards), then:
//! 1. enqueues 100,000 no-op jobs and times their completion by `NODES` in-process nodes
//!    (default 2), each with its own connection pool, as separate processes would have;
//! 2. with the nodes idle, enqueues jobs one transaction at a time at a steady rate and records
//!    each job's pickup latency: from its enqueue commit to its handler starting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use interlink::platform::db::{sql, Db};
use interlink::platform::events::{EventBus, InProcessBus};
use interlink::platform::metrics::SchedulerMetrics;
use interlink::platform::scheduler::{
    enqueue, enqueue_many, JobContext, JobError, JobHandler, KindSpec, NewJob, NodeSettings,
    QueueSpec, Registry, Scheduler,
};
use parking_lot::Mutex;
use sea_orm::ConnectionTrait;

const JOBS: usize = 100_000;
const LATENCY_SAMPLES: usize = 2_000;
const LATENCY_RATE_PER_SEC: u64 = 200;

struct NoOp {
    done: Arc<AtomicU64>,
    pickups: Arc<Mutex<Vec<f64>>>,
}

#[async_trait]
impl JobHandler for NoOp {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        if let Some(micros) = job.args.get("enqueuedAt").and_then(|v| v.as_i64()) {
            let waited = Utc::now().timestamp_micros() - micros;
            self.pickups.lock().push(waited as f64 / 1000.0);
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn database_url(base: &str, name: &str) -> String {
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => format!("{base}/{name}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = std::env::var("DATABASE_URL").context("set DATABASE_URL to a PostgreSQL server")?;
    let nodes: usize = std::env::var("NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let name = format!("interlink_bench_jobs_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&base).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let url = database_url(&base, &name);
    let outcome = run(&url, nodes).await;
    let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await;
    outcome
}

async fn run(url: &str, nodes: usize) -> anyhow::Result<()> {
    let setup = Db::connect(Some(url), std::path::Path::new("."), 8).await?;
    setup.migrate().await?;
    let done = Arc::new(AtomicU64::new(0));
    let pickups = Arc::new(Mutex::new(Vec::with_capacity(LATENCY_SAMPLES)));
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let mut schedulers = Vec::new();
    for i in 0..nodes {
        let db = Db::connect(Some(url), std::path::Path::new("."), 16).await?;
        let registry = Registry::default()
            .queue(QueueSpec::any("bench", 256))
            .kind(
                KindSpec::new("bench.noop", "bench"),
                NoOp {
                    done: done.clone(),
                    pickups: pickups.clone(),
                },
            );
        let settings = NodeSettings {
            capacity: 64,
            prefetch: 64,
            claim_batch: 128,
            ..NodeSettings::new(format!("bench-{i}"))
        };
        schedulers.push(Scheduler::new(
            db,
            bus.clone(),
            settings,
            registry,
            SchedulerMetrics::new()?,
        ));
    }

    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|_| NewJob::new("bench", "bench.noop", serde_json::json!({})))
        .collect();
    let enqueue_started = Instant::now();
    let added = enqueue_many(&setup.conn, &jobs).await?;
    let enqueue_took = enqueue_started.elapsed();
    drop(jobs);
    println!(
        "enqueued {added} jobs in {:.2} s ({:.0} jobs/s, multi-row inserts)",
        enqueue_took.as_secs_f64(),
        added as f64 / enqueue_took.as_secs_f64()
    );

    let started = Instant::now();
    let mut handles = Vec::new();
    for scheduler in &schedulers {
        handles.push(scheduler.start().await?);
    }
    while done.load(Ordering::Relaxed) < JOBS as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the backlog did not drain in 10 minutes"
        );
    }
    // Handlers are done; wait for the last completion batch to be recorded.
    loop {
        let row = setup
            .conn
            .query_one(sql(
                setup.conn.get_database_backend(),
                "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
                [],
            ))
            .await?
            .context("count")?;
        if row.try_get::<i64>("", "n")? >= JOBS as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    println!(
        "{JOBS} no-op jobs completed by {nodes} node(s) in {:.2} s: {:.0} jobs/s",
        took.as_secs_f64(),
        JOBS as f64 / took.as_secs_f64()
    );

    // Pickup latency: idle nodes, one committed enqueue at a time.
    pickups.lock().clear();
    let interval = Duration::from_micros(1_000_000 / LATENCY_RATE_PER_SEC);
    let mut ticker = tokio::time::interval(interval);
    for _ in 0..LATENCY_SAMPLES {
        ticker.tick().await;
        let args = serde_json::json!({ "enqueuedAt": Utc::now().timestamp_micros() });
        enqueue(&setup.conn, NewJob::new("bench", "bench.noop", args)).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pickups.lock().len() < LATENCY_SAMPLES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut samples = pickups.lock().clone();
    samples.sort_by(f64::total_cmp);
    println!(
        "pickup latency over {} jobs at {LATENCY_RATE_PER_SEC}/s: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 95.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    for handle in handles {
        handle.stop(Duration::from_secs(5)).await;
    }
    Ok(())
}
