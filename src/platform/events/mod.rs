//! Domain events: appended to a durable log inside the unit of work that causes them, relayed
//! to every node's bus in cursor order, and followed by subscribers who can resume by cursor.
//!
//! - `log`: the table, its cursors and the reads that never skip a late commit;
//! - `relay`: one per cluster, publishes committed entries to the bus in order;
//! - `bus`: pub/sub between nodes (Redis) or in process;
//! - `follow`: a subscriber's stream, replayed from the log and then live, with no gap and no
//!   duplicate.

pub mod bus;
mod cursor;
pub mod follow;
pub mod log;
pub mod relay;
pub mod retention;

use std::any::Any;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use bus::{EventBus, InProcessBus, RedisBus};
pub use cursor::Cursor;

/// What the log records about an event besides its payload: what it is, what it is about,
/// who caused it, and who may see it (read back by the domain that wrote it).
#[derive(Clone, Debug)]
pub struct EventHead {
    pub kind: String,
    pub subject_kind: &'static str,
    pub subject_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub audience: serde_json::Value,
}

/// A domain event type with its topic; the topic routes it to the right subscribers.
pub trait Event: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const TOPIC: &'static str;
    fn head(&self) -> EventHead;
}

/// A committed entry of the log, as the relay publishes it and subscribers receive it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub cursor: Cursor,
    /// The entry the relay published just before this one: a subscriber whose last seen
    /// cursor is older has missed something, and reads the gap from the log.
    pub prev: Option<Cursor>,
    pub id: Uuid,
    pub topic: String,
    pub kind: String,
    pub subject_kind: String,
    pub subject_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub audience: serde_json::Value,
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
    /// The payload decoded once for every local subscriber: fanning an event out to ten
    /// thousand sockets must not decode it ten thousand times.
    #[serde(skip)]
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Envelope {
    pub(crate) fn from_row(row: entities::event::Model) -> Self {
        Self {
            cursor: Cursor::new(row.tx_id, row.position),
            prev: None,
            id: row.id,
            topic: row.topic,
            kind: row.kind,
            subject_kind: row.subject_kind,
            subject_id: row.subject_id,
            actor_id: row.actor_id,
            audience: row.audience,
            payload: row.payload,
            at: row.at,
            decoded: OnceLock::new(),
        }
    }

    /// The payload as `E` when this entry is of `E`'s topic, decoded at most once per
    /// envelope; `None` for other topics or when it does not decode.
    pub fn decode<E: Event>(&self) -> Option<E> {
        self.decode_if(|_: &E| true)
    }

    /// As `decode`, copied out only when `keep` accepts it: a subscriber that filters on the
    /// event's subject or audience does not copy the events it drops.
    pub fn decode_if<E: Event>(&self, keep: impl FnOnce(&E) -> bool) -> Option<E> {
        if self.topic != E::TOPIC {
            return None;
        }
        let decoded = self.decoded.get_or_init(|| {
            let event = serde_json::from_value::<E>(self.payload.clone())
                .map_err(|err| {
                    tracing::warn!(topic = E::TOPIC, error = %err, "dropping undecodable event");
                })
                .ok();
            Arc::new(event)
        });
        match decoded.downcast_ref::<Option<E>>() {
            Some(event) => event.as_ref().filter(|event| keep(event)).cloned(),
            // Two event types on one topic: decode this one separately.
            None => serde_json::from_value(self.payload.clone())
                .ok()
                .filter(|event| keep(event)),
        }
    }

    /// The audience as the domain wrote it; `None` when it does not decode. Read in place: it
    /// is checked once per subscriber, so it is not copied for each.
    pub fn audience<A: DeserializeOwned>(&self) -> Option<A> {
        A::deserialize(&self.audience).ok()
    }
}

/// An event ready to append: its head and payload, serialised once.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: Uuid,
    pub topic: &'static str,
    pub head: EventHead,
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A committed-looking entry of `event`, with `audience` in place of its own when given: for
/// unit tests of the domains' visibility rules.
#[cfg(test)]
pub(crate) fn test_envelope<E: Event>(event: &E, audience: Option<serde_json::Value>) -> Envelope {
    let Ok(entry) = NewEvent::of(event) else {
        panic!("{} events serialise", E::TOPIC);
    };
    Envelope::from_row(entities::event::Model {
        position: 1,
        tx_id: 1,
        id: entry.id,
        topic: entry.topic.to_owned(),
        kind: entry.head.kind,
        subject_kind: entry.head.subject_kind.to_owned(),
        subject_id: entry.head.subject_id,
        actor_id: entry.head.actor_id,
        audience: audience.unwrap_or(entry.head.audience),
        payload: entry.payload,
        at: entry.at,
    })
}

impl NewEvent {
    pub fn of<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: Uuid::now_v7(),
            topic: E::TOPIC,
            head: event.head(),
            payload: serde_json::to_value(event)?,
            at: Utc::now(),
        })
    }
}
