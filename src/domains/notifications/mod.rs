//! Notifications: each user's inbox, filled by the other domains inside their transactions.
//! (No loaders: a notification has no relations to batch.)

pub mod graphql;
pub mod model;
pub mod service;
