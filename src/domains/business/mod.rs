//! Business transactions: typed, validated, idempotent envelopes, approved when their type says
//! so, executed exactly once, and routed to finance postings, partner apps or processing.

pub mod graphql;
pub mod jobs;
pub mod model;
pub mod service;
