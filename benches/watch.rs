//! The write scenario's subscriber: one graphql-transport-ws subscription to every task event
//! the signed-in user may see, held until SIGINT. It then prints how many events of `KIND`
//! arrived and their delivery latency, from the event's `at` (stamped by the node as the change
//! commits, just before the commit) to arrival here; both clocks are this machine's. "Missed"
//! counts events of every kind the server said this subscriber fell behind on. Not a test: it
//! prints figures.
//!
//! `URL=http://127.0.0.1:18080 TOKEN=… KIND=PROGRESS_REPORTED cargo bench --bench watch`

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = common::env("URL")?;
    let token = common::env("TOKEN")?;
    let kind = common::env("KIND")?;
    let subscribing = common::subscribe(
        &url,
        &token,
        "subscription { taskEvents { kind at } }",
        Value::Null,
    );
    let mut socket = tokio::time::timeout(Duration::from_secs(10), subscribing).await??;
    println!("watching taskEvents for {kind}");

    let mut latencies = Vec::new();
    let mut other_kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut missed = 0u64;
    let mut failure = None;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            _ = &mut stop => break,
            message = socket.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            ended => {
                // Report what arrived before failing, so a broken run is visible as one.
                failure = Some(format!("the subscription ended: {ended:?}"));
                break;
            }
        };
        let arrived = Utc::now();
        let value: Value = serde_json::from_str(text.as_str())?;
        let event = value.pointer("/payload/data/taskEvents");
        let at = event
            .and_then(|e| e.get("at"))
            .and_then(Value::as_str)
            .and_then(|at| at.parse::<DateTime<Utc>>().ok());
        match (
            event.and_then(|e| e.get("kind")).and_then(Value::as_str),
            at,
        ) {
            (Some(found), Some(at)) if found == kind => {
                latencies.push((arrived - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
            (Some(other), _) => *other_kinds.entry(other.to_owned()).or_default() += 1,
            (None, _) => {
                // A subscriber that falls behind is told how many events it missed.
                let message = value
                    .pointer("/payload/errors/0/message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match message
                    .strip_prefix("this subscriber fell behind and missed ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    Some(n) => missed += n,
                    None => *other_kinds.entry(format!("message: {text}")).or_default() += 1,
                }
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "{} {kind} events delivered; {missed} missed by falling behind (the subscriber was told); other messages {other_kinds:?}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        common::percentile(&latencies, 50.0),
        common::percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    match failure {
        Some(failure) => anyhow::bail!(failure),
        None => Ok(()),
    }
}
