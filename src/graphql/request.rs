//! Who is asking, and everything a resolver may read for one request or websocket connection.

use std::sync::Arc;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::service as identity;
use crate::domains::tasks::loaders::TaskLoaders;
use crate::error::AppError;

/// A verified access token's Viewer and the moment the token expires (Unix seconds).
pub struct Authenticated {
    pub viewer: Viewer,
    pub expires_at: i64,
}

pub async fn authenticate(app: &AppState, token: &str) -> Result<Authenticated, AppError> {
    let claims = app.jwt.verify(token)?;
    let user = identity::viewer_from_claims(&app.db.conn, &claims).await?;
    Ok(Authenticated {
        viewer: Viewer::User(Arc::new(user)),
        expires_at: claims.exp,
    })
}

/// Inserts the viewer and fresh per-request DataLoaders, so no cache outlives one viewer.
pub fn insert_request_data(data: &mut async_graphql::Data, app: &AppState, viewer: Viewer) {
    data.insert(viewer);
    data.insert(IdentityLoaders::new(&app.db.conn));
    data.insert(TaskLoaders::new(&app.db.conn));
    data.insert(ApprovalLoaders::new(&app.db.conn));
}
