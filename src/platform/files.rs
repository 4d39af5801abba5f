//! File storage through `object_store`: the local filesystem by default, S3-compatible when set.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutPayload};

use crate::config::Config;

#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
}

impl FileStore {
    /// `INTERLINK_S3_BUCKET` selects S3 (credentials and region from the usual `AWS_*`
    /// variables, `INTERLINK_S3_ENDPOINT` for other S3-compatible stores); otherwise files live
    /// under `<data dir>/files`.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match &config.s3_bucket {
            Some(bucket) => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &config.s3_endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                Arc::new(builder.build().context("configuring the S3 file store")?)
            }
            None => {
                let root = config.data_dir.join("files");
                std::fs::create_dir_all(&root)
                    .with_context(|| format!("creating {}", root.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(&root).context("opening the file store")?)
            }
        };
        Ok(Self { store })
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.store
            .put(&StorePath::from(key), PutPayload::from_bytes(bytes))
            .await
            .context("storing a file")?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Bytes> {
        let found = self
            .store
            .get(&StorePath::from(key))
            .await
            .context("reading a file")?;
        found.bytes().await.context("reading a file")
    }

    /// A file written piece by piece (multipart upload on S3), so a large file never sits in
    /// memory whole. It exists under `key` once `shutdown` returns; an abandoned writer
    /// leaves nothing there.
    pub fn writer(&self, key: &str) -> object_store::buffered::BufWriter {
        object_store::buffered::BufWriter::new(self.store.clone(), StorePath::from(key))
    }

    /// A file read piece by piece, for streaming it out.
    pub async fn stream(
        &self,
        key: &str,
    ) -> anyhow::Result<futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>> {
        let found = self
            .store
            .get(&StorePath::from(key))
            .await
            .context("reading a file")?;
        Ok(found.into_stream())
    }

    /// Deletes the files under `prefix` last written before `before`; how many went.
    pub async fn delete_older(
        &self,
        prefix: &str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<u64> {
        use futures_util::TryStreamExt;
        let prefix = StorePath::from(prefix);
        let mut listed = self.store.list(Some(&prefix));
        let mut deleted = 0;
        while let Some(meta) = listed.try_next().await.context("listing files")? {
            if meta.last_modified < before {
                self.store
                    .delete(&meta.location)
                    .await
                    .context("deleting a file")?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.store
            .delete(&StorePath::from(key))
            .await
            .context("deleting a file")
    }
}
