//! Who is asking and what they may do: passwords, JWTs, refresh tokens, the Viewer, permissions.

pub mod jwt;
pub mod password;
pub mod permissions;
pub mod tokens;
pub mod viewer;

pub use permissions::Permission;
pub use viewer::{Viewer, ViewerUser};
