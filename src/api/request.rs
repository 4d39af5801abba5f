//! Who is asking, and everything a resolver may read for one request or websocket connection.

use std::sync::Arc;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::finance::loaders::FinanceLoaders;
use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::service as identity;
use crate::domains::integrations;
use crate::domains::tasks::loaders::TaskLoaders;
use crate::error::AppError;

/// A verified access token's Viewer and the moment the token expires (Unix seconds).
pub struct Authenticated {
    pub viewer: Viewer,
    pub expires_at: i64,
}

/// An access token, or a partner app's API key (told apart by the key's prefix).
pub async fn authenticate(app: &AppState, token: &str) -> Result<Authenticated, AppError> {
    if token.starts_with(integrations::model::KEY_PREFIX) {
        let (viewer, expires_at) =
            integrations::service::authenticate_key(&app.db.conn, token).await?;
        return Ok(Authenticated {
            viewer: Viewer::User(Arc::new(viewer)),
            expires_at: expires_at.map_or(i64::MAX, |at| at.timestamp()),
        });
    }
    let claims = app.jwt.verify(token)?;
    let user = identity::viewer_from_claims(&app.db.conn, &claims).await?;
    Ok(Authenticated {
        viewer: Viewer::User(Arc::new(user)),
        expires_at: claims.exp,
    })
}

/// How long the loaders' data may be reused.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// One HTTP request: the loaders may cache (and be primed) for its duration.
    Request,
    /// A websocket connection: it lives for hours, so nothing is cached between events.
    Connection,
}

/// Inserts the viewer and fresh DataLoaders, so no cache outlives one viewer's request.
pub fn insert_request_data(
    data: &mut async_graphql::Data,
    app: &AppState,
    viewer: Viewer,
    lifetime: Lifetime,
) {
    let identity = IdentityLoaders::new(&app.db.conn);
    let tasks = TaskLoaders::new(&app.db.conn);
    if lifetime == Lifetime::Connection {
        identity.users.enable_all_cache(false);
        identity.departments.enable_all_cache(false);
        tasks.subtasks.enable_all_cache(false);
        tasks.comments.enable_all_cache(false);
        tasks.executors.enable_all_cache(false);
    }
    data.insert(FinanceLoaders::new(&app.db.conn, &viewer));
    data.insert(ApprovalLoaders::new(
        &app.db.conn,
        &app.approval_subjects,
        &viewer,
    ));
    data.insert(viewer);
    data.insert(identity);
    data.insert(tasks);
}
