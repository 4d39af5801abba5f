use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The number of main tasks, kept by triggers so an exact board `totalCount` reads a few rows
/// instead of counting 20,000, and stays exact for writes made outside Interlink too.
///
/// PostgreSQL spreads the counter over 16 slots (summed on read) so concurrent creators do not
/// queue on one row lock, and counts inserts and deletes per statement from transition tables:
/// a bulk load updates a slot once per statement, not once per row (row versions of one row,
/// all made in one transaction, would make each later update walk a longer chain).
/// SQLite has one writer, so one slot and row triggers.
const POSTGRES: &[&str] = &[
    "CREATE TABLE task_counts (slot SMALLINT PRIMARY KEY, main_tasks BIGINT NOT NULL)",
    "INSERT INTO task_counts (slot, main_tasks) SELECT s, 0 FROM generate_series(0, 15) AS s",
    r#"CREATE FUNCTION task_counts_add(delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
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
    r#"CREATE FUNCTION task_counts_follow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM task_counts_add((SELECT count(*) FROM inserted WHERE parent_id IS NULL));
  RETURN NULL;
END
$$"#,
    r#"CREATE FUNCTION task_counts_follow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM task_counts_add(-(SELECT count(*) FROM deleted WHERE parent_id IS NULL));
  RETURN NULL;
END
$$"#,
    r#"CREATE FUNCTION task_counts_follow_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM task_counts_add(CASE WHEN NEW.parent_id IS NULL THEN 1 ELSE -1 END);
  RETURN NULL;
END
$$"#,
    r#"CREATE FUNCTION task_counts_follow_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE task_counts SET main_tasks = 0;
  RETURN NULL;
END
$$"#,
    "CREATE TRIGGER tasks_count_main_insert AFTER INSERT ON tasks \
     REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT \
     EXECUTE FUNCTION task_counts_follow_insert()",
    "CREATE TRIGGER tasks_count_main_delete AFTER DELETE ON tasks \
     REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT \
     EXECUTE FUNCTION task_counts_follow_delete()",
    // Transition tables cannot go with a column list, and moves are rare: per row, filtered.
    "CREATE TRIGGER tasks_count_main_move AFTER UPDATE OF parent_id ON tasks FOR EACH ROW \
     WHEN ((OLD.parent_id IS NULL) <> (NEW.parent_id IS NULL)) \
     EXECUTE FUNCTION task_counts_follow_move()",
    "CREATE TRIGGER tasks_count_main_truncate AFTER TRUNCATE ON tasks \
     FOR EACH STATEMENT EXECUTE FUNCTION task_counts_follow_truncate()",
    // After the triggers exist: CREATE TRIGGER holds writers off until this commits, so no
    // insert falls between the count and the triggers.
    "UPDATE task_counts SET main_tasks = (SELECT count(*) FROM tasks WHERE parent_id IS NULL) \
     WHERE slot = 0",
];

/// Outside writers using `REPLACE` on a main task would count it twice: SQLite fires delete
/// triggers for a replace only with `recursive_triggers` on. Interlink never replaces tasks.
const SQLITE: &[&str] = &[
    "CREATE TABLE task_counts (slot INTEGER PRIMARY KEY, main_tasks INTEGER NOT NULL)",
    "INSERT INTO task_counts (slot, main_tasks) VALUES (0, 0)",
    "CREATE TRIGGER tasks_count_main_insert AFTER INSERT ON tasks WHEN NEW.parent_id IS NULL \
     BEGIN UPDATE task_counts SET main_tasks = main_tasks + 1 WHERE slot = 0; END",
    "CREATE TRIGGER tasks_count_main_delete AFTER DELETE ON tasks WHEN OLD.parent_id IS NULL \
     BEGIN UPDATE task_counts SET main_tasks = main_tasks - 1 WHERE slot = 0; END",
    "CREATE TRIGGER tasks_count_main_update AFTER UPDATE OF parent_id ON tasks \
     WHEN (OLD.parent_id IS NULL) <> (NEW.parent_id IS NULL) \
     BEGIN UPDATE task_counts \
       SET main_tasks = main_tasks + (NEW.parent_id IS NULL) - (OLD.parent_id IS NULL) \
       WHERE slot = 0; END",
    "UPDATE task_counts SET main_tasks = (SELECT count(*) FROM tasks WHERE parent_id IS NULL) \
     WHERE slot = 0",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements = match db.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES,
            DatabaseBackend::Sqlite => SQLITE,
            other => {
                return Err(DbErr::Migration(format!(
                    "no main-task counter for {other:?}"
                )))
            }
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
