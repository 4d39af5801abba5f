//! Partner apps and their API keys as values: names, scopes, the key format and its checksum.

use std::collections::BTreeSet;

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::viewer::{Scope, ScopedPermission};
use crate::auth::{AppScope, Permission};
use crate::error::{AppError, AppResult};

pub mod bi;
pub mod webhooks;

/// Every key starts with this, so secret scanners can spot one in a leaked file.
pub const KEY_PREFIX: &str = "ilk_";
const SECRET_CHARS: usize = 32;
const CHECKSUM_CHARS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An app's name: 1–200 characters after trimming.
pub fn app_name(raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_field("name", "a name has 1–200 characters"));
    }
    Ok(name.to_owned())
}

/// A key's name, by the same rule.
pub fn key_name(raw: &str) -> AppResult<String> {
    app_name(raw)
}

/// The scopes as stored: a sorted JSON array of their names.
pub fn scopes_json(scopes: &BTreeSet<AppScope>) -> serde_json::Value {
    serde_json::Value::Array(
        scopes
            .iter()
            .map(|s| serde_json::Value::String(s.as_str().to_owned()))
            .collect(),
    )
}

/// Stored scopes; a name this build does not know grants nothing.
pub fn scopes_of(stored: &serde_json::Value) -> BTreeSet<AppScope> {
    stored
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().and_then(AppScope::parse))
        .collect()
}

/// The permissions an app's scopes stand for, over its department's subtree (`department_path`)
/// or everywhere. Nothing else: an app is never an administrator.
pub fn grants_for(
    scopes: &BTreeSet<AppScope>,
    department_path: Option<&str>,
) -> Vec<ScopedPermission> {
    let scope = match department_path {
        Some(path) => Scope::Subtree {
            path: path.to_owned(),
        },
        None => Scope::Global,
    };
    scopes
        .iter()
        .filter_map(|s| match s {
            AppScope::TasksRead => Some(Permission::TaskRead),
            AppScope::TasksWrite => Some(Permission::TaskCreateMain),
            AppScope::BusinessRead => Some(Permission::BusinessRead),
            AppScope::BusinessSubmit => Some(Permission::BusinessSubmit),
            AppScope::FinanceRead => Some(Permission::FinanceRead),
            AppScope::ApprovalsRead => Some(Permission::ApprovalRead),
            AppScope::ReportsRead | AppScope::ProfilesRead | AppScope::EventsSubscribe => None,
        })
        .map(|permission| ScopedPermission {
            permission,
            scope: scope.clone(),
        })
        .collect()
}

/// A freshly made key: the text to hand over once, and what is stored of it.
pub struct NewKey {
    pub id: Uuid,
    pub text: String,
    pub secret_hash: String,
    pub hint: String,
}

/// `ilk_<id as 32 hex>_<32 random base62><6 base62 of the CRC-32 of everything before>`.
pub fn generate_key() -> NewKey {
    let id = Uuid::now_v7();
    let secret = Alphanumeric.sample_string(&mut OsRng, SECRET_CHARS);
    let body = format!("{KEY_PREFIX}{}_{secret}", id.simple());
    let text = format!("{body}{}", checksum(&body));
    NewKey {
        id,
        secret_hash: hash_key(&text),
        hint: text[text.len() - 4..].to_owned(),
        text,
    }
}

/// SHA-256 of the whole key, hex: the secret is random and long, so a slow hash adds nothing.
pub fn hash_key(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn checksum(body: &str) -> String {
    let mut value = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// The id a key names, if the text has the key's shape and its checksum holds: a mistyped or
/// truncated key is refused without a database lookup.
pub fn parse_key(text: &str) -> Option<Uuid> {
    let rest = text.strip_prefix(KEY_PREFIX)?;
    let (id, tail) = rest.split_once('_')?;
    if id.len() != 32 || tail.len() != SECRET_CHARS + CHECKSUM_CHARS || !tail.is_ascii() {
        return None;
    }
    let (secret, sum) = tail.split_at(SECRET_CHARS);
    if !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let body = &text[..text.len() - CHECKSUM_CHARS];
    if checksum(body) != sum {
        return None;
    }
    Uuid::try_parse(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_to_their_id_and_a_changed_character_does_not() {
        let key = generate_key();
        assert!(key.text.starts_with(KEY_PREFIX));
        assert_eq!(
            key.text.len(),
            KEY_PREFIX.len() + 32 + 1 + SECRET_CHARS + CHECKSUM_CHARS
        );
        assert_eq!(parse_key(&key.text), Some(key.id));
        assert_eq!(key.secret_hash, hash_key(&key.text));
        assert_ne!(key.secret_hash, key.text);
        // Any one character changed in the secret breaks the checksum.
        let secret_at = KEY_PREFIX.len() + 33;
        let mut changed = key.text.clone().into_bytes();
        changed[secret_at] = if changed[secret_at] == b'a' {
            b'b'
        } else {
            b'a'
        };
        let changed = String::from_utf8(changed).unwrap_or_default();
        assert_eq!(parse_key(&changed), None);
        assert_eq!(parse_key(&key.text[..key.text.len() - 1]), None);
        assert_eq!(parse_key("Bearer nonsense"), None);
        assert_eq!(parse_key(""), None);
    }

    #[test]
    fn scopes_become_permissions_over_the_apps_department_only() {
        let scopes = BTreeSet::from([AppScope::TasksRead, AppScope::EventsSubscribe]);
        let grants = grants_for(&scopes, Some("/a/"));
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].permission, Permission::TaskRead);
        assert_eq!(grants[0].scope, Scope::Subtree { path: "/a/".into() });
        assert!(grants_for(&scopes, None)
            .iter()
            .all(|g| g.scope == Scope::Global && g.permission != Permission::Admin));
        assert_eq!(scopes_of(&scopes_json(&scopes)), scopes);
        assert!(scopes_of(&serde_json::json!(["NOT_A_SCOPE"])).is_empty());
    }
}
