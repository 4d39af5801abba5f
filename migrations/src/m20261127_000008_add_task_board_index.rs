use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The board lists main tasks by deadline (nulls last), ties by id: this index hands a
        // page over without sorting the set. Same syntax on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX tasks_main_by_deadline ON tasks (deadline, id) WHERE parent_id IS NULL",
            )
            .await?;
        Ok(())
    }
}
