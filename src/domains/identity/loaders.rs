//! Identity's DataLoaders, built per request so nothing cached outlives one viewer's request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entities::{department, role, role_grant};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::model::UserRecord;
use super::service;

pub struct UserLoader(pub DatabaseConnection);

impl Loader<Uuid> for UserLoader {
    type Value = UserRecord;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(service::users_by_id(&self.0, keys)
            .await
            .map_err(crate::error::loader_db_error)?
            .into_iter()
            .map(|u| (u.id, u))
            .collect())
    }
}

pub struct DepartmentLoader(pub DatabaseConnection);

impl Loader<Uuid> for DepartmentLoader {
    type Value = department::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(service::departments_by_id(&self.0, keys)
            .await
            .map_err(crate::error::loader_db_error)?
            .into_iter()
            .map(|d| (d.id, d))
            .collect())
    }
}

/// A department's direct children, keyed by parent id.
pub struct ChildDepartmentsLoader(pub DatabaseConnection);

impl Loader<Uuid> for ChildDepartmentsLoader {
    type Value = Vec<department::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut by_parent: HashMap<Uuid, Vec<department::Model>> = HashMap::new();
        for child in department::Entity::find()
            .filter(department::Column::ParentId.is_in(keys.iter().copied()))
            .order_by_asc(department::Column::Name)
            .all(&self.0)
            .await?
        {
            if let Some(parent) = child.parent_id {
                by_parent.entry(parent).or_default().push(child);
            }
        }
        Ok(by_parent)
    }
}

/// A user's role grants with their roles, keyed by user id.
pub struct GrantsByUserLoader(pub DatabaseConnection);

impl Loader<Uuid> for GrantsByUserLoader {
    type Value = Vec<(role_grant::Model, role::Model)>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = service::grants_with_roles(&self.0, keys)
            .await
            .map_err(|e| Arc::new(DbErr::Custom(format!("{e:?}"))))?;
        let mut by_user: HashMap<Uuid, Self::Value> = HashMap::new();
        for (grant, role) in rows {
            by_user
                .entry(grant.user_id)
                .or_default()
                .push((grant, role));
        }
        Ok(by_user)
    }
}

/// Identity's loaders for one request.
pub struct IdentityLoaders {
    /// Cached for the request so list resolvers can prime them (see tasks' `graphql::prime`).
    pub users:
        async_graphql::dataloader::DataLoader<UserLoader, async_graphql::dataloader::HashMapCache>,
    pub departments: async_graphql::dataloader::DataLoader<
        DepartmentLoader,
        async_graphql::dataloader::HashMapCache,
    >,
    pub child_departments: async_graphql::dataloader::DataLoader<ChildDepartmentsLoader>,
    pub grants: async_graphql::dataloader::DataLoader<GrantsByUserLoader>,
}

impl IdentityLoaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        use async_graphql::dataloader::DataLoader;
        Self {
            users: DataLoader::with_cache(
                UserLoader(db.clone()),
                tokio::spawn,
                async_graphql::dataloader::HashMapCache::default(),
            ),
            departments: DataLoader::with_cache(
                DepartmentLoader(db.clone()),
                tokio::spawn,
                async_graphql::dataloader::HashMapCache::default(),
            ),
            child_departments: DataLoader::new(ChildDepartmentsLoader(db.clone()), tokio::spawn),
            grants: DataLoader::new(GrantsByUserLoader(db.clone()), tokio::spawn),
        }
    }
}
