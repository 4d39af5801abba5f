//! Which scopes a partner app needs, field by field: each root field (closed unless listed, so
//! a field added later stays closed until someone decides its scope), and every field of each
//! domain's types, wherever they are reached from (a task's approval needs `APPROVALS_READ`, a
//! person's email `PROFILES_READ`). The rows an app then sees are decided by each domain's read
//! rules, over the app's grants. The table is names only, so it sits below the domains; the
//! check runs as a schema extension (`AppScopes`) and, for subscriptions, in `live::subscriber`.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{
    PathSegment, QueryPathNode, QueryPathSegment, ServerError, ServerResult, Value, Variables,
};

use crate::auth::{AppScope, Viewer, ViewerUser};
use crate::error::{AppError, AppResult};

use AppScope::*;

/// (root field, the scopes any one of which opens it).
const OPEN_TO_APPS: &[(&str, &[AppScope])] = &[
    ("task", &[TasksRead]),
    ("tasks", &[TasksRead]),
    ("taskCategories", &[TasksRead, TasksWrite]),
    ("taskCategory", &[TasksRead, TasksWrite]),
    ("createTask", &[TasksWrite]),
    ("updateTask", &[TasksWrite]),
    ("submitTask", &[TasksWrite]),
    ("reportTaskProgress", &[TasksWrite]),
    ("confirmTaskProgress", &[TasksWrite]),
    ("cancelTask", &[TasksWrite]),
    ("addTaskComment", &[TasksWrite]),
    ("editTaskComment", &[TasksWrite]),
    ("deleteTaskComment", &[TasksWrite]),
    ("uploadTaskAttachment", &[TasksWrite]),
    ("approval", &[ApprovalsRead]),
    ("approvalFlows", &[ApprovalsRead]),
    ("approvalFlow", &[ApprovalsRead]),
    ("transactionTypes", &[BusinessRead, BusinessSubmit]),
    ("transaction", &[BusinessRead, BusinessSubmit]),
    ("transactions", &[BusinessRead, BusinessSubmit]),
    ("submitTransaction", &[BusinessSubmit]),
    ("accounts", &[FinanceRead]),
    ("journalEntry", &[FinanceRead]),
    ("journalEntries", &[FinanceRead]),
    ("trialBalance", &[FinanceRead]),
    ("profitAndLoss", &[FinanceRead]),
    ("accountLedger", &[FinanceRead]),
    ("budgetUsage", &[FinanceRead]),
    ("user", &[ProfilesRead]),
    ("users", &[ProfilesRead]),
    ("people", &[ProfilesRead]),
    ("departments", &[ProfilesRead, TasksRead, FinanceRead]),
    ("department", &[ProfilesRead, TasksRead, FinanceRead]),
    ("events", &[EventsSubscribe]),
    ("taskStats", &[ReportsRead]),
    ("approvalStats", &[ReportsRead]),
];

/// Subscriptions, checked when they start (`live::subscriber`).
const SUBSCRIPTIONS_OPEN_TO_APPS: &[(&str, &[AppScope])] = &[
    ("events", &[EventsSubscribe]),
    ("taskEvents", &[EventsSubscribe]),
    ("transactionEvents", &[EventsSubscribe]),
];

const TASKS: &[AppScope] = &[TasksRead, TasksWrite];
const APPROVALS: &[AppScope] = &[ApprovalsRead];
const BUSINESS: &[AppScope] = &[BusinessRead, BusinessSubmit];
const FINANCE: &[AppScope] = &[FinanceRead];
const PROFILES: &[AppScope] = &[ProfilesRead];
const REPORTS: &[AppScope] = &[ReportsRead];
const ORGANISATION: &[AppScope] = &[ProfilesRead, TasksRead, TasksWrite, FinanceRead];

