//! The scheduler's promises, driven through its library API on real databases: several nodes
//! on one PostgreSQL (and Redis, single or cluster), or the embedded SQLite node.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use interlink::platform::db::sql;
use interlink::platform::metrics::SchedulerMetrics;
use interlink::platform::scheduler::{
    self, admin, claim, complete_fenced, enqueue, enqueue_many, rescue_expired, Claim,
    CronSchedule, Enqueued, Fence, JobContext, JobError, JobHandler, KindSpec, MissedSlots, NewJob,
    NodeSettings, QueueSpec, Registry, Scheduler, SchedulerHandle, Strategy,
};
use parking_lot::Mutex;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::helpers::{poll_until, Backend, Deployment, TestApp};
use crate::on_both_backends;

/// Nodes of one deployment: each has its own pool and bus, and shares the database.
struct Lab {
    apps: Vec<TestApp>,
}

impl Lab {
    async fn new(
        backend: Backend,
        nodes: usize,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Option<Self>> {
        let Some(deployment) = Deployment::new(backend, extra).await? else {
            return Ok(None);
        };
        let mut apps = Vec::new();
        for _ in 0..nodes {
            apps.push(deployment.node().await?);
        }
        let lab = Self { apps };
        lab.db()
            .execute_unprepared(
                "CREATE TABLE job_effects (job_id VARCHAR(64) PRIMARY KEY, node VARCHAR(64) NOT NULL, \
                 info VARCHAR(200), seq INTEGER)",
            )
            .await?;
        Ok(Some(lab))
    }

    fn db(&self) -> &DatabaseConnection {
        &self.apps[0].state.db.conn
    }

    fn scheduler(
        &self,
        index: usize,
        settings: NodeSettings,
        registry: Registry,
    ) -> anyhow::Result<Scheduler> {
        let state = &self.apps[index].state;
        Ok(Scheduler::new(
            state.db.clone(),
            state.bus.clone(),
            settings,
            registry,
            SchedulerMetrics::new()?,
        ))
    }

    async fn count(&self, query: &str) -> anyhow::Result<i64> {
        let row = self
            .db()
            .query_one(sql(self.db().get_database_backend(), query, []))
            .await?
            .context("count returned no row")?;
        Ok(row.try_get::<i64>("", "n")?)
    }

    /// Polls until `query` counts at least `want`, or fails after `limit`.
    async fn wait_for(&self, query: &str, want: i64, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let n = self.count(query).await?;
            if n >= want {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "waited {limit:?} for {want} from {query:?}, have {n}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Lab {
    async fn nodes(&self) -> anyhow::Result<HashMap<String, entities::scheduler_node::Model>> {
        use sea_orm::EntityTrait;
        Ok(entities::scheduler_node::Entity::find()
            .all(self.db())
            .await?
            .into_iter()
            .map(|node| (node.id.clone(), node))
            .collect())
    }

    /// Until each of `names` has read who is live since all of them registered: a node reads
    /// the live nodes right after writing its heartbeat, so a heartbeat stamped after the
    /// moment all rows were visible was followed by a read that saw them all.
    async fn wait_until_nodes_see_each_other(&self, names: &[&str]) -> anyhow::Result<()> {
        let all_visible = Mutex::new(None);
        poll_until(
            Duration::from_secs(30),
            "every node to see the others",
            || async {
                let nodes = self.nodes().await?;
                let since = *all_visible.lock();
                let Some(since) = since else {
                    if names.iter().all(|name| nodes.contains_key(*name)) {
                        *all_visible.lock() = Some(Utc::now());
                    }
                    return Ok(false);
                };
                Ok(names
                    .iter()
                    .all(|name| nodes.get(*name).is_some_and(|n| n.heartbeat_at > since)))
            },
        )
        .await
    }

    /// Until each survivor has had a heartbeat a lease after the dead node's last one: from
    /// then on, the survivors no longer count it as live.
    async fn wait_until_dead_to_others(
        &self,
        dead: &str,
        survivors: &[&str],
        lease: Duration,
    ) -> anyhow::Result<()> {
        let lease = chrono::Duration::from_std(lease)? + chrono::Duration::milliseconds(1);
        poll_until(
            Duration::from_secs(30),
            "the survivors to see the node dead",
            || async {
                let nodes = self.nodes().await?;
                let last = nodes.get(dead).context("the dead node's row")?.heartbeat_at;
                Ok(survivors.iter().all(|name| {
                    nodes
                        .get(*name)
                        .is_some_and(|n| n.heartbeat_at >= last + lease)
                }))
            },
        )
        .await
    }
}

fn fast(node: &str) -> NodeSettings {
    NodeSettings {
        lease: Duration::from_millis(1500),
        poll_interval: Duration::from_millis(100),
        cron_tick: Duration::from_millis(100),
        ..NodeSettings::new(node)
    }
}

/// Records one row per job id in `job_effects`; a second effect for the same job counts as a
/// duplicate instead of failing.
struct Effect {
    db: DatabaseConnection,
    node: String,
    runs: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
    delay: Duration,
}

#[async_trait]
impl JobHandler for Effect {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let info = job
            .args
            .get("info")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let seq = self.runs.load(Ordering::SeqCst) as i64;
        let inserted = self
            .db
            .execute(sql(
                self.db.get_database_backend(),
                "INSERT INTO job_effects (job_id, node, info, seq) VALUES ($1, $2, $3, $4)",
                [
                    job.id.to_string().into(),
                    self.node.clone().into(),
                    info.into(),
                    seq.into(),
                ],
            ))
            .await;
        if let Err(err) = inserted {
            if matches!(
                err.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) {
                self.duplicates.fetch_add(1, Ordering::SeqCst);
            } else {
                return Err(err.into());
            }
        }
        Ok(())
    }
}

struct Counters {
    runs: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
}

impl Counters {
    fn new() -> Self {
        Self {
            runs: Arc::new(AtomicU64::new(0)),
            duplicates: Arc::new(AtomicU64::new(0)),
        }
    }

    fn effect(&self, lab: &Lab, node: &str, delay: Duration) -> Effect {
        Effect {
            db: lab.db().clone(),
            node: node.to_owned(),
            runs: self.runs.clone(),
            duplicates: self.duplicates.clone(),
            delay,
        }
    }
}

fn effect_registry(queue: QueueSpec, effect: Effect) -> Registry {
    let kind = KindSpec::new("test.effect", &queue.name);
    Registry::default().queue(queue).kind(kind, effect)
}

async fn stop_all(handles: Vec<SchedulerHandle>) {
    for handle in handles {
        handle.stop(Duration::from_secs(5)).await;
    }
}

// ------------------------------------------------------------------ many nodes, PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_complete_ten_thousand_jobs_exactly_once() -> anyhow::Result<()> {
    let Some(lab) = Lab::new(Backend::Postgres, 3, &[]).await? else {
        return Ok(());
    };
    const JOBS: usize = 10_000;
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|i| {
            NewJob::new(
                "bulk",
                "test.effect",
                serde_json::json!({ "info": i.to_string() }),
            )
        })
        .collect();
    assert_eq!(enqueue_many(lab.db(), &jobs).await?, JOBS as u64);
    let counters = Counters::new();
    let mut handles = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let registry = effect_registry(
            QueueSpec::any("bulk", 32),
            counters.effect(&lab, name, Duration::ZERO),
        );
        handles.push(
            lab.scheduler(
                i,
                NodeSettings {
                    capacity: 16,
                    prefetch: 16,
                    ..fast(name)
                },
                registry,
            )?
            .start()
            .await?,
        );
    }
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        JOBS as i64,
        Duration::from_secs(180),
    )
    .await?;
    stop_all(handles).await;
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM job_effects").await?,
        JOBS as i64
    );
    assert_eq!(
        counters.duplicates.load(Ordering::SeqCst),
        0,
        "an effect ran twice"
    );
    assert_eq!(
        counters.runs.load(Ordering::SeqCst),
        JOBS as u64,
        "a handler ran twice"
    );
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE attempt <> 1")
            .await?,
        0
    );
    // Every node took part.
    assert_eq!(
        lab.count("SELECT COUNT(DISTINCT node) AS n FROM job_effects")
            .await?,
        3
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_each_slot_once_across_three_nodes() -> anyhow::Result<()> {
    let Some(lab) = Lab::new(Backend::Postgres, 3, &[]).await? else {
        return Ok(());
    };
    let counters = Counters::new();
    let mut handles = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let schedule = CronSchedule::new(
            "every-second",
            "* * * * * *",
            NewJob::new("cron", "test.effect", serde_json::json!({})),
            MissedSlots::FireOnce,
        )?;
        let registry = effect_registry(
            QueueSpec::any("cron", 4),
            counters.effect(&lab, name, Duration::ZERO),
        )
        .schedule(schedule);
        handles.push(lab.scheduler(i, fast(name), registry)?.start().await?);
    }
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM cron_fires WHERE schedule = 'every-second'",
        5,
        Duration::from_secs(30),
    )
    .await?;
    stop_all(handles).await;
    // Let any job fired at the very end finish being recorded.
    let fires = lab
        .count("SELECT COUNT(*) AS n FROM cron_fires WHERE schedule = 'every-second'")
        .await?;
    assert!(fires >= 5, "only {fires} slots fired");
    let rows = lab
        .db()
        .query_all(sql(
            lab.db().get_database_backend(),
            "SELECT slot FROM cron_fires WHERE schedule = 'every-second' ORDER BY slot",
            [],
        ))
        .await?;
    let slots: Vec<chrono::DateTime<Utc>> = rows
        .iter()
        .map(|r| r.try_get("", "slot"))
        .collect::<Result<_, _>>()?;
    for pair in slots.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_seconds(),
            1,
            "a slot was skipped or doubled: {slots:?}"
        );
    }
    // One job per slot, each from its own slot.
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE kind = 'test.effect'")
            .await?,
        fires
    );
    // Every job that ran, ran once.
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM job_effects").await?,
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'")
            .await?
    );
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE attempt > 1")
            .await?,
        0
    );
    assert_eq!(
        lab.count(
            "SELECT COUNT(DISTINCT job_id) AS n FROM cron_fires WHERE schedule = 'every-second'"
        )
        .await?,
        fires
    );
    assert_eq!(counters.duplicates.load(Ordering::SeqCst), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_affinity_keeps_a_key_on_one_node_and_moves_it_when_the_node_dies() -> anyhow::Result<()>
{
    let Some(lab) = Lab::new(Backend::Postgres, 3, &[]).await? else {
        return Ok(());
    };
    let counters = Counters::new();
    let queue = QueueSpec {
        strategy: Strategy::KeyAffinity,
        ..QueueSpec::any("affine", 8)
    };
    let names = ["a", "b", "c"];
    let mut handles = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let registry = effect_registry(queue.clone(), counters.effect(&lab, name, Duration::ZERO));
        handles.push(Some(lab.scheduler(i, fast(name), registry)?.start().await?));
    }
    // Every node must see the other two before keys are placed.
    lab.wait_until_nodes_see_each_other(&names).await?;
    let keys: Vec<String> = (0..12).map(|k| format!("customer-{k}")).collect();
    let batch = |round: &str| -> Vec<NewJob> {
        keys.iter()
            .flat_map(|key| {
                (0..5).map(move |n| {
                    NewJob::new(
                        "affine",
                        "test.effect",
                        serde_json::json!({ "info": format!("{key}") }),
                    )
                    .affinity(key.clone())
                    .unique(format!("{round}-{key}-{n}"))
                })
            })
            .collect()
    };
    enqueue_many(lab.db(), &batch("first")).await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        60,
        Duration::from_secs(30),
    )
    .await?;
    let placement =
        |rows: Vec<sea_orm::QueryResult>| -> anyhow::Result<HashMap<String, HashSet<String>>> {
            let mut by_key: HashMap<String, HashSet<String>> = HashMap::new();
            for row in rows {
                by_key
                    .entry(row.try_get("", "info")?)
                    .or_default()
                    .insert(row.try_get("", "node")?);
            }
            Ok(by_key)
        };
    let before = placement(
        lab.db()
            .query_all(sql(
                lab.db().get_database_backend(),
                "SELECT info, node FROM job_effects",
                [],
            ))
            .await?,
    )?;
    for (key, nodes) in &before {
        assert_eq!(nodes.len(), 1, "{key} ran on {nodes:?}");
    }
    let owner_of = |map: &HashMap<String, HashSet<String>>, key: &str| {
        map[key].iter().next().cloned().unwrap_or_default()
    };
    // Kill the node that owns the most keys: its heartbeat stops, as after a crash.
    let mut load: BTreeMap<String, usize> = BTreeMap::new();
    for key in &keys {
        *load.entry(owner_of(&before, key)).or_default() += 1;
    }
    let victim = load
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(node, _)| node.clone())
        .unwrap_or_default();
    let victim_index = names.iter().position(|n| *n == victim).context("victim")?;
    drop(handles[victim_index].take());
    // It is dead once its heartbeat is a lease old; survivors notice at their next heartbeat.
    let survivors: Vec<&str> = names.into_iter().filter(|n| *n != victim).collect();
    lab.wait_until_dead_to_others(&victim, &survivors, fast(&victim).lease)
        .await?;
    lab.db()
        .execute_unprepared("DELETE FROM job_effects")
        .await?;
    enqueue_many(lab.db(), &batch("second")).await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        120,
        Duration::from_secs(30),
    )
    .await?;
    let after = placement(
        lab.db()
            .query_all(sql(
                lab.db().get_database_backend(),
                "SELECT info, node FROM job_effects",
                [],
            ))
            .await?,
    )?;
    for key in &keys {
        let was = owner_of(&before, key);
        let now = &after[key];
        assert_eq!(now.len(), 1, "{key} ran on {now:?} after the failover");
        let now = owner_of(&after, key);
        assert_ne!(now, victim, "{key} still went to the dead node");
        if was != victim {
            assert_eq!(now, was, "{key} moved although its node lived");
        }
    }
    stop_all(handles.into_iter().flatten().collect()).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_and_tags_bound_where_and_how_much_runs() -> anyhow::Result<()> {
    let Some(lab) = Lab::new(Backend::Postgres, 3, &[]).await? else {
        return Ok(());
    };
    let running = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    struct Gauge {
        running: Arc<AtomicU64>,
        peak: Arc<AtomicU64>,
        node: String,
        seen: Arc<Mutex<HashSet<String>>>,
    }
    #[async_trait]
    impl JobHandler for Gauge {
        async fn run(&self, _job: &JobContext) -> Result<(), JobError> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            self.seen.lock().insert(self.node.clone());
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }
    let limited = QueueSpec {
        global_concurrency: Some(2),
        ..QueueSpec::any("limited", 8)
    };
    let tagged = QueueSpec {
        strategy: Strategy::Tagged,
        tag: Some("gpu".into()),
        ..QueueSpec::any("tagged", 8)
    };
    let tagged_seen = Arc::new(Mutex::new(HashSet::new()));
    let mut handles = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let registry = Registry::default()
            .queue(limited.clone())
            .queue(tagged.clone())
            .kind(
                KindSpec::new("test.limited", "limited"),
                Gauge {
                    running: running.clone(),
                    peak: peak.clone(),
                    node: name.into(),
                    seen: Arc::default(),
                },
            )
            .kind(
                KindSpec::new("test.tagged", "tagged"),
                Gauge {
                    running: Arc::new(AtomicU64::new(0)),
                    peak: Arc::new(AtomicU64::new(0)),
                    node: name.into(),
                    seen: tagged_seen.clone(),
                },
            );
        let tags = if name == "b" {
            vec!["gpu".to_owned()]
        } else {
            vec![]
        };
        handles.push(
            lab.scheduler(i, NodeSettings { tags, ..fast(name) }, registry)?
                .start()
                .await?,
        );
    }
    let mut jobs: Vec<NewJob> = (0..60)
        .map(|_| NewJob::new("limited", "test.limited", serde_json::json!({})))
        .collect();
    jobs.extend((0..30).map(|_| NewJob::new("tagged", "test.tagged", serde_json::json!({}))));
    enqueue_many(lab.db(), &jobs).await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        90,
        Duration::from_secs(60),
    )
    .await?;
    stop_all(handles).await;
    let peak = peak.load(Ordering::SeqCst);
    // Which of the three nodes win the two slots is timing: only the bound is promised.
    assert!(peak <= 2, "{peak} jobs of a queue limited to 2 ran at once");
    assert_eq!(
        *tagged_seen.lock(),
        HashSet::from(["b".to_owned()]),
        "only the tagged node runs TAGGED work"
    );
    Ok(())
}

