//! Finance: a double-entry ledger with exact money, immutable entries corrected by reversal,
//! budgets per cost centre, account and period, and the trial balance.

pub mod graphql;
pub mod loaders;
pub mod model;
pub mod service;
