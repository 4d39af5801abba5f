//! A cache of whole query responses, made safe by a data version: every committed change bumps
//! the version (a mutation as it returns, any domain event as it arrives), and the version is
//! part of every key. A read after a write therefore never sees the old answer, on any node.
//!
//! Embedded, the version is a counter in this process and the responses live in a small
//! in-process cache; with Redis, both are shared, so one node's write misses every node's cache.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::cache::{Cache, InProcessCache};
use super::events::EventBus;

/// A response is kept at most this long, even when nothing changes.
const TTL: Duration = Duration::from_secs(60);
/// Larger responses are not kept: the cache stays small and its entries cheap to copy.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Entries of the in-process cache: with `MAX_BODY_BYTES`, at most 128 MiB in the worst case.
const IN_PROCESS_ENTRIES: usize = 512;
const VERSION_KEY: &str = "data-version";

enum Version {
    Local(AtomicI64),
    Shared,
}

pub struct ResponseCache {
    store: Arc<dyn Cache>,
    version: Version,
    enabled: bool,
}

impl ResponseCache {
    /// `shared` is the Redis cache when scaled out; `None` keeps everything in this process.
    pub fn new(shared: Option<Arc<dyn Cache>>, enabled: bool) -> Self {
        match shared {
            Some(store) => Self {
                store,
                version: Version::Shared,
                enabled,
            },
            None => Self {
                store: Arc::new(InProcessCache::new(IN_PROCESS_ENTRIES)),
                version: Version::Local(AtomicI64::new(0)),
                enabled,
            },
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    async fn version(&self) -> anyhow::Result<i64> {
        match &self.version {
            Version::Local(counter) => Ok(counter.load(Ordering::SeqCst)),
            Version::Shared => self.store.counter(VERSION_KEY).await,
        }
    }

    /// Marks everything cached so far as old. Call after a change commits.
    pub async fn bump(&self) {
        match &self.version {
            Version::Local(counter) => {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Version::Shared => {
                // Ten years: the counter must not expire while responses keyed by it live.
                let window = Duration::from_secs(10 * 365 * 24 * 3600);
                if let Err(err) = self.store.increment(VERSION_KEY, window).await {
                    tracing::warn!(error = ?err, "bumping the data version failed");
                }
            }
        }
    }

    /// The key of one viewer's query at the current data version; `None` when the version
    /// cannot be read (then nothing is cached).
    pub async fn key(&self, viewer: Uuid, request: &async_graphql::Request) -> Option<String> {
        let version = match self.version().await {
            Ok(version) => version,
            Err(err) => {
                tracing::warn!(error = ?err, "reading the data version failed");
                return None;
            }
        };
        let variables = serde_json::to_string(&request.variables).ok()?;
        let mut hash = Sha256::new();
        for part in [
            viewer.as_bytes().as_slice(),
            request.query.as_bytes(),
            request.operation_name.as_deref().unwrap_or("").as_bytes(),
            variables.as_bytes(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        Some(format!(
            "response:{version}:{}",
            hex::encode(hash.finalize())
        ))
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.store.get(key).await {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(error = ?err, "reading the response cache failed");
                None
            }
        }
    }

    pub async fn put(&self, key: &str, body: &[u8]) {
        if body.len() > MAX_BODY_BYTES {
            return;
        }
        if let Err(err) = self.store.set(key, body, TTL).await {
            tracing::warn!(error = ?err, "writing the response cache failed");
        }
    }

    /// Bumps the version on every domain event this node hears, so changes made outside a
    /// request (by jobs, or on nodes without a shared version) invalidate too. Job progress is
    /// not a change of the data responses show.
    pub fn follow(self: &Arc<Self>, bus: &dyn EventBus) {
        let mut events = bus.subscribe();
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let changed = match events.recv().await {
                    Ok(envelope) => !envelope.topic.starts_with("scheduler."),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                };
                let Some(cache) = cache.upgrade() else { return };
                if changed {
                    cache.bump().await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bump_changes_every_key() -> anyhow::Result<()> {
        let cache = ResponseCache::new(None, true);
        let request = async_graphql::Request::new("{ tasks { totalCount } }");
        let viewer = Uuid::now_v7();
        let before = cache.key(viewer, &request).await;
        cache
            .put(before.as_deref().unwrap_or_default(), b"old")
            .await;
        assert_eq!(cache.key(viewer, &request).await, before);
        cache.bump().await;
        let after = cache.key(viewer, &request).await;
        assert_ne!(after, before);
        assert_eq!(cache.get(after.as_deref().unwrap_or_default()).await, None);
        // Another viewer, or other variables, never share a key.
        assert_ne!(cache.key(Uuid::now_v7(), &request).await, after);
        let other = request.variables(async_graphql::Variables::from_json(
            serde_json::json!({ "x": 1 }),
        ));
        assert_ne!(cache.key(viewer, &other).await, after);
        Ok(())
    }
}
