//! The read-only SQL door for BI tools (PostgreSQL only): the `bi` schema of security_invoker
//! views, row-level security on the tables they read, the visibility functions those policies
//! call, and the functions the app's role uses to make and end BI login roles. The mapping
//! table `bi_access` exists on both backends, so the service can say "none" on SQLite.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BiAccess {
    Table,
    RoleName,
    AppId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Apps {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Which login role is which app's. BI roles hold no privilege on it (and cannot name
        // anything in `public`); the visibility functions read it as its owner.
        manager
            .create_table(
                Table::create()
                    .table(BiAccess::Table)
                    .col(string_len(BiAccess::RoleName, 63).primary_key())
                    .col(uuid_uniq(BiAccess::AppId))
                    .col(timestamp_with_time_zone(BiAccess::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(BiAccess::Table, BiAccess::AppId)
                            .to(Apps::Table, Apps::Id),
                    )
                    .to_owned(),
            )
            .await?;
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
        manager
            .drop_table(Table::drop().table(BiAccess::Table).to_owned())
            .await
    }
}

/// Undoes `POSTGRES_UP`, dropping the BI roles first (a role with grants cannot be dropped).
const POSTGRES_DOWN: &str = r#"
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT role_name FROM public.bi_access LOOP
        PERFORM public.bi_drop_role(r.role_name);
    END LOOP;
END
$$;
DROP SCHEMA bi CASCADE;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tasks', 'task_executors', 'merit_records', 'approval_instances',
                             'approval_decisions', 'accounts', 'journal_lines', 'departments',
                             'users'] LOOP
        EXECUTE format('DROP POLICY bi_visible ON public.%I', t);
        EXECUTE format('DROP POLICY bi_others ON public.%I', t);
        EXECUTE format('ALTER TABLE public.%I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
DROP FUNCTION public.bi_drop_role(text);
DROP FUNCTION public.bi_set_password(text, text);
DROP FUNCTION public.bi_create_role(text, text);
DROP FUNCTION public.bi_grant_reads(text);
DROP FUNCTION public.bi_reads_profiles();
DROP FUNCTION public.bi_reads_organisation();
DROP FUNCTION public.bi_visible_user_ids();
DROP FUNCTION public.bi_reads_finance();
DROP FUNCTION public.bi_finance_cost_centres();
DROP FUNCTION public.bi_reads_finance_everywhere();
DROP FUNCTION public.bi_visible_approval_ids();
DROP FUNCTION public.bi_visible_task_ids();
DROP FUNCTION public.bi_session_app();
DROP FUNCTION public.bi_session_is_bi();
GRANT USAGE ON SCHEMA public TO PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$$;
GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
    pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lowrite(integer, bytea),
    pg_catalog.lo_put(oid, bigint, bytea) TO PUBLIC;
"#;

const POSTGRES_UP: &str = r#"
-- Base tables are reached only through the views: nobody but the owner (and roles the operator
-- grants it to) may name anything in `public`, and nobody may create objects there or make
-- temporary tables.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO CURRENT_USER;
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;

-- Large objects are the one write the privileges below do not cover; the hub uses none.
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
    pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lowrite(integer, bytea),
    pg_catalog.lo_put(oid, bigint, bytea) FROM PUBLIC;

CREATE SCHEMA bi;
REVOKE ALL ON SCHEMA bi FROM PUBLIC;

-- Who is asking: the BI session's app, read from the login name (`session_user`, which a
-- client cannot change; `current_user` can be moved by SET ROLE and settings by SET). A row
-- only while the app is active, holds REPORTS_READ, and its department (if any) still exists.
CREATE FUNCTION public.bi_session_is_bi() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.bi_access WHERE role_name = session_user::text)
$$;

CREATE FUNCTION public.bi_session_app(
    OUT app_id uuid, OUT service_user_id uuid, OUT department_path text, OUT scopes jsonb
) RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.id, a.service_user_id, d.path, a.scopes::jsonb
    FROM public.bi_access b
    JOIN public.apps a ON a.id = b.app_id
    LEFT JOIN public.departments d ON d.id = a.department_id
    WHERE b.role_name = session_user::text
      AND a.active
      AND a.scopes::jsonb ? 'REPORTS_READ'
      AND (a.department_id IS NULL OR d.id IS NOT NULL)
$$;

-- One function per visibility rule; each mirrors the GraphQL rule named in its comment, for
-- the app's service account holding `grants_for(scopes, department)`: a scope's permission
-- everywhere when the app has no department, else over its department's subtree.

