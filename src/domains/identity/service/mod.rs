//! Identity rules: sessions, the department tree, users, roles and grants.

mod departments;
mod directory;
mod roles;
mod sessions;
mod users;

pub use departments::*;
pub use directory::*;
pub use roles::*;
pub use sessions::*;
pub use users::*;
