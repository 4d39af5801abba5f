use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::timestamp_with_time_zone_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TaskCategories {
    Table,
    ArchivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A timestamp rather than a flag: when a category was retired is what an audit asks.
        manager
            .alter_table(
                Table::alter()
                    .table(TaskCategories::Table)
                    .add_column(timestamp_with_time_zone_null(TaskCategories::ArchivedAt))
                    .to_owned(),
            )
            .await
    }
}
