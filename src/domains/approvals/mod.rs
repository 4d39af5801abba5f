//! Approvals: one engine of flows, steps, decisions and delegations for every kind of subject.

pub mod graphql;
pub mod jobs;
pub mod loaders;
pub mod model;
pub mod service;