-- `tasks` list (tasks::service::visible_condition): an app sees tasks only with TASKS_READ or
-- TASKS_WRITE; global task.read sees all; else tasks its service account initiated, confirms,
-- executes or approves, tasks in its department's subtree, and subtasks of those.
CREATE FUNCTION public.bi_visible_task_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH seer AS (
        SELECT * FROM public.bi_session_app()
        WHERE scopes ? 'TASKS_READ' OR scopes ? 'TASKS_WRITE'
    ),
    own AS (
        SELECT t.id FROM public.tasks t, seer
        WHERE (seer.department_path IS NULL AND seer.scopes ? 'TASKS_READ')
           OR t.initiator_id = seer.service_user_id
           OR t.confirmer_id = seer.service_user_id
           OR t.id IN (SELECT e.task_id FROM public.task_executors e
                       WHERE e.user_id = seer.service_user_id)
           OR t.id IN (SELECT i.subject_id FROM public.approval_instances i
                       JOIN public.approval_assignments s ON s.instance_id = i.id
                       WHERE i.subject_type = 'task' AND s.user_id = seer.service_user_id)
           OR t.department_id IN (SELECT d.id FROM public.departments d
                                  WHERE starts_with(d.path, seer.department_path))
    )
    SELECT id FROM own
    UNION
    SELECT t.id FROM public.tasks t WHERE t.parent_id IN (SELECT id FROM own)
$$;

-- `approval(id)` (approvals::service::engine::can_see), open to apps with APPROVALS_READ: the
-- service account initiated it, is (or stands in by delegation for) an assigned approver, or
-- holds approval.read over the subject's department (everywhere, for a subject without one).
CREATE FUNCTION public.bi_visible_approval_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH seer AS (
        SELECT * FROM public.bi_session_app() WHERE scopes ? 'APPROVALS_READ'
    ),
    acting AS (
        SELECT service_user_id AS user_id FROM seer
        UNION
        SELECT g.from_user_id FROM public.approval_delegations g, seer
        WHERE g.to_user_id = seer.service_user_id AND g.starts_at <= now() AND g.ends_at > now()
    )
    SELECT i.id FROM public.approval_instances i
    CROSS JOIN seer
    LEFT JOIN public.departments d ON d.id = i.subject_department_id
    WHERE i.initiator_id = seer.service_user_id
       OR seer.department_path IS NULL
       OR (d.path IS NOT NULL AND starts_with(d.path, seer.department_path))
       OR i.id IN (SELECT s.instance_id FROM public.approval_assignments s
                   WHERE s.user_id IN (SELECT user_id FROM acting))
$$;

-- Journal lines (finance.read): everything with a global grant; with a department grant, the
-- lines whose cost centre is in the subtree (lines without a cost centre need a global grant).
CREATE FUNCTION public.bi_reads_finance_everywhere() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.bi_session_app()
                   WHERE scopes ? 'FINANCE_READ' AND department_path IS NULL)
$$;

CREATE FUNCTION public.bi_finance_cost_centres() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.id FROM public.departments d, public.bi_session_app() a
    WHERE a.scopes ? 'FINANCE_READ' AND starts_with(d.path, a.department_path)
$$;

-- The chart of accounts: to anyone who reads some finance.
CREATE FUNCTION public.bi_reads_finance() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.bi_session_app() WHERE scopes ? 'FINANCE_READ')
$$;

-- Departments and people's names (graphql::app_scopes ORGANISATION): any of PROFILES_READ,
-- TASKS_READ, TASKS_WRITE, FINANCE_READ.
CREATE FUNCTION public.bi_reads_organisation() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.bi_session_app()
                   WHERE scopes ?| ARRAY['PROFILES_READ', 'TASKS_READ', 'TASKS_WRITE', 'FINANCE_READ'])
$$;

-- People by name: GraphQL lists people to no app (`users` is for administrators), and names
-- them where a record the app reads does. So: the people whose portrait a PROFILES_READ app
-- may see (its department's subtree, or everyone without a department), and the people named
-- by the tasks and approvals it reads.
CREATE FUNCTION public.bi_visible_user_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH app AS (SELECT * FROM public.bi_session_app()),
    seen_tasks AS (
        SELECT t.id, t.initiator_id, t.confirmer_id FROM public.tasks t
        WHERE t.id IN (SELECT public.bi_visible_task_ids())
    ),
    seen_approvals AS (
        SELECT i.id, i.initiator_id FROM public.approval_instances i
        WHERE i.id IN (SELECT public.bi_visible_approval_ids())
    )
    SELECT u.id FROM public.users u, app
    WHERE app.scopes ? 'PROFILES_READ'
      AND (app.department_path IS NULL
           OR u.department_id IN (SELECT d.id FROM public.departments d
                                  WHERE starts_with(d.path, app.department_path)))
    UNION SELECT initiator_id FROM seen_tasks
    UNION SELECT confirmer_id FROM seen_tasks WHERE confirmer_id IS NOT NULL
    UNION SELECT e.user_id FROM public.task_executors e
          WHERE e.task_id IN (SELECT id FROM seen_tasks)
    UNION SELECT initiator_id FROM seen_approvals
    UNION SELECT d.accountable_user_id FROM public.approval_decisions d
          WHERE d.instance_id IN (SELECT id FROM seen_approvals)
    UNION SELECT d.decided_by FROM public.approval_decisions d
          WHERE d.instance_id IN (SELECT id FROM seen_approvals)
$$;

-- A person's department is part of their profile (PROFILES_READ), as `User.department` is.
CREATE FUNCTION public.bi_reads_profiles() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM public.bi_session_app() WHERE scopes ? 'PROFILES_READ')
$$;

