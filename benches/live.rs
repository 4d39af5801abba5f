//! Live fan-out: N graphql-transport-ws subscribers to one task's events while comments are
//! added to it. Prints delivery latency (from the k-th mutation being sent to each subscriber
//! receiving its k-th event; events of one task arrive in order) and the server's resident
//! memory per subscriber. Not a test: it prints figures.
//!
//! `URL=http://127.0.0.1:18080 TOKEN=… TASK_ID=… SERVER_PID=… N=1000 cargo bench --bench live`
//! (`bench/run` sets these.) Raise `ulimit -n` above N for both processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

mod common;

const MUTATIONS: usize = 20;
const MUTATION_GAP: Duration = Duration::from_millis(250);

fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// Opens one subscriber; returns once the subscription is acknowledged by the first message
/// round trip, then records each event's latency until the socket closes.
async fn subscriber(
    url: String,
    token: String,
    task_id: String,
    ready: tokio::sync::mpsc::Sender<()>,
    sent: Arc<Mutex<Vec<Instant>>>,
    latencies: Arc<Mutex<Vec<f64>>>,
) -> anyhow::Result<()> {
    let mut socket = common::subscribe(
        &url,
        &token,
        "subscription($id: ID!) { taskEvents(taskId: $id) { kind } }",
        json!({ "id": task_id }),
    )
    .await?;
    let _ = ready.send(()).await;
    let mut received = 0;
    while let Some(message) = socket.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        if value
            .pointer("/payload/data/taskEvents/kind")
            .and_then(Value::as_str)
            == Some("COMMENT_ADDED")
        {
            let at = Instant::now();
            if let Some(sent) = sent.lock().get(received) {
                latencies
                    .lock()
                    .push(at.duration_since(*sent).as_secs_f64() * 1000.0);
            }
            received += 1;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = common::env("URL")?;
    let token = common::env("TOKEN")?;
    let task_id = common::env("TASK_ID")?;
    let pid = common::env("SERVER_PID")?;
    let n: usize = common::env("N")?.parse()?;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n * MUTATIONS)));
    let sent = Arc::new(Mutex::new(Vec::with_capacity(MUTATIONS)));
    let before = rss_kib(&pid)?;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(1024);
    let started = Instant::now();
    let mut subscribers = Vec::with_capacity(n);
    for _ in 0..n {
        subscribers.push(tokio::spawn(subscriber(
            url.clone(),
            token.clone(),
            task_id.clone(),
            ready_tx.clone(),
            sent.clone(),
            latencies.clone(),
        )));
    }
    drop(ready_tx);
    let mut connected = 0;
    while connected < n {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(())) => connected += 1,
            _ => break,
        }
    }
    // Let the server finish setting up the last subscriptions before measuring it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_subscribers = rss_kib(&pid)?;
    println!(
        "{connected} of {n} subscribers connected in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::new();
    for k in 0..MUTATIONS {
        sent.lock().push(Instant::now());
        let reply: Value = http
            .post(format!("{url}/graphql"))
            .bearer_auth(&token)
            .json(&json!({
                "query": "mutation($id: ID!, $b: String!) { addTaskComment(taskId: $id, body: $b) { id } }",
                "variables": { "id": task_id, "b": format!("live comment {k}") } }))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            reply.pointer("/data/addTaskComment/id").is_some(),
            "comment failed: {reply}"
        );
        tokio::time::sleep(MUTATION_GAP).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut samples = latencies.lock().clone();
    samples.sort_by(f64::total_cmp);
    let expected = connected * MUTATIONS;
    println!(
        "N={n}: {} of {expected} deliveries; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        common::percentile(&samples, 50.0),
        common::percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "server RSS {} MB before, {} MB with {connected} subscribers: {:.1} KB per subscriber",
        before / 1024,
        with_subscribers / 1024,
        (with_subscribers.saturating_sub(before)) as f64 / connected.max(1) as f64
    );
    for subscriber in subscribers {
        subscriber.abort();
    }
    Ok(())
}
