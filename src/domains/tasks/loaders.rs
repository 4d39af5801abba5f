//! Task DataLoaders, built per request. Child pages are keyed by (parent, first, offset) so one
//! window query serves every parent asking for the same page.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entities::{task, task_activity, task_attachment, task_category, task_comment};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::service::{self, ChildPage};
use crate::domains::identity::model::UserRecord;
use crate::error::{loader_db_error as db_error, AppError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub parent: Uuid,
    pub first: u64,
    pub offset: u64,
}

async fn load_pages<M, F, Fut>(
    keys: &[PageKey],
    load: F,
) -> Result<HashMap<PageKey, ChildPage<M>>, Arc<DbErr>>
where
    M: Clone,
    F: Fn(Vec<Uuid>, u64, u64) -> Fut,
    Fut: std::future::Future<Output = Result<HashMap<Uuid, ChildPage<M>>, AppError>>,
{
    let mut by_window: HashMap<(u64, u64), Vec<Uuid>> = HashMap::new();
    for key in keys {
        by_window
            .entry((key.first, key.offset))
            .or_default()
            .push(key.parent);
    }
    let mut result = HashMap::new();
    for ((first, offset), parents) in by_window {
        let pages = load(parents, first, offset).await.map_err(db_error)?;
        for (parent, page) in pages {
            result.insert(
                PageKey {
                    parent,
                    first,
                    offset,
                },
                page,
            );
        }
    }
    Ok(result)
}

pub struct SubtaskPages(pub DatabaseConnection);

impl Loader<PageKey> for SubtaskPages {
    type Value = ChildPage<task::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[PageKey]) -> Result<HashMap<PageKey, Self::Value>, Self::Error> {
        load_pages(keys, |parents, first, offset| {
            let db = self.0.clone();
            async move { service::subtask_pages(&db, &parents, first, offset).await }
        })
        .await
    }
}

pub struct CommentPages(pub DatabaseConnection);

impl Loader<PageKey> for CommentPages {
    type Value = ChildPage<task_comment::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[PageKey]) -> Result<HashMap<PageKey, Self::Value>, Self::Error> {
        load_pages(keys, |parents, first, offset| {
            let db = self.0.clone();
            async move { service::comment_pages(&db, &parents, first, offset).await }
        })
        .await
    }
}

pub struct ExecutorsLoader(pub DatabaseConnection);

impl Loader<Uuid> for ExecutorsLoader {
    type Value = Vec<UserRecord>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        service::executors_by_task(&self.0, keys)
            .await
            .map_err(db_error)
    }
}

pub struct ActivityPages(pub DatabaseConnection);

impl Loader<PageKey> for ActivityPages {
    type Value = ChildPage<task_activity::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[PageKey]) -> Result<HashMap<PageKey, Self::Value>, Self::Error> {
        load_pages(keys, |parents, first, offset| {
            let db = self.0.clone();
            async move { service::activity_pages(&db, &parents, first, offset).await }
        })
        .await
    }
}

pub struct AttachmentsLoader(pub DatabaseConnection);

impl Loader<Uuid> for AttachmentsLoader {
    type Value = Vec<task_attachment::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        service::attachments_by_task(&self.0, keys)
            .await
            .map_err(db_error)
    }
}

pub struct CategoryLoader(pub DatabaseConnection);

impl Loader<Uuid> for CategoryLoader {
    type Value = task_category::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(task_category::Entity::find()
            .filter(task_category::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect())
    }
}

pub struct TaskLoader(pub DatabaseConnection);

impl Loader<Uuid> for TaskLoader {
    type Value = task::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(service::tasks_by_id(&self.0, keys)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|t| (t.id, t))
            .collect())
    }
}

/// Loaders a list resolver primes (see `graphql::prime`) keep a request-scoped cache.
pub type Primed<T> = DataLoader<T, HashMapCache>;

pub struct TaskLoaders {
    pub tasks: DataLoader<TaskLoader>,
    pub subtasks: Primed<SubtaskPages>,
    pub comments: Primed<CommentPages>,
    pub executors: Primed<ExecutorsLoader>,
    pub activity: DataLoader<ActivityPages>,
    pub attachments: DataLoader<AttachmentsLoader>,
    pub categories: DataLoader<CategoryLoader>,
}

impl TaskLoaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            tasks: DataLoader::new(TaskLoader(db.clone()), tokio::spawn),
            subtasks: DataLoader::with_cache(
                SubtaskPages(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            comments: DataLoader::with_cache(
                CommentPages(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            executors: DataLoader::with_cache(
                ExecutorsLoader(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            activity: DataLoader::new(ActivityPages(db.clone()), tokio::spawn),
            attachments: DataLoader::new(AttachmentsLoader(db.clone()), tokio::spawn),
            categories: DataLoader::new(CategoryLoader(db.clone()), tokio::spawn),
        }
    }
}