// ------------------------------------------------------------------ one node, both backends

on_both_backends!(
    a_panicking_handler_fails_its_attempt_and_frees_its_slot,
    stopping_gives_back_prefetched_jobs_and_finishes_running_ones,
    a_stale_workers_late_completion_is_refused,
    high_priority_jumps_the_backlog,
    failures_back_off_then_dead_letter_and_an_operator_can_retry,
    running_jobs_see_cancellation,
    unique_keys_hold_only_while_a_job_is_live,
);

async fn one_node(backend: Backend) -> anyhow::Result<Option<Lab>> {
    Lab::new(backend, 1, &[]).await
}

async fn a_panicking_handler_fails_its_attempt_and_frees_its_slot(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    struct PanicsOnce {
        calls: Arc<AtomicU64>,
    }
    #[async_trait]
    impl JobHandler for PanicsOnce {
        async fn run(&self, _job: &JobContext) -> Result<(), JobError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a handler bug");
            }
            Ok(())
        }
    }
    let calls = Arc::new(AtomicU64::new(0));
    let kind = KindSpec {
        backoff_base: Duration::from_millis(10),
        ..KindSpec::new("test.panics", "fragile")
    };
    // One slot in the queue: had the panic leaked it, nothing after would ever run.
    let registry = Registry::default()
        .queue(QueueSpec::any("fragile", 1))
        .kind(
            kind,
            PanicsOnce {
                calls: calls.clone(),
            },
        );
    let node = lab.scheduler(0, fast("solo"), registry)?;
    let handle = node.start().await?;
    let first = enqueue(
        lab.db(),
        NewJob::new("fragile", "test.panics", serde_json::json!({})),
    )
    .await?
    .id();
    for _ in 0..3 {
        enqueue(
            lab.db(),
            NewJob::new("fragile", "test.panics", serde_json::json!({})),
        )
        .await?;
    }
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        4,
        Duration::from_secs(20),
    )
    .await?;
    let row = admin::job(lab.db(), first).await?;
    assert_eq!(
        row.attempt, 2,
        "the panicked attempt counted and the job ran again"
    );
    assert_eq!(row.errors[0]["error"], "the handler panicked");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    handle.stop(Duration::from_secs(5)).await;
    assert_eq!(node.in_flight(), 0);
    Ok(())
}