/// The domains' types, by the category their fields belong to. A type not listed here (pages,
/// edges, events of the log) carries no data of its own.
const TYPES: &[(&[&str], &[AppScope])] = &[
    (
        &[
            "Task",
            "TaskActivityEntry",
            "TaskAttachment",
            "TaskCategory",
            "TaskComment",
            "TaskEvent",
            "MeritAward",
            "AssignmentPool",
            "RecurringTask",
        ],
        TASKS,
    ),
    (
        &[
            "Approval",
            "ApprovalCondition",
            "ApprovalCycleTime",
            "ApprovalFlow",
            "ApprovalProgress",
            "ApprovalStep",
            "ReviewRecord",
            "Delegation",
            "StepCycleTime",
        ],
        APPROVALS,
    ),
    (
        &[
            "BusinessTransaction",
            "TransactionSource",
            "TransactionStep",
            "TransactionType",
            "TransactionEvent",
        ],
        BUSINESS,
    ),
    (
        &[
            "Account",
            "AccountLedger",
            "Budget",
            "JournalEntry",
            "JournalLine",
            "LedgerEntryLine",
            "PnlRow",
            "TrialBalance",
            "TrialBalanceRow",
        ],
        FINANCE,
    ),
    (
        &[
            "User",
            "Person",
            "UserProfile",
            "CycleTimeHours",
            "DecisionHours",
        ],
        PROFILES,
    ),
    (
        &[
            "TaskStats",
            "TaskStatsRow",
            "Percentiles",
            "ApprovalStats",
            "ApprovalStatsRow",
            "DecisionTime",
        ],
        REPORTS,
    ),
    (&["Department"], ORGANISATION),
    // Reached only through fields closed to apps; closed here too, should one ever lead there.
    (
        &[
            "Role",
            "RoleGrant",
            "Notification",
            "NotificationEvent",
            "Job",
            "JobEvent",
            "JobQueue",
            "JobKind",
            "JobCounts",
            "SchedulerNode",
            "IdentityChange",
            "App",
            "ApiKey",
            "ApiKeyCreated",
            "BiAccess",
            "BiAccessInfo",
            "WebhookEndpoint",
            "WebhookEndpointCreated",
            "WebhookSecretRotated",
            "WebhookDelivery",
            "WebhookAttempt",
            "AuthPayload",
        ],
        &[],
    ),
];

/// Who someone is stays readable wherever a record names them (a task's executors); the rest
/// of a person (email, department, roles) needs `PROFILES_READ`.
const OPEN_FIELDS: &[(&str, &str)] = &[("User", "id"), ("User", "name"), ("Department", "id")];

/// The scopes that open root `field` to apps; `None` when it is closed to them.
pub fn scopes_for(field: &str) -> Option<&'static [AppScope]> {
    OPEN_TO_APPS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, scopes)| *scopes)
}

fn names(scopes: &[AppScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn refusal(what: &str, scopes: Option<&[AppScope]>) -> AppError {
    AppError::Forbidden(match scopes {
        None | Some([]) => format!("{what} is not open to partner apps"),
        Some(scopes) => format!("{what} needs one of the scopes {}", names(scopes)),
    })
}

/// Whether `viewer` may read what root field `field` gives, by another door than GraphQL (the
/// CSV export): people always; apps when they hold one of the scopes that open the field.
pub fn may_open_root(viewer: &ViewerUser, field: &str) -> AppResult<()> {
    if viewer.app.is_none() {
        return Ok(());
    }
    let scopes = scopes_for(field);
    if scopes.is_some_and(|scopes| scopes.iter().any(|s| viewer.allows(*s))) {
        Ok(())
    } else {
        Err(refusal(&format!("`{field}`"), scopes))
    }
}

/// Whether `viewer` may start subscription `field`: people always; apps by the table.
pub fn may_subscribe(viewer: &ViewerUser, field: &str) -> AppResult<()> {
    if viewer.app.is_none() {
        return Ok(());
    }
    let scopes = SUBSCRIPTIONS_OPEN_TO_APPS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, scopes)| *scopes);
    if scopes.is_some_and(|scopes| scopes.iter().any(|s| viewer.allows(*s))) {
        Ok(())
    } else {
        Err(refusal(&format!("`{field}`"), scopes))
    }
}

