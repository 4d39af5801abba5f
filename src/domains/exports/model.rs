//! The exportable reports, their query parameters parsed once into typed filters, and the
//! cell rules of the CSV (formula neutralisation, file names). Pure: no storage, no transport.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domains::finance::model::{JournalLineFilter, JournalSource};
use crate::domains::identity::model::{DepartmentId, UserId};
use crate::domains::reports::model::{
    parse_dimensions, ApprovalDimension, ApprovalStatsQuery, Source, TaskDimension, TaskStatsQuery,
    Window,
};
use crate::domains::tasks::model::{CategoryId, ReviewStatus, TaskId, WorkStatus, MAX_TASK_ORDERS};
use crate::domains::tasks::service::{TaskFilter, TaskOrder, TaskOrderField};
use crate::error::{AppError, AppResult};

/// Every report `GET /export/{report}.csv` serves. Adding one: a variant here (with its slug
/// and the GraphQL root field whose app scopes it shares), its parameters in `Params::parse`,
/// and its writer in `service::prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Report {
    Tasks,
    JournalLines,
    Ledger,
    TrialBalance,
    ProfitAndLoss,
    TaskStats,
    ApprovalStats,
    Profiles,
}

impl Report {
    pub const ALL: [Report; 8] = [
        Report::Tasks,
        Report::JournalLines,
        Report::Ledger,
        Report::TrialBalance,
        Report::ProfitAndLoss,
        Report::TaskStats,
        Report::ApprovalStats,
        Report::Profiles,
    ];

    /// The name in the URL and in the file name.
    pub fn slug(self) -> &'static str {
        match self {
            Self::Tasks => "tasks",
            Self::JournalLines => "journal-lines",
            Self::Ledger => "ledger",
            Self::TrialBalance => "trial-balance",
            Self::ProfitAndLoss => "profit-and-loss",
            Self::TaskStats => "task-stats",
            Self::ApprovalStats => "approval-stats",
            Self::Profiles => "profiles",
        }
    }

    /// The GraphQL root field giving the same data: a partner app needs the scopes that open it.
    pub fn root_field(self) -> &'static str {
        match self {
            Self::Tasks => "tasks",
            Self::JournalLines => "journalEntries",
            Self::Ledger => "accountLedger",
            Self::TrialBalance => "trialBalance",
            Self::ProfitAndLoss => "profitAndLoss",
            Self::TaskStats => "taskStats",
            Self::ApprovalStats => "approvalStats",
            // Portraits are `User.profile`, reached through `user`.
            Self::Profiles => "user",
        }
    }

    /// `tasks.csv` → `Tasks`.
    pub fn from_file(file: &str) -> Option<Self> {
        let slug = file.strip_suffix(".csv")?;
        Self::ALL.into_iter().find(|r| r.slug() == slug)
    }

    /// `tasks.csv, journal-lines.csv, ...`, for telling a client what exists.
    pub fn file_list() -> String {
        Self::ALL
            .iter()
            .map(|r| format!("{}.csv", r.slug()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `tasks-2026-12-02.csv`.
    pub fn filename(self, day: NaiveDate) -> String {
        format!("{}-{}.csv", self.slug(), day.format("%Y-%m-%d"))
    }
}

/// Query parameters that would carry a credential. Credentials travel in headers only: URLs
/// end up in logs, browser history and `Referer` headers.
const CREDENTIAL_PARAMETERS: [&str; 6] = [
    "token",
    "access_token",
    "accessToken",
    "apiKey",
    "api_key",
    "key",
];

/// The parameters every report takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Common {
    /// Start the file with a UTF-8 byte-order mark (Excel then reads it as UTF-8).
    pub bom: bool,
    /// Run it in the background whatever its size.
    pub background: bool,
}

/// Why a query string is refused. A credential in the URL is told apart so the edge can say so.
#[derive(Debug)]
pub enum Refused {
    CredentialInUrl(String),
    Bad(AppError),
}

impl From<AppError> for Refused {
    fn from(err: AppError) -> Self {
        Self::Bad(err)
    }
}

fn flag(field: &str, raw: &str) -> AppResult<bool> {
    match raw {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(AppError::bad_field(field, "use true, false, 1 or 0")),
    }
}

/// Splits the query string into the common parameters and the report's own (re-encoded, for
/// the report's typed parse). Refuses credentials in the URL first, whatever else is wrong.
pub fn split_query(raw: &str) -> Result<(Common, String), Refused> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|_| AppError::bad_input("the query string is not valid URL encoding"))?;
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, _)| CREDENTIAL_PARAMETERS.contains(&name.as_str()))
    {
        return Err(Refused::CredentialInUrl(name.clone()));
    }
    let mut common = Common::default();
    let mut seen = (false, false);
    let mut rest = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "bom" if !seen.0 => {
                seen.0 = true;
                common.bom = flag("bom", &value)?;
            }
            "async" if !seen.1 => {
                seen.1 = true;
                common.background = flag("async", &value)?;
            }
            "bom" | "async" => {
                return Err(AppError::bad_field(&name, format!("`{name}` is given twice")).into())
            }
            _ => rest.push((name, value)),
        }
    }
    let rest = serde_urlencoded::to_string(&rest)
        .map_err(|_| AppError::bad_input("the query string is not valid URL encoding"))?;
    Ok((common, rest))
}

