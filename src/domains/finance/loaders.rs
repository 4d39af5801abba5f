//! Finance DataLoaders, built per request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entities::{account, journal_line};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::service;

pub struct LinesLoader(pub DatabaseConnection);

impl Loader<Uuid> for LinesLoader {
    type Value = Vec<journal_line::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut by_entry: HashMap<Uuid, Self::Value> = HashMap::new();
        for line in service::lines_of(&self.0, keys)
            .await
            .map_err(|e| Arc::new(DbErr::Custom(format!("{e:?}"))))?
        {
            by_entry.entry(line.entry_id).or_default().push(line);
        }
        Ok(by_entry)
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
}

impl FinanceLoaders {
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            lines: DataLoader::new(LinesLoader(db.clone()), tokio::spawn),
            accounts: DataLoader::new(AccountLoader(db.clone()), tokio::spawn),
        }
    }
}