async fn stopping_gives_back_prefetched_jobs_and_finishes_running_ones(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    let counters = Counters::new();
    let registry = effect_registry(
        QueueSpec::any("draining", 8),
        counters.effect(&lab, "solo", Duration::from_millis(400)),
    );
    let node = lab.scheduler(
        0,
        NodeSettings {
            capacity: 1,
            prefetch: 4,
            ..fast("solo")
        },
        registry,
    )?;
    let handle = node.start().await?;
    let jobs: Vec<NewJob> = (0..6)
        .map(|_| NewJob::new("draining", "test.effect", serde_json::json!({})))
        .collect();
    enqueue_many(lab.db(), &jobs).await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'RUNNING'",
        5,
        Duration::from_secs(10),
    )
    .await?;
    handle.stop(Duration::from_secs(5)).await;
    // The one running finished; the prefetched ones went back untouched, attempt and all.
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'RUNNING'")
            .await?,
        0
    );
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM job_effects").await?,
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'")
            .await?
    );
    let returned = lab
        .count("SELECT COUNT(*) AS n FROM jobs WHERE state = 'AVAILABLE' AND attempt = 0 AND lease_owner IS NULL")
        .await?;
    assert!(
        returned >= 4,
        "only {returned} prefetched jobs were given back"
    );
    assert_eq!(node.in_flight(), 0);
    Ok(())
}

