//! SeaORM entities: the tables, their columns and relations. No rules live here.

pub mod department;
pub mod refresh_token;
pub mod role;
pub mod role_grant;
pub mod user;
