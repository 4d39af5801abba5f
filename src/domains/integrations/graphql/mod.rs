//! This domain's GraphQL roots: apps and keys here, webhooks beside them.

mod apps;
pub mod webhooks;

pub use apps::{AppsMutation, AppsQuery};
