//! Where import files are put so that the server reads them: a directory
//! of this machine (a server on local storage), or the bucket of a server
//! that keeps its data in S3-protocol storage (a cluster). A file for a
//! bucket is written to a local staging directory first, then uploaded in
//! parts; the server is given its key in the bucket.

use std::io::Read;
use std::path::{Path, PathBuf};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ObjectStore, WriteMultipart};
use tokio::runtime::Handle;

use super::MilvusError;
use super::config::{ImportS3Config, MilvusSinkConfig};

/// Bytes of one uploaded part (S3 takes 5 MiB to 5 GiB, up to 10,000 parts).
const PART_BYTES: usize = 16 << 20;
/// Parts uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;
/// The environment variables the bucket's keys come from.
const ACCESS_KEY_VAR: &str = "AWS_ACCESS_KEY_ID";
const SECRET_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";

pub(super) enum ImportPlace {
    /// The directory the server reads, at the same absolute paths.
    Dir(PathBuf),
    Bucket(Bucket),
}

pub(super) struct Bucket {
    store: AmazonS3,
    name: String,
    prefix: object_store::path::Path,
    /// Files are written here, then uploaded and removed.
    staging: tempfile::TempDir,
    runtime: Handle,
}

impl ImportPlace {
    /// The place `cfg` names (`import_dir` or `import_s3`); a directory is created.
    pub(super) fn new(cfg: &MilvusSinkConfig, runtime: Handle) -> Result<Self, MilvusError> {
        if let Some(s3) = &cfg.import_s3 {
            return Ok(ImportPlace::Bucket(Bucket::new(
                s3,
                cfg.max_retries,
                runtime,
            )?));
        }
        let dir = cfg
            .import_dir
            .clone()
            .ok_or_else(|| MilvusError::Config("`mode: import` needs `import_dir`".into()))?;
        let dir = std::path::absolute(&dir).map_err(|source| MilvusError::Io {
            path: dir.clone(),
            source,
        })?;
        std::fs::create_dir_all(&dir).map_err(|source| MilvusError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(ImportPlace::Dir(dir))
    }

    /// Where the file `name` is written.
    pub(super) fn local_path(&self, name: &str) -> PathBuf {
        match self {
            ImportPlace::Dir(dir) => dir.join(name),
            ImportPlace::Bucket(bucket) => bucket.staging.path().join(name),
        }
    }

    /// Makes the written file at `local` readable by the server; returns
    /// the path the server is given.
    pub(super) fn publish(&self, local: &Path) -> Result<String, MilvusError> {
        match self {
            ImportPlace::Dir(_) => Ok(local.display().to_string()),
            ImportPlace::Bucket(bucket) => bucket.upload(local),
        }
    }

    /// Removes a published file (a failure is a warning: the rows are in).
    pub(super) fn remove(&self, server_path: &str) {
        let outcome = match self {
            ImportPlace::Dir(_) => std::fs::remove_file(server_path).map_err(|e| e.to_string()),
            ImportPlace::Bucket(bucket) => bucket.delete(server_path).map_err(|e| e.to_string()),
        };
        if let Err(error) = outcome {
            tracing::warn!(file = %self.shown(server_path), %error, "cannot remove an import file");
        }
    }

    /// A published file as a user finds it: its path, or `s3://bucket/key`.
    pub(super) fn shown(&self, server_path: &str) -> String {
        match self {
            ImportPlace::Dir(_) => server_path.to_string(),
            ImportPlace::Bucket(bucket) => bucket.shown(server_path),
        }
    }
}

/// Checks, writing nothing, that the bucket of `cfg` (if any) answers a
/// listing of the prefix with the environment's keys (for `validate`).
pub(super) fn check_bucket(cfg: &MilvusSinkConfig, runtime: &Handle) -> Result<(), MilvusError> {
    let Some(s3) = &cfg.import_s3 else {
        return Ok(());
    };
    let store = client(s3, cfg.max_retries)?;
    runtime
        .block_on(store.list_with_delimiter(Some(&prefix(s3))))
        .map_err(|source| MilvusError::ImportStore {
            bucket: s3.bucket.clone(),
            source: Box::new(source),
        })?;
    Ok(())
}

/// A client of the bucket; a request failing in transport is retried
/// `max_retries` times, by default as `object_store` does (10 times within
/// 3 minutes).
fn client(cfg: &ImportS3Config, max_retries: Option<usize>) -> Result<AmazonS3, MilvusError> {
    let key = |var: &'static str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(MilvusError::ImportKeyMissing {
                bucket: cfg.bucket.clone(),
                var,
            })
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_access_key_id(key(ACCESS_KEY_VAR)?)
        .with_secret_access_key(key(SECRET_KEY_VAR)?);
    if let Some(retries) = max_retries {
        builder = builder.with_retry(object_store::RetryConfig {
            max_retries: retries,
            ..Default::default()
        });
    }
    if let Ok(token) = std::env::var("AWS_SESSION_TOKEN") {
        builder = builder.with_token(token);
    }
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    builder.build().map_err(|source| MilvusError::ImportStore {
        bucket: cfg.bucket.clone(),
        source: Box::new(source),
    })
}

fn prefix(cfg: &ImportS3Config) -> object_store::path::Path {
    object_store::path::Path::from(cfg.prefix.trim_matches('/'))
}

impl Bucket {
    fn new(
        cfg: &ImportS3Config,
        max_retries: Option<usize>,
        runtime: Handle,
    ) -> Result<Self, MilvusError> {
        let staging = tempfile::Builder::new()
            .prefix("vecpipe-import-")
            .tempdir()
            .map_err(|source| MilvusError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        Ok(Bucket {
            store: client(cfg, max_retries)?,
            name: cfg.bucket.clone(),
            prefix: prefix(cfg),
            staging,
            runtime,
        })
    }

    /// `key` as a user finds it.
    fn shown(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// Uploads `local` under the prefix, then removes it; returns its key.
    /// An upload that fails is aborted, so no parts are left behind.
    fn upload(&self, local: &Path) -> Result<String, MilvusError> {
        let name = local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = self.prefix.child(name.as_str());
        let failed = |source| MilvusError::ImportUpload {
            file: self.shown(key.as_ref()),
            source: Box::new(source),
        };
        let mut file = std::fs::File::open(local).map_err(|source| MilvusError::Io {
            path: local.to_path_buf(),
            source,
        })?;
        self.runtime.block_on(async {
            let upload = self.store.put_multipart(&key).await.map_err(failed)?;
            let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let sent = async {
                let mut buffer = vec![0; PART_BYTES];
                loop {
                    let read = file.read(&mut buffer).map_err(|source| MilvusError::Io {
                        path: local.to_path_buf(),
                        source,
                    })?;
                    if read == 0 {
                        return Ok(());
                    }
                    parts
                        .wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(failed)?;
                    parts.write(&buffer[..read]);
                }
            }
            .await;
            match sent {
                Ok(()) => parts.finish().await.map(drop).map_err(failed),
                Err(e) => {
                    parts.abort().await.ok();
                    Err(e)
                }
            }
        })?;
        if let Err(e) = std::fs::remove_file(local) {
            tracing::warn!(file = %local.display(), error = %e, "cannot remove a staged import file");
        }
        Ok(key.to_string())
    }

    fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        self.runtime
            .block_on(self.store.delete(&object_store::path::Path::from(key)))
    }
}
