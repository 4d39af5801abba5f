//! This domain's GraphQL roots: apps and keys here, webhooks beside them.

mod apps;
mod bi_access;
pub mod webhooks;

pub use apps::{AppsMutation, AppsQuery};
pub use bi_access::BiAccessMutation;