/// The scopes a type's fields need; `None` for a type that carries no data of its own.
fn type_scopes(name: &str) -> Option<&'static [AppScope]> {
    TYPES
        .iter()
        .find(|(types, _)| types.contains(&name))
        .map(|(_, scopes)| *scopes)
}

/// Whether `viewer` may resolve `parent.field`, of type `returns` (`root`: a field of the query
/// or mutation root). A field needs the scopes of the type it belongs to and of the type it
/// leads to, so `Task.approval` needs `APPROVALS_READ` as `Approval.status` does.
pub fn may_resolve(
    viewer: &ViewerUser,
    parent: &str,
    field: &str,
    returns: &str,
    root: bool,
) -> AppResult<()> {
    if viewer.app.is_none() || field.starts_with("__") {
        return Ok(());
    }
    let held = |scopes: &[AppScope]| scopes.iter().any(|s| viewer.allows(*s));
    if root {
        let scopes = scopes_for(field);
        if !scopes.is_some_and(held) {
            return Err(refusal(&format!("`{field}`"), scopes));
        }
    } else if !OPEN_FIELDS.contains(&(parent, field)) {
        if let Some(scopes) = type_scopes(parent).filter(|scopes| !held(scopes)) {
            return Err(refusal(&format!("`{parent}.{field}`"), Some(scopes)));
        }
    }
    let returned = returns.trim_matches(|c: char| !c.is_alphanumeric());
    // A person named on a record is reached through `User`, whose open fields say who it is.
    if returned == "User" || returned == "Department" {
        return Ok(());
    }
    match type_scopes(returned).filter(|scopes| !held(scopes)) {
        Some(scopes) => Err(refusal(&format!("`{parent}.{field}`"), Some(scopes))),
        None => Ok(()),
    }
}

fn path_of(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path = node.parent.map(path_of).unwrap_or_default();
    path.push(match node.segment {
        QueryPathSegment::Index(index) => PathSegment::Index(index),
        QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
    });
    path
}

pub struct AppScopes;

impl ExtensionFactory for AppScopes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AppScopesCheck)
    }
}

struct AppScopesCheck;

/// The root fields of the document's subscriptions, through fragments (which may not recurse:
/// validation has not run yet, so a cycle is cut by the depth bound).
fn subscription_fields(document: &ExecutableDocument) -> Vec<String> {
    fn collect(
        document: &ExecutableDocument,
        selections: &SelectionSet,
        depth: usize,
        out: &mut Vec<String>,
    ) {
        if depth > 8 {
            return;
        }
        for selection in &selections.items {
            match &selection.node {
                Selection::Field(field) => out.push(field.node.name.node.to_string()),
                Selection::InlineFragment(fragment) => {
                    collect(document, &fragment.node.selection_set.node, depth + 1, out);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        collect(document, &fragment.node.selection_set.node, depth + 1, out);
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (_, operation) in document.operations.iter() {
        if operation.node.ty == OperationType::Subscription {
            collect(document, &operation.node.selection_set.node, 0, &mut out);
        }
    }
    out
}

#[async_trait::async_trait]
impl Extension for AppScopesCheck {
    /// Subscriptions are refused when they start, not event by event.
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Some(Viewer::User(user)) = ctx.data_opt::<Viewer>() {
            for field in subscription_fields(&document) {
                if let Err(refused) = may_subscribe(user, &field) {
                    let error: async_graphql::Error = refused.into();
                    let mut server_error = ServerError::new(error.message, None);
                    server_error.extensions = error.extensions;
                    return Err(server_error);
                }
            }
        }
        Ok(document)
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if let Some(Viewer::User(user)) = ctx.data_opt::<Viewer>() {
            let root = info.path_node.parent.is_none();
            if let Err(refused) =
                may_resolve(user, info.parent_type, info.name, info.return_type, root)
            {
                let error: async_graphql::Error = refused.into();
                let mut server_error = ServerError::new(error.message, None);
                server_error.extensions = error.extensions;
                server_error.path = path_of(info.path_node);
                return Err(server_error);
            }
        }
        next.run(ctx, info).await
    }
}
