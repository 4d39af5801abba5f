use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    AppId,
    Url,
    Topics,
    Kinds,
    TransactionTypes,
    Description,
    Active,
    DisabledReason,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    FailingSince,
    StartTx,
    StartPosition,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    EndpointId,
    MessageId,
    EventType,
    Cursor,
    TransactionId,
    Body,
    Status,
    AttemptCount,
    Chain,
    NextAttemptAt,
    DeliveredAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    At,
    StatusCode,
    DurationMs,
    Error,
}

#[derive(DeriveIden)]
enum WebhookDispatchState {
    Table,
    Id,
    Tx,
    Position,
}

#[derive(DeriveIden)]
enum Apps {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(uuid(WebhookEndpoints::Id).primary_key())
                    .col(uuid(WebhookEndpoints::AppId))
                    .col(string_len(WebhookEndpoints::Url, 2048))
                    // JSON arrays of strings; empty means every one the app may see.
                    .col(json(WebhookEndpoints::Topics))
                    .col(json(WebhookEndpoints::Kinds))
                    .col(json(WebhookEndpoints::TransactionTypes))
                    .col(string_len(WebhookEndpoints::Description, 500))
                    .col(boolean(WebhookEndpoints::Active))
                    .col(string_len_null(WebhookEndpoints::DisabledReason, 300))
                    // The signing secrets (`whsec_…`). They must be usable to sign, so they
                    // cannot be stored hashed; the API never reads them back.
                    .col(string_len(WebhookEndpoints::Secret, 128))
                    .col(string_len_null(WebhookEndpoints::PreviousSecret, 128))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::PreviousSecretUntil,
                    ))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::FailingSince,
                    ))
                    // The log's head when the endpoint was created: it receives what follows.
                    .col(big_integer(WebhookEndpoints::StartTx))
                    .col(big_integer(WebhookEndpoints::StartPosition))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookEndpoints::Table, WebhookEndpoints::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_endpoints_by_app")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::AppId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(uuid(WebhookDeliveries::Id).primary_key())
                    .col(uuid(WebhookDeliveries::EndpointId))
                    .col(string_len(WebhookDeliveries::MessageId, 64))
                    .col(string_len(WebhookDeliveries::EventType, 128))
                    .col(string_len_null(WebhookDeliveries::Cursor, 32))
                    .col(uuid_null(WebhookDeliveries::TransactionId))
                    // The exact bytes sent on every attempt (text, so no database reorders it).
                    .col(text(WebhookDeliveries::Body))
                    .col(string_len(WebhookDeliveries::Status, 16))
                    .col(integer(WebhookDeliveries::AttemptCount))
                    // The attempt chain that may still change the row; a redelivery starts a
                    // new one, and a job of an older chain stops.
                    .col(uuid(WebhookDeliveries::Chain))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::NextAttemptAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One delivery per message and endpoint, whoever dispatches it: the backstop of
        // exactly-once fan-out.
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_one_per_message")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EndpointId)
                    .col(WebhookDeliveries::MessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_by_transaction")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::TransactionId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(uuid(WebhookAttempts::Id).primary_key())
                    .col(uuid(WebhookAttempts::DeliveryId))
                    .col(timestamp_with_time_zone(WebhookAttempts::At))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(big_integer(WebhookAttempts::DurationMs))
                    .col(string_len_null(WebhookAttempts::Error, 300))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookAttempts::Table, WebhookAttempts::DeliveryId)
                            .to(WebhookDeliveries::Table, WebhookDeliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_by_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .col(WebhookAttempts::At)
                    .to_owned(),
            )
            .await?;
        // How far the fan-out has read the event log: one row, locked by the dispatcher that
        // advances it, in the transaction that creates the deliveries.
        manager
            .create_table(
                Table::create()
                    .table(WebhookDispatchState::Table)
                    .col(small_integer(WebhookDispatchState::Id).primary_key())
                    .col(big_integer(WebhookDispatchState::Tx))
                    .col(big_integer(WebhookDispatchState::Position))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO webhook_dispatch_state VALUES (1, 0, 0)")
            .await?;
        Ok(())
    }
}