/// serde's own message names the parameter (`unknown field `x``, `duplicate field `x``); the
/// name is lifted out of it for `extensions.field`.
fn parameter_error(report: Report, err: &serde_urlencoded::de::Error) -> AppError {
    let message = err.to_string();
    let field = message
        .split('`')
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| "query".to_owned());
    AppError::bad_field(
        &field,
        format!(
            "{}.csv: {}",
            report.slug(),
            message.replace("field", "parameter")
        ),
    )
}

fn parse_params<T: DeserializeOwned>(report: Report, rest: &str) -> AppResult<T> {
    serde_urlencoded::from_str(rest).map_err(|err| parameter_error(report, &err))
}

fn date(field: &str, raw: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| AppError::bad_field(field, "not a date such as 2026-11-30"))
}

fn instant(field: &str, raw: &str) -> AppResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| {
            AppError::bad_field(field, "not an RFC 3339 time such as 2026-11-30T12:00:00Z")
        })
}

fn optional<T>(
    field: &str,
    raw: Option<String>,
    parse: impl Fn(&str, &str) -> AppResult<T>,
) -> AppResult<Option<T>> {
    raw.map(|v| parse(field, &v)).transpose()
}

/// The `tasks` list's arguments, named as in GraphQL (`TaskFilter` and `orderBy`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TasksParams {
    category_id: Option<String>,
    review_status: Option<String>,
    status: Option<String>,
    executor_id: Option<String>,
    initiator_id: Option<String>,
    department_id: Option<String>,
    parent_id: Option<String>,
    main_only: Option<String>,
    deadline_from: Option<String>,
    deadline_to: Option<String>,
    overdue: Option<String>,
    search: Option<String>,
    order: Option<String>,
    /// `task-stats` only, as `taskStats`' arguments.
    group_by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ApprovalStatsParams {
    group_by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfilesParams {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JournalLinesParams {
    from: Option<String>,
    to: Option<String>,
    account_code: Option<String>,
    cost_center_id: Option<String>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LedgerParams {
    account_code: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TrialBalanceParams {
    as_of: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProfitAndLossParams {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
}

/// A report with its parameters, parsed and checked.
#[derive(Clone, Debug)]
pub enum Params {
    Tasks {
        filter: TaskFilter,
        orders: Vec<TaskOrder>,
    },
    JournalLines(JournalLineFilter),
    Ledger {
        account_code: String,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
    TrialBalance {
        as_of: Option<NaiveDate>,
    },
    ProfitAndLoss {
        from: NaiveDate,
        to: NaiveDate,
        by_department: bool,
        by_month: bool,
    },
    TaskStats(TaskStatsQuery),
    ApprovalStats(ApprovalStatsQuery),
    Profiles {
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    },
}

/// A parameter the report does not take although a sibling report does (`order` on
/// `task-stats`): refused as serde refuses an unknown one.
fn not_taken(report: Report, field: &str, value: &Option<String>) -> AppResult<()> {
    match value {
        Some(_) => Err(AppError::bad_field(
            field,
            format!("{}.csv: unknown parameter `{field}`", report.slug()),
        )),
        None => Ok(()),
    }
}

/// `DEPARTMENT,DEADLINE_MONTH` → the dimensions, checked as `groupBy` is in GraphQL.
fn dimensions<D: Copy + Eq + std::fmt::Debug>(
    raw: Option<String>,
    parse: fn(&str) -> Option<D>,
    allowed: &str,
) -> AppResult<Vec<D>> {
    let asked = raw
        .iter()
        .flat_map(|g| g.split(','))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| enum_value("groupBy", part, parse, allowed))
        .collect::<AppResult<Vec<D>>>()?;
    parse_dimensions(&asked)
}

impl TasksParams {
    /// The `TaskFilter` part, parsed as GraphQL parses the input object.
    fn filter(&mut self) -> AppResult<TaskFilter> {
        Ok(TaskFilter {
            category_id: optional("categoryId", self.category_id.take(), CategoryId::parse)?
                .map(|c| c.0),
            review_status: optional("reviewStatus", self.review_status.take(), |f, v| {
                enum_value(
                    f,
                    v,
                    ReviewStatus::parse,
                    "DRAFT, PENDING, APPROVED, REJECTED",
                )
            })?,
            status: optional("status", self.status.take(), |f, v| {
                enum_value(
                    f,
                    v,
                    WorkStatus::parse,
                    "OPEN, IN_PROGRESS, DONE, CANCELLED",
                )
            })?,
            executor_id: optional("executorId", self.executor_id.take(), UserId::parse)?
                .map(|u| u.0),
            initiator_id: optional("initiatorId", self.initiator_id.take(), UserId::parse)?
                .map(|u| u.0),
            department_id: optional(
                "departmentId",
                self.department_id.take(),
                DepartmentId::parse,
            )?
            .map(|d| d.0),
            parent_id: optional("parentId", self.parent_id.take(), TaskId::parse)?.map(|t| t.0),
            main_only: optional("mainOnly", self.main_only.take(), flag)?.unwrap_or(false),
            deadline_from: optional("deadlineFrom", self.deadline_from.take(), instant)?,
            deadline_to: optional("deadlineTo", self.deadline_to.take(), instant)?,
            overdue: optional("overdue", self.overdue.take(), flag)?,
            search: self.search.take(),
            involving: None,
        })
    }
}

fn required(field: &str, raw: Option<String>) -> AppResult<String> {
    raw.filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AppError::bad_field(field, format!("`{field}` is required")))
}

/// `DEADLINE:DESC,TITLE` → deadline descending, then title ascending.
pub fn parse_task_orders(raw: &str) -> AppResult<Vec<TaskOrder>> {
    let orders = raw
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (field, direction) = part.split_once(':').unwrap_or((part, "ASC"));
            let field = TaskOrderField::parse(field).ok_or_else(|| {
                AppError::bad_field(
                    "order",
                    format!(
                        "unknown field {field:?}; use DEADLINE, PRIORITY, CREATED_AT, TITLE or PROGRESS"
                    ),
                )
            })?;
            let descending = match direction {
                "ASC" => false,
                "DESC" => true,
                other => {
                    return Err(AppError::bad_field(
                        "order",
                        format!("unknown direction {other:?}; use ASC or DESC"),
                    ))
                }
            };
            Ok(TaskOrder { field, descending })
        })
        .collect::<AppResult<Vec<_>>>()?;
    if orders.len() > MAX_TASK_ORDERS {
        return Err(AppError::bad_field(
            "order",
            format!("at most {MAX_TASK_ORDERS} sort keys"),
        ));
    }
    Ok(orders)
}

fn enum_value<T>(
    field: &str,
    raw: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &str,
) -> AppResult<T> {
    parse(raw).ok_or_else(|| AppError::bad_field(field, format!("use one of {allowed}")))
}

impl Params {
    pub fn report(&self) -> Report {
        match self {
            Self::Tasks { .. } => Report::Tasks,
            Self::JournalLines(_) => Report::JournalLines,
            Self::Ledger { .. } => Report::Ledger,
            Self::TrialBalance { .. } => Report::TrialBalance,
            Self::ProfitAndLoss { .. } => Report::ProfitAndLoss,
            Self::TaskStats(_) => Report::TaskStats,
            Self::ApprovalStats(_) => Report::ApprovalStats,
            Self::Profiles { .. } => Report::Profiles,
        }
    }

    /// The report's own parameters (what `split_query` left), parsed as GraphQL would parse
    /// the same arguments: ids into the domains' id types, enums by their SDL names.
    pub fn parse(report: Report, rest: &str) -> AppResult<Self> {
        match report {
            Report::Tasks => {
                let mut p: TasksParams = parse_params(report, rest)?;
                not_taken(report, "groupBy", &p.group_by)?;
                not_taken(report, "from", &p.from)?;
                not_taken(report, "to", &p.to)?;
                let filter = p.filter()?;
                let orders = match p.order {
                    Some(raw) => parse_task_orders(&raw)?,
                    None => Vec::new(),
                };
                Ok(Self::Tasks { filter, orders })
            }
            Report::TaskStats => {
                let mut p: TasksParams = parse_params(report, rest)?;
                not_taken(report, "order", &p.order)?;
                let filter = p.filter()?;
                Ok(Self::TaskStats(TaskStatsQuery {
                    filter,
                    group_by: dimensions(
                        p.group_by,
                        TaskDimension::parse,
                        "DEPARTMENT, CATEGORY, EXECUTOR, STATUS, REVIEW_STATUS, PRIORITY, \
                         DEADLINE_MONTH, COMPLETED_MONTH",
                    )?,
                    window: Window::parse(
                        optional("from", p.from, instant)?,
                        optional("to", p.to, instant)?,
                    )?,
                    source: Source::Auto,
                }))
            }
            Report::ApprovalStats => {
                let p: ApprovalStatsParams = parse_params(report, rest)?;
                Ok(Self::ApprovalStats(ApprovalStatsQuery {
                    group_by: dimensions(
                        p.group_by,
                        ApprovalDimension::parse,
                        "FLOW, STEP, APPROVER, SUBJECT_KIND, MONTH",
                    )?,
                    window: Window::parse(
                        optional("from", p.from, instant)?,
                        optional("to", p.to, instant)?,
                    )?,
                }))
            }
            Report::Profiles => {
                let p: ProfilesParams = parse_params(report, rest)?;
                Ok(Self::Profiles {
                    from: optional("from", p.from, instant)?,
                    to: optional("to", p.to, instant)?,
                })
            }
            Report::JournalLines => {
                let p: JournalLinesParams = parse_params(report, rest)?;
                Ok(Self::JournalLines(JournalLineFilter {
                    from: optional("from", p.from, date)?,
                    to: optional("to", p.to, date)?,
                    account_code: p.account_code.map(|c| c.trim().to_owned()),
                    cost_center_id: optional(
                        "costCenterId",
                        p.cost_center_id,
                        DepartmentId::parse,
                    )?
                    .map(|d| d.0),
                    source: optional("source", p.source, |f, v| {
                        enum_value(
                            f,
                            v,
                            JournalSource::parse,
                            "MANUAL, REVERSAL, TRANSACTION, TASK",
                        )
                    })?,
                }))
            }
            Report::Ledger => {
                let p: LedgerParams = parse_params(report, rest)?;
                Ok(Self::Ledger {
                    account_code: required("accountCode", p.account_code)?.trim().to_owned(),
                    from: optional("from", p.from, date)?,
                    to: optional("to", p.to, date)?,
                })
            }
            Report::TrialBalance => {
                let p: TrialBalanceParams = parse_params(report, rest)?;
                Ok(Self::TrialBalance {
                    as_of: optional("asOf", p.as_of, date)?,
                })
            }
            Report::ProfitAndLoss => {
                let p: ProfitAndLossParams = parse_params(report, rest)?;
                let (mut by_department, mut by_month) = (false, false);
                for group in p.group_by.iter().flat_map(|g| g.split(',')).map(str::trim) {
                    match group {
                        "DEPARTMENT" => by_department = true,
                        "MONTH" => by_month = true,
                        "" => {}
                        other => {
                            return Err(AppError::bad_field(
                                "groupBy",
                                format!("unknown grouping {other:?}; use DEPARTMENT, MONTH"),
                            ))
                        }
                    }
                }
                Ok(Self::ProfitAndLoss {
                    from: date("from", &required("from", p.from)?)?,
                    to: date("to", &required("to", p.to)?)?,
                    by_department,
                    by_month,
                })
            }
        }
    }
}

/// OWASP's CSV-injection rule: a cell that a spreadsheet would read as a formula (it begins
/// with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, which makes it
/// text. Applied to every text cell; amounts the export formats itself are not text (see
/// `Cell::Amount`).
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// One CSV cell, as the export writes it.
pub enum Cell<'a> {
    /// Anything that came from a user or the database as text: neutralised.
    Text(Cow<'a, str>),
    /// A decimal the export formatted itself from an integer (`-12.50`): written as is, so a
    /// spreadsheet reads a negative amount as the number it is. It matches
    /// `-?[0-9]+(\.[0-9]+)?`, which no spreadsheet evaluates as a formula.
    Amount(String),
    Empty,
}

impl<'a> Cell<'a> {
    pub fn text(value: impl Into<Cow<'a, str>>) -> Self {
        Self::Text(value.into())
    }

    pub fn display(value: impl std::fmt::Display) -> Self {
        Self::Text(Cow::Owned(value.to_string()))
    }

    pub fn opt<T: std::fmt::Display>(value: Option<T>) -> Self {
        value.map_or(Self::Empty, Self::display)
    }

    /// The bytes that go into the file.
    pub fn render(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => neutralise(text),
            Self::Amount(amount) => Cow::Borrowed(amount),
            Self::Empty => Cow::Borrowed(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralises_every_formula_lead() {
        for lead in ["=", "+", "-", "@", "\t", "\r"] {
            let cell = format!("{lead}HYPERLINK(\"http://x\")");
            assert_eq!(neutralise(&cell), format!("'{cell}"), "{lead:?}");
        }
        for safe in ["HYPERLINK", "", "1=1", " =x", "'=x", "日本語"] {
            assert_eq!(neutralise(safe), safe);
        }
    }

    #[test]
    fn amounts_stay_numbers_and_text_that_looks_like_one_does_not() {
        assert_eq!(Cell::Amount("-12.50".into()).render(), "-12.50");
        assert_eq!(Cell::text("-12.50").render(), "'-12.50");
        assert_eq!(Cell::Empty.render(), "");
    }

    #[test]
    fn reports_by_file_name() {
        for report in Report::ALL {
            assert_eq!(
                Report::from_file(&format!("{}.csv", report.slug())),
                Some(report)
            );
        }
        assert_eq!(Report::from_file("tasks"), None);
        assert_eq!(Report::from_file("secrets.csv"), None);
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
        assert_eq!(Report::Ledger.filename(day), "ledger-2026-12-02.csv");
    }

    fn field_of(err: &AppError) -> Option<&str> {
        match err {
            AppError::BadUserInput { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        for raw in ["token=x", "status=OPEN&access_token=x", "apiKey=ilk_x"] {
            assert!(
                matches!(split_query(raw), Err(Refused::CredentialInUrl(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn common_parameters_are_taken_out() -> AppResult<()> {
        let (common, rest) = match split_query("bom=1&status=OPEN&async=true") {
            Ok(split) => split,
            Err(_) => return Err(AppError::bad_input("refused")),
        };
        assert_eq!(
            common,
            Common {
                bom: true,
                background: true
            }
        );
        assert_eq!(rest, "status=OPEN");
        assert!(matches!(split_query("bom=yes"), Err(Refused::Bad(_))));
        Ok(())
    }

    #[test]
    fn task_parameters_parse_like_graphql_arguments() -> AppResult<()> {
        let Params::Tasks { filter, orders } = Params::parse(
            Report::Tasks,
            "status=IN_PROGRESS&mainOnly=true&order=DEADLINE:DESC,TITLE&search=x",
        )?
        else {
            return Err(AppError::bad_input("wrong report"));
        };
        assert_eq!(filter.status, Some(WorkStatus::InProgress));
        assert!(filter.main_only);
        assert_eq!(filter.search.as_deref(), Some("x"));
        assert_eq!(orders.len(), 2);
        assert!(orders[0].descending && orders[0].field == TaskOrderField::Deadline);
        assert!(!orders[1].descending && orders[1].field == TaskOrderField::Title);
        for (raw, field) in [
            ("status=LATE", "status"),
            ("executorId=nope", "executorId"),
            ("colour=red", "colour"),
            ("status=OPEN&status=DONE", "status"),
            ("order=COLOUR", "order"),
            ("deadlineFrom=yesterday", "deadlineFrom"),
        ] {
            match Params::parse(Report::Tasks, raw) {
                Err(err) => assert_eq!(field_of(&err), Some(field), "{raw}: {err:?}"),
                Ok(_) => panic!("{raw} accepted"),
            }
        }
        Ok(())
    }

    #[test]
    fn finance_parameters() -> AppResult<()> {
        let Params::ProfitAndLoss {
            by_department,
            by_month,
            ..
        } = Params::parse(
            Report::ProfitAndLoss,
            "from=2026-01-01&to=2026-12-31&groupBy=DEPARTMENT,MONTH",
        )?
        else {
            return Err(AppError::bad_input("wrong report"));
        };
        assert!(by_department && by_month);
        let missing = Params::parse(Report::ProfitAndLoss, "from=2026-01-01");
        assert!(missing.as_ref().err().and_then(field_of) == Some("to"));
        let ledger = Params::parse(Report::Ledger, "from=2026-01-01");
        assert!(ledger.as_ref().err().and_then(field_of) == Some("accountCode"));
        let bad = Params::parse(Report::TrialBalance, "asOf=31.12.2026");
        assert!(bad.as_ref().err().and_then(field_of) == Some("asOf"));
        Ok(())
    }
}
