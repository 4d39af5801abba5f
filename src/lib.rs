//! Interlink: one GraphQL schema, one identity and one live event stream over a company's systems.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod domains;
pub mod error;
pub mod graphql;
pub mod http;
pub mod platform;
pub mod seed;
