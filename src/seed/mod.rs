//! `interlink seed`: a small demo company to try the hub, or the benchmark's bulk dataset.

pub mod bench;
pub mod demo;

pub use bench::{seed_bench, BenchSize};
pub use demo::seed_demo;

use std::sync::Arc;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::auth::viewer::{Scope, ScopedPermission};
use crate::auth::{Permission, Viewer, ViewerUser};

/// Seeding acts as the installation itself, with every permission, as an administrator would.
fn installation_viewer(user_id: Uuid) -> Viewer {
    Viewer::User(Arc::new(ViewerUser {
        id: user_id,
        department_id: None,
        grants: vec![ScopedPermission {
            permission: Permission::Admin,
            scope: Scope::Global,
        }],
        app: None,
    }))
}

async fn first_admin(db: &impl ConnectionTrait) -> anyhow::Result<Uuid> {
    use entities::user;
    use sea_orm::{EntityTrait, QueryOrder};
    user::Entity::find()
        .order_by_asc(user::Column::Id)
        .one(db)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| {
            anyhow::anyhow!("no user yet: start the server once, or set INTERLINK_ADMIN_EMAIL")
        })
}
