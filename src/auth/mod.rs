//! Who is asking and what they may do: passwords, JWTs, refresh tokens, the Viewer, permissions
//! and the scopes of partner apps.

pub mod jwt;
pub mod password;
pub mod permissions;
pub mod scopes;
pub mod tokens;
pub mod viewer;
pub mod viewer_cache;

pub use permissions::Permission;
pub use scopes::AppScope;
pub use viewer::{AppAccess, Viewer, ViewerUser};
