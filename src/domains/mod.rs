//! The business domains, each shaped the same: model, service, graphql, loaders.

pub mod identity;
