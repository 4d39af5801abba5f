//! Fault tests: a service or a node dies in the middle of work, and the promises still hold.
//! Each starts what it kills itself (a private Redis, node processes) and stops it on drop.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use interlink::platform::db::sql;
use interlink::platform::metrics::SchedulerMetrics;
use interlink::platform::scheduler::{
    enqueue_many, JobContext, JobError, JobHandler, KindSpec, NewJob, NodeSettings, QueueSpec,
    Registry, Scheduler,
};
use parking_lot::Mutex;
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;

use crate::helpers::{free_port, poll_until, Backend, Deployment, ServerProcess};
use crate::websocket::{connect, init, next, send};

async fn count(db: &DatabaseConnection, query: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one(sql(db.get_database_backend(), query, []))
        .await?
        .context("a count returned no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

// ------------------------------------------------------------------ Redis killed mid-run

/// A redis-server of this test's own on a free loopback port: the shared one is never touched.
struct PrivateRedis {
    port: u16,
    child: Option<tokio::process::Child>,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    async fn start() -> anyhow::Result<Self> {
        let mut redis = Self {
            port: free_port()?,
            child: None,
            dir: tempfile::tempdir()?,
        };
        redis.spawn().await?;
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server (is it installed?)")?;
        self.child = Some(child);
        let client = redis::Client::open(self.url())?;
        poll_until(Duration::from_secs(20), "the private Redis", || async {
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return Ok(false);
            };
            let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut conn).await;
            Ok(pong.is_ok())
        })
        .await
    }

    /// SIGKILL: connections drop mid-command, as when the host dies.
    async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }
}

/// Records one row per job id in `fault_effects`; a second effect for one job is counted, not
/// failed, so the test can tell "ran twice" from "did not run".
struct Effect {
    db: DatabaseConnection,
    runs: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
}

#[async_trait]
impl JobHandler for Effect {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let inserted = self
            .db
            .execute(sql(
                self.db.get_database_backend(),
                "INSERT INTO fault_effects (job_id) VALUES ($1)",
                [job.id.to_string().into()],
            ))
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                self.duplicates.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }
}

const JOBS: usize = 10_000;
const COMPLETED: &str = "SELECT COUNT(*) AS n FROM jobs WHERE state = 'COMPLETED'";

