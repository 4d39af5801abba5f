//! What every domain's GraphQL layer stands on: typed context access, ids, scalars, pagination
//! and following the event log. The schema itself is assembled above the domains, in `api`.

pub mod context;
pub mod ids;
pub mod live;
pub mod pagination;
pub mod scalars;
