//! Resolved viewers (user, grants, scoped departments) by user and token version, served only
//! while the identity epoch is where it was when they were read.
//!
//! Every committed change to a user, a role, a grant or a department bumps the epoch before
//! the request that made it answers (`AppState::write`), and every identity event heard from the
//! log bumps it too (changes made by another process). An entry read before a change is
//! therefore never served after it: a revoked grant, a deactivation or a password change takes
//! effect on the very next request, on every node (with Redis the epoch is shared).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::viewer::ViewerUser;
use crate::error::AppResult;
use crate::platform::cache::Cache;
use crate::platform::epoch::Epoch;
use crate::platform::events::bus::{EventBus, Message};

const EPOCH_KEY: &str = "identity-epoch";
/// Bounds the memory (an entry is a few hundred bytes) whatever the number of users.
const MAX_ENTRIES: usize = 10_000;
/// A backstop for a change the epoch could not record (Redis refusing the bump): no entry is
/// served longer than this.
const MAX_AGE: Duration = Duration::from_secs(60);

/// A user at one token version: a password change or "sign out everywhere" moves the version,
/// so an old token never finds the new viewer and the other way round.
type Key = (Uuid, i32);

struct Entry {
    epoch: i64,
    read_at: Instant,
    viewer: Arc<ViewerUser>,
}

pub struct ViewerCache {
    epoch: Epoch,
    entries: Mutex<HashMap<Key, Entry>>,
    enabled: bool,
    reads: AtomicU64,
}

impl ViewerCache {
    pub fn new(shared: Option<Arc<dyn Cache>>, enabled: bool) -> Self {
        Self {
            epoch: Epoch::new(EPOCH_KEY, shared),
            entries: Mutex::new(HashMap::new()),
            enabled,
            reads: AtomicU64::new(0),
        }
    }

    /// How many viewers were read from the database (misses, or every one when disabled): for
    /// the metrics, and for tests that count a request's own statements.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The viewer of `user` at `token_version`: cached, or `load`ed and kept. Rejections are
    /// never kept, so a token refused once is checked again next time.
    pub async fn resolve(
        &self,
        user: Uuid,
        token_version: i32,
        load: impl Future<Output = AppResult<ViewerUser>>,
    ) -> AppResult<Arc<ViewerUser>> {
        if !self.enabled {
            self.reads.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::new(load.await?));
        }
        let key = (user, token_version);
        // Read before the viewer: a change committing while it is read bumps past this epoch,
        // so what is kept below is never served after that change.
        let epoch = match self.epoch.read().await {
            Ok(epoch) => Some(epoch),
            Err(err) => {
                tracing::warn!(error = ?err, "reading the identity epoch failed; not caching");
                None
            }
        };
        if let Some(epoch) = epoch {
            if let Some(viewer) = self.cached(key, epoch) {
                return Ok(viewer);
            }
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let viewer = Arc::new(load.await?);
        if let Some(epoch) = epoch {
            self.keep(key, epoch, viewer.clone());
        }
        Ok(viewer)
    }

    fn cached(&self, key: Key, epoch: i64) -> Option<Arc<ViewerUser>> {
        let entries = self.entries.lock();
        let entry = entries.get(&key)?;
        (entry.epoch == epoch && entry.read_at.elapsed() < MAX_AGE).then(|| entry.viewer.clone())
    }

    fn keep(&self, key: Key, epoch: i64, viewer: Arc<ViewerUser>) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.epoch == epoch && e.read_at.elapsed() < MAX_AGE);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                epoch,
                read_at: Instant::now(),
                viewer,
            },
        );
    }

    /// Marks every cached viewer old. Call after a change to identity commits.
    pub async fn bump(&self) {
        if self.enabled {
            self.epoch.bump().await;
            // Nothing kept before now can be served again; free it at once.
            self.entries.lock().clear();
        }
    }

    /// Bumps on every `topic` event this node hears from the log, and whenever it may have
    /// missed some (lagged, or its Redis subscription was attached again).
    pub fn follow(self: &Arc<Self>, bus: &dyn EventBus, topic: &'static str) {
        if !self.enabled {
            return;
        }
        let mut messages = bus.subscribe();
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let relevant = match messages.recv().await {
                    Ok(message) => match message.as_ref() {
                        Message::Event(envelope) => envelope.topic == topic,
                        Message::Signal(_) => false,
                        Message::Reattached => true,
                    },
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                };
                if relevant {
                    let Some(cache) = cache.upgrade() else { return };
                    cache.bump().await;
                }
            }
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(id: Uuid) -> ViewerUser {
        ViewerUser {
            id,
            department_id: None,
            grants: Vec::new(),
            app: None,
        }
    }

    #[tokio::test]
    async fn a_bump_sends_the_next_request_to_the_database() -> AppResult<()> {
        let cache = ViewerCache::new(None, true);
        let id = Uuid::now_v7();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(viewer(id))
        };
        cache.resolve(id, 0, load()).await?;
        cache.resolve(id, 0, load()).await?;
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        cache.bump().await;
        cache.resolve(id, 0, load()).await?;
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Another token version is another viewer.
        cache.resolve(id, 1, load()).await?;
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 3);
        Ok(())
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bound() -> AppResult<()> {
        let cache = ViewerCache::new(None, true);
        for _ in 0..MAX_ENTRIES + 10 {
            let id = Uuid::now_v7();
            cache.resolve(id, 0, async { Ok(viewer(id)) }).await?;
        }
        assert!(cache.len() <= MAX_ENTRIES, "{}", cache.len());
        Ok(())
    }

    #[tokio::test]
    async fn a_refusal_is_not_kept() {
        let cache = ViewerCache::new(None, true);
        let id = Uuid::now_v7();
        let refused = cache
            .resolve(id, 0, async {
                Err(crate::error::AppError::Unauthenticated("no".into()))
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(cache.len(), 0);
    }
}
