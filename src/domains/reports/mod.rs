//! Grouped statistics over tasks and approvals, under the same visibility as their lists, and
//! the daily rollups that keep them fast.

pub mod graphql;
pub mod jobs;
pub mod model;
pub mod service;
