//! The one integration-test binary: the real router, real HTTP and websocket clients.

mod helpers;

mod board;
mod business;
mod cache;
mod cli;
mod edge;
mod events;
mod faults;
mod finance;
mod fuzz;
mod identity;
mod jobs;
mod migrations;
mod scheduler;
mod schema;
mod tasks;
mod two_nodes;
mod websocket;
