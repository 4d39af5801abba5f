//! The console: the hub's own pages for people, in English and Chinese, on a phone or a PC. A
//! second transport beside GraphQL over the same services: server-rendered HTML and plain forms
//! (every action works without script), a session cookie only these routes read, and live
//! updates from the event log over Server-Sent Events.

mod assets;
mod events;
mod i18n;
mod layout;
mod pages;
mod session;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

pub use session::SESSION_COOKIE;

/// The console's routes, for any router state the hub's `AppState` can be taken from.
pub fn routes<S>() -> Router<S>
where
    AppState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    use pages::{
        account, approvals, configuration, exports, finance, flows, integrations, ledger_setup,
        notifications, operations, organisation, people, task, task_form, transaction_types, work,
    };
    Router::new()
        .route("/", get(account::root))
        .route(
            "/sign-in",
            get(account::sign_in_page).post(account::sign_in),
        )
        .route("/sign-out", post(account::sign_out))
        .route(
            "/account/password",
            get(account::password_page).post(account::change_password),
        )
        .route("/language/{tag}", get(account::switch_language))
        .route("/work", get(work::board))
        .route(
            "/tasks/new",
            get(task_form::new_page).post(task_form::create),
        )
        .route("/tasks/{id}", get(task::detail))
        .route(
            "/tasks/{id}/edit",
            get(task_form::edit_page).post(task_form::update),
        )
        .route("/tasks/{id}/attachments", post(task::upload))
        .route("/tasks/{id}/{action}", post(task::act))
        .route("/approvals", get(approvals::inbox))
        .route("/approvals/{id}/decide", post(approvals::decide))
        .route("/approvals/delegations", post(approvals::delegate))
        .route(
            "/approvals/delegations/{id}/end",
            post(approvals::end_delegation),
        )
        .route("/notifications", get(notifications::inbox))
        .route("/notifications/read", post(notifications::mark_all_read))
        .route("/configuration", get(configuration::overview))
        .route(
            "/configuration/categories/{id}",
            get(configuration::category_page).post(configuration::update_category),
        )
        .route(
            "/configuration/categories/{id}/archive",
            post(configuration::archive_category),
        )
        .route(
            "/configuration/accounts/new",
            get(ledger_setup::new_account_page).post(ledger_setup::create_account),
        )
        .route(
            "/configuration/accounts/{id}",
            get(ledger_setup::account_page).post(ledger_setup::update_account),
        )
        .route(
            "/configuration/accounts/{id}/active",
            post(ledger_setup::set_account_active),
        )
        .route(
            "/configuration/budgets/new",
            get(ledger_setup::new_budget_page).post(ledger_setup::create_budget),
        )
        .route(
            "/configuration/budgets/{id}",
            get(ledger_setup::budget_page).post(ledger_setup::update_budget),
        )
        .route("/configuration/organisation", get(organisation::overview))
        .route(
            "/configuration/departments",
            post(organisation::create_department),
        )
        .route(
            "/configuration/departments/{id}",
            get(organisation::department_page).post(organisation::update_department),
        )
        .route("/configuration/users", post(organisation::create_user))
        .route(
            "/configuration/users/{id}",
            get(organisation::user_page).post(organisation::update_user),
        )
        .route(
            "/configuration/users/{id}/active",
            post(organisation::set_user_active),
        )
        .route(
            "/configuration/users/{id}/grants",
            post(organisation::grant),
        )
        .route(
            "/configuration/grants/{id}/revoke",
            post(organisation::revoke),
        )
        .route("/configuration/roles", post(organisation::create_role))
        .route(
            "/configuration/roles/{id}",
            get(organisation::role_page).post(organisation::update_role),
        )
        .route(
            "/configuration/flows/new",
            get(flows::new_page).post(flows::create),
        )
        .route(
            "/configuration/flows/{id}",
            get(flows::page).post(flows::update),
        )
        .route(
            "/configuration/types/new",
            get(transaction_types::new_page).post(transaction_types::create),
        )
        .route(
            "/configuration/types/{id}",
            get(transaction_types::page).post(transaction_types::update),
        )
        .route("/finance", get(finance::overview))
        .route("/finance/ledger/{code}", get(finance::ledger))
        .route("/finance/export/{file}", post(exports::download))
        .route("/exports/{id}", get(exports::job))
        .route("/exports/{id}/download", get(exports::file))
        .route("/operations", get(operations::overview))
        .route(
            "/operations/queues/{name}/{action}",
            post(operations::steer_queue),
        )
        .route(
            "/operations/jobs/{id}/{action}",
            post(operations::steer_job),
        )
        .route("/integrations", get(integrations::overview))
        .route("/integrations/apps", post(integrations::create_app))
        .route("/integrations/apps/{id}", get(integrations::app_page))
        .route(
            "/integrations/apps/{id}/active",
            post(integrations::set_app_active),
        )
        .route(
            "/integrations/apps/{id}/keys",
            post(integrations::create_key),
        )
        .route(
            "/integrations/apps/{id}/endpoints",
            post(integrations::create_endpoint),
        )
        .route(
            "/integrations/keys/{id}/revoke",
            post(integrations::revoke_key),
        )
        .route(
            "/integrations/endpoints/{id}",
            get(integrations::endpoint_page),
        )
        .route(
            "/integrations/endpoints/{id}/active",
            post(integrations::set_endpoint_active),
        )
        .route(
            "/integrations/endpoints/{id}/replay",
            post(integrations::replay),
        )
        .route(
            "/integrations/deliveries/{id}/redeliver",
            post(integrations::redeliver),
        )
        .route("/people", get(people::directory))
        .route("/people/{id}", get(people::person))
        .route("/console/events", get(events::stream))
        .route(assets::STYLE_PATH, get(assets::style))
        .route(assets::SCRIPT_PATH, get(assets::script))
        .layer(axum::middleware::from_fn(layout::security_headers))
}
