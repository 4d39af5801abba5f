//! Relay connection pieces shared by every list: page size rules and `totalCount`.

use async_graphql::SimpleObject;

use crate::error::{AppError, AppResult};

pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

#[derive(SimpleObject)]
pub struct TotalCount {
    /// The number of items matching the filter, across all pages.
    pub total_count: u64,
}

/// `first` defaults to 20 and may not exceed 100.
pub fn page_size(first: Option<i32>) -> AppResult<u64> {
    match first.unwrap_or(DEFAULT_PAGE) {
        n if (0..=MAX_PAGE).contains(&n) => Ok(n as u64),
        _ => Err(AppError::bad_field(
            "first",
            format!("first must be between 0 and {MAX_PAGE}"),
        )),
    }
}
