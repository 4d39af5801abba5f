//! The event log as clients see it: one ordered, resumable stream of every domain's events,
//! each filtered to what the viewer may see. (No loaders: an event carries its own data.)

pub mod graphql;
pub mod model;
pub mod service;
