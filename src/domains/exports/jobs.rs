//! `reports.export`: a large (or asked-for) export written in the background into the file
//! store, streamed the same way as on the wire, with its progress in rows.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::model::{Params, Report};
use super::service::{self, CsvOut, ExportError, CHANNEL_CHUNKS};
use crate::auth::{Viewer, ViewerUser};
use crate::domains::identity::service as identity;
use crate::domains::integrations::service as integrations;
use crate::error::AppError;
use crate::platform::db::Db;
use crate::platform::files::FileStore;
use crate::platform::scheduler::{
    no_arguments, JobContext, JobError, JobHandler, JobKind, MAINTENANCE_QUEUE,
};

pub const EXPORT_QUEUE: &str = "exports";

/// Whom an export runs for, looked up again when it runs: never rights carried over from the
/// request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Requester {
    User(Uuid),
    App(Uuid),
}

impl Requester {
    pub fn of(viewer: &ViewerUser) -> Self {
        match &viewer.app {
            Some(app) => Self::App(app.app_id),
            None => Self::User(viewer.id),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExportJob {
    pub requester: Requester,
    pub report: Report,
    /// The report's own query parameters as the client sent them, parsed again at run time by
    /// the same parser.
    pub query: String,
    pub bom: bool,
}

impl JobKind for ExportJob {
    const KIND: &'static str = "reports.export";
    const QUEUE: &'static str = EXPORT_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    /// Above the export's own deadline (`INTERLINK_EXPORT_TIMEOUT_SECS`, default 30 minutes),
    /// which is what normally ends a runaway export.
    const TIMEOUT: Duration = Duration::from_secs(4 * 3600);
    const BACKOFF_BASE: Duration = Duration::from_secs(10);
    const DESCRIPTION: &'static str = "Writes a CSV export into the file store";
}

const FILE_PREFIX: &str = "exports";

/// Where a finished export's file lives.
pub fn file_key(job_id: Uuid) -> String {
    format!("{FILE_PREFIX}/{job_id}.csv")
}

/// `reports.export_cleanup`: deletes export files older than their time to live (the download
/// refuses them already; this frees the store).
#[derive(Serialize, Deserialize)]
pub struct ExportCleanupJob {}

impl JobKind for ExportCleanupJob {
    const KIND: &'static str = "reports.export_cleanup";
    const QUEUE: &'static str = MAINTENANCE_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    const TIMEOUT: Duration = Duration::from_secs(600);
    const DESCRIPTION: &'static str = "Deletes background exports' files once they expire";

    fn operator_schema() -> Option<serde_json::Value> {
        Some(no_arguments())
    }
}

pub struct ExportCleanup {
    pub files: FileStore,
    pub file_ttl: Duration,
}

#[async_trait]
impl JobHandler for ExportCleanup {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let ttl = chrono::Duration::from_std(self.file_ttl).unwrap_or(chrono::Duration::MAX);
        let Some(before) = chrono::Utc::now().checked_sub_signed(ttl) else {
            return Ok(());
        };
        let deleted = self.files.delete_older(FILE_PREFIX, before).await?;
        job.progress(100, &format!("{deleted} expired export files deleted"))
            .await
    }
}

pub struct RunExport {
    pub db: Db,
    pub files: FileStore,
    pub currency: String,
    pub deadline: Duration,
}

/// A refusal that retrying cannot change (the requester lost the right, the parameters are
/// bad) goes to the dead letters at once.
fn refused(err: AppError) -> JobError {
    match err {
        AppError::Internal(cause) => JobError::Retry(format!("{cause:#}")),
        other => JobError::Discard(other.public_message().to_owned()),
    }
}

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[async_trait]
impl JobHandler for RunExport {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let args = job.args::<ExportJob>()?;
        let db = &self.db.conn;
        let me = match args.requester {
            Requester::User(id) => identity::viewer_for_user(db, id).await,
            Requester::App(id) => integrations::viewer_of_active_app(db, id).await,
        }
        .map_err(refused)?
        .ok_or_else(|| JobError::Discard("the requester is no longer active".into()))?;
        let viewer = Viewer::User(std::sync::Arc::new(me));
        let params = Params::parse(args.report, &args.query).map_err(refused)?;
        let prepared = service::prepare(db, &viewer, params)
            .await
            .map_err(refused)?;
        let total = prepared.rows(db, None).await.map_err(refused)?;
        let (tx, mut rx) = mpsc::channel(CHANNEL_CHUNKS);
        let out = CsvOut::new(tx, args.bom);
        let rows = out.counter();
        let producer = tokio::spawn(service::produce(
            db.clone(),
            prepared,
            self.currency.clone(),
            out,
            self.deadline,
        ));
        let key = file_key(job.id);
        let mut file = self.files.writer(&key);
        let mut last_report = tokio::time::Instant::now();
        let outcome: Result<(), JobError> = async {
            loop {
                let chunk = tokio::select! {
                    chunk = rx.recv() => chunk,
                    _ = job.cancelled() => return Err(JobError::Cancelled),
                };
                match chunk {
                    Some(Ok(bytes)) => file
                        .write_all(&bytes)
                        .await
                        .map_err(|e| JobError::Retry(format!("writing the export file: {e}")))?,
                    Some(Err(err)) => return Err(JobError::Retry(err.to_string())),
                    None => return Ok(()),
                }
                if last_report.elapsed() >= PROGRESS_EVERY {
                    last_report = tokio::time::Instant::now();
                    let written = rows.load(Ordering::Relaxed);
                    job.progress(percent(written, total), &rows_message(written, total))
                        .await?;
                }
            }
        }
        .await;
        // Dropping the receiver stops the producer at its next chunk.
        drop(rx);
        let produced = producer.await;
        if let Err(err) = outcome {
            let _ = file.abort().await;
            return Err(err);
        }
        match produced {
            Ok(Ok(_)) => {}
            Ok(Err(ExportError::Gone)) => {
                let _ = file.abort().await;
                return Err(JobError::Retry("the export stopped early".into()));
            }
            Ok(Err(ExportError::Failed(err))) => {
                let _ = file.abort().await;
                return Err(refused(err));
            }
            Err(err) => {
                let _ = file.abort().await;
                return Err(JobError::Retry(format!("the export task failed: {err}")));
            }
        }
        file.shutdown()
            .await
            .map_err(|e| JobError::Retry(format!("storing the export file: {e}")))?;
        let written = rows.load(Ordering::Relaxed);
        job.progress(100, &done_message(written)).await
    }
}

fn percent(written: u64, total: u64) -> i32 {
    if total == 0 {
        return 99;
    }
    // Held below 100 until the file is stored.
    i32::try_from((written.saturating_mul(100) / total).min(99)).unwrap_or(99)
}

fn rows_message(written: u64, total: u64) -> String {
    format!("{written} of {total} rows written")
}

/// The finished job's message; the status endpoint reads the row count back from it.
pub fn done_message(rows: u64) -> String {
    format!("done: {rows} rows")
}

/// The rows a progress message reports as written.
pub fn rows_in_message(message: &str) -> Option<u64> {
    let message = message.strip_prefix("done: ").unwrap_or(message);
    message.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_messages_carry_the_rows() {
        assert_eq!(rows_in_message(&done_message(1234)), Some(1234));
        assert_eq!(rows_in_message(&rows_message(7, 10)), Some(7));
        assert_eq!(percent(50, 100), 50);
        assert_eq!(percent(100, 100), 99);
        assert_eq!(percent(3, 0), 99);
    }

    #[test]
    fn arguments_round_trip() -> anyhow::Result<()> {
        let args = ExportJob {
            requester: Requester::App(Uuid::nil()),
            report: Report::TrialBalance,
            query: "asOf=2026-12-31".into(),
            bom: true,
        };
        let json = serde_json::to_value(&args)?;
        assert_eq!(json["report"], "trial-balance");
        let back: ExportJob = serde_json::from_value(json)?;
        assert_eq!(back.requester, args.requester);
        Ok(())
    }
}
