//! Partner apps: apps with scopes and an optional department, their API keys, the viewer a key
//! stands for, and (in `webhooks`) signed deliveries of the event log to their endpoints.

pub mod graphql;
pub mod jobs;
pub mod model;
pub mod service;