-- The views. Every one is security_invoker, so the BI role's own privileges and the row-level
-- security of the tables below apply. To add a view: create it here (or in a later migration)
-- WITH (security_invoker = true) over tables that have row-level security with a `bi_visible`
-- policy (see below), then `SELECT public.bi_grant_reads(role_name) FROM public.bi_access` so
-- existing BI roles can read it. bi_grant_reads refuses a view over a table without RLS.
CREATE VIEW bi.tasks WITH (security_invoker = true) AS
    SELECT id, parent_id, category_id, title, key_points, department_id, initiator_id,
           confirmer_id, is_team_task, status, review_status, priority, progress,
           merit_points, has_cash_output, cash_output_minor, currency, start_at, deadline,
           overdue, completed_at, approval_instance_id, created_at, updated_at
    FROM public.tasks;

CREATE VIEW bi.task_executors WITH (security_invoker = true) AS
    SELECT task_id, user_id, position FROM public.task_executors;

CREATE VIEW bi.approvals WITH (security_invoker = true) AS
    SELECT id, flow_id, subject_type, subject_id, subject_department_id, initiator_id, status,
           current_index, started_at, step_started_at, decided_at
    FROM public.approval_instances;

CREATE VIEW bi.approval_decisions WITH (security_invoker = true) AS
    SELECT id, instance_id AS approval_id, step_index, step_name, accountable_user_id,
           decided_by, approve, comment, decided_at
    FROM public.approval_decisions;

CREATE VIEW bi.accounts WITH (security_invoker = true) AS
    SELECT id, code, name, account_type FROM public.accounts;

CREATE VIEW bi.journal_lines WITH (security_invoker = true) AS
    SELECT id, entry_id, line_no, account_id, cost_center_id, task_id, transaction_id,
           debit_minor, credit_minor, posting_date
    FROM public.journal_lines;

CREATE VIEW bi.merit_records WITH (security_invoker = true) AS
    SELECT id, task_id, user_id, points, created_at FROM public.merit_records;

CREATE VIEW bi.departments WITH (security_invoker = true) AS
    SELECT id, name, parent_id, path FROM public.departments;

CREATE VIEW bi.users WITH (security_invoker = true) AS
    SELECT id, name,
           CASE WHEN public.bi_reads_profiles() THEN department_id END AS department_id
    FROM public.users;

-- Row-level security on every table a view reads. The app's own role owns the tables and is
-- not subject to it (no FORCE); any other role passes `bi_others`, and the restrictive
-- `bi_visible` holds BI sessions (and only them) to their app's rule. The `(SELECT ...)` makes
-- each check run once per statement, not per row.
ALTER TABLE public.tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.tasks USING (true);
CREATE POLICY bi_visible ON public.tasks AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR id IN (SELECT public.bi_visible_task_ids()));

ALTER TABLE public.task_executors ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.task_executors USING (true);
CREATE POLICY bi_visible ON public.task_executors AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR task_id IN (SELECT public.bi_visible_task_ids()));

ALTER TABLE public.merit_records ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.merit_records USING (true);
CREATE POLICY bi_visible ON public.merit_records AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR task_id IN (SELECT public.bi_visible_task_ids()));

ALTER TABLE public.approval_instances ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.approval_instances USING (true);
CREATE POLICY bi_visible ON public.approval_instances AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR id IN (SELECT public.bi_visible_approval_ids()));

ALTER TABLE public.approval_decisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.approval_decisions USING (true);
CREATE POLICY bi_visible ON public.approval_decisions AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR instance_id IN (SELECT public.bi_visible_approval_ids()));

ALTER TABLE public.accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.accounts USING (true);
CREATE POLICY bi_visible ON public.accounts AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR (SELECT public.bi_reads_finance()));

