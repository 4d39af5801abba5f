use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A task's comment page (live comments, oldest first) and its count read straight off
        // this index, without sorting or visiting deleted ones. Same syntax on both backends.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX task_comments_live_in_order ON task_comments (task_id, created_at, id) \
                 WHERE deleted_at IS NULL",
            )
            .await?;
        Ok(())
    }
}