async fn a_stale_workers_late_completion_is_refused(backend: Backend) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    let db = lab.db();
    let id = enqueue(
        db,
        NewJob::new("fenced", "test.effect", serde_json::json!({})),
    )
    .await?
    .id();
    let take = |node: &'static str, lease_ms: i64| Claim {
        queue: "fenced",
        node,
        limit: 1,
        lease_until: Utc::now() + chrono::Duration::milliseconds(lease_ms),
        buckets: None,
    };
    let first = claim(db, take("stale", 100)).await?;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    let rescued = Mutex::new(Vec::new());
    poll_until(
        Duration::from_secs(10),
        "the lease to expire and be rescued",
        || async {
            let found = rescue_expired(db).await?;
            let any = !found.is_empty();
            *rescued.lock() = found;
            Ok(any)
        },
    )
    .await?;
    assert_eq!(rescued.lock().len(), 1, "the expired lease is rescued");
    let second = claim(db, take("fresh", 60_000)).await?;
    assert_eq!(
        second[0].attempt, 2,
        "the new claim carries a new fencing token"
    );
    let stale = complete_fenced(
        db,
        "stale",
        Fence {
            job_id: id,
            attempt: 1,
        },
    )
    .await?;
    assert!(
        stale.is_err(),
        "the stale worker's completion must be refused"
    );
    // Even the right node with the old token is refused.
    assert!(complete_fenced(
        db,
        "fresh",
        Fence {
            job_id: id,
            attempt: 1
        }
    )
    .await?
    .is_err());
    let row = admin::job(db, id).await?;
    assert_eq!(
        (row.state.as_str(), row.attempt, row.lease_owner.as_deref()),
        ("RUNNING", 2, Some("fresh"))
    );
    complete_fenced(
        db,
        "fresh",
        Fence {
            job_id: id,
            attempt: 2,
        },
    )
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(admin::job(db, id).await?.state, "COMPLETED");
    Ok(())
}

