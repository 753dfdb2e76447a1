//! The kind-specific details of MCP servers and agents (transports, packages, skills), each a
//! nullable JSON column: absent on every row written before them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Assets {
    Table,
    Mcp,
    Agent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [Assets::Mcp, Assets::Agent] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assets::Table)
                        .add_column(ColumnDef::new(column).json_binary().null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Assets::Mcp, Assets::Agent] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Assets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