ALTER TABLE public.journal_lines ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.journal_lines USING (true);
CREATE POLICY bi_visible ON public.journal_lines AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi())
           OR (SELECT public.bi_reads_finance_everywhere())
           OR cost_center_id IN (SELECT public.bi_finance_cost_centres()));

ALTER TABLE public.departments ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.departments USING (true);
CREATE POLICY bi_visible ON public.departments AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR (SELECT public.bi_reads_organisation()));

ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_others ON public.users USING (true);
CREATE POLICY bi_visible ON public.users AS RESTRICTIVE
    USING ((SELECT NOT public.bi_session_is_bi()) OR id IN (SELECT public.bi_visible_user_ids()));

-- What a BI role may read: USAGE on `bi`, SELECT on its views, and SELECT on exactly the
-- columns of the base tables those views read (security_invoker views check the invoker's
-- privileges on them), found from the views' recorded dependencies. Run by the app's role
-- when it creates or rotates a BI role, and by a migration that adds a view.
CREATE FUNCTION public.bi_grant_reads(role_name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r record;
BEGIN
    -- Database privileges are not copied from a template (CREATE DATABASE ... TEMPLATE), so
    -- temporary tables are shut off here as well as in the migration, when we may.
    IF pg_has_role(current_user, (SELECT datdba FROM pg_database
                                  WHERE datname = current_database()), 'USAGE') THEN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    END IF;
    -- Everything below rests on PUBLIC holding nothing in `public` and no temporary tables;
    -- a REVOKE by a role that does not own them only warns, so check rather than trust it.
    IF has_schema_privilege(role_name, 'public', 'USAGE')
       OR has_schema_privilege(role_name, 'public', 'CREATE')
       OR has_database_privilege(role_name, current_database(), 'TEMPORARY') THEN
        RAISE EXCEPTION 'the BI door needs USAGE and CREATE on schema public and TEMPORARY on '
            'the database revoked from PUBLIC: run the migrations as the owner of both';
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA bi TO %I', role_name);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA bi TO %I', role_name);
    FOR r IN
        SELECT c.oid::regclass AS tbl, c.relrowsecurity AS rls,
               string_agg(DISTINCT quote_ident(a.attname), ', ') AS cols
        FROM pg_depend dep
        JOIN pg_rewrite w ON dep.classid = 'pg_rewrite'::regclass AND w.oid = dep.objid
        JOIN pg_class v ON v.oid = w.ev_class
        JOIN pg_namespace vn ON vn.oid = v.relnamespace AND vn.nspname = 'bi'
        JOIN pg_class c ON dep.refclassid = 'pg_class'::regclass AND c.oid = dep.refobjid
                        AND c.relkind IN ('r', 'p') AND c.oid <> v.oid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = dep.refobjsubid
        WHERE dep.refobjsubid > 0
        GROUP BY c.oid, c.relrowsecurity
    LOOP
        IF NOT r.rls THEN
            RAISE EXCEPTION 'a bi view reads %, which has no row-level security', r.tbl;
        END IF;
        EXECUTE format('GRANT SELECT (%s) ON %s TO %I', r.cols, r.tbl, role_name);
    END LOOP;
END
$$;

-- A login role for one app: read-only by default, few connections, bounded statements.
CREATE FUNCTION public.bi_create_role(role_name text, password text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format(
        'CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
        'NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 10', role_name, password);
    EXECUTE format('ALTER ROLE %I SET default_transaction_read_only = on', role_name);
    EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', role_name, '300s');
    PERFORM public.bi_grant_reads(role_name);
END
$$;

CREATE FUNCTION public.bi_set_password(role_name text, password text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('ALTER ROLE %I PASSWORD %L', role_name, password);
    PERFORM public.bi_grant_reads(role_name);
END
$$;

-- Ends a BI role: its sessions, whatever it owns or was granted here, the role. Becoming a
-- member first lets a CREATEROLE (non-superuser) owner terminate its backends and DROP OWNED.
CREATE FUNCTION public.bi_drop_role(role_name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT %I TO CURRENT_USER', role_name);
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = role_name;
    EXECUTE format('DROP OWNED BY %I', role_name);
    EXECUTE format('DROP ROLE %I', role_name);
END
$$;

-- Making and ending roles is the owner's business (the app's role, which runs migrations). The
-- visibility functions stay executable by everyone: policies call them as the querying role,
-- and for anyone but a BI session they return nothing.
REVOKE EXECUTE ON FUNCTION public.bi_grant_reads(text), public.bi_create_role(text, text),
    public.bi_set_password(text, text), public.bi_drop_role(text) FROM PUBLIC;
"#;
