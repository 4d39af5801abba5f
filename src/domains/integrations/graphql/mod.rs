//! Apps over GraphQL. (Placeholder until the apps half lands.)

pub mod webhooks;
