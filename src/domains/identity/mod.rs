//! Identity: departments (a tree), users, roles and grants, login and token sessions.

pub mod graphql;
pub mod loaders;
pub mod model;
pub mod service;
