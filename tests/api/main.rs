//! The one integration-test binary: the real router, real HTTP and websocket clients.

mod helpers;

mod apps;
mod bi_access;
mod board;
mod business;
mod cache;
mod cli;
mod configuration;
mod console;
mod edge;
mod edge_limits;
mod events;
mod export;
mod export_summaries;
mod faults;
mod faults_edge;
mod finance;
mod fuzz;
mod identity;
mod jobs;
mod limits;
mod migrations;
mod people;
mod profiles;
mod reports;
mod rules;
mod scheduler;
mod schema;
mod signin;
mod tasks;
mod two_nodes;
mod viewer_cache;
mod web_access;
mod webhooks;
mod websocket;