/// A cursor before every event: the subscriber follows the whole log and picks out the jobs.
const BEFORE_EVERYTHING: &str = "00000000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_and_restarted_mid_run_loses_no_job_and_no_live_event() -> anyhow::Result<()> {
    let Some(mut deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    let mut redis = PrivateRedis::start().await?;
    deployment.vars.insert("REDIS_URL".into(), redis.url());
    // Two nodes: the subscriber's node may or may not be the one relaying the log.
    let nodes = [deployment.node().await?, deployment.node().await?];
    let db = nodes[0].state.db.conn.clone();
    db.execute_unprepared("CREATE TABLE fault_effects (job_id VARCHAR(64) PRIMARY KEY)")
        .await?;

    let admin = nodes[0].admin().await?;
    let mut socket = connect(&nodes[0]).await?;
    init(&mut socket, Some(&admin.access)).await?;
    send(&mut socket, json!({ "id": "jobs", "type": "subscribe", "payload": {
        "query": "subscription($after: String) { jobEvents(queue: \"bulk\", after: $after) { jobId state cursor } }",
        "variables": { "after": BEFORE_EVERYTHING } } }))
    .await?;
    // Completions seen live, per job; whatever else arrives is kept to explain a failure.
    let heard: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let trouble: Arc<Mutex<Option<String>>> = Arc::default();
    let listener = {
        let (heard, trouble) = (heard.clone(), trouble.clone());
        tokio::spawn(async move {
            loop {
                // The outage is bounded by the test, not by this read.
                match next(&mut socket, Duration::from_secs(300)).await {
                    Ok(message) if message["type"] == "next" => {
                        let event = &message["payload"]["data"]["jobEvents"];
                        if event["state"] == "COMPLETED" {
                            let id = event["jobId"].as_str().unwrap_or_default().to_owned();
                            *heard.lock().entry(id).or_default() += 1;
                        }
                    }
                    Ok(other) => {
                        *trouble.lock() = Some(format!("unexpected message {other}"));
                        return;
                    }
                    Err(err) => {
                        *trouble.lock() = Some(format!("the subscription broke: {err:#}"));
                        return;
                    }
                }
            }
        })
    };

    let jobs = |n: usize| -> Vec<NewJob> {
        (0..n)
            .map(|_| NewJob::new("bulk", "test.effect", json!({})))
            .collect()
    };
    // The last ones are enqueued after the restart, so some work is sure to follow the outage.
    const LATE: usize = JOBS / 5;
    assert_eq!(
        enqueue_many(&db, &jobs(JOBS - LATE)).await?,
        (JOBS - LATE) as u64
    );
    let (runs, duplicates) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut schedulers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let registry = Registry::default().queue(QueueSpec::any("bulk", 32)).kind(
            KindSpec::new("test.effect", "bulk"),
            Effect {
                db: db.clone(),
                runs: runs.clone(),
                duplicates: duplicates.clone(),
            },
        );
        // The default lease: an outage of Redis must not cost anyone a lease.
        let settings = NodeSettings {
            poll_interval: Duration::from_millis(100),
            ..NodeSettings::new(format!("fault-c-{i}"))
        };
        let scheduler = Scheduler::new(
            node.state.db.clone(),
            node.state.bus.clone(),
            settings,
            registry,
            SchedulerMetrics::new()?,
        );
        schedulers.push(scheduler.start().await?);
    }

    let limit = Duration::from_secs(120);
    poll_until(limit, "a fifth of the jobs done", || async {
        Ok(count(&db, COMPLETED).await? >= (JOBS / 5) as i64)
    })
    .await?;
    redis.kill().await?;
    let at_kill = count(&db, COMPLETED).await?;
    // Jobs live in the database: work goes on without Redis (and its events go to the log).
    poll_until(limit, "jobs to complete while Redis is down", || async {
        Ok(count(&db, COMPLETED).await? >= at_kill + (JOBS / 10) as i64)
    })
    .await?;
    poll_until(limit, "readiness to report the lost Redis", || async {
        let ready = nodes[0].http.get(nodes[0].url("/readyz")).send().await?;
        Ok(ready.status() == 503)
    })
    .await?;
    redis.spawn().await?;
    let at_restart = count(&db, COMPLETED).await?;
    assert_eq!(enqueue_many(&db, &jobs(LATE)).await?, LATE as u64);
    poll_until(limit, "every job to complete", || async {
        Ok(count(&db, COMPLETED).await? == JOBS as i64)
    })
    .await?;
    poll_until(limit, "the subscriber to hear every completion", || async {
        if let Some(trouble) = trouble.lock().clone() {
            anyhow::bail!(trouble);
        }
        Ok(heard.lock().len() == JOBS)
    })
    .await?;
    for handle in schedulers {
        handle.stop(Duration::from_secs(5)).await;
    }
    listener.abort();
    println!(
        "Redis killed after {at_kill} of {JOBS} jobs, restarted after {at_restart}; every completion heard live"
    );

    assert_eq!(
        count(&db, "SELECT COUNT(*) AS n FROM fault_effects").await?,
        JOBS as i64
    );
    assert_eq!(
        duplicates.load(Ordering::SeqCst),
        0,
        "a job's effect ran twice"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        JOBS as u64,
        "a handler ran twice"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) AS n FROM jobs WHERE attempt <> 1").await?,
        0,
        "a job was rescued or retried"
    );
    let heard = heard.lock();
    let twice: Vec<_> = heard.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "completions delivered more than once: {twice:?}"
    );
    Ok(())
}

// ------------------------------------------------------------------ cron, a node killed

/// The built-in scans, each a cron schedule named after its kind.
const SCANS: [&str; 4] = [
    interlink::domains::tasks::jobs::DEADLINE_REMINDERS,
    interlink::domains::tasks::jobs::OVERDUE_ESCALATION,
    interlink::domains::tasks::jobs::RECURRING_TASKS,
    "approvals.sla_escalation",
];

struct Fire {
    slot: DateTime<Utc>,
    job_id: Option<String>,
    fired_at: DateTime<Utc>,
}

