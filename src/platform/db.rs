//! Database connection for both back-ends: SQLite in the data directory, or PostgreSQL.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// How long a request waits for a PostgreSQL connection (or for the server to accept one).
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// A pooled PostgreSQL connection idle longer than this is pinged before it is handed out (a
/// server restart or a proxy's idle cut would otherwise reach the request as an error). A busy
/// connection is not: sqlx's default pings before every acquire, which doubled the round trips
/// of every request.
const POSTGRES_IDLE_CHECK: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The shared connection pool, plus what the pool metrics need to see.
#[derive(Clone)]
pub struct Db {
    pub conn: DatabaseConnection,
    pool: Pool,
    statements: Arc<AtomicU64>,
    pings: Arc<AtomicU64>,
    commits: Arc<Commits>,
}

/// Wake-ups a committed unit of work gives this node's own relay and workers (PostgreSQL
/// wakes other nodes with `NOTIFY`; SQLite has no other nodes).
#[derive(Default)]
pub struct Commits {
    pub events: tokio::sync::Notify,
    pub jobs: tokio::sync::Notify,
}

pub struct PoolStats {
    pub size: u32,
    pub idle: usize,
}

impl Db {
    /// `database_url` absent means the embedded SQLite file `<data_dir>/interlink.db`.
    pub async fn connect(
        database_url: Option<&str>,
        data_dir: &Path,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                // No JIT: the hub's statements are short, and PostgreSQL's cost estimate of a
                // correlated sub-select (a report's) can cross `jit_above_cost`, when compiling
                // takes seconds for a query that runs in a hundred milliseconds.
                let options = PgConnectOptions::from_str(url)
                    .context("parsing DATABASE_URL")?
                    .options([("jit", "off")]);
                let pings = Arc::new(AtomicU64::new(0));
                let pinged = pings.clone();
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .test_before_acquire(false)
                    .before_acquire(move |conn, meta| {
                        let pinged = pinged.clone();
                        Box::pin(async move {
                            if meta.idle_for < POSTGRES_IDLE_CHECK {
                                return Ok(true);
                            }
                            pinged.fetch_add(1, Ordering::Relaxed);
                            // A failed ping closes this connection; the pool tries another.
                            Ok(sqlx::Connection::ping(conn).await.is_ok())
                        })
                    })
                    // Short: while PostgreSQL is down, a request should fail (503) in a few
                    // seconds, not hold its slot for long; a healthy pool hands out a
                    // connection in milliseconds, as the edge admits only a few requests per
                    // connection (INTERLINK_MAX_CONCURRENT_REQUESTS).
                    .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await
                    .context("connecting to PostgreSQL")?;
                Ok(Self::counted(
                    SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone()),
                    Pool::Postgres(pool),
                    pings,
                ))
            }
            Some(url) if url.starts_with("sqlite:") => {
                let options =
                    SqliteConnectOptions::from_str(url).context("parsing DATABASE_URL")?;
                Self::sqlite(options).await
            }
            Some(_) => {
                anyhow::bail!("DATABASE_URL must start with postgres://, postgresql:// or sqlite:")
            }
            None => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating data directory {}", data_dir.display()))?;
                Self::sqlite(SqliteConnectOptions::new().filename(data_dir.join("interlink.db")))
                    .await
            }
        }
    }

    async fn sqlite(options: SqliteConnectOptions) -> anyhow::Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One connection: SQLite has a single writer, and a read-then-write transaction on a
        // second connection fails with SQLITE_BUSY_SNAPSHOT instead of waiting. Serialising
        // here keeps the embedded node correct; scale-out uses PostgreSQL.
        // No ping before each acquire: the database is a local file, and the one connection
        // cannot be cut by a network.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .context("opening SQLite database")?;
        Ok(Self::counted(
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool.clone()),
            Pool::Sqlite(pool),
            Arc::default(),
        ))
    }

    /// Counts every statement the connection runs (transactions included), for the metrics and
    /// for tests that bound how many statements a request may cost.
    fn counted(mut conn: DatabaseConnection, pool: Pool, pings: Arc<AtomicU64>) -> Self {
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Self {
            conn,
            pool,
            statements,
            pings,
            commits: Arc::default(),
        }
    }

    pub fn commits(&self) -> &Commits {
        &self.commits
    }

    /// A connection over the same pool whose statements are not counted: for background loops
    /// (the event relay), so that the count stays what requests cost.
    pub fn uncounted(&self) -> DatabaseConnection {
        match &self.pool {
            Pool::Sqlite(pool) => SqlxSqliteConnector::from_sqlx_sqlite_pool(pool.clone()),
            Pool::Postgres(pool) => SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone()),
        }
    }

    pub fn statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Every exchange with the database server so far: the statements plus the idle-connection
    /// pings (see `POSTGRES_IDLE_CHECK`).
    pub fn round_trip_count(&self) -> u64 {
        self.statement_count() + self.pings.load(Ordering::Relaxed)
    }

    /// The PostgreSQL pool, for what SeaORM does not wrap (`LISTEN`).
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn pool_stats(&self) -> PoolStats {
        match &self.pool {
            Pool::Sqlite(p) => PoolStats {
                size: p.size(),
                idle: p.num_idle(),
            },
            Pool::Postgres(p) => PoolStats {
                size: p.size(),
                idle: p.num_idle(),
            },
        }
    }

    /// Applies pending migrations. On PostgreSQL an advisory lock makes nodes that start
    /// together take turns instead of racing on the same DDL.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Postgres(pool) => {
                const MIGRATION_LOCK: i64 = 0x1e7e_11a7;
                let mut lock_conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *lock_conn)
                    .await?;
                let result = Migrator::up(&self.conn, None).await;
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *lock_conn)
                    .await?;
                result.context("running migrations")
            }
            Pool::Sqlite(_) => Migrator::up(&self.conn, None)
                .await
                .context("running migrations"),
        }
    }

    /// With automatic migration off, refuses to serve a schema that is behind the code.
    pub async fn ensure_migrated(&self) -> anyhow::Result<()> {
        let pending = Migrator::get_pending_migrations(&self.conn)
            .await
            .context("reading migration state")?;
        if !pending.is_empty() {
            anyhow::bail!(
                "{} migration(s) pending and INTERLINK_AUTO_MIGRATE is off: run `interlink migrate` first",
                pending.len()
            );
        }
        Ok(())
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        self.conn.ping().await.context("database ping")
    }
}

