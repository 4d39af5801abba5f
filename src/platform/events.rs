//! The event bus: typed publish/subscribe, in process or fanned out across nodes through Redis.
//!
//! Each node holds one broadcast channel. Local subscribers (websocket clients) read from it;
//! with Redis, one subscriber task per node feeds it, so a node never opens a Redis
//! connection per client.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::redis::{RedisLink, RedisTarget};

/// How many events a slow local subscriber may fall behind before it is told it lagged.
const LOCAL_BUFFER: usize = 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub topic: String,
    pub payload: serde_json::Value,
    /// The payload decoded once for every local subscriber: fanning an event out to ten
    /// thousand sockets must not decode it ten thousand times.
    #[serde(skip)]
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Envelope {
    pub fn new(topic: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            topic: topic.into(),
            payload,
            decoded: OnceLock::new(),
        }
    }

    /// The payload as `E`, decoded at most once per envelope; `None` when it does not decode.
    fn decode<E: Event>(&self) -> Option<E> {
        let decoded = self.decoded.get_or_init(|| {
            let event = serde_json::from_value::<E>(self.payload.clone())
                .map_err(|err| {
                    tracing::warn!(topic = E::TOPIC, error = %err, "dropping undecodable event");
                })
                .ok();
            Arc::new(event)
        });
        match decoded.downcast_ref::<Option<E>>() {
            Some(event) => event.clone(),
            // Two event types on one topic: decode this one separately.
            None => serde_json::from_value(self.payload.clone()).ok(),
        }
    }
}

/// An event type with its topic; the topic routes it to the right subscribers.
pub trait Event: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const TOPIC: &'static str;
}

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, envelope: Envelope) -> anyhow::Result<()>;
    fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>>;
    /// Whether events published elsewhere can reach this node right now.
    async fn ready(&self) -> anyhow::Result<()>;
    fn subscriber_count(&self) -> usize;
}

pub async fn publish<E: Event>(bus: &dyn EventBus, event: &E) -> anyhow::Result<()> {
    bus.publish(Envelope::new(E::TOPIC, serde_json::to_value(event)?))
        .await
}

/// Events gathered inside a transaction, published only once it has committed: a
/// subscriber never hears of a change that was rolled back.
#[derive(Default, Debug)]
pub struct Pending(Vec<Envelope>);

impl Pending {
    pub fn push<E: Event>(&mut self, event: &E) {
        match serde_json::to_value(event) {
            Ok(payload) => self.0.push(Envelope::new(E::TOPIC, payload)),
            Err(err) => {
                tracing::error!(topic = E::TOPIC, error = %err, "unserialisable event dropped")
            }
        }
    }

    pub fn append(&mut self, mut other: Pending) {
        self.0.append(&mut other.0);
    }

    /// Call after commit. A failure to publish is logged: the change itself stands.
    pub async fn publish(self, bus: &dyn EventBus) {
        for envelope in self.0 {
            if let Err(err) = bus.publish(envelope).await {
                tracing::warn!(error = ?err, "publishing an event failed");
            }
        }
    }
}

/// What a subscriber receives: an event, or notice that it fell behind and missed some.
#[derive(Debug)]
pub enum Received<E> {
    Event(E),
    Lagged(u64),
}

/// The events of type `E` from now on. Memory stays bounded: a subscriber that falls
/// more than the buffer behind skips ahead and receives `Lagged` instead.
pub fn subscribe<E: Event>(bus: &dyn EventBus) -> impl Stream<Item = Received<E>> + Send + 'static {
    BroadcastStream::new(bus.subscribe()).filter_map(|item| async move {
        match item {
            Ok(envelope) if envelope.topic == E::TOPIC => {
                envelope.decode::<E>().map(Received::Event)
            }
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(Received::Lagged(n)),
        }
    })
}

pub struct InProcessBus {
    local: broadcast::Sender<Arc<Envelope>>,
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
    async fn publish(&self, envelope: Envelope) -> anyhow::Result<()> {
        // No receivers is not an error: nobody is listening right now.
        let _ = self.local.send(Arc::new(envelope));
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
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
    local: broadcast::Sender<Arc<Envelope>>,
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
    local: broadcast::Sender<Arc<Envelope>>,
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
                if let Some(tx) = first_attach.take() {
                    let _ = tx.send(());
                }
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    match serde_json::from_slice::<Envelope>(message.get_payload_bytes()) {
                        Ok(envelope) => {
                            let _ = local.send(Arc::new(envelope));
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
    async fn publish(&self, envelope: Envelope) -> anyhow::Result<()> {
        let body = serde_json::to_string(&envelope)?;
        let sent: redis::RedisResult<i64> = self
            .link
            .query(redis::cmd("PUBLISH").arg(&self.channel).arg(&body))
            .await;
        if let Err(err) = sent {
            // Local subscribers still hear it; other nodes miss this one live event, which is
            // the documented at-most-once contract of the live stream.
            let _ = self.local.send(Arc::new(envelope));
            return Err(err).context("publishing event to Redis");
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }
    impl Event for Ping {
        const TOPIC: &'static str = "test.ping";
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Other {
        s: String,
    }
    impl Event for Other {
        const TOPIC: &'static str = "test.other";
    }

    static DECODES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[derive(Clone, Debug, PartialEq, Serialize)]
    struct Counted {
        n: u32,
    }
    impl<'de> Deserialize<'de> for Counted {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            #[derive(Deserialize)]
            struct Raw {
                n: u32,
            }
            DECODES.fetch_add(1, Ordering::SeqCst);
            Ok(Counted {
                n: Raw::deserialize(deserializer)?.n,
            })
        }
    }
    impl Event for Counted {
        const TOPIC: &'static str = "test.counted";
    }

    #[tokio::test]
    async fn an_event_is_decoded_once_however_many_subscribe() -> anyhow::Result<()> {
        let bus = InProcessBus::new();
        let mut subscribers: Vec<_> = (0..5)
            .map(|_| Box::pin(subscribe::<Counted>(&bus)))
            .collect();
        publish(&bus, &Counted { n: 3 }).await?;
        for subscriber in &mut subscribers {
            match subscriber.next().await {
                Some(Received::Event(event)) => assert_eq!(event, Counted { n: 3 }),
                other => panic!("expected the event, got {other:?}"),
            }
        }
        assert_eq!(DECODES.load(Ordering::SeqCst), 1);
        Ok(())
    }

    #[tokio::test]
    async fn typed_subscribers_only_see_their_topic() -> anyhow::Result<()> {
        let bus = InProcessBus::new();
        let mut pings = Box::pin(subscribe::<Ping>(&bus));
        publish(&bus, &Other { s: "x".into() }).await?;
        publish(&bus, &Ping { n: 7 }).await?;
        match pings.next().await {
            Some(Received::Event(p)) => assert_eq!(p, Ping { n: 7 }),
            other => panic!("expected a ping, got {other:?}"),
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged_instead_of_growing() -> anyhow::Result<()> {
        let bus = InProcessBus::new();
        let mut pings = Box::pin(subscribe::<Ping>(&bus));
        for n in 0..(LOCAL_BUFFER as u32 + 10) {
            publish(&bus, &Ping { n }).await?;
        }
        match pings.next().await {
            Some(Received::Lagged(missed)) => assert_eq!(missed, 10),
            other => panic!("expected a lag notice, got {other:?}"),
        }
        Ok(())
    }
}