async fn fires(db: &DatabaseConnection) -> anyhow::Result<BTreeMap<String, Vec<Fire>>> {
    let rows = db
        .query_all(sql(
            db.get_database_backend(),
            "SELECT schedule, slot, CAST(job_id AS TEXT) AS job_id, fired_at FROM cron_fires ORDER BY schedule, slot",
            [],
        ))
        .await?;
    let mut by_schedule: BTreeMap<String, Vec<Fire>> = BTreeMap::new();
    for row in rows {
        let schedule: String = row.try_get("", "schedule")?;
        if SCANS.contains(&schedule.as_str()) {
            by_schedule.entry(schedule).or_default().push(Fire {
                slot: row.try_get("", "slot")?,
                job_id: row.try_get("", "job_id")?,
                fired_at: row.try_get("", "fired_at")?,
            });
        }
    }
    Ok(by_schedule)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_on_three_nodes_fires_every_slot_once_when_one_is_killed() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(
        Backend::Postgres,
        &[
            ("INTERLINK_SCAN_CRON", "* * * * * *"),
            ("INTERLINK_CRON_TICK_MS", "100"),
            ("INTERLINK_JOB_POLL_MS", "100"),
            ("INTERLINK_JOB_LEASE_MS", "1500"),
        ],
    )
    .await?
    else {
        return Ok(());
    };
    // The test's own view of the database; it runs no jobs.
    let observer = deployment.node().await?;
    let db = observer.state.db.conn.clone();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let id = format!("cron-{i}");
        nodes.push(
            ServerProcess::start(
                &deployment,
                &[("INTERLINK_SCHEDULER", "true"), ("INTERLINK_NODE_ID", &id)],
            )
            .await?,
        );
    }
    let limit = Duration::from_secs(60);
    let slots_fired = || async {
        let fires = fires(&db).await?;
        anyhow::Ok(
            SCANS
                .iter()
                .map(|s| fires.get(*s).map_or(0, Vec::len))
                .min()
                .unwrap_or(0),
        )
    };
    poll_until(limit, "two slots of every scan", || async {
        Ok(slots_fired().await? >= 2)
    })
    .await?;
    // A random moment, which may fall inside a node's claim of a slot or run of its job.
    let (victim, pause) = {
        let mut rng = rand::thread_rng();
        (rng.gen_range(0..nodes.len()), rng.gen_range(0..2000u64))
    };
    tokio::time::sleep(Duration::from_millis(pause)).await;
    nodes[victim].kill().await?;
    let killed_at = Utc::now();
    poll_until(limit, "four slots of every scan after the kill", || async {
        let fires = fires(&db).await?;
        Ok(SCANS.iter().all(|s| {
            fires
                .get(*s)
                .is_some_and(|f| f.iter().filter(|f| f.fired_at > killed_at).count() >= 4)
        }))
    })
    .await?;
    for node in &mut nodes {
        node.kill().await?;
    }

    let fires = fires(&db).await?;
    for schedule in SCANS {
        let fired = fires.get(schedule).context("a scan never fired")?;
        // Every second from the first fire to the last, none twice (the slot is the key, so
        // "twice" would show as a repeated slot), none missing while two nodes lived.
        for pair in fired.windows(2) {
            assert_eq!(
                (pair[1].slot - pair[0].slot).num_seconds(),
                1,
                "{schedule}: a slot was skipped or doubled around {} (node {victim} killed at {killed_at})",
                pair[0].slot
            );
        }
        // One job per slot, made by that slot.
        for fire in fired {
            let job = fire.job_id.as_deref().context("a fire without its job")?;
            let key = format!("cron:{schedule}:{}", fire.slot.timestamp());
            let row = db
                .query_one(sql(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM jobs WHERE CAST(id AS TEXT) = $1 AND kind = $2 AND unique_key = $3",
                    [job.into(), schedule.into(), key.into()],
                ))
                .await?
                .context("count")?;
            assert_eq!(
                row.try_get::<i64>("", "n")?,
                1,
                "{schedule} {}: job {job}",
                fire.slot
            );
        }
        let jobs = db
            .query_one(sql(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM jobs WHERE kind = $1",
                [schedule.into()],
            ))
            .await?
            .context("count")?
            .try_get::<i64>("", "n")?;
        assert_eq!(jobs, fired.len() as i64, "{schedule}: jobs without a slot");
    }
    println!(
        "cron: node {victim} killed {pause} ms after two slots; {} slots of each scan checked",
        SCANS
            .iter()
            .filter_map(|s| fires.get(*s).map(Vec::len))
            .min()
            .unwrap_or(0)
    );
    Ok(())
}

// ------------------------------------------------------------------ a node's subscription lost