/// Serialises changes to one aggregate (a tree, a token family, a queue) inside the current
/// transaction: a PostgreSQL transaction-scoped advisory lock on `key`. SQLite needs none:
/// its one connection already admits a single writer.
pub async fn lock_in_transaction<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Like `lock_in_transaction`, but gives up at once: `false` when another transaction holds
/// the lock (PostgreSQL). SQLite's single writer means the lock is always free here.
pub async fn try_lock_in_transaction<C: ConnectionTrait>(db: &C, key: &str) -> Result<bool, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let row = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
            [key.into()],
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<bool>("", "locked")?,
        None => false,
    })
}

/// `%text%` with LIKE's wildcards in `text` escaped, so `john_doe` matches only itself.
pub fn contains_pattern(text: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// A statement written once with `$1`-style parameters for either backend: SQLite reads the
/// same numbered parameters as `?1`. Keep `$` out of string literals in such SQL.
pub fn sql(
    backend: DbBackend,
    text: &str,
    values: impl IntoIterator<Item = sea_orm::Value>,
) -> Statement {
    let text = if backend == DbBackend::Sqlite {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                out.push('?');
            } else {
                out.push(c);
            }
        }
        out
    } else {
        text.to_owned()
    };
    Statement::from_sql_and_values(backend, text, values)
}

/// Whole seconds from `earlier` to `later` (two SQL timestamp expressions), the same number on
/// both backends: PostgreSQL subtracts timestamps, SQLite their Julian days; both round to the
/// nearest second.
pub fn seconds_between(backend: sea_orm::DbBackend, later: &str, earlier: &str) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => {
            format!("CAST(ROUND(EXTRACT(EPOCH FROM ({later}) - ({earlier}))) AS BIGINT)")
        }
        _ => {
            format!("CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400.0) AS INTEGER)")
        }
    }
}

/// The smaller of two SQL integer expressions (`LEAST` is PostgreSQL's; SQLite's scalar `MIN`
/// takes two arguments).
pub fn least(backend: sea_orm::DbBackend, a: &str, b: &str) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => format!("LEAST({a}, {b})"),
        _ => format!("MIN({a}, {b})"),
    }
}

/// `column IN (ids)` as one statement text whatever the number of ids. On PostgreSQL it is
/// `column = ANY($1)` with one array parameter, so the driver's prepared statement is reused (an
/// `IN` list of a new length is a new statement, prepared and planned again, one more round
/// trip); SQLite has no arrays, and prepares in process.
pub fn any_of<C: sea_orm::ColumnTrait>(
    backend: DbBackend,
    column: C,
    ids: &[uuid::Uuid],
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::extension::postgres::PgFunc;
    use sea_orm::sea_query::Expr;
    match backend {
        DbBackend::Postgres => column
            .into_expr()
            .eq(PgFunc::any(Expr::val(uuid_array(ids)))),
        DbBackend::Sqlite | DbBackend::MySql => column.is_in(ids.iter().copied()),
    }
}

/// One PostgreSQL `uuid[]` parameter.
pub fn uuid_array(ids: &[uuid::Uuid]) -> sea_orm::Value {
    let ids = ids.iter().map(|id| sea_orm::Value::from(*id)).collect();
    sea_orm::Value::Array(sea_orm::sea_query::ArrayType::Uuid, Some(Box::new(ids)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_read_the_same_on_sqlite() {
        let statement = sql(DbBackend::Sqlite, "SELECT $1, $12 WHERE a = $1", []);
        assert_eq!(statement.sql, "SELECT ?1, ?12 WHERE a = ?1");
        let statement = sql(DbBackend::Postgres, "SELECT $1", []);
        assert_eq!(statement.sql, "SELECT $1");
    }

    #[test]
    fn an_id_list_is_one_statement_text_on_postgres_whatever_its_length() {
        use sea_orm::{EntityTrait, QueryFilter, QueryTrait};
        let text = |backend: DbBackend, n: usize| {
            let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::now_v7()).collect();
            entities::user::Entity::find()
                .filter(any_of(backend, entities::user::Column::Id, &ids))
                .build(backend)
                .sql
        };
        assert_eq!(text(DbBackend::Postgres, 1), text(DbBackend::Postgres, 40));
        assert!(text(DbBackend::Postgres, 2).ends_with(r#""users"."id" = ANY($1)"#));
        assert_ne!(text(DbBackend::Sqlite, 1), text(DbBackend::Sqlite, 2));
    }
}
