//! The unit of work: one open transaction, and what is to happen once it commits.
//!
//! Commands take a `&Work`, write through it (it is a connection), append their events to it,
//! and never begin, commit or publish themselves. Whoever opened the work (a resolver helper,
//! the job runner, the CLI) commits it once; the events enter the log in the same transaction
//! as the change, and the wake-ups run after commit. Commands compose: a service calling
//! another domain's service passes the same work on, and all their effects run once.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, QueryResult, Statement,
    TransactionTrait,
};

use super::db::Db;
use super::events::{log, Event, NewEvent};

#[derive(Default)]
struct Effects {
    events: Vec<NewEvent>,
    jobs_enqueued: bool,
    savepoints: u32,
}

pub struct Work {
    txn: DatabaseTransaction,
    db: Db,
    effects: parking_lot::Mutex<Effects>,
}

/// What a committed unit of work changed, for the caller's own after-commit steps.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    pub events: usize,
    /// The topics of its events, each once.
    pub topics: Vec<&'static str>,
}

impl Committed {
    pub fn touched(&self, topic: &str) -> bool {
        self.topics.contains(&topic)
    }
}

impl Work {
    pub async fn begin(db: &Db) -> Result<Self, DbErr> {
        Ok(Self {
            txn: db.conn.begin().await?,
            db: db.clone(),
            effects: parking_lot::Mutex::default(),
        })
    }

    /// Appends `event` to the log with this work's transaction (written at commit, in one
    /// statement with the others).
    pub fn emit<E: Event>(&self, event: &E) {
        match NewEvent::of(event) {
            Ok(entry) => self.effects.lock().events.push(entry),
            // Our own types always serialise; should one not, the change must still stand.
            Err(err) => {
                tracing::error!(topic = E::TOPIC, error = %err, "unserialisable event dropped")
            }
        }
    }

    /// A job was enqueued: idle workers of this node are woken once the work commits
    /// (PostgreSQL nodes are also woken by `NOTIFY`).
    pub fn jobs_enqueued(&self) {
        self.effects.lock().jobs_enqueued = true;
    }

    /// Runs `step` inside a savepoint: if it fails, what it wrote and the events it appended
    /// are undone, and the rest of the work stands.
    pub async fn attempt<T, E>(&self, step: impl AsyncFnOnce(&Work) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbErr>,
    {
        let (name, mark) = {
            let mut effects = self.effects.lock();
            effects.savepoints += 1;
            (
                format!("attempt_{}", effects.savepoints),
                effects.events.len(),
            )
        };
        self.txn
            .execute_unprepared(&format!("SAVEPOINT {name}"))
            .await?;
        match step(self).await {
            Ok(value) => {
                self.txn
                    .execute_unprepared(&format!("RELEASE SAVEPOINT {name}"))
                    .await?;
                Ok(value)
            }
            Err(err) => {
                self.txn
                    .execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {name}"))
                    .await?;
                self.effects.lock().events.truncate(mark);
                Err(err)
            }
        }
    }

    /// Appends the events, commits, then wakes this node's relay and workers.
    pub async fn commit(self) -> Result<Committed, DbErr> {
        let effects = std::mem::take(&mut *self.effects.lock());
        let events = effects.events.len();
        let mut topics: Vec<&'static str> = effects.events.iter().map(|e| e.topic).collect();
        topics.sort_unstable();
        topics.dedup();
        if events > 0 {
            log::append(&self.txn, effects.events).await?;
        }
        self.txn.commit().await?;
        let commits = self.db.commits();
        if events > 0 {
            commits.events.notify_one();
        }
        if effects.jobs_enqueued {
            commits.jobs.notify_one();
        }
        Ok(Committed { events, topics })
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Work {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one(stmt).await
    }

    async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all(stmt).await
    }
}

/// Runs `step` as one unit of work on `db`: commits if it succeeds, rolls back if it fails.
/// For the places that own a write: resolvers (through `AppState::write`), job handlers, the CLI.
pub async fn write<T, E>(db: &Db, step: impl AsyncFnOnce(&Work) -> Result<T, E>) -> Result<T, E>
where
    E: From<DbErr>,
{
    Ok(write_reporting(db, step).await?.0)
}

/// `write`, also telling what the work committed.
pub async fn write_reporting<T, E>(
    db: &Db,
    step: impl AsyncFnOnce(&Work) -> Result<T, E>,
) -> Result<(T, Committed), E>
where
    E: From<DbErr>,
{
    let work = Work::begin(db).await?;
    let value = step(&work).await?;
    let committed = work.commit().await?;
    Ok((value, committed))
}
