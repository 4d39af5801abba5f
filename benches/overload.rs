//! Load shedding under overload: measures the capacity of one signed-in query (closed loop),
//! offers five times that rate (open loop, so a slow server cannot slow the offer down), then
//! reports the shed 503s, the p99 of admitted requests, and how long after the overload stops
//! the node answers again as it did before. Driven by `bench/overload`.

#[expect(dead_code, reason = "the websocket helpers are for the other benches")]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::json;

const CAPACITY_WORKERS: usize = 32;

#[derive(Default)]
struct Outcomes {
    ok_ms: Vec<f64>,
    shed: usize,
    other: usize,
}

async fn one(http: &reqwest::Client, url: &str, token: &str, body: &str) -> (u16, f64) {
    let started = Instant::now();
    let status = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed().as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = format!("{}/graphql", common::env("URL")?);
    let token = common::env("TOKEN")?;
    let secs: u64 = std::env::var("SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let body = json!({ "query": "{ tasks(first: 20) { totalCount nodes { id title status } } }" })
        .to_string();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(60))
        .build()?;

    // Capacity: as many workers as keep the server busy, each waiting for its answer.
    let done = Arc::new(Mutex::new(Outcomes::default()));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for _ in 0..CAPACITY_WORKERS {
        let (http, url, token, body, done) = (
            http.clone(),
            url.clone(),
            token.clone(),
            body.clone(),
            done.clone(),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < until {
                let (status, ms) = one(&http, &url, &token, &body).await;
                let mut done = done.lock();
                match status {
                    200 => done.ok_ms.push(ms),
                    503 => done.shed += 1,
                    _ => done.other += 1,
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let (capacity, baseline_p50) = {
        let mut done = done.lock();
        done.ok_ms.sort_by(f64::total_cmp);
        (
            done.ok_ms.len() as f64 / secs as f64,
            common::percentile(&done.ok_ms, 50.0),
        )
    };
    println!("capacity: {capacity:.0} req/s (closed loop, {CAPACITY_WORKERS} workers), p50 {baseline_p50:.1} ms");

    // Overload: five times the capacity, one request started every 1/rate seconds whatever
    // the answers do.
    let rate = (capacity * 5.0).max(1.0);
    let done = Arc::new(Mutex::new(Outcomes::default()));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let until = Instant::now() + Duration::from_secs(secs);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut offered = 0usize;
    while Instant::now() < until {
        tick.tick().await;
        offered += 1;
        let (http, url, token, body, done) = (
            http.clone(),
            url.clone(),
            token.clone(),
            body.clone(),
            done.clone(),
        );
        in_flight.spawn(async move {
            let (status, ms) = one(&http, &url, &token, &body).await;
            let mut done = done.lock();
            match status {
                200 => done.ok_ms.push(ms),
                503 => done.shed += 1,
                _ => done.other += 1,
            }
        });
        while in_flight.try_join_next().is_some() {}
    }
    let stopped = Instant::now();

    // Recovery: from the end of the offer until a lone request is answered 200 within twice
    // the unloaded median (the queue has drained).
    let recovered = loop {
        let (status, ms) = one(&http, &url, &token, &body).await;
        if status == 200 && ms <= (baseline_p50 * 2.0).max(5.0) {
            break stopped.elapsed();
        }
        if stopped.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("not recovered 120 s after the overload stopped");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while in_flight.join_next().await.is_some() {}
    let mut done = done.lock();
    done.ok_ms.sort_by(f64::total_cmp);
    println!(
        "overload: offered {offered} requests at {rate:.0} req/s for {secs} s (5x capacity): \
         {} admitted (p50 {:.1} ms, p99 {:.1} ms), {} shed with 503, {} other (errors or statuses)",
        done.ok_ms.len(),
        common::percentile(&done.ok_ms, 50.0),
        common::percentile(&done.ok_ms, 99.0),
        done.shed,
        done.other
    );
    println!(
        "recovered {:.2} s after the overload stopped",
        recovered.as_secs_f64()
    );
    Ok(())
}
