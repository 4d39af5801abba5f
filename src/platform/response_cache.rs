//! A cache of whole query responses, made safe by a data version: every committed change bumps
//! the version (a mutation as it returns, any domain event as it arrives), and the version is
//! part of every key. A read after a write therefore never sees the old answer, on any node.
//!
//! Embedded, the version is a counter in this process and the responses live in a small
//! in-process cache; with Redis, both are shared, so one node's write misses every node's cache.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;

use super::cache::{Cache, InProcessCache};
use super::epoch::Epoch;
use super::events::EventBus;

/// A response is kept at most this long, even when nothing changes.
const TTL: Duration = Duration::from_secs(60);
/// Larger responses are not kept: the cache stays small and its entries cheap to copy.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Entries of the in-process cache: with `MAX_BODY_BYTES`, at most 32 MiB in the worst case.
const IN_PROCESS_ENTRIES: usize = 128;
/// A cache that does not answer this fast is treated as a miss (or a skipped write): a slow
/// Redis must not hold up reads.
const CACHE_DEADLINE: Duration = Duration::from_millis(250);
const VERSION_KEY: &str = "data-version";

pub struct ResponseCache {
    store: Arc<dyn Cache>,
    version: Epoch,
    enabled: bool,
}

impl ResponseCache {
    /// `shared` is the Redis cache when scaled out; `None` keeps everything in this process.
    pub fn new(shared: Option<Arc<dyn Cache>>, enabled: bool) -> Self {
        let version = Epoch::new(VERSION_KEY, shared.clone());
        let store = shared.unwrap_or_else(|| Arc::new(InProcessCache::new(IN_PROCESS_ENTRIES)));
        Self {
            store,
            version,
            enabled,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Marks everything cached so far as old. Call after a change commits.
    pub async fn bump(&self) {
        if self.enabled {
            self.version.bump().await;
        }
    }

    /// The key of one viewer's query at the current data version; `None` when the version
    /// cannot be read (then nothing is cached). `viewer` must identify everything the answer
    /// depends on about the asker: their id and, so that a revocation racing this request
    /// cannot file an answer under the new version, their grants.
    pub async fn key(&self, viewer: &[u8], request: &async_graphql::Request) -> Option<String> {
        let version = match self.version.read().await {
            Ok(version) => version,
            Err(err) => {
                tracing::warn!(error = ?err, "reading the data version failed");
                return None;
            }
        };
        let variables = serde_json::to_string(&request.variables).ok()?;
        let mut hash = Sha256::new();
        for part in [
            viewer,
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
        match tokio::time::timeout(CACHE_DEADLINE, self.store.get(key)).await {
            Ok(Ok(found)) => found,
            Ok(Err(err)) => {
                tracing::warn!(error = ?err, "reading the response cache failed");
                None
            }
            Err(_) => None,
        }
    }

    pub async fn put(&self, key: &str, body: &[u8]) {
        if body.len() > MAX_BODY_BYTES {
            return;
        }
        let stored = tokio::time::timeout(CACHE_DEADLINE, self.store.set(key, body, TTL)).await;
        if let Ok(Err(err)) = stored {
            tracing::warn!(error = ?err, "writing the response cache failed");
        }
    }

    /// Bumps the version on every event this node hears, so changes made outside a request
    /// (by jobs, job progress included, or on other nodes) invalidate too.
    pub fn follow(self: &Arc<Self>, bus: &dyn EventBus) {
        if !self.enabled {
            return;
        }
        let mut events = bus.subscribe();
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
                let Some(cache) = cache.upgrade() else { return };
                cache.bump().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test]
    async fn a_bump_changes_every_key() -> anyhow::Result<()> {
        let cache = ResponseCache::new(None, true);
        let request = async_graphql::Request::new("{ tasks { totalCount } }");
        let id = Uuid::now_v7();
        let viewer = id.as_bytes().as_slice();
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
        assert_ne!(cache.key(Uuid::now_v7().as_bytes(), &request).await, after);
        let other = request.variables(async_graphql::Variables::from_json(
            serde_json::json!({ "x": 1 }),
        ));
        assert_ne!(cache.key(viewer, &other).await, after);
        Ok(())
    }
}
