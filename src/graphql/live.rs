//! What every live resolver shares: parsing a resume cursor and following the event log.

use std::sync::Arc;

use async_graphql::Context;
use futures_util::Stream;

use super::context::ContextExt;
use crate::auth::{Viewer, ViewerUser};
use crate::error::{AppError, AppResult};
use crate::platform::events::follow::{self, FollowError};
use crate::platform::events::{Cursor, Envelope};

/// Subscriptions are for signed-in users (an anonymous one would see nothing, ever), and for
/// apps with `EVENTS_SUBSCRIBE`.
pub fn subscriber(viewer: &Viewer) -> AppResult<Arc<ViewerUser>> {
    match viewer {
        Viewer::User(user) => {
            user.require_scope(crate::auth::AppScope::EventsSubscribe)?;
            Ok(user.clone())
        }
        Viewer::Anonymous => Err(AppError::Unauthenticated("sign in to subscribe".into())),
    }
}

/// `after` as a cursor: `BAD_USER_INPUT` on `field` when it is not one.
pub fn parse_cursor(field: &str, after: Option<&str>) -> AppResult<Option<Cursor>> {
    after
        .map(|text| {
            Cursor::parse(text).ok_or_else(|| AppError::bad_field(field, "not an event cursor"))
        })
        .transpose()
}

impl From<FollowError> for AppError {
    fn from(err: FollowError) -> Self {
        match err {
            FollowError::Expired(cursor) => AppError::CursorExpired(format!(
                "the events after {cursor} are past the event log's retention"
            )),
            FollowError::Db(err) => err.into(),
        }
    }
}

/// The log after `after` (its `after` argument, unparsed), then live; with no cursor, live from
/// now. Each entry once, in cursor order; the caller filters by topic and by viewer.
pub async fn follow(
    ctx: &Context<'_>,
    after: Option<&str>,
) -> AppResult<impl Stream<Item = Arc<Envelope>> + Send + 'static> {
    let app = ctx.app()?;
    let after = parse_cursor("after", after)?;
    Ok(follow::follow(&app.db.conn, app.bus.as_ref(), after).await?)
}
