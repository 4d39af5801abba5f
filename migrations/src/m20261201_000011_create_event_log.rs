use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Position,
    TxId,
    Id,
    Topic,
    Kind,
    SubjectKind,
    SubjectId,
    ActorId,
    Audience,
    Payload,
    At,
}

#[derive(DeriveIden)]
enum EventLogState {
    Table,
    Id,
    RelayedTx,
    RelayedPosition,
    PrunedTx,
    PrunedPosition,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `tx_id` is the writing transaction's id on PostgreSQL, and 0 on SQLite, whose single
        // writer commits in `position` order. Readers order by `(tx_id, position)` and read only
        // below the oldest running transaction (see `platform::events::log`).
        let tx_id_default = match manager.get_database_backend() {
            DbBackend::Postgres => Expr::cust("(pg_current_xact_id()::text::bigint)"),
            _ => Expr::val(0).into(),
        };
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_integer(Events::Position).auto_increment().primary_key())
                    .col(big_integer(Events::TxId).default(tx_id_default))
                    .col(uuid_uniq(Events::Id))
                    .col(string_len(Events::Topic, 32))
                    .col(string_len(Events::Kind, 64))
                    .col(string_len(Events::SubjectKind, 32))
                    .col(uuid_null(Events::SubjectId))
                    .col(uuid_null(Events::ActorId))
                    .col(json_binary(Events::Audience))
                    .col(json_binary(Events::Payload))
                    .col(timestamp_with_time_zone(Events::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_in_order")
                    .table(Events::Table)
                    .col(Events::TxId)
                    .col(Events::Position)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("events_by_time")
                    .table(Events::Table)
                    .col(Events::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EventLogState::Table)
                    .col(small_integer(EventLogState::Id).primary_key())
                    .col(big_integer(EventLogState::RelayedTx))
                    .col(big_integer(EventLogState::RelayedPosition))
                    .col(big_integer(EventLogState::PrunedTx))
                    .col(big_integer(EventLogState::PrunedPosition))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO event_log_state VALUES (1, 0, 0, 0, 0)")
            .await?;
        Ok(())
    }
}
