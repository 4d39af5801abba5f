//! Identity's parsed inputs and ids: once built, they cannot hold an invalid value.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Permission;
use crate::error::{AppError, AppResult};

crate::domains::id_type!(UserId, "user");
crate::domains::id_type!(DepartmentId, "department");
crate::domains::id_type!(RoleId, "role");
crate::domains::id_type!(RoleGrantId, "role grant");

/// A syntactically plausible email, trimmed; `normalized` is the lower-cased unique key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub display: String,
    pub normalized: String,
}

impl Email {
    pub fn parse(raw: &str) -> AppResult<Self> {
        let display = raw.trim();
        let valid = display.len() <= 254
            && display.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !display.chars().any(char::is_whitespace);
        if !valid {
            return Err(AppError::bad_field("email", "not a valid email address"));
        }
        Ok(Self {
            display: display.to_owned(),
            normalized: display.to_lowercase(),
        })
    }
}

/// A trimmed, non-empty name of at most `max` characters.
pub fn parse_name(field: &str, raw: &str, max: usize) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::bad_field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if name.chars().count() > max {
        return Err(AppError::bad_field(
            field,
            format!("{field} is longer than {max} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_field(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// A password that meets the policy: 10 to 256 characters.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN: usize = 10;
    pub const MAX: usize = 256;

    pub fn parse(raw: &str) -> AppResult<Self> {
        let length = raw.chars().count();
        if length < Self::MIN {
            return Err(AppError::bad_field(
                "password",
                format!("password must have at least {} characters", Self::MIN),
            ));
        }
        if length > Self::MAX {
            return Err(AppError::bad_field(
                "password",
                format!("password must have at most {} characters", Self::MAX),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A set of known permissions, at least one.
pub fn parse_permissions(raw: &[String]) -> AppResult<BTreeSet<Permission>> {
    let mut set = BTreeSet::new();
    for name in raw {
        let permission = name.trim().parse::<Permission>().map_err(|_| {
            AppError::bad_field(
                "permissions",
                format!(
                    "unknown permission {name:?}; known: {}",
                    Permission::ALL.map(Permission::as_str).join(", ")
                ),
            )
        })?;
        set.insert(permission);
    }
    if set.is_empty() {
        return Err(AppError::bad_field(
            "permissions",
            "a role needs at least one permission",
        ));
    }
    Ok(set)
}

/// The materialised path of a department under `parent_path` (or at the root).
pub fn department_path(parent_path: Option<&str>, id: DepartmentId) -> String {
    format!("{}{}/", parent_path.unwrap_or("/"), id.0)
}

/// Moving a department under a parent inside its own subtree would make a cycle.
pub fn would_make_cycle(department_path: &str, new_parent_path: &str) -> bool {
    new_parent_path.starts_with(department_path)
}

pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub password: NewPassword,
    pub department_id: Option<DepartmentId>,
}

#[derive(Default)]
pub struct UserChanges {
    pub email: Option<Email>,
    pub name: Option<String>,
    /// `Some(None)` moves the user out of every department.
    pub department_id: Option<Option<DepartmentId>>,
}

pub struct NewDepartment {
    pub name: String,
    pub parent_id: Option<DepartmentId>,
}

#[derive(Default)]
pub struct DepartmentChanges {
    pub name: Option<String>,
    pub parent_id: Option<Option<DepartmentId>>,
    pub head_user_id: Option<Option<UserId>>,
}

pub struct NewRole {
    pub name: String,
    pub permissions: BTreeSet<Permission>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_normalised() -> AppResult<()> {
        let e = Email::parse("  Ada.Lovelace@Example.COM ")?;
        assert_eq!(e.display, "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized, "ada.lovelace@example.com");
        for bad in [
            "",
            "no-at",
            "@x.io",
            "a@b",
            "a@.io",
            "a b@c.io",
            "a@b.io@c.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        Ok(())
    }

    #[test]
    fn names_and_passwords_are_bounded() {
        assert!(parse_name("name", "   ", 10).is_err());
        assert!(parse_name("name", &"x".repeat(11), 10).is_err());
        assert!(parse_name("name", "a\u{0}b", 10).is_err());
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse(&"x".repeat(257)).is_err());
        assert!(NewPassword::parse("long enough pw").is_ok());
    }

    #[test]
    fn permissions_must_be_known() {
        assert!(parse_permissions(&["admin".into(), "task.review".into()]).is_ok());
        assert!(parse_permissions(&["task.fly".into()]).is_err());
        assert!(parse_permissions(&[]).is_err());
    }

    #[test]
    fn paths_detect_cycles() {
        let a = DepartmentId(Uuid::now_v7());
        let b = DepartmentId(Uuid::now_v7());
        let a_path = department_path(None, a);
        let b_path = department_path(Some(&a_path), b);
        assert!(would_make_cycle(&a_path, &b_path));
        assert!(would_make_cycle(&a_path, &a_path));
        assert!(!would_make_cycle(&b_path, &a_path));
    }
}

/// Published after an identity change commits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityEvent {
    pub kind: IdentityEventKind,
    pub subject_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityEventKind {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    RoleGranted,
    RoleRevoked,
    DepartmentChanged,
    /// A password change or sign-out everywhere: every session of the user ends.
    SessionsRevoked,
}

impl crate::platform::events::Event for IdentityEvent {
    const TOPIC: &'static str = "identity";
}
