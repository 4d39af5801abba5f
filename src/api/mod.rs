//! The GraphQL API assembled from the domains' roots, with its limits, and what each request
//! carries (the viewer, fresh loaders). It sits above the domains; `graphql` sits below them.

pub mod request;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::config::Limits;
use crate::domains::approvals::graphql::{ApprovalsMutation, ApprovalsQuery};
use crate::domains::business::graphql::{BusinessMutation, BusinessQuery, BusinessSubscription};
use crate::domains::events::graphql::{EventsQuery, EventsSubscription};
use crate::domains::finance::graphql::{FinanceMutation, FinanceQuery};
use crate::domains::identity::graphql::{IdentityMutation, IdentityQuery, IdentitySubscription};
use crate::domains::integrations::graphql::webhooks::{WebhooksMutation, WebhooksQuery};
use crate::domains::integrations::graphql::{AppsMutation, AppsQuery, BiAccessMutation};
use crate::domains::notifications::graphql::{
    NotificationsMutation, NotificationsQuery, NotificationsSubscription,
};
use crate::domains::reports::graphql::ReportsQuery;
use crate::domains::scheduling::graphql::{
    SchedulingMutation, SchedulingQuery, SchedulingSubscription,
};
use crate::domains::tasks::graphql::{
    RecurringTasksMutation, RecurringTasksQuery, TasksMutation, TasksQuery, TasksSubscription,
};

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    IdentityQuery,
    TasksQuery,
    RecurringTasksQuery,
    ApprovalsQuery,
    NotificationsQuery,
    FinanceQuery,
    BusinessQuery,
    SchedulingQuery,
    EventsQuery,
    AppsQuery,
    WebhooksQuery,
    ReportsQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    IdentityMutation,
    TasksMutation,
    RecurringTasksMutation,
    ApprovalsMutation,
    NotificationsMutation,
    FinanceMutation,
    BusinessMutation,
    SchedulingMutation,
    AppsMutation,
    BiAccessMutation,
    WebhooksMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    IdentitySubscription,
    TasksSubscription,
    NotificationsSubscription,
    SchedulingSubscription,
    BusinessSubscription,
    EventsSubscription,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Who a schema instance serves. The two are the same schema; only the apps' one checks each
/// field against the app's scopes, because an extension makes every field of every request go
/// through the extension chain (a `ResolveInfo` built per field), which people need not pay for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callers {
    /// Signed-in people and anonymous requests: no field needs an app scope.
    People,
    /// Partner apps (API keys), and websockets, whose caller is known only after they start.
    Apps,
}

/// The schema with its limits; `dev_tools` keeps introspection and field suggestions on.
pub fn schema_builder(
    limits: &Limits,
    dev_tools: bool,
    callers: Callers,
) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    // `max_depth` bounds data fields and `max_introspection_depth` the introspection subtrees,
    // both checked before this (graphql::limits); async-graphql's own count takes both
    // together, so it keeps the larger as a backstop.
    .limit_depth(limits.max_depth.max(limits.max_introspection_depth))
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(limits.max_recursive_depth)
    .limit_directives(limits.max_directives);
    let builder = match callers {
        Callers::People => builder,
        Callers::Apps => builder.extension(crate::graphql::app_scopes::AppScopes),
    };
    if dev_tools {
        builder
    } else {
        builder.disable_introspection().disable_suggestions()
    }
}

/// The SDL clients code against; `schema/schema.graphql` must equal it.
pub fn sdl() -> String {
    let limits = crate::config::Config::from_sources(crate::config::Sources {
        vars: &Default::default(),
        file: None,
    })
    .map(|c| c.limits);
    match limits {
        Ok(limits) => schema_builder(&limits, true, Callers::Apps).finish().sdl(),
        Err(_) => String::new(),
    }
}
