//! Partner apps: their API keys and scopes, and the signed webhooks they receive.
//! (Placeholder until the apps half lands; only the webhooks half lives here for now.)

pub mod graphql;
pub mod jobs;
pub mod model;
pub mod service;
