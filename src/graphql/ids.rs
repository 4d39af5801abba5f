//! Client-supplied ids, parsed once at the edge into the domain's newtypes.

use async_graphql::{MaybeUndefined, ID};

use crate::error::AppError;

/// An optional id argument: absent stays `None`, a malformed one is `BAD_USER_INPUT`.
pub fn optional_id<T>(
    field: &str,
    raw: Option<&ID>,
    parse: fn(&str, &str) -> Result<T, AppError>,
) -> Result<Option<T>, AppError> {
    raw.map(|id| parse(field, id.as_str())).transpose()
}

/// An id in an update input: absent leaves the value alone (`None`), null clears it
/// (`Some(None)`), a value sets it (`Some(Some(_))`).
pub fn maybe_id<T>(
    field: &str,
    raw: MaybeUndefined<ID>,
    parse: fn(&str, &str) -> Result<T, AppError>,
) -> Result<Option<Option<T>>, AppError> {
    match raw {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(id) => Ok(Some(Some(parse(field, id.as_str())?))),
    }
}
