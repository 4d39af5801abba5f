//! Apps, pure. (Placeholder until the apps half lands.)

pub mod webhooks;
