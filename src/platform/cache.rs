//! A small key/value cache with expiry: in process when embedded, Redis when scaled out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use super::redis::RedisLink;

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()>;
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// Adds one to a counter that lives for `window` from its first increment; returns the count.
    /// Counters are stored as decimal text, as Redis `INCR` keeps them.
    async fn increment(&self, key: &str, window: Duration) -> anyhow::Result<i64>;

    /// How long `key` has left to live; `None` when it is absent or never expires.
    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>>;

    /// The current value of a counter; zero when absent or expired.
    async fn counter(&self, key: &str) -> anyhow::Result<i64> {
        Ok(self
            .get(key)
            .await?
            .and_then(|raw| String::from_utf8(raw).ok()?.parse().ok())
            .unwrap_or(0))
    }
}

/// Bounded so that a flood of distinct keys cannot grow the process without limit.
pub struct InProcessCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    max_entries: usize,
}

impl InProcessCache {
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    fn make_room(entries: &mut HashMap<String, (Vec<u8>, Instant)>, max_entries: usize) {
        if entries.len() < max_entries {
            return;
        }
        let now = Instant::now();
        entries.retain(|_, (_, expires)| *expires > now);
        if entries.len() >= max_entries {
            // Still full of live entries: drop the ones closest to expiry.
            let mut by_expiry: Vec<(String, Instant)> =
                entries.iter().map(|(k, (_, e))| (k.clone(), *e)).collect();
            by_expiry.sort_by_key(|(_, e)| *e);
            for (key, _) in by_expiry.into_iter().take(entries.len() - max_entries / 2) {
                entries.remove(&key);
            }
        }
    }
}

impl Default for InProcessCache {
    fn default() -> Self {
        Self::new(100_000)
    }
}

#[async_trait]
impl Cache for InProcessCache {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let entries = self.entries.lock();
        Ok(entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()> {
        let mut entries = self.entries.lock();
        Self::make_room(&mut entries, self.max_entries);
        entries.insert(key.to_owned(), (value.to_vec(), Instant::now() + ttl));
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.entries.lock().remove(key);
        Ok(())
    }

    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let now = Instant::now();
        Ok(self
            .entries
            .lock()
            .get(key)
            .and_then(|(_, expires)| expires.checked_duration_since(now)))
    }

    async fn increment(&self, key: &str, window: Duration) -> anyhow::Result<i64> {
        let mut entries = self.entries.lock();
        let now = Instant::now();
        let current = entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .and_then(|(value, expires)| {
                let count = std::str::from_utf8(value).ok()?.parse::<i64>().ok()?;
                Some((count, *expires))
            });
        let (count, expires) = match current {
            Some((count, expires)) => (count + 1, expires),
            None => (1, now + window),
        };
        if current.is_none() {
            Self::make_room(&mut entries, self.max_entries);
        }
        entries.insert(key.to_owned(), (count.to_string().into_bytes(), expires));
        Ok(count)
    }
}

pub struct RedisCache {
    link: RedisLink,
    prefix: String,
}

impl RedisCache {
    pub fn new(link: RedisLink, prefix: &str) -> Self {
        Self {
            link,
            prefix: format!("{prefix}:cache:"),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .link
            .query(redis::cmd("GET").arg(self.key(key)))
            .await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> anyhow::Result<()> {
        let millis = ttl.as_millis().max(1) as u64;
        let _: () = self
            .link
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("PX")
                    .arg(millis),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let _: i64 = self
            .link
            .query(redis::cmd("DEL").arg(self.key(key)))
            .await?;
        Ok(())
    }

    async fn ttl(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let millis: i64 = self
            .link
            .query(redis::cmd("PTTL").arg(self.key(key)))
            .await?;
        // -2: no such key; -1: no expiry.
        Ok(u64::try_from(millis).ok().map(Duration::from_millis))
    }

    async fn increment(&self, key: &str, window: Duration) -> anyhow::Result<i64> {
        let key = self.key(key);
        let millis = window.as_millis().max(1) as u64;
        // One key, so one slot: the transaction is valid on a cluster too. SET NX starts the
        // window with its expiry (INCR keeps it); no Redis 7-only options are needed.
        let (_, count): (Option<String>, i64) = self
            .link
            .query_pipeline(
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("PX")
                    .arg(millis)
                    .arg("NX")
                    .cmd("INCR")
                    .arg(&key),
            )
            .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_expire_and_counters_count() -> anyhow::Result<()> {
        let cache = InProcessCache::new(10);
        cache.set("a", b"1", Duration::from_millis(20)).await?;
        assert_eq!(cache.get("a").await?, Some(b"1".to_vec()));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.get("a").await?, None);
        assert_eq!(cache.increment("c", Duration::from_secs(60)).await?, 1);
        assert_eq!(cache.increment("c", Duration::from_secs(60)).await?, 2);
        assert_eq!(cache.counter("c").await?, 2);
        let left = cache.ttl("c").await?;
        assert!(
            left.is_some_and(|t| t <= Duration::from_secs(60)),
            "{left:?}"
        );
        assert_eq!(cache.ttl("absent").await?, None);
        assert_eq!(cache.counter("absent").await?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn the_in_process_cache_stays_bounded() -> anyhow::Result<()> {
        let cache = InProcessCache::new(100);
        for i in 0..1_000 {
            cache
                .set(&format!("k{i}"), b"v", Duration::from_secs(60))
                .await?;
        }
        assert!(cache.entries.lock().len() <= 100);
        Ok(())
    }
}
