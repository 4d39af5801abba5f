use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The rollup key of `task_rollup_days` with the executor beside it: a task with two executors
/// is in two rows, as it is in two groups of an EXECUTOR grouping.
fn keyed(table: &str, period: &str, period_len: u32) -> TableCreateStatement {
    let col = |name: &str| Alias::new(name);
    Table::create()
        .table(col(table))
        .col(string_len(col(period), period_len))
        .col(uuid_null(col("executor_id")))
        .col(uuid_null(col("department_id")))
        .col(uuid(col("category_id")))
        .col(string_len(col("status"), 32))
        .col(string_len(col("review_status"), 32))
        .col(integer(col("priority")))
        .col(string_len_null(col("deadline_month"), 7))
        .col(string_len_null(col("completed_month"), 7))
        .col(integer(col("is_main")))
        .to_owned()
}

fn with_sums(mut table: TableCreateStatement) -> TableCreateStatement {
    for measure in [
        "count",
        "done",
        "on_time",
        "completed_with_deadline",
        "merit_total",
        "cash_minor",
        "progress_sum",
    ] {
        table.col(big_integer(Alias::new(measure)));
    }
    table
}

const TABLES: [(&str, &str, u32); 3] = [
    ("task_rollup_executor_days", "day", 10),
    ("task_rollup_executor_months", "month", 7),
    ("task_rollup_executor_durations", "day", 10),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Per-person rollups for EXECUTOR groupings, in the shape of the per-task ones (days,
        // whole months, and each done task's durations, here once per executor).
        for (table, period, len) in TABLES {
            let mut create = keyed(table, period, len);
            if table.ends_with("_durations") {
                create
                    .col(big_integer_null(Alias::new("lead_s")))
                    .col(big_integer_null(Alias::new("cycle_s")));
            } else {
                create = with_sums(create);
            }
            manager.create_table(create).await?;
            manager
                .create_index(
                    Index::create()
                        .name(format!("{table}_by_{period}"))
                        .table(Alias::new(table))
                        .col(Alias::new(period))
                        .to_owned(),
                )
                .await?;
        }
        // The new tables start empty: forget the watermark, so answers read base rows until the
        // next refresh, which then rebuilds every day and month.
        manager
            .get_connection()
            .execute_unprepared("UPDATE report_refresh_state SET refreshed_at = NULL")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, _, _) in TABLES {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
