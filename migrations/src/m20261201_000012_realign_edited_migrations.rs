use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Migrations 000007 and 000009 were edited after they had landed, so databases created before
/// those edits lack what the edits added. This brings every database to the edited shape; on a
/// database created after the edits it rebuilds the same objects.
const POSTGRES: &[&str] = &[
    "DROP INDEX IF EXISTS jobs_claim",
    "CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) \
     WHERE state IN ('SCHEDULED', 'AVAILABLE', 'RETRYABLE')",
    "DROP INDEX IF EXISTS jobs_finished",
    "CREATE INDEX jobs_finished ON jobs (finished_at) \
     WHERE state IN ('COMPLETED', 'DISCARDED', 'CANCELLED')",
    r#"CREATE OR REPLACE FUNCTION task_counts_add(delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  -- One slot per connection: a transaction always locks the same slot, so two of them never
  -- take slots in opposite orders (a deadlock), while connections still spread over 16.
  target SMALLINT := (pg_backend_pid() % 16)::smallint;
BEGIN
  IF delta <> 0 THEN
    UPDATE task_counts SET main_tasks = main_tasks + delta WHERE slot = target;
  END IF;
END
$$"#,
];

const SQLITE: &[&str] = &[
    "DROP INDEX IF EXISTS jobs_claim",
    "CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) \
     WHERE state IN ('SCHEDULED', 'AVAILABLE', 'RETRYABLE')",
    "DROP INDEX IF EXISTS jobs_finished",
    "CREATE INDEX jobs_finished ON jobs (finished_at) \
     WHERE state IN ('COMPLETED', 'DISCARDED', 'CANCELLED')",
    // The pre-edit 000009 counted before its triggers existed; recount now that they do.
    "UPDATE task_counts SET main_tasks = (SELECT count(*) FROM tasks WHERE parent_id IS NULL) \
     WHERE slot = 0",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES,
            _ => SQLITE,
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