async fn redis_command(
    conn: &mut redis::aio::MultiplexedConnection,
    cmd: &redis::Cmd,
) -> anyhow::Result<String> {
    let reply: redis::Value = cmd.query_async(conn).await?;
    Ok(format!("{reply:?}"))
}

/// Reads `events` until the USER_CREATED of `user`.
async fn until_created(socket: &mut crate::websocket::Socket, user: &str) -> anyhow::Result<()> {
    loop {
        let message = next(socket, Duration::from_secs(30)).await?;
        anyhow::ensure!(
            message["type"] == "next",
            "expected an event, got {message}"
        );
        let event = &message["payload"]["data"]["events"];
        if event["kind"] == "USER_CREATED" && event["subjectId"] == user {
            return Ok(());
        }
    }
}

/// Entries the relay publishes while a node's Redis subscription is down never reach that
/// node; when nothing follows them, only the reattachment itself can tell its subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_redis_pubsub_catches_up_when_it_reattaches() -> anyhow::Result<()> {
    let Some(mut deployment) = Deployment::new(Backend::Postgres, &[]).await? else {
        return Ok(());
    };
    let redis = PrivateRedis::start().await?;
    let url = redis.url();
    deployment.vars.insert("REDIS_URL".into(), url.clone());
    let app = deployment.node().await?;
    let admin = app.admin().await?;
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    send(&mut socket, json!({ "id": "log", "type": "subscribe", "payload": {
        "query": "subscription($after: String) { events(after: $after, topics: [IDENTITY]) { kind subjectId cursor } }",
        "variables": { "after": BEFORE_EVERYTHING } } }))
    .await?;
    // Once the first user's event has arrived, the subscriber has left the log for live entries.
    let first = app
        .create_user(
            &admin.access,
            &crate::helpers::unique_email("before"),
            "a good password",
        )
        .await?;
    until_created(&mut socket, &first).await?;

    // New connections refused, then the node's subscription dropped: it cannot come back yet,
    // while the relay keeps publishing on its command connection. This test's own connection
    // is made first, so it can lift the limit again.
    let mut control = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let info = redis_command(&mut control, redis::cmd("INFO").arg("clients")).await?;
    let connected: u32 = info
        .split("connected_clients:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("connected_clients in {info}"))?;
    redis_command(
        &mut control,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxclients")
            .arg(connected - 1),
    )
    .await?;
    redis_command(
        &mut control,
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"),
    )
    .await?;
    let limit = Duration::from_secs(30);
    poll_until(
        limit,
        "the node to notice its lost subscription",
        || async {
            let ready = app.http.get(app.url("/readyz")).send().await?;
            Ok(ready.status() == 503)
        },
    )
    .await?;
    let unheard = app
        .create_user(
            &admin.access,
            &crate::helpers::unique_email("unheard"),
            "a good password",
        )
        .await?;
    // Readers see an entry once no older transaction is still running anywhere on the server
    // (the commit horizon), and other tests share the server: poll for it.
    let seen = parking_lot::Mutex::new(None::<String>);
    poll_until(limit, "the unheard user's event in the log", || async {
        let page = app
            .gql_ok(
                Some(&admin.access),
                "query($after: String) { events(after: $after, first: 100, topics: [IDENTITY]) { edges { node { kind subjectId cursor } } } }",
                json!({ "after": BEFORE_EVERYTHING }),
            )
            .await?;
        let found = page["events"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| &e["node"])
            .find(|n| n["kind"] == "USER_CREATED" && n["subjectId"] == unheard.as_str())
            .and_then(|n| n["cursor"].as_str())
            .map(str::to_owned);
        let found_it = found.is_some();
        *seen.lock() = found;
        Ok(found_it)
    })
    .await?;
    let cursor = seen
        .lock()
        .clone()
        .context("the unheard user's event in the log")?;
    let db = app.state.db.conn.clone();
    poll_until(limit, "the relay to publish the unheard event", || async {
        let relayed = interlink::platform::events::log::relayed_through(&db).await?;
        Ok(relayed.to_string() >= cursor)
    })
    .await?;
    redis_command(
        &mut control,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxclients")
            .arg(10_000),
    )
    .await?;
    // Nothing else is written: the event can only come from reading the log on reattaching.
    until_created(&mut socket, &unheard).await?;
    Ok(())
}
