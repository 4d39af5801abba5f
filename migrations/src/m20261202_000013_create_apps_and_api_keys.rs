use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Apps {
    Table,
    Id,
    Name,
    OwnerId,
    ServiceUserId,
    Active,
    Scopes,
    DepartmentId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    AppId,
    Name,
    SecretHash,
    Hint,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BusinessTransactions {
    Table,
    SourceAppId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Apps::Table)
                    .col(uuid(Apps::Id).primary_key())
                    .col(string_len(Apps::Name, 200))
                    .col(uuid(Apps::OwnerId))
                    // The user that stands for the app in what it writes (initiator, author,
                    // submitter), so every record names a user; nobody can sign in as it.
                    .col(uuid_uniq(Apps::ServiceUserId))
                    .col(boolean(Apps::Active))
                    .col(json(Apps::Scopes))
                    .col(uuid_null(Apps::DepartmentId))
                    .col(timestamp_with_time_zone(Apps::CreatedAt))
                    .col(timestamp_with_time_zone(Apps::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Apps::Table, Apps::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Apps::Table, Apps::ServiceUserId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Apps::Table, Apps::DepartmentId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid(ApiKeys::Id).primary_key())
                    .col(uuid(ApiKeys::AppId))
                    .col(string_len(ApiKeys::Name, 200))
                    // SHA-256 of the secret, hex: the secret has 190 random bits, so a slow
                    // hash adds nothing, and every request can check it cheaply.
                    .col(string_len(ApiKeys::SecretHash, 64))
                    // The last characters of the key, to tell keys apart in a list.
                    .col(string_len(ApiKeys::Hint, 16))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .col(uuid(ApiKeys::CreatedBy))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_keys_by_app")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::AppId)
                    .to_owned(),
            )
            .await?;
        // The app that submitted a transaction; `source_user_id` stays the person's.
        manager
            .alter_table(
                Table::alter()
                    .table(BusinessTransactions::Table)
                    .add_column(uuid_null(BusinessTransactions::SourceAppId))
                    .to_owned(),
            )
            .await
    }
}
