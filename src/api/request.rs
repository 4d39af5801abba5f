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
use crate::graphql::context::Lazy;

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
    let Ok(user_id) = uuid::Uuid::parse_str(&claims.sub) else {
        return Err(AppError::Unauthenticated(
            "invalid or expired access token".into(),
        ));
    };
    let user = app
        .viewers
        .resolve(
            user_id,
            claims.ver,
            identity::viewer_from_claims(&app.db.conn, &claims),
        )
        .await?;
    Ok(Authenticated {
        viewer: Viewer::User(user),
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

/// Inserts the viewer and fresh DataLoaders (each domain's built when first used), so no cache
/// outlives one viewer's request.
pub fn insert_request_data(
    data: &mut async_graphql::Data,
    app: &AppState,
    viewer: Viewer,
    lifetime: Lifetime,
) {
    let per_event = lifetime == Lifetime::Connection;
    let db = app.db.conn.clone();
    data.insert(Lazy::new({
        let db = db.clone();
        move || {
            let identity = IdentityLoaders::new(&db);
            if per_event {
                identity.users.enable_all_cache(false);
                identity.departments.enable_all_cache(false);
            }
            identity
        }
    }));
    data.insert(Lazy::new({
        let db = db.clone();
        move || {
            let tasks = TaskLoaders::new(&db);
            if per_event {
                tasks.subtasks.enable_all_cache(false);
                tasks.comments.enable_all_cache(false);
                tasks.executors.enable_all_cache(false);
            }
            tasks
        }
    }));
    data.insert(Lazy::new({
        let (db, viewer) = (db.clone(), viewer.clone());
        move || FinanceLoaders::new(&db, &viewer)
    }));
    data.insert(Lazy::new({
        let (subjects, viewer) = (app.approval_subjects.clone(), viewer.clone());
        move || ApprovalLoaders::new(&db, &subjects, &viewer)
    }));
    data.insert(viewer);
}
