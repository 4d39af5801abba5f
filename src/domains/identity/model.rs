//! Identity's parsed inputs and ids: once built, they cannot hold an invalid value.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Permission, ViewerUser};
use crate::error::{AppError, AppResult};
use crate::platform::events::Envelope;

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

/// An identity change, logged with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityEvent {
    pub kind: IdentityEventKind,
    pub subject_id: Uuid,
    pub actor_id: Option<Uuid>,
    /// Besides the subject, the users whose access the change alters (the holders of a role
    /// whose permissions changed): their open connections must not keep the old grants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<Uuid>,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl IdentityEvent {
    pub fn new(kind: IdentityEventKind, subject_id: Uuid, actor_id: Option<Uuid>) -> Self {
        Self {
            kind,
            subject_id,
            actor_id,
            people: Vec::new(),
            at: chrono::Utc::now(),
        }
    }

    /// Whether `user`'s sessions, or what they may see, changed: a connection that resolved
    /// their grants earlier must resolve them again.
    pub fn ends_sessions_of(&self, user: Uuid) -> bool {
        use IdentityEventKind as K;
        match self.kind {
            K::UserDeactivated | K::SessionsRevoked | K::RoleGranted | K::RoleRevoked => {
                self.subject_id == user
            }
            K::RoleUpdated => self.people.contains(&user),
            K::UserCreated
            | K::UserUpdated
            | K::UserReactivated
            | K::RoleCreated
            | K::DepartmentChanged => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentityEventKind {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    RoleGranted,
    RoleRevoked,
    RoleCreated,
    /// A role's name or permissions changed; with permissions, its holders are in `people`.
    RoleUpdated,
    DepartmentChanged,
    /// A password change or sign-out everywhere: every session of the user ends.
    SessionsRevoked,
}

impl IdentityEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "USER_CREATED",
            Self::UserUpdated => "USER_UPDATED",
            Self::UserDeactivated => "USER_DEACTIVATED",
            Self::UserReactivated => "USER_REACTIVATED",
            Self::RoleGranted => "ROLE_GRANTED",
            Self::RoleRevoked => "ROLE_REVOKED",
            Self::RoleCreated => "ROLE_CREATED",
            Self::RoleUpdated => "ROLE_UPDATED",
            Self::DepartmentChanged => "DEPARTMENT_CHANGED",
            Self::SessionsRevoked => "SESSIONS_REVOKED",
        }
    }

    /// What the event is about: grants and sessions belong to their user.
    pub fn subject_kind(self) -> &'static str {
        match self {
            Self::RoleCreated | Self::RoleUpdated => "role",
            Self::DepartmentChanged => "department",
            Self::UserCreated
            | Self::UserUpdated
            | Self::UserDeactivated
            | Self::UserReactivated
            | Self::RoleGranted
            | Self::RoleRevoked
            | Self::SessionsRevoked => "user",
        }
    }
}

/// Who may see an identity event besides administrators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityAudience {
    /// The user it is about: people see what happens to their own account.
    #[serde(default)]
    pub users: Vec<Uuid>,
    /// Every signed-in user: the department tree is shared across the company.
    #[serde(default)]
    pub everyone: bool,
}

impl IdentityEvent {
    fn audience(&self) -> IdentityAudience {
        match self.kind.subject_kind() {
            "user" => IdentityAudience {
                users: vec![self.subject_id],
                everyone: false,
            },
            "department" => IdentityAudience {
                users: Vec::new(),
                everyone: true,
            },
            // Roles are listed to administrators only.
            _ => IdentityAudience::default(),
        }
    }
}

impl crate::platform::events::Event for IdentityEvent {
    const TOPIC: &'static str = "identity";

    fn head(&self) -> crate::platform::events::EventHead {
        crate::platform::events::EventHead {
            kind: self.kind.as_str().to_owned(),
            subject_kind: self.kind.subject_kind(),
            subject_id: Some(self.subject_id),
            actor_id: self.actor_id,
            audience: serde_json::to_value(self.audience()).unwrap_or_default(),
        }
    }
}

