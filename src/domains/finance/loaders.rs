//! Finance DataLoaders, built per request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entities::{account, journal_line};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::service;
use crate::auth::Viewer;

/// An entry's lines as the viewer may see them (`service::lines_shown_condition`).
pub struct LinesLoader {
    db: DatabaseConnection,
    shown: Condition,
}

impl Loader<Uuid> for LinesLoader {
    type Value = Vec<journal_line::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut by_entry: HashMap<Uuid, Self::Value> = HashMap::new();
        for line in service::lines_of_where(&self.db, keys, self.shown.clone())
            .await
            .map_err(|e| Arc::new(DbErr::Custom(format!("{e:?}"))))?
        {
            by_entry.entry(line.entry_id).or_default().push(line);
        }
        Ok(by_entry)
    }
}

/// What an entry's source is derived from (`service::posting_facts_of`).
pub struct PostingFactsLoader(pub DatabaseConnection);

impl Loader<Uuid> for PostingFactsLoader {
    type Value = (bool, bool);
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        service::posting_facts_of(&self.0, keys)
            .await
            .map_err(|e| Arc::new(DbErr::Custom(format!("{e:?}"))))
    }
}

pub struct AccountLoader(pub DatabaseConnection);

impl Loader<Uuid> for AccountLoader {
    type Value = account::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(account::Entity::find()
            .filter(account::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0)
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect())
    }
}

pub struct FinanceLoaders {
    pub lines: DataLoader<LinesLoader>,
    pub accounts: DataLoader<AccountLoader>,
    pub posting_facts: DataLoader<PostingFactsLoader>,
}

impl FinanceLoaders {
    pub fn new(db: &DatabaseConnection, viewer: &Viewer) -> Self {
        let shown = match viewer {
            Viewer::User(user) => service::lines_shown_condition(user),
            Viewer::Anonymous => Condition::all().add(sea_orm::sea_query::Expr::cust("1 = 0")),
        };
        Self {
            lines: DataLoader::new(
                LinesLoader {
                    db: db.clone(),
                    shown,
                },
                tokio::spawn,
            ),
            accounts: DataLoader::new(AccountLoader(db.clone()), tokio::spawn),
            posting_facts: DataLoader::new(PostingFactsLoader(db.clone()), tokio::spawn),
        }
    }
}