async fn high_priority_jumps_the_backlog(backend: Backend) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    let counters = Counters::new();
    let registry = effect_registry(
        QueueSpec::any("ordered", 1),
        counters.effect(&lab, "solo", Duration::from_millis(25)),
    );
    let node = lab.scheduler(
        0,
        NodeSettings {
            capacity: 1,
            prefetch: 0,
            ..fast("solo")
        },
        registry,
    )?;
    let handle = node.start().await?;
    admin::set_paused(lab.db(), "ordered", true).await?;
    node.queue_settings_changed();
    let backlog: Vec<NewJob> = (0..40)
        .map(|i| {
            NewJob::new(
                "ordered",
                "test.effect",
                serde_json::json!({ "info": format!("low-{i}") }),
            )
        })
        .collect();
    enqueue_many(lab.db(), &backlog).await?;
    enqueue(
        lab.db(),
        NewJob::new(
            "ordered",
            "test.effect",
            serde_json::json!({ "info": "urgent" }),
        )
        .priority(50),
    )
    .await?;
    admin::set_paused(lab.db(), "ordered", false).await?;
    node.queue_settings_changed();
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM job_effects",
        41,
        Duration::from_secs(30),
    )
    .await?;
    // While the queue runs, a new urgent job overtakes whatever still waits.
    enqueue_many(
        lab.db(),
        &(0..40)
            .map(|i| {
                NewJob::new(
                    "ordered",
                    "test.effect",
                    serde_json::json!({ "info": format!("later-{i}") }),
                )
            })
            .collect::<Vec<_>>(),
    )
    .await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM job_effects",
        46,
        Duration::from_secs(30),
    )
    .await?;
    enqueue(
        lab.db(),
        NewJob::new(
            "ordered",
            "test.effect",
            serde_json::json!({ "info": "urgent-2" }),
        )
        .priority(50),
    )
    .await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM job_effects",
        82,
        Duration::from_secs(30),
    )
    .await?;
    handle.stop(Duration::from_secs(5)).await;
    assert_eq!(
        seq_of(&lab, "urgent").await?,
        1,
        "the urgent job ran before the paused backlog"
    );
    let urgent_2 = seq_of(&lab, "urgent-2").await?;
    let later_done_after: i64 = lab
        .count(&format!(
            "SELECT COUNT(*) AS n FROM job_effects WHERE info LIKE 'later-%' AND seq > {urgent_2}"
        ))
        .await?;
    assert!(later_done_after >= 20, "urgent-2 (run #{urgent_2}) waited behind the backlog: only {later_done_after} ran after it");
    Ok(())
}

