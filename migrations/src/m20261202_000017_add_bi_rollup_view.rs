//! The daily task rollups in the BI door (PostgreSQL only): `bi.task_rollup_days`, under the
//! same pattern as the views of `m20261202_000016` (security_invoker, row-level security on the
//! table, existing BI roles granted the new view).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(POSTGRES_UP)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(POSTGRES_DOWN)
                .await?;
        }
        Ok(())
    }
}

/// A rollup row adds up tasks of one department, so a BI session may read it when its app sees
/// every task of that department: global `task.read` reads all rows; a department app reads the
/// rows of its subtree (each task counted there is one `bi.tasks` shows it). Tasks of no
/// department are counted in rows only a global reader sees. An app's own tasks outside its
/// subtree are in `bi.tasks` but, being mixed with others in their department's rows, not here.
const POSTGRES_UP: &str = r#"
CREATE FUNCTION public.bi_reads_all_tasks() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.bi_session_app()
                   WHERE scopes ? 'TASKS_READ' AND department_path IS NULL)
$$;

CREATE FUNCTION public.bi_task_departments() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.id FROM public.departments d, public.bi_session_app() a
    WHERE (a.scopes ? 'TASKS_READ' OR a.scopes ? 'TASKS_WRITE')
      AND starts_with(d.path, a.department_path)
$$;

CREATE VIEW bi.task_rollup_days WITH (security_invoker = true) AS
    SELECT day, department_id, category_id, status, review_status, priority, deadline_month,
           completed_month, is_main, count, done, on_time, completed_with_deadline,
           merit_total, cash_minor, progress_sum
    FROM public.task_rollup_days;

ALTER TABLE public.task_rollup_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.task_rollup_days USING (true);
CREATE POLICY bi_visible ON public.task_rollup_days AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi())
           OR (SELECT public.bi_reads_all_tasks())
           OR department_id IN (SELECT public.bi_task_departments()));

SELECT public.bi_grant_reads(role_name) FROM public.bi_access;
"#;

const POSTGRES_DOWN: &str = r#"
DROP VIEW bi.task_rollup_days;
DROP POLICY bi_visible ON public.task_rollup_days;
DROP POLICY bi_others ON public.task_rollup_days;
ALTER TABLE public.task_rollup_days DISABLE ROW LEVEL SECURITY;
DROP FUNCTION public.bi_task_departments();
DROP FUNCTION public.bi_reads_all_tasks();
"#;
