//! Per-client token buckets (GCRA): governor in process, the same arithmetic in one Redis script
//! when scaled out, so every node draws from one bucket per client.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use super::redis::RedisLink;

/// Where a request comes from: its peer, or the client a trusted proxy names for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The bucket key of this address. An IPv6 host is usually handed a whole /64, so the /64
    /// counts as one client: otherwise one host could draw on 2^64 fresh buckets.
    pub fn key(&self) -> String {
        match self.0.to_canonical() {
            IpAddr::V4(v4) => format!("ip:{v4}"),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

/// A bucket's size and how fast it refills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The most a client may spend at once.
    pub burst: NonZeroU32,
    /// The time to earn back one unit.
    pub period: Duration,
}

impl Budget {
    pub fn per_second(rate: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            burst,
            period: (Duration::from_secs(1) / rate.get()).max(Duration::from_micros(1)),
        }
    }

    /// `count` units, earned back evenly over `window`.
    pub fn per_window(count: NonZeroU32, window: Duration) -> Self {
        Self {
            burst: count,
            period: (window / count.get()).max(Duration::from_micros(1)),
        }
    }
}

/// GCRA over one key: the stored value is the "theoretical arrival time" in microseconds of
/// Redis's own clock (so nodes with skewed clocks agree). Returns 0 when the units were taken,
/// else the microseconds until they would be.
const GCRA_SCRIPT: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local new_tat = tat + cost * period
local allow_at = new_tat - burst * period
if allow_at > now then
  return allow_at - now
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0
";

/// Above this many tracked clients, idle buckets are dropped (at most once a second): a bucket
/// that has refilled is the same as no bucket.
const LOCAL_KEYS_BEFORE_SWEEP: usize = 100_000;
/// A Redis that does not answer in this time counts as down for this call.
const SHARED_TIMEOUT: Duration = Duration::from_millis(250);

struct Shared {
    link: RedisLink,
    prefix: String,
    script: redis::Script,
    /// Set while Redis fails, so the fallback is logged once per outage, not per request.
    degraded: AtomicBool,
}

/// One named budget (API requests, sign-in attempts, …) with a bucket per client key.
pub struct Bucket {
    name: &'static str,
    budget: Budget,
    local: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    last_sweep: Mutex<Instant>,
    shared: Option<Shared>,
}

impl Bucket {
    /// With `redis` (the link and the installation's key prefix) the bucket is shared by every
    /// node; without, it is this process's.
    pub fn new(name: &'static str, budget: Budget, redis: Option<(&RedisLink, &str)>) -> Self {
        let quota = Quota::with_period(budget.period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(budget.burst);
        Self {
            name,
            budget,
            local: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            last_sweep: Mutex::new(Instant::now()),
            shared: redis.map(|(link, prefix)| Shared {
                link: link.clone(),
                prefix: format!("{prefix}:ratelimit:{name}:"),
                script: redis::Script::new(GCRA_SCRIPT),
                degraded: AtomicBool::new(false),
            }),
        }
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Takes `cost` units from `key`'s bucket, or says how long until they would be there. A
    /// cost above the burst is charged as the whole burst, so it can succeed at all.
    pub async fn take(&self, key: &str, cost: u32) -> Result<(), Duration> {
        let cost = cost.clamp(1, self.budget.burst.get());
        if let Some(shared) = &self.shared {
            match self.take_shared(shared, key, cost).await {
                Ok(verdict) => {
                    if shared.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!(budget = self.name, "rate limit shared through Redis again");
                    }
                    return verdict;
                }
                // Fail open to this node's own bucket rather than closed: a limiter outage
                // must not take the API down, and the local bucket still bounds every client
                // per node (N nodes allow N times the budget until Redis is back).
                Err(err) => {
                    if !shared.degraded.swap(true, Ordering::Relaxed) {
                        tracing::warn!(budget = self.name, error = %err,
                            "Redis rate limit unavailable; limiting per node meanwhile");
                    }
                }
            }
        }
        self.take_local(key, cost)
    }

    async fn take_shared(
        &self,
        shared: &Shared,
        key: &str,
        cost: u32,
    ) -> anyhow::Result<Result<(), Duration>> {
        let period = u64::try_from(self.budget.period.as_micros()).unwrap_or(u64::MAX);
        let mut invocation = shared.script.key(format!("{}{key}", shared.prefix));
        invocation
            .arg(period)
            .arg(self.budget.burst.get())
            .arg(cost);
        let wait: i64 = tokio::time::timeout(SHARED_TIMEOUT, shared.link.invoke(&invocation))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {SHARED_TIMEOUT:?}"))??;
        Ok(match u64::try_from(wait) {
            Ok(0) | Err(_) => Ok(()),
            Ok(micros) => Err(Duration::from_micros(micros)),
        })
    }

    fn take_local(&self, key: &str, cost: u32) -> Result<(), Duration> {
        if self.local.len() > LOCAL_KEYS_BEFORE_SWEEP {
            let mut last = self.last_sweep.lock();
            if last.elapsed() >= Duration::from_secs(1) {
                *last = Instant::now();
                self.local.retain_recent();
                self.local.shrink_to_fit();
            }
        }
        let Some(cost) = NonZeroU32::new(cost) else {
            return Ok(());
        };
        match self.local.check_key_n(&key.to_owned(), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // Cannot happen (the cost is clamped to the burst); a refill of the whole burst is
            // the honest wait if it did.
            Err(_) => Err(self.budget.period * self.budget.burst.get()),
        }
    }
}

/// The node's budgets.
pub struct Limiters {
    /// Every GraphQL operation (HTTP) and subscription (websocket), per client; `None` when off.
    pub requests: Option<Bucket>,
    /// Every sign-in attempt, per client address whatever the account, before any password is
    /// checked: what bounds credential stuffing from one address.
    pub sign_in: Bucket,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    #[tokio::test]
    async fn a_local_bucket_allows_its_burst_then_says_when() {
        let bucket = Bucket::new(
            "test",
            Budget::per_window(nz(3), Duration::from_secs(60)),
            None,
        );
        for _ in 0..3 {
            assert_eq!(bucket.take("a", 1).await, Ok(()));
        }
        let wait = bucket.take("a", 1).await.err();
        // One unit comes back every 20 s.
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(15) && w <= Duration::from_secs(20)),
            "{wait:?}"
        );
        assert_eq!(bucket.take("b", 3).await, Ok(()), "keys are independent");
        assert!(bucket.take("b", 1).await.is_err());
    }

    #[tokio::test]
    async fn a_cost_above_the_burst_is_charged_as_the_burst() {
        let bucket = Bucket::new("test", Budget::per_second(nz(1), nz(5)), None);
        assert_eq!(bucket.take("a", 50).await, Ok(()));
        assert!(bucket.take("a", 1).await.is_err());
    }

    #[test]
    fn ipv6_clients_are_their_slash_64() {
        let a = ClientAddr(
            "2001:db8:1:2:aaaa::1"
                .parse()
                .unwrap_or(IpAddr::from([0; 4])),
        );
        let b = ClientAddr(
            "2001:db8:1:2:bbbb::9"
                .parse()
                .unwrap_or(IpAddr::from([0; 4])),
        );
        let c = ClientAddr("2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4])));
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        let mapped = ClientAddr("::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])));
        assert_eq!(mapped.key(), "ip:10.0.0.1");
    }
}