/// Which run, counted on the node, recorded the effect with `info`.
async fn seq_of(lab: &Lab, info: &str) -> anyhow::Result<i32> {
    let row = lab
        .db()
        .query_one(sql(
            lab.db().get_database_backend(),
            "SELECT seq FROM job_effects WHERE info = $1",
            [info.into()],
        ))
        .await?
        .context("no effect")?;
    Ok(row.try_get::<i32>("", "seq")?)
}

async fn failures_back_off_then_dead_letter_and_an_operator_can_retry(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    struct Flaky {
        fail_until: Arc<AtomicU64>,
        calls: Arc<AtomicU64>,
    }
    #[async_trait]
    impl JobHandler for Flaky {
        async fn run(&self, _job: &JobContext) -> Result<(), JobError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if call <= self.fail_until.load(Ordering::SeqCst) {
                return Err(JobError::Retry(format!("boom {call}")));
            }
            Ok(())
        }
    }
    let calls = Arc::new(AtomicU64::new(0));
    let fail_until = Arc::new(AtomicU64::new(3));
    let kind = KindSpec {
        backoff_base: Duration::from_millis(50),
        max_attempts: 3,
        ..KindSpec::new("test.flaky", "flaky")
    };
    let registry = Registry::default().queue(QueueSpec::any("flaky", 2)).kind(
        kind,
        Flaky {
            fail_until,
            calls: calls.clone(),
        },
    );
    let handle = lab.scheduler(0, fast("solo"), registry)?.start().await?;
    let id = enqueue(
        lab.db(),
        NewJob::new("flaky", "test.flaky", serde_json::json!({})).max_attempts(3),
    )
    .await?
    .id();
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'DISCARDED'",
        1,
        Duration::from_secs(20),
    )
    .await?;
    let dead = admin::job(lab.db(), id).await?;
    assert_eq!(dead.attempt, 3);
    let history = dead.errors.as_array().cloned().unwrap_or_default();
    assert_eq!(
        history.len(),
        3,
        "every failed attempt is kept: {history:?}"
    );
    assert_eq!(history[2]["error"], "boom 3");
    // Each retry waited at least its backoff (base 50 ms, doubling, jitter at most -25 %).
    let at = |i: usize| -> anyhow::Result<chrono::DateTime<Utc>> {
        Ok(serde_json::from_value(history[i]["at"].clone())?)
    };
    assert!((at(1)? - at(0)?).num_milliseconds() >= 37, "{history:?}");
    assert!((at(2)? - at(1)?).num_milliseconds() >= 75, "{history:?}");
    assert_eq!(dead.last_error.as_deref(), Some("boom 3"));
    assert!(dead.finished_at.is_some());
    // Retrying a finished-well job is refused; a dead letter runs again, keeping its token.
    let retried = admin::retry(lab.db(), id).await?;
    assert_eq!(
        (retried.state.as_str(), retried.max_attempts),
        ("AVAILABLE", 4)
    );
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        1,
        Duration::from_secs(20),
    )
    .await?;
    assert_eq!(admin::job(lab.db(), id).await?.attempt, 4);
    assert!(matches!(
        admin::retry(lab.db(), id).await,
        Err(admin::AdminError::Conflict(_))
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    handle.stop(Duration::from_secs(5)).await;
    Ok(())
}

struct Patient {
    started: Arc<AtomicU64>,
}

#[async_trait]
impl JobHandler for Patient {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        job.progress(10, "waiting to be told").await?;
        tokio::select! {
            _ = job.cancelled() => Err(JobError::Cancelled),
            _ = tokio::time::sleep(Duration::from_secs(60)) => Ok(()),
        }
    }
}

