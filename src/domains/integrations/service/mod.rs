//! The rules for apps and keys, over a unit of work for writes and any connection for reads.

mod apps;
pub mod attempts;
mod bi_access;
pub mod delivery;
mod keys;
pub mod webhooks;

pub use apps::*;
pub use bi_access::*;
pub use keys::*;