/// Administrators see every identity event (they read and manage all users); anyone else sees
/// what happened to their own account, and the department tree.
pub fn event_visible_to(envelope: &Envelope, viewer: &ViewerUser) -> bool {
    use crate::platform::events::Event;
    // Partner apps read no identity changes: people's data is not a category they are given.
    if envelope.topic != IdentityEvent::TOPIC || viewer.app.is_some() {
        return false;
    }
    if viewer.is_admin() {
        return true;
    }
    envelope
        .audience::<IdentityAudience>()
        .is_some_and(|audience| audience.everyone || audience.users.contains(&viewer.id))
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

    fn logged(event: &IdentityEvent) -> Result<Envelope, serde_json::Error> {
        let entry = crate::platform::events::NewEvent::of(event)?;
        Ok(Envelope::from_row(entities::event::Model {
            position: 1,
            tx_id: 1,
            id: entry.id,
            topic: entry.topic.to_owned(),
            kind: entry.head.kind,
            subject_kind: entry.head.subject_kind.to_owned(),
            subject_id: entry.head.subject_id,
            actor_id: entry.head.actor_id,
            audience: entry.head.audience,
            payload: entry.payload,
            at: entry.at,
        }))
    }

    fn viewer(id: Uuid, grants: Vec<Permission>) -> ViewerUser {
        ViewerUser {
            id,
            department_id: None,
            grants: grants
                .into_iter()
                .map(|permission| crate::auth::viewer::ScopedPermission {
                    permission,
                    scope: crate::auth::viewer::Scope::Global,
                })
                .collect(),
            app: None,
        }
    }

    #[test]
    fn people_see_their_own_account_and_the_tree_admins_see_all() -> Result<(), serde_json::Error> {
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let plain = viewer(me, vec![Permission::TaskReview]);
        let admin = viewer(other, vec![Permission::Admin]);
        let mine = logged(&IdentityEvent::new(
            IdentityEventKind::RoleGranted,
            me,
            None,
        ))?;
        let theirs = logged(&IdentityEvent::new(
            IdentityEventKind::UserUpdated,
            other,
            None,
        ))?;
        let role = logged(&IdentityEvent::new(
            IdentityEventKind::RoleUpdated,
            Uuid::now_v7(),
            None,
        ))?;
        let tree = logged(&IdentityEvent::new(
            IdentityEventKind::DepartmentChanged,
            Uuid::now_v7(),
            None,
        ))?;
        assert_eq!(mine.kind, "ROLE_GRANTED");
        assert_eq!(mine.subject_kind, "user");
        assert_eq!(role.subject_kind, "role");
        assert!(event_visible_to(&mine, &plain));
        assert!(!event_visible_to(&theirs, &plain));
        assert!(!event_visible_to(&role, &plain));
        assert!(event_visible_to(&tree, &plain));
        for entry in [&mine, &theirs, &role, &tree] {
            assert!(event_visible_to(entry, &admin));
        }
        let mut garbled = mine.clone();
        garbled.audience = serde_json::json!("nobody");
        assert!(!event_visible_to(&garbled, &plain));
        Ok(())
    }

    #[test]
    fn role_changes_end_the_sessions_of_its_holders_only() {
        let (holder, bystander) = (Uuid::now_v7(), Uuid::now_v7());
        let mut updated = IdentityEvent::new(IdentityEventKind::RoleUpdated, Uuid::now_v7(), None);
        updated.people = vec![holder];
        assert!(updated.ends_sessions_of(holder));
        assert!(!updated.ends_sessions_of(bystander));
        let revoked = IdentityEvent::new(IdentityEventKind::RoleRevoked, holder, None);
        assert!(revoked.ends_sessions_of(holder));
        assert!(!revoked.ends_sessions_of(bystander));
        let renamed = IdentityEvent::new(IdentityEventKind::UserUpdated, holder, None);
        assert!(!renamed.ends_sessions_of(holder));
    }
}

/// A user as the rest of the hub reads them: every column but the password hash, which only
/// sign-in and password changes read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub department_id: Option<Uuid>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// A `UserRecord`'s columns in its order, as a read decodes them by position.
pub type UserColumns = (Uuid, String, String, Option<Uuid>, bool, DateTime<Utc>);

impl From<UserColumns> for UserRecord {
    fn from((id, email, name, department_id, is_active, created_at): UserColumns) -> Self {
        Self {
            id,
            email,
            name,
            department_id,
            is_active,
            created_at,
        }
    }
}

impl From<entities::user::Model> for UserRecord {
    fn from(user: entities::user::Model) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            department_id: user.department_id,
            is_active: user.is_active,
            created_at: user.created_at,
        }
    }
}