async fn cancel_running_job(lab: &Lab, runner: usize) -> anyhow::Result<()> {
    let started = Arc::new(AtomicU64::new(0));
    let registry = Registry::default()
        .queue(QueueSpec::any("patient", 2))
        .kind(
            KindSpec::new("test.patient", "patient"),
            Patient {
                started: started.clone(),
            },
        );
    // A long lease: the cancellation must arrive by the bus, not by the heartbeat.
    let handle = lab
        .scheduler(
            runner,
            NodeSettings {
                lease: Duration::from_secs(30),
                ..fast("runner")
            },
            registry,
        )?
        .start()
        .await?;
    let id = enqueue(
        lab.db(),
        NewJob::new("patient", "test.patient", serde_json::json!({})),
    )
    .await?
    .id();
    let waiting = enqueue(
        lab.db(),
        NewJob::new("patient", "test.patient", serde_json::json!({}))
            .run_at(Utc::now() + chrono::Duration::hours(1)),
    )
    .await?
    .id();
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE progress = 10",
        1,
        Duration::from_secs(20),
    )
    .await?;

    let cancelled = admin::cancel(lab.db(), id).await?;
    assert!(matches!(cancelled, admin::Cancelled::Requested(_)));
    // The request reaches the running node over the bus (published by the caller after commit).
    interlink::platform::events::bus::signal(
        lab.apps[0].state.bus.as_ref(),
        &admin::cancel_signal(id),
    )
    .await?;
    // The heartbeat would see the flag only after 10 s (a third of the lease): within 5 s it
    // can only have come over the bus.
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'CANCELLED'",
        1,
        Duration::from_secs(5),
    )
    .await?;
    assert!(matches!(
        admin::cancel(lab.db(), waiting).await?,
        admin::Cancelled::Now(_)
    ));
    assert!(matches!(
        admin::cancel(lab.db(), id).await,
        Err(admin::AdminError::Conflict(_))
    ));
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "the scheduled job never started"
    );
    handle.stop(Duration::from_secs(5)).await;
    Ok(())
}

