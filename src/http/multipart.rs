//! GraphQL multipart requests (the graphql-multipart-request-spec): the `operations` and `map`
//! fields keep the JSON body limit, and only file parts get the upload limit.
//!
//! async-graphql's own reader gives every field the file limit (so `operations` could be
//! 10 MiB of JSON, read before anyone is authenticated); multer, which it uses too, can limit
//! each field by name.

use std::collections::HashMap;
use std::io::Seek;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_graphql::{BatchRequest, UploadValue};
use axum::body::{Body, BodyDataStream};
use futures_util::{Stream, StreamExt};
use multer::{Constraints, Multipart, SizeLimit};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;

/// Upload paths one `map` may name: each is a duplicated file handle.
const MAX_FILE_PATHS: usize = 256;

pub(super) struct Limits {
    /// For `operations` and `map`, each, as for a JSON body.
    pub form_bytes: usize,
    /// For each file part.
    pub file_bytes: usize,
    pub max_files: usize,
}

pub(super) enum Refusal {
    TooLarge,
    Malformed(String),
    /// The server could not spool a file (disk full, say).
    Internal,
}

impl From<multer::Error> for Refusal {
    fn from(err: multer::Error) -> Self {
        match err {
            multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
                Self::TooLarge
            }
            multer::Error::StreamReadFailed(cause) if super::graphql::is_length_limit(&*cause) => {
                Self::TooLarge
            }
            other => Self::Malformed(other.to_string()),
        }
    }
}

fn malformed(message: impl Into<String>) -> Refusal {
    Refusal::Malformed(message.into())
}

/// Reads the whole form into a batch with its uploads set. `parse` turns the `operations`
/// field into a batch exactly as a JSON body would be (it runs once).
pub(super) async fn read(
    content_type: &str,
    body: Body,
    limits: &Limits,
    parse: impl FnOnce(&[u8]) -> Result<BatchRequest, String>,
) -> Result<BatchRequest, Refusal> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| malformed(e.to_string()))?;
    let form = limits.form_bytes as u64;
    let constraints = Constraints::new().size_limit(
        SizeLimit::new()
            .whole_stream(form + limits.file_bytes as u64)
            .per_field(limits.file_bytes as u64)
            .for_field("operations", form)
            .for_field("map", form),
    );
    let body = Shared(Arc::new(Mutex::new(body.into_data_stream())));
    let multipart = Multipart::with_constraints(body.clone(), boundary, constraints);
    let read = read_form(multipart, limits, parse).await;
    if read.is_err() {
        // The client may still be sending: read a bounded rest so it hears the answer instead
        // of a reset connection.
        let mut rest = body;
        let mut seen = 0;
        while seen < super::errors::DRAIN_CAP {
            match rest.next().await {
                Some(Ok(bytes)) => seen += bytes.len(),
                _ => break,
            }
        }
    }
    read
}

/// The body, shared between multer and the drain after a refusal.
#[derive(Clone)]
struct Shared(Arc<Mutex<BodyDataStream>>);

impl Stream for Shared {
    type Item = Result<bytes::Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.lock().poll_next_unpin(cx)
    }
}

async fn read_form(
    mut multipart: Multipart<'static>,
    limits: &Limits,
    parse: impl FnOnce(&[u8]) -> Result<BatchRequest, String>,
) -> Result<BatchRequest, Refusal> {
    let mut parse = Some(parse);
    let mut batch = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files = Vec::new();
    while let Some(mut field) = multipart.next_field().await? {
        match field.name() {
            Some("operations") => {
                let parse = parse
                    .take()
                    .ok_or_else(|| malformed("more than one operations field"))?;
                let bytes = field.bytes().await?;
                batch = Some(parse(&bytes).map_err(Refusal::Malformed)?);
            }
            Some("map") => {
                let bytes = field.bytes().await?;
                let parsed: HashMap<String, Vec<String>> = serde_json::from_slice(&bytes)
                    .map_err(|e| malformed(format!("the map field is not a JSON map: {e}")))?;
                if parsed.values().map(Vec::len).sum::<usize>() > MAX_FILE_PATHS {
                    return Err(malformed(format!(
                        "the map names more than {MAX_FILE_PATHS} upload paths"
                    )));
                }
                map = Some(parsed);
            }
            Some(name) if field.file_name().is_some() => {
                if files.len() == limits.max_files {
                    return Err(malformed(format!(
                        "at most {} files per request",
                        limits.max_files
                    )));
                }
                let name = name.to_owned();
                let filename = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(ToString::to_string);
                let spool = tempfile::tempfile().map_err(internal_io)?;
                let mut file = tokio::fs::File::from_std(spool);
                while let Some(chunk) = field.chunk().await? {
                    file.write_all(&chunk).await.map_err(internal_io)?;
                }
                file.flush().await.map_err(internal_io)?;
                let mut content = file.into_std().await;
                content.rewind().map_err(internal_io)?;
                files.push((
                    name,
                    UploadValue {
                        filename,
                        content_type,
                        content,
                    },
                ));
            }
            // Fields the spec does not define are skipped (and still bounded, as files).
            _ => {}
        }
    }
    let mut batch = batch.ok_or_else(|| malformed("the operations field is missing"))?;
    let mut map = map.ok_or_else(|| malformed("the map field is missing"))?;
    for (name, upload) in files {
        for path in map.remove(&name).unwrap_or_default() {
            let upload = upload.try_clone().map_err(internal_io)?;
            match &mut batch {
                BatchRequest::Single(request) => request.set_upload(&path, upload),
                BatchRequest::Batch(requests) => {
                    let target = path.split_once('.').and_then(|(index, rest)| {
                        let request = requests.get_mut(index.parse::<usize>().ok()?)?;
                        Some((request, rest))
                    });
                    if let Some((request, rest)) = target {
                        request.set_upload(rest, upload);
                    }
                }
            }
        }
    }
    if let Some(name) = map.keys().next() {
        return Err(malformed(format!(
            "the map names a missing file part: {name}"
        )));
    }
    Ok(batch)
}

fn internal_io(err: std::io::Error) -> Refusal {
    tracing::error!(error = %err, "spooling an upload");
    Refusal::Internal
}
