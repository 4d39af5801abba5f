//! The permission vocabulary. Roles may only carry these strings.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Implies every other permission.
    Admin,
    TaskCreateMain,
    TaskReview,
    TaskConfigure,
    FinanceRead,
    FinancePost,
    SchedulerManage,
    /// Submitting business transactions; a department-scoped grant covers payloads that name
    /// a department (`departmentId`/`costCenterId`) in its subtree.
    BusinessSubmit,
    /// Reading every task (global) or every task of a subtree, without being on it.
    TaskRead,
    /// Reading every business transaction, not only one's own.
    BusinessRead,
    /// Reading every approval (global) or the approvals of a subtree's subjects.
    ApprovalRead,
    /// Managing partner apps: their keys and webhook endpoints.
    IntegrationsManage,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::Admin,
        Permission::TaskCreateMain,
        Permission::TaskReview,
        Permission::TaskConfigure,
        Permission::FinanceRead,
        Permission::FinancePost,
        Permission::SchedulerManage,
        Permission::BusinessSubmit,
        Permission::TaskRead,
        Permission::BusinessRead,
        Permission::ApprovalRead,
        Permission::IntegrationsManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Admin => "admin",
            Permission::TaskCreateMain => "task.create_main",
            Permission::TaskReview => "task.review",
            Permission::TaskConfigure => "task.configure",
            Permission::FinanceRead => "finance.read",
            Permission::FinancePost => "finance.post",
            Permission::SchedulerManage => "scheduler.manage",
            Permission::BusinessSubmit => "business.submit",
            Permission::TaskRead => "task.read",
            Permission::BusinessRead => "business.read",
            Permission::ApprovalRead => "approval.read",
            Permission::IntegrationsManage => "integrations.manage",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_round_trips_through_its_string() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        assert!("task.delete_everything".parse::<Permission>().is_err());
    }
}
