//! Relay connection pieces shared by every list: page size rules and `totalCount`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
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

/// Deeper than any list a person pages through; keeps offsets far from integer limits.
const MAX_OFFSET: u64 = 10_000_000;

/// Offset cursors: opaque to clients, stable for a given filter and order.
pub fn encode_cursor(offset: u64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

pub fn decode_cursor(cursor: Option<&str>) -> Result<u64, AppError> {
    use base64::Engine;
    let Some(cursor) = cursor else {
        return Ok(0);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.strip_prefix("offset:")?.parse::<u64>().ok())
        .filter(|offset| *offset < MAX_OFFSET)
        .map(|offset| offset + 1)
        .ok_or_else(|| AppError::bad_field("after", "not a cursor from this list"))
}

/// Whether the connection being resolved selects `totalCount` (through fragments too): when
/// it does not, its list need not count every match.
pub fn selects_total(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// A Relay connection over one offset page read without its count (the query does not select
/// `totalCount`, so the placeholder is never shown); `has_next` came from one row past the page.
pub fn uncounted_connection<T: async_graphql::OutputType>(
    items: Vec<T>,
    has_next: bool,
    offset: u64,
) -> Connection<String, T, TotalCount, EmptyFields> {
    offset_page(items, has_next, offset, 0)
}

/// A Relay connection over one offset page of `total` items.
pub fn connection<T: async_graphql::OutputType>(
    items: Vec<T>,
    total: u64,
    offset: u64,
) -> Connection<String, T, TotalCount, EmptyFields> {
    let has_next = offset + (items.len() as u64) < total;
    offset_page(items, has_next, offset, total)
}

fn offset_page<T: async_graphql::OutputType>(
    items: Vec<T>,
    has_next: bool,
    offset: u64,
    total: u64,
) -> Connection<String, T, TotalCount, EmptyFields> {
    let mut connection =
        Connection::with_additional_fields(offset > 0, has_next, TotalCount { total_count: total });
    connection.edges.extend(
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Edge::new(encode_cursor(offset + i as u64), item)),
    );
    connection
}
