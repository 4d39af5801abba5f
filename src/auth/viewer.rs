//! The Viewer: who is asking, with the permissions they hold and where they hold them.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use super::{AppScope, Permission};
use crate::error::{AppError, AppResult};

#[derive(Clone, Debug)]
pub enum Viewer {
    Anonymous,
    User(Arc<ViewerUser>),
}

/// A person, or a partner app acting through its service account. An app's `grants` come from
/// its scopes alone (over its department's subtree when it has one), and `app` says so.
#[derive(Debug)]
pub struct ViewerUser {
    pub id: Uuid,
    pub department_id: Option<Uuid>,
    pub grants: Vec<ScopedPermission>,
    pub app: Option<AppAccess>,
}

/// What a partner app may touch: its categories of data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppAccess {
    pub app_id: Uuid,
    pub scopes: BTreeSet<AppScope>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopedPermission {
    pub permission: Permission,
    pub scope: Scope,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    /// The department's materialised path; the grant covers every path that starts with it.
    Subtree {
        path: String,
    },
}

impl Viewer {
    pub fn user(&self) -> AppResult<&ViewerUser> {
        match self {
            Viewer::User(user) => Ok(user),
            Viewer::Anonymous => Err(AppError::Unauthenticated(
                "sign in to do this: send an access token".into(),
            )),
        }
    }
}

impl ViewerUser {
    /// A user of no department holding `grants`: for unit tests of permission rules.
    #[cfg(test)]
    pub(crate) fn with_grants(grants: Vec<(Permission, Scope)>) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            department_id: None,
            grants: grants
                .into_iter()
                .map(|(permission, scope)| ScopedPermission { permission, scope })
                .collect(),
            app: None,
        }
    }

    /// People may use every category (their grants decide the rows); an app only its scopes.
    pub fn allows(&self, scope: AppScope) -> bool {
        self.app
            .as_ref()
            .is_none_or(|app| app.scopes.contains(&scope))
    }

    /// `FORBIDDEN` for an app without `scope`.
    pub fn require_scope(&self, scope: AppScope) -> AppResult<()> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this app's scopes do not include {scope}"
            )))
        }
    }

    fn grants_for(&self, wanted: Permission) -> impl Iterator<Item = &ScopedPermission> {
        self.grants
            .iter()
            .filter(move |g| g.permission == wanted || g.permission == Permission::Admin)
    }

    /// Holds `permission` everywhere (a global grant, or global admin).
    pub fn has_global(&self, permission: Permission) -> bool {
        self.grants_for(permission)
            .any(|g| g.scope == Scope::Global)
    }

    /// Holds `permission` for something in the department at `department_path`.
    pub fn has_in(&self, permission: Permission, department_path: &str) -> bool {
        self.grants_for(permission).any(|g| match &g.scope {
            Scope::Global => true,
            Scope::Subtree { path } => department_path.starts_with(path.as_str()),
        })
    }

    /// Holds `permission` somewhere, globally or for a subtree: whether a page of its actions
    /// has anything to show this viewer.
    pub fn holds_anywhere(&self, permission: Permission) -> bool {
        self.grants_for(permission).next().is_some()
    }

    pub fn is_admin(&self) -> bool {
        self.has_global(Permission::Admin)
    }

    pub fn require_global(&self, permission: Permission) -> AppResult<()> {
        if self.has_global(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "this needs the {permission} permission"
            )))
        }
    }

    pub fn permission_names(&self) -> Vec<String> {
        self.grants
            .iter()
            .map(|g| g.permission.as_str().to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(grants: Vec<ScopedPermission>) -> ViewerUser {
        ViewerUser {
            id: Uuid::now_v7(),
            department_id: None,
            grants,
            app: None,
        }
    }

    #[test]
    fn apps_are_held_to_their_scopes_and_people_are_not() {
        let person = viewer(Vec::new());
        assert!(person.allows(AppScope::FinanceRead));
        let mut app = viewer(Vec::new());
        app.app = Some(AppAccess {
            app_id: Uuid::now_v7(),
            scopes: BTreeSet::from([AppScope::TasksRead]),
        });
        assert!(app.allows(AppScope::TasksRead));
        assert!(app.require_scope(AppScope::FinanceRead).is_err());
    }

    #[test]
    fn scoped_grants_cover_their_subtree_only() {
        let v = viewer(vec![ScopedPermission {
            permission: Permission::TaskReview,
            scope: Scope::Subtree {
                path: "/a/b/".into(),
            },
        }]);
        assert!(v.has_in(Permission::TaskReview, "/a/b/"));
        assert!(v.has_in(Permission::TaskReview, "/a/b/c/"));
        assert!(!v.has_in(Permission::TaskReview, "/a/"));
        assert!(!v.has_in(Permission::TaskReview, "/a/bc/"));
        assert!(!v.has_global(Permission::TaskReview));
        assert!(!v.has_in(Permission::FinanceRead, "/a/b/"));
    }

    #[test]
    fn admin_implies_every_permission() {
        let v = viewer(vec![ScopedPermission {
            permission: Permission::Admin,
            scope: Scope::Global,
        }]);
        for p in Permission::ALL {
            assert!(v.has_global(p));
        }
        assert!(Viewer::Anonymous.user().is_err());
    }
}
