//! Forward-only schema migrations; a landed migration is never edited, each change is a new one.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_identity;
mod m20261127_000002_create_approvals_and_tasks;
mod m20261127_000003_add_refresh_token_version;
mod m20261127_000004_one_decision_per_person;
mod m20261127_000005_create_finance;
mod m20261127_000006_create_business_transactions;
mod m20261127_000007_create_scheduler;
mod m20261127_000008_add_task_board_index;
mod m20261127_000009_maintain_main_task_count;
mod m20261127_000010_index_live_comments_in_order;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_identity::Migration),
            Box::new(m20261127_000002_create_approvals_and_tasks::Migration),
            Box::new(m20261127_000003_add_refresh_token_version::Migration),
            Box::new(m20261127_000004_one_decision_per_person::Migration),
            Box::new(m20261127_000005_create_finance::Migration),
            Box::new(m20261127_000006_create_business_transactions::Migration),
            Box::new(m20261127_000007_create_scheduler::Migration),
            Box::new(m20261127_000008_add_task_board_index::Migration),
            Box::new(m20261127_000009_maintain_main_task_count::Migration),
            Box::new(m20261127_000010_index_live_comments_in_order::Migration),
        ]
    }
}
