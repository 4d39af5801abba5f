//! What every domain's GraphQL layer stands on: typed context access, ids, scalars, pagination,
//! document limits and following the event log. The schema itself is assembled above the domains, in `api`.

pub mod app_scopes;
pub mod context;
pub mod ids;
pub mod limits;
pub mod live;
pub mod pagination;
pub mod scalars;

use crate::error::{AppError, AppResult};

/// A lookup whose miss is a null field rather than an error: what one may not see is absent.
pub fn found<T>(result: AppResult<T>) -> AppResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(err) => Err(err),
    }
}
