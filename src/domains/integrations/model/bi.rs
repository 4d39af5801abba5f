//! The SQL door's values: a BI role's name, its password, and the address BI tools are given.

use std::str::FromStr;

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use uuid::Uuid;

/// The PostgreSQL login role of an app: `bi_` and the app's id as 32 hex digits. Derived from a
/// parsed id only, so it is a plain identifier (still quoted with `%I` wherever it reaches SQL).
pub fn role_name(app_id: Uuid) -> String {
    format!("bi_{}", app_id.simple())
}

/// 32 random alphanumerics (about 190 bits): no character needs escaping in a URL or a form.
pub fn generate_password() -> String {
    Alphanumeric.sample_string(&mut OsRng, 32)
}

/// Where a BI tool connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl Endpoint {
    /// The server's own `DATABASE_URL`, with `INTERLINK_BI_HOST`/`INTERLINK_BI_PORT` taking
    /// precedence. `None` when the URL is not a PostgreSQL one or names no database.
    pub fn resolve(database_url: &str, host: Option<&str>, port: Option<u16>) -> Option<Self> {
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return None;
        }
        let options = sqlx::postgres::PgConnectOptions::from_str(database_url).ok()?;
        let database = options.get_database()?.to_owned();
        Some(Self {
            host: host.map_or_else(|| options.get_host().to_owned(), str::to_owned),
            port: port.unwrap_or_else(|| options.get_port()),
            database,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_identifiers_from_the_id() {
        let id = Uuid::now_v7();
        let name = role_name(id);
        assert_eq!(name.len(), 35);
        assert!(name.starts_with("bi_"));
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        assert_ne!(role_name(Uuid::now_v7()), name);
    }

    #[test]
    fn passwords_are_long_random_and_plain() {
        let a = generate_password();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, generate_password());
    }

    #[test]
    fn the_address_comes_from_the_url_unless_overridden() {
        let url = "postgres://app:secret@db.internal:6543/interlink?sslmode=require";
        assert_eq!(
            Endpoint::resolve(url, None, None),
            Some(Endpoint {
                host: "db.internal".into(),
                port: 6543,
                database: "interlink".into()
            })
        );
        assert_eq!(
            Endpoint::resolve(url, Some("bi.example.com"), Some(5432)),
            Some(Endpoint {
                host: "bi.example.com".into(),
                port: 5432,
                database: "interlink".into()
            })
        );
        assert_eq!(Endpoint::resolve("sqlite://data/x.db", None, None), None);
    }
}
