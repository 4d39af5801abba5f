//! This domain's GraphQL roots: apps and keys here, webhooks beside them.

mod apps;

pub use apps::{AppsMutation, AppsQuery};