async fn running_jobs_see_cancellation(backend: Backend) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    cancel_running_job(&lab, 0).await
}

/// Cancellation crosses nodes through a Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_another_node_through_a_redis_cluster() -> anyhow::Result<()> {
    let Ok(cluster) = std::env::var("TEST_REDIS_CLUSTER_URL") else {
        anyhow::ensure!(
            std::env::var("INTERLINK_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "TEST_REDIS_CLUSTER_URL is not set"
        );
        return Ok(());
    };
    let Some(lab) = Lab::new(Backend::Postgres, 2, &[("REDIS_URL", &cluster)]).await? else {
        return Ok(());
    };
    // The job runs on node 1; node 0 cancels and publishes.
    cancel_running_job(&lab, 1).await
}

async fn unique_keys_hold_only_while_a_job_is_live(backend: Backend) -> anyhow::Result<()> {
    let Some(lab) = one_node(backend).await? else {
        return Ok(());
    };
    let db = lab.db();
    let job = || NewJob::new("unique", "test.effect", serde_json::json!({})).unique("invoice-7");
    let first = enqueue(db, job()).await?;
    let again = enqueue(db, job()).await?;
    assert!(matches!(first, Enqueued::Created(_)));
    assert_eq!(again, Enqueued::Duplicate(first.id()));
    let counters = Counters::new();
    let handle = lab
        .scheduler(
            0,
            fast("solo"),
            effect_registry(
                QueueSpec::any("unique", 2),
                counters.effect(&lab, "solo", Duration::ZERO),
            ),
        )?
        .start()
        .await?;
    lab.wait_for(
        "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'",
        1,
        Duration::from_secs(20),
    )
    .await?;
    let later = enqueue(db, job()).await?;
    assert!(
        matches!(later, Enqueued::Created(id) if id != first.id()),
        "a finished job frees its key"
    );
    // Bad input is refused before it reaches a row.
    let huge = NewJob::new(
        "unique",
        "test.effect",
        serde_json::json!({ "blob": "x".repeat(scheduler::MAX_ARGS_BYTES) }),
    );
    assert!(matches!(
        enqueue(db, huge).await,
        Err(scheduler::EnqueueError::ArgsTooLarge(_))
    ));
    // A job enqueued in a transaction that rolls back never exists.
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    enqueue(
        &txn,
        NewJob::new("unique", "test.effect", serde_json::json!({})).unique("rolled-back"),
    )
    .await?;
    txn.rollback().await?;
    assert_eq!(
        lab.count("SELECT COUNT(*) AS n FROM jobs WHERE unique_key = 'rolled-back'")
            .await?,
        0
    );
    handle.stop(Duration::from_secs(5)).await;
    Ok(())
}
