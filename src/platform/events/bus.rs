//! The bus: publish/subscribe between nodes through Redis, or in process.
//!
//! Each node holds one broadcast channel. Local subscribers (websocket clients) read from it;
//! with Redis, one subscriber task per node feeds it, so a node never opens a Redis
//! connection per client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::Envelope;
use crate::platform::redis::{RedisLink, RedisTarget};

/// How many events a slow local subscriber may fall behind before it is told it lagged.
pub(crate) const LOCAL_BUFFER: usize = 1024;

/// What travels on the bus: a committed log entry, or a control signal between nodes (a job
/// cancellation, a queue change) that is not a domain event and is never logged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    Event(Arc<Envelope>),
    Signal(Signal),
    /// Never published: this node's Redis subscription was lost and is attached again. What was
    /// published in between never reached it, and no later entry may come to reveal the gap,
    /// so followers read the log now.
    Reattached,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Signal {
    pub topic: String,
    pub payload: serde_json::Value,
}

/// A control signal type with its topic.
pub trait SignalKind: Serialize + DeserializeOwned + Send + 'static {
    const TOPIC: &'static str;
}

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, message: Message) -> anyhow::Result<()>;
    fn subscribe(&self) -> broadcast::Receiver<Arc<Message>>;
    /// Whether events published elsewhere can reach this node right now.
    async fn ready(&self) -> anyhow::Result<()>;
    fn subscriber_count(&self) -> usize;
    /// Whether what one node publishes reaches the others (Redis), so that one relay serves all.
    fn spans_nodes(&self) -> bool {
        false
    }
}

pub async fn signal<S: SignalKind>(bus: &dyn EventBus, signal: &S) -> anyhow::Result<()> {
    bus.publish(Message::Signal(Signal {
        topic: S::TOPIC.to_owned(),
        payload: serde_json::to_value(signal)?,
    }))
    .await
}

/// The signals of type `S` from now on. A lagging receiver skips ahead: signals are hints
/// (the database holds the truth), so a missed one costs latency, never correctness.
pub fn signals<S: SignalKind>(bus: &dyn EventBus) -> impl Stream<Item = S> + Send + 'static {
    BroadcastStream::new(bus.subscribe()).filter_map(|item| async move {
        match item.ok()?.as_ref() {
            Message::Signal(signal) if signal.topic == S::TOPIC => {
                serde_json::from_value(signal.payload.clone()).ok()
            }
            _ => None,
        }
    })
}

pub struct InProcessBus {
    local: broadcast::Sender<Arc<Message>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self {
            local: broadcast::channel(LOCAL_BUFFER).0,
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, message: Message) -> anyhow::Result<()> {
        // No receivers is not an error: nobody is listening right now.
        let _ = self.local.send(Arc::new(message));
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Message>> {
        self.local.subscribe()
    }

    async fn ready(&self) -> anyhow::Result<()> {
        Ok(())
    }

    fn subscriber_count(&self) -> usize {
        self.local.receiver_count()
    }
}

/// Publishes through Redis; every node, this one included, receives through its single
/// subscriber task.
pub struct RedisBus {
    link: RedisLink,
    channel: String,
    local: broadcast::Sender<Arc<Message>>,
    subscribed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RedisBus {
    /// Connects and waits until the subscriber task is attached, so nothing published after
    /// this returns can be missed by this node.
    pub async fn connect(
        target: &RedisTarget,
        link: RedisLink,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        let channel = format!("{prefix}:events");
        let local = broadcast::channel(LOCAL_BUFFER).0;
        let subscribed = Arc::new(AtomicBool::new(false));
        let (first_attach_tx, first_attach_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run_subscriber(
            target.subscriber_nodes(),
            channel.clone(),
            local.clone(),
            subscribed.clone(),
            first_attach_tx,
        ));
        tokio::time::timeout(Duration::from_secs(10), first_attach_rx)
            .await
            .context("timed out subscribing to Redis")?
            .context("Redis subscriber stopped")?;
        Ok(Self {
            link,
            channel,
            local,
            subscribed,
            task,
        })
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_subscriber(
    nodes: Vec<String>,
    channel: String,
    local: broadcast::Sender<Arc<Message>>,
    subscribed: Arc<AtomicBool>,
    first_attach: tokio::sync::oneshot::Sender<()>,
) {
    let mut first_attach = Some(first_attach);
    let mut backoff = Duration::from_millis(100);
    let mut next_node = 0usize;
    loop {
        let node = &nodes[next_node % nodes.len()];
        next_node += 1;
        match attach(node, &channel).await {
            Ok(mut pubsub) => {
                subscribed.store(true, Ordering::SeqCst);
                backoff = Duration::from_millis(100);
                match first_attach.take() {
                    Some(tx) => {
                        let _ = tx.send(());
                    }
                    None => {
                        let _ = local.send(Arc::new(Message::Reattached));
                    }
                }
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    match serde_json::from_slice::<Message>(message.get_payload_bytes()) {
                        Ok(message) => {
                            let _ = local.send(Arc::new(message));
                        }
                        Err(err) => tracing::warn!(error = %err, "dropping malformed bus message"),
                    }
                }
                subscribed.store(false, Ordering::SeqCst);
                tracing::warn!("Redis event subscription ended; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "cannot subscribe to Redis events"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn attach(node: &str, channel: &str) -> anyhow::Result<redis::aio::PubSub> {
    let client = redis::Client::open(node)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, message: Message) -> anyhow::Result<()> {
        let body = serde_json::to_string(&message)?;
        let sent: redis::RedisResult<i64> = self
            .link
            .query(redis::cmd("PUBLISH").arg(&self.channel).arg(&body))
            .await;
        if let Err(err) = sent {
            // Local subscribers still hear it; other nodes miss this one live event, which is
            // the documented at-most-once contract of the live stream.
            let _ = self.local.send(Arc::new(message));
            return Err(err).context("publishing event to Redis");
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Message>> {
        self.local.subscribe()
    }

    async fn ready(&self) -> anyhow::Result<()> {
        if !self.subscribed.load(Ordering::SeqCst) {
            anyhow::bail!("Redis event subscriber is not attached");
        }
        self.link.ping().await
    }

    fn subscriber_count(&self) -> usize {
        self.local.receiver_count()
    }

    fn spans_nodes(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }
    impl SignalKind for Ping {
        const TOPIC: &'static str = "test.ping";
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Other {
        s: String,
    }
    impl SignalKind for Other {
        const TOPIC: &'static str = "test.other";
    }

    #[tokio::test]
    async fn typed_signal_receivers_only_see_their_topic() -> anyhow::Result<()> {
        let bus = InProcessBus::new();
        let mut pings = Box::pin(signals::<Ping>(&bus));
        signal(&bus, &Other { s: "x".into() }).await?;
        signal(&bus, &Ping { n: 7 }).await?;
        assert_eq!(pings.next().await, Some(Ping { n: 7 }));
        Ok(())
    }
}
