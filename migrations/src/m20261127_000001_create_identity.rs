use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Departments {
    Table,
    Id,
    Name,
    ParentId,
    Path,
    HeadUserId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    EmailNormalized,
    Name,
    DepartmentId,
    PasswordHash,
    IsActive,
    TokenVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    Name,
    Permissions,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RoleGrants {
    Table,
    Id,
    UserId,
    RoleId,
    DepartmentId,
    ScopeKey,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Departments::Table)
                    .col(uuid(Departments::Id).primary_key())
                    .col(string(Departments::Name))
                    .col(uuid_null(Departments::ParentId))
                    .col(text(Departments::Path))
                    .col(uuid_null(Departments::HeadUserId))
                    .col(timestamp_with_time_zone(Departments::CreatedAt))
                    .col(timestamp_with_time_zone(Departments::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Departments::Table, Departments::ParentId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_departments_path")
                    .table(Departments::Table)
                    .col(Departments::Path)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    .col(string(Users::Email))
                    .col(string_uniq(Users::EmailNormalized))
                    .col(string(Users::Name))
                    .col(uuid_null(Users::DepartmentId))
                    .col(text(Users::PasswordHash))
                    .col(boolean(Users::IsActive))
                    .col(integer(Users::TokenVersion))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::DepartmentId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_department")
                    .table(Users::Table)
                    .col(Users::DepartmentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Roles::Table)
                    .col(uuid(Roles::Id).primary_key())
                    .col(string_uniq(Roles::Name))
                    .col(json(Roles::Permissions))
                    .col(timestamp_with_time_zone(Roles::CreatedAt))
                    .col(timestamp_with_time_zone(Roles::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RoleGrants::Table)
                    .col(uuid(RoleGrants::Id).primary_key())
                    .col(uuid(RoleGrants::UserId))
                    .col(uuid(RoleGrants::RoleId))
                    .col(uuid_null(RoleGrants::DepartmentId))
                    .col(string(RoleGrants::ScopeKey))
                    .col(timestamp_with_time_zone(RoleGrants::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoleGrants::Table, RoleGrants::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoleGrants::Table, RoleGrants::RoleId)
                            .to(Roles::Table, Roles::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoleGrants::Table, RoleGrants::DepartmentId)
                            .to(Departments::Table, Departments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_role_grants_user_role_scope")
                    .table(RoleGrants::Table)
                    .col(RoleGrants::UserId)
                    .col(RoleGrants::RoleId)
                    .col(RoleGrants::ScopeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(uuid(RefreshTokens::Id).primary_key())
                    .col(uuid(RefreshTokens::UserId))
                    .col(uuid(RefreshTokens::FamilyId))
                    .col(string_uniq(RefreshTokens::TokenHash))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
