//! User portraits: one person's work and approvals over a window, computed in SQL from facts
//! recorded when they happened, shown to the person, to role holders over their department,
//! and to administrators. Never a ranking.

pub mod graphql;
pub mod model;
pub mod service;
