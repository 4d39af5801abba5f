//! Which scope a partner app needs for each root field. A root field that is not listed is
//! closed to apps, so a field added later stays closed until someone decides its scope. The
//! rows an app then sees are decided by each domain's read rules, over the app's grants.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerError, ServerResult, Value};

use crate::auth::{AppScope, Viewer};
use crate::error::AppError;

use AppScope::*;

/// (root field, the scopes any one of which opens it).
const OPEN_TO_APPS: &[(&str, &[AppScope])] = &[
    ("task", &[TasksRead]),
    ("tasks", &[TasksRead]),
    ("taskCategories", &[TasksRead, TasksWrite]),
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
    ("trialBalance", &[FinanceRead]),
    ("profitAndLoss", &[FinanceRead]),
    ("accountLedger", &[FinanceRead]),
    ("budgetUsage", &[FinanceRead]),
    ("user", &[ProfilesRead]),
    ("users", &[ProfilesRead]),
    ("departments", &[ProfilesRead, TasksRead, FinanceRead]),
    ("department", &[ProfilesRead, TasksRead, FinanceRead]),
    ("events", &[EventsSubscribe]),
];

/// The scopes that open `field` to apps; `None` when it is closed to them.
pub fn scopes_for(field: &str) -> Option<&'static [AppScope]> {
    OPEN_TO_APPS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, scopes)| *scopes)
}

pub struct AppScopes;

impl ExtensionFactory for AppScopes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AppScopesCheck)
    }
}

struct AppScopesCheck;

#[async_trait::async_trait]
impl Extension for AppScopesCheck {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root = info.path_node.parent.is_none() && !info.name.starts_with("__");
        if root {
            if let Some(Viewer::User(user)) = ctx.data_opt::<Viewer>() {
                if user.app.is_some() {
                    let open = scopes_for(info.name)
                        .is_some_and(|scopes| scopes.iter().any(|s| user.allows(*s)));
                    if !open {
                        let refusal = match scopes_for(info.name) {
                            None => format!("`{}` is not open to partner apps", info.name),
                            Some(scopes) => format!(
                                "`{}` needs one of the scopes {}",
                                info.name,
                                scopes
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        let error: async_graphql::Error = AppError::Forbidden(refusal).into();
                        let mut refused = ServerError::new(error.message, None);
                        refused.extensions = error.extensions;
                        refused.path = vec![async_graphql::PathSegment::Field(
                            info.alias.unwrap_or(info.name).to_owned(),
                        )];
                        return Err(refused);
                    }
                }
            }
        }
        next.run(ctx, info).await
    }
}
