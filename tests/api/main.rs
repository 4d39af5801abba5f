//! The one integration-test binary: the real router, real HTTP and websocket clients.

mod helpers;

mod cli;
mod edge;
mod identity;
mod schema;
mod two_nodes;
mod websocket;
