//! Attachments: files on a task, stored through the file store, typed by their bytes, and
//! read back only by people who may see the task.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::Utc;
use entities::{task, task_attachment};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{emit, ensure_visible, executors_of, record};
use crate::auth::{Viewer, ViewerUser};
use crate::domains::tasks::model::{TaskEventKind, TaskId};
use crate::error::{AppError, AppResult};
use crate::platform::files::FileStore;
use crate::platform::work::Work;

/// Types accepted by what their bytes are, not by what the client claims.
const ACCEPTED: [&str; 12] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/msword",
    "application/vnd.ms-excel",
    "text/plain",
];

/// A file on its way to a task. Its id is fixed before the unit of work, so whoever commits
/// the work can remove the stored bytes if the commit fails (see `discard_upload`).
pub struct Upload {
    id: Uuid,
    pub filename: String,
    pub bytes: Bytes,
}

impl Upload {
    pub fn new(filename: String, bytes: Bytes) -> Self {
        Self {
            id: Uuid::now_v7(),
            filename,
            bytes,
        }
    }

    fn storage_key(&self, task_id: Uuid) -> String {
        format!("tasks/{task_id}/{}", self.id)
    }
}

/// The content type sniffed from the bytes; plain UTF-8 text without NULs counts as text.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    match infer::get(bytes) {
        Some(kind) => ACCEPTED.iter().copied().find(|t| *t == kind.mime_type()),
        None if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() => Some("text/plain"),
        None => None,
    }
}

/// The last path component, without control characters, at most 200 characters.
pub fn clean_filename(raw: &str) -> String {
    let name: String = raw
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

/// Stores the bytes and the row. The bytes are written before the work commits: if it then
/// fails, call `discard_upload` so they are not left behind without a row.
pub async fn attach(
    work: &Work,
    files: &FileStore,
    viewer: &Viewer,
    task_id: TaskId,
    upload: &Upload,
    max_bytes: usize,
) -> AppResult<task_attachment::Model> {
    let me = viewer.user()?;
    if upload.bytes.is_empty() {
        return Err(AppError::bad_field("file", "the file is empty"));
    }
    if upload.bytes.len() > max_bytes {
        return Err(AppError::bad_field(
            "file",
            format!("files are at most {max_bytes} bytes"),
        ));
    }
    let content_type = sniff(&upload.bytes)
        .ok_or_else(|| AppError::bad_field("file", "this kind of file is not accepted"))?;
    let task = task::Entity::find_by_id(task_id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("task"))?;
    let audience = ensure_visible(work, me, &task).await?;
    let on_task = task.initiator_id == me.id
        || task.confirmer_id == Some(me.id)
        || executors_of(work, task.id).await?.contains(&me.id);
    if !on_task && !me.is_admin() {
        return Err(AppError::Forbidden(
            "only the people on a task attach files to it".into(),
        ));
    }
    let key = upload.storage_key(task.id);
    let row = task_attachment::ActiveModel {
        id: Set(upload.id),
        task_id: Set(task.id),
        uploader_id: Set(me.id),
        filename: Set(clean_filename(&upload.filename)),
        content_type: Set(content_type.to_owned()),
        size_bytes: Set(upload.bytes.len() as i64),
        storage_key: Set(key.clone()),
        sha256: Set(hex::encode(Sha256::digest(&upload.bytes))),
        created_at: Set(Utc::now()),
    }
    .insert(work)
    .await?;
    record(
        work,
        task.id,
        me.id,
        "attached",
        Some("attachments"),
        None,
        Some(row.filename.clone()),
    )
    .await?;
    files
        .put(&key, upload.bytes.clone())
        .await
        .map_err(AppError::internal)?;
    emit(
        work,
        TaskEventKind::AttachmentAdded,
        &task,
        me.id,
        &audience,
    );
    Ok(row)
}

/// Removes what `attach` stored for `upload` once its unit of work has failed: the row is gone
/// with the rollback, and its bytes must not stay behind. Nothing stored is nothing removed.
pub async fn discard_upload(files: &FileStore, task_id: TaskId, upload: &Upload) {
    match files.delete(&upload.storage_key(task_id.0)).await {
        Ok(()) => {}
        // The work failed before the bytes were stored.
        Err(err)
            if matches!(
                err.downcast_ref::<object_store::Error>(),
                Some(object_store::Error::NotFound { .. })
            ) => {}
        Err(err) => {
            tracing::warn!(upload = %upload.id, error = %err, "bytes of a failed upload left behind")
        }
    }
}

pub async fn attachments_by_task<C: ConnectionTrait>(
    db: &C,
    task_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<task_attachment::Model>>> {
    let mut by_task: HashMap<Uuid, Vec<task_attachment::Model>> = HashMap::new();
    for row in task_attachment::Entity::find()
        .filter(task_attachment::Column::TaskId.is_in(task_ids.iter().copied()))
        .order_by_asc(task_attachment::Column::Id)
        .all(db)
        .await?
    {
        by_task.entry(row.task_id).or_default().push(row);
    }
    Ok(by_task)
}

/// The file and its bytes, if `viewer` may still see its task.
pub async fn read_attachment<C: ConnectionTrait>(
    db: &C,
    files: &FileStore,
    viewer: &ViewerUser,
    attachment_id: Uuid,
) -> AppResult<(task_attachment::Model, Bytes)> {
    let row = task_attachment::Entity::find_by_id(attachment_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("file"))?;
    let task = task::Entity::find_by_id(row.task_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("file"))?;
    ensure_visible(db, viewer, &task)
        .await
        .map_err(|_| AppError::not_found("file"))?;
    let bytes = files
        .get(&row.storage_key)
        .await
        .map_err(AppError::internal)?;
    Ok((row, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff("plain words".as_bytes()), Some("text/plain"));
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"), None);
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), None);
    }

    #[test]
    fn filenames_lose_their_paths() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_filename("a\u{0}b.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "file");
    }
}
