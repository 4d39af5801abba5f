//! The rules for apps and keys, over a unit of work for writes and any connection for reads.

mod apps;
mod keys;

pub use apps::*;
pub use keys::*;
