//! The categories of data a partner app may be given: its viewer holds exactly these.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AppScope {
    TasksRead,
    TasksWrite,
    ApprovalsRead,
    BusinessRead,
    BusinessSubmit,
    FinanceRead,
    ReportsRead,
    ProfilesRead,
    EventsSubscribe,
}

impl AppScope {
    pub const ALL: [AppScope; 9] = [
        AppScope::TasksRead,
        AppScope::TasksWrite,
        AppScope::ApprovalsRead,
        AppScope::BusinessRead,
        AppScope::BusinessSubmit,
        AppScope::FinanceRead,
        AppScope::ReportsRead,
        AppScope::ProfilesRead,
        AppScope::EventsSubscribe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppScope::TasksRead => "TASKS_READ",
            AppScope::TasksWrite => "TASKS_WRITE",
            AppScope::ApprovalsRead => "APPROVALS_READ",
            AppScope::BusinessRead => "BUSINESS_READ",
            AppScope::BusinessSubmit => "BUSINESS_SUBMIT",
            AppScope::FinanceRead => "FINANCE_READ",
            AppScope::ReportsRead => "REPORTS_READ",
            AppScope::ProfilesRead => "PROFILES_READ",
            AppScope::EventsSubscribe => "EVENTS_SUBSCRIBE",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for AppScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for scope in AppScope::ALL {
            assert_eq!(AppScope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(AppScope::parse("tasks_read"), None);
    }
}
