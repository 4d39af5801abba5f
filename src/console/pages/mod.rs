//! One module per area of the console; each handler reads through a service and renders.

pub mod account;
pub mod approvals;
pub mod configuration;
pub mod exports;
pub mod finance;
pub mod flows;
pub mod integrations;
pub mod ledger_setup;
pub mod notifications;
pub mod operations;
pub mod organisation;
pub mod people;
pub mod task;
pub mod task_form;
pub mod transaction_types;
pub mod work;

use std::collections::HashMap;

use uuid::Uuid;

use crate::domains::identity::service as identity;
use crate::error::AppResult;

/// The active people a form offers as choices (executors, a confirmer, a delegate), by name.
pub async fn people_to_choose<C: sea_orm::ConnectionTrait>(
    db: &C,
    viewer: &crate::auth::Viewer,
    limit: u64,
) -> AppResult<Vec<crate::domains::identity::model::UserRecord>> {
    let filter = identity::PeopleFilter {
        search: None,
        department_id: None,
        include_inactive: false,
    };
    Ok(
        identity::list_people(db, viewer, filter, 0, limit, identity::Counting::PageOnly)
            .await?
            .people
            .into_iter()
            .map(|p| p.user)
            .collect(),
    )
}

/// Names of people by id, for a page that shows who did what.
pub async fn names_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    ids: impl IntoIterator<Item = Uuid>,
) -> AppResult<HashMap<Uuid, String>> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(identity::users_by_id(db, &ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}
