//! What the domains stand on: storage, the unit of work, the event log and bus, the cache, the
//! Redis link and outgoing HTTP. Knows no domain.

pub mod cache;
pub mod db;
pub mod delivery;
pub mod epoch;
pub mod events;
pub mod files;
pub mod live_slots;
pub mod metrics;
pub mod money;
pub mod outbound;
pub mod rate_limit;
pub mod redis;
pub mod response_cache;
pub mod scheduler;
pub mod webhook_signature;
pub mod work;
