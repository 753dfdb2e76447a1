//! PostgreSQL only: the reader role and row-level security, the append-only audit trigger,
//! and trigram/GIN indexes for search and tag/label filters. On SQLite this is a no-op.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TENANT_TABLES: [&str; 4] = ["catalog_sources", "assets", "refresh_jobs", "audit_events"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // Roles are cluster-wide: another database may have made it already, even concurrently.
        db.execute_unprepared(
            r#"
DO $$
BEGIN
  CREATE ROLE curio_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'curio_reader', 'MEMBER') THEN
    EXECUTE format('GRANT curio_reader TO %I', current_user);
  END IF;
END $$;
GRANT USAGE ON SCHEMA public TO curio_reader;

-- An unset or empty setting yields no namespaces: reads fail closed.
CREATE OR REPLACE FUNCTION curio_allowed_namespaces() RETURNS text[]
  LANGUAGE sql STABLE AS
$$ SELECT coalesce(string_to_array(nullif(current_setting('curio.allowed_namespaces', true), ''), ','), '{}'::text[]) $$;

CREATE OR REPLACE FUNCTION curio_audit_append_only() RETURNS trigger
  LANGUAGE plpgsql AS
$$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('curio.audit_retention', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_append_only
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION curio_audit_append_only();
CREATE TRIGGER audit_events_no_truncate
  BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION curio_audit_append_only();

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX assets_name_trgm ON assets USING gin (name gin_trgm_ops);
CREATE INDEX assets_display_name_trgm ON assets USING gin (display_name gin_trgm_ops);
CREATE INDEX assets_tags ON assets USING gin (tags jsonb_path_ops);
CREATE INDEX assets_labels ON assets USING gin (labels jsonb_path_ops);
"#,
        )
        .await?;
        for table in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "GRANT SELECT ON {table} TO curio_reader;
                 ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY {table}_tenant_read ON {table} FOR SELECT TO curio_reader
                   USING (namespace = ANY (curio_allowed_namespaces()));"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for table in TENANT_TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY IF EXISTS {table}_tenant_read ON {table};
                 ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
                 REVOKE SELECT ON {table} FROM curio_reader;"
            ))
            .await?;
        }
        db.execute_unprepared(
            "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events;
             DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events;
             DROP FUNCTION IF EXISTS curio_audit_append_only();
             DROP FUNCTION IF EXISTS curio_allowed_namespaces();
             DROP INDEX IF EXISTS assets_name_trgm, assets_display_name_trgm,
               assets_tags, assets_labels;",
        )
        .await?;
        Ok(())
    }
}
