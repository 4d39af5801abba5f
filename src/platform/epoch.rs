//! A counter that marks cached data old: bumped after a change commits, read with each request.
//!
//! Embedded, it lives in this process; with Redis it is one shared key, so a bump made on one
//! node before its request answers is seen by the next request on every node.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::cache::Cache;

/// A shared epoch that does not answer this fast counts as unreadable (the caller then reads
/// past its cache): a slow Redis must not hold up requests.
const READ_DEADLINE: Duration = Duration::from_millis(250);
/// Ten years: the counter must not expire while data filed under it lives.
const SHARED_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pub struct Epoch {
    key: &'static str,
    counter: Counter,
}

enum Counter {
    Local(AtomicI64),
    Shared(Arc<dyn Cache>),
}

impl Epoch {
    /// `shared` is the Redis cache when scaled out; `None` keeps the counter in this process.
    pub fn new(key: &'static str, shared: Option<Arc<dyn Cache>>) -> Self {
        let counter = match shared {
            Some(store) => Counter::Shared(store),
            None => Counter::Local(AtomicI64::new(0)),
        };
        Self { key, counter }
    }

    pub async fn read(&self) -> anyhow::Result<i64> {
        match &self.counter {
            Counter::Local(counter) => Ok(counter.load(Ordering::SeqCst)),
            Counter::Shared(store) => tokio::time::timeout(READ_DEADLINE, store.counter(self.key))
                .await
                .map_err(|_| anyhow::anyhow!("reading the {} epoch timed out", self.key))?,
        }
    }

    /// Marks everything filed under earlier epochs as old. Call after a change commits.
    pub async fn bump(&self) {
        match &self.counter {
            Counter::Local(counter) => {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Counter::Shared(store) => {
                if let Err(err) = store.increment(self.key, SHARED_LIFETIME).await {
                    tracing::warn!(epoch = self.key, error = ?err, "bumping an epoch failed");
                }
            }
        }
    }
}
