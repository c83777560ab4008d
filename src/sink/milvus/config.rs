//! The `milvus` sink's config: where, which collection, how its fields and
//! indexes are made.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::MilvusSink;
use crate::config::{Invalid, PositiveInt, Surroundings};
use crate::dead_letter::DeadLetters;
use crate::sink::{Sink, SinkComponent, SinkError};

/// `{ type: milvus, uri: http://host:19530 | ./data/x.db, collection: NAME, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MilvusSinkConfig {
    /// A server (`http://host:19530`) or a directory: embedded Milvus Lite, started for the run.
    pub uri: String,
    /// `user:password` or an API key; keep it in the environment: `token: ${MILVUS_TOKEN:-}`.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default = "default_db")]
    pub db: String,
    pub collection: String,
    /// Rows per upsert request.
    #[serde(default = "default_milvus_batch_rows")]
    pub batch_rows: PositiveInt,
    #[serde(default)]
    pub create: CreateMode,
    /// `client`: write the pipeline's sparse vectors; `server`: Milvus' BM25 function on `text`.
    #[serde(default)]
    pub bm25: Bm25Mode,
    /// The sparse field (the output of Milvus' BM25 function with `bm25: server`).
    #[serde(default = "crate::batch::sparse::default_field")]
    pub sparse_field: String,
    /// VARCHAR length of `text` (at most 65535).
    #[serde(default = "default_text_max_length")]
    pub text_max_length: PositiveInt,
    #[serde(default)]
    pub index: IndexConfig,
    /// The `milvus-lite` executable, when not on PATH or in the project's .venv.
    #[serde(default)]
    pub milvus_lite: Option<PathBuf>,
    /// TLS to the server (with an `https://` uri): a private CA, the name
    /// its certificate carries, and a client certificate for mutual TLS.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Retries of a write that fails in transport (backoff 0.5 s doubling to
    /// 30 s); default: until it succeeds or the process is stopped.
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// `upsert`: rows go through Milvus' write path. `import` (bounded runs):
    /// rows are written as Parquet files in the collection's layout and the
    /// server imports them (bulk import).
    #[serde(default)]
    pub mode: WriteMode,
    /// `mode: import`: where the import files are written; the server must
    /// read them at the same path (a local-storage server on this machine).
    #[serde(default)]
    pub import_dir: Option<PathBuf>,
    /// `mode: import` into a server that keeps its data in S3-protocol
    /// storage (a cluster): the files go to its bucket.
    #[serde(default)]
    pub import_s3: Option<ImportS3Config>,
    /// `mode: import`: the largest import file, in MiB; each file is one job.
    #[serde(default = "default_import_file_mib")]
    pub import_file_mib: PositiveInt,
    /// `mode: import`: at most this many rows per file (default: only the size
    /// limits a file); smaller jobs record progress more often.
    #[serde(default)]
    pub import_file_rows: Option<PositiveInt>,
    /// `mode: import`: keep each file after its job completed.
    #[serde(default)]
    pub keep_import_files: bool,
}

/// `import_s3: { bucket, prefix, endpoint, region }`; the keys come from
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportS3Config {
    /// The bucket the Milvus server keeps its data in (its `minio.bucketName`):
    /// the server reads import files from its own bucket only.
    pub bucket: String,
    /// Where in the bucket the files go.
    #[serde(default = "default_import_prefix")]
    pub prefix: String,
    /// The S3-protocol endpoint (`http://minio:9000`); default: AWS's for `region`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
}

fn default_import_prefix() -> String {
    "vecpipe-import".into()
}

fn default_region() -> String {
    "us-east-1".into()
}

/// How the sink's rows reach Milvus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WriteMode {
    #[default]
    Upsert,
    Import,
}

fn default_import_file_mib() -> PositiveInt {
    PositiveInt(512)
}

impl MilvusSinkConfig {
    /// The token, when one is set and not empty.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }
}

fn default_db() -> String {
    "default".to_string()
}
fn default_milvus_batch_rows() -> PositiveInt {
    PositiveInt(1000)
}
fn default_text_max_length() -> PositiveInt {
    PositiveInt(65_535)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CreateMode {
    /// Create the collection (and its indexes) when it does not exist.
    #[default]
    IfMissing,
    /// The collection must exist.
    Never,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Bm25Mode {
    #[default]
    Client,
    Server,
}

/// `tls: { ca_file, server_name, client_cert_file, client_key_file }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsConfig {
    /// PEM file of the CA that signed the server's certificate (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name to check the server's certificate against (default: the uri's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM files of a client certificate and its key, for servers that require one (mutual TLS).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

impl TlsConfig {
    pub(super) fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.server_name.is_some()
            || self.client_cert_file.is_some()
            || self.client_key_file.is_some()
    }
}

/// `index: { dense: {type, metric, params, search_params}, sparse: {…} }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexConfig {
    #[serde(default)]
    pub dense: IndexSpec,
    #[serde(default)]
    pub sparse: IndexSpec,
}

/// One vector field's index; what is left out takes the field's and the
/// type's defaults (`IndexSpec::kind`, `build_params`, …).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexSpec {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    /// Build parameters over the type's defaults: HNSW `M`, `efConstruction`; IVF `nlist`.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Search parameters over the type's defaults: HNSW `ef`; IVF `nprobe`.
    #[serde(default)]
    pub search_params: BTreeMap<String, serde_json::Value>,
}

/// Which vector field an index is for: its defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VectorKind {
    Dense,
    Sparse,
}

impl VectorKind {
    pub(crate) fn key(self) -> &'static str {
        match self {
            VectorKind::Dense => "dense",
            VectorKind::Sparse => "sparse",
        }
    }
}

impl IndexConfig {
    pub(crate) fn spec(&self, vectors: VectorKind) -> &IndexSpec {
        match vectors {
            VectorKind::Dense => &self.dense,
            VectorKind::Sparse => &self.sparse,
        }
    }
}

impl IndexSpec {
    /// The index type, upper case: `AUTOINDEX` (dense) or `SPARSE_INVERTED_INDEX` by default.
    pub(crate) fn kind(&self, vectors: VectorKind) -> String {
        self.kind.as_deref().map_or_else(
            || match vectors {
                VectorKind::Dense => "AUTOINDEX".to_string(),
                VectorKind::Sparse => "SPARSE_INVERTED_INDEX".to_string(),
            },
            str::to_ascii_uppercase,
        )
    }

    /// The metric, upper case: `COSINE` (dense) or `IP` (sparse) by default.
    pub(crate) fn metric(&self, vectors: VectorKind) -> String {
        self.metric.as_deref().map_or_else(
            || match vectors {
                VectorKind::Dense => "COSINE".to_string(),
                VectorKind::Sparse => "IP".to_string(),
            },
            str::to_ascii_uppercase,
        )
    }

    /// Build parameters: the type's defaults (Milvus has none for HNSW and
    /// IVF and refuses them without), overridden by `params`.
    pub(crate) fn build_params(&self, vectors: VectorKind) -> BTreeMap<String, serde_json::Value> {
        let defaults: &[(&str, u64)] = match self.kind(vectors).as_str() {
            "HNSW" => &[("M", 16), ("efConstruction", 200)],
            "IVF_FLAT" | "IVF_SQ8" | "IVF_PQ" => &[("nlist", 128)],
            _ => &[],
        };
        with_defaults(defaults, &self.params)
    }

    /// Search parameters for `limit` hits: HNSW's `ef` is at least `limit`
    /// (Milvus refuses less), IVF probes 16 lists, overridden by `search_params`.
    pub(crate) fn search_params(
        &self,
        vectors: VectorKind,
        limit: usize,
    ) -> BTreeMap<String, serde_json::Value> {
        let defaults: &[(&str, u64)] = match self.kind(vectors).as_str() {
            "HNSW" => &[("ef", 64)],
            "IVF_FLAT" | "IVF_SQ8" | "IVF_PQ" => &[("nprobe", 16)],
            _ => &[],
        };
        let mut params = with_defaults(defaults, &self.search_params);
        if let Some(ef) = params.get_mut("ef")
            && ef.as_u64().is_some_and(|ef| ef < limit as u64)
        {
            *ef = serde_json::Value::from(limit);
        }
        params
    }
}

fn with_defaults(
    defaults: &[(&str, u64)],
    given: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, serde_json::Value> {
    let mut params: BTreeMap<String, serde_json::Value> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    params.extend(given.iter().map(|(k, v)| (k.clone(), v.clone())));
    params
}

impl SinkComponent for MilvusSinkConfig {
    fn kind() -> &'static str {
        "milvus"
    }

    fn validate(&self, around: &Surroundings) -> Result<(), Invalid> {
        if self.collection.trim().is_empty() {
            return Err(Invalid::at("collection", "must not be empty"));
        }
        if uri_has_credentials(&self.uri) {
            return Err(Invalid::at(
                "uri",
                "holds credentials (`user:password@`), which are not used and would be shown in messages; remove them and set `token: ${MILVUS_TOKEN}` (user:password or an API key) from the environment",
            ));
        }
        if self.tls.client_cert_file.is_some() != self.tls.client_key_file.is_some() {
            return Err(Invalid::at(
                "tls",
                "`client_cert_file` and `client_key_file` go together (mutual TLS needs both)",
            ));
        }
        if self.tls.is_set() && !self.uri.starts_with("https://") {
            return Err(Invalid::at("tls", "TLS settings need an `https://` uri"));
        }
        for (key, path) in [
            ("tls.ca_file", &self.tls.ca_file),
            ("tls.client_cert_file", &self.tls.client_cert_file),
            ("tls.client_key_file", &self.tls.client_key_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(Invalid::at(
                    key,
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        if self.mode == WriteMode::Import {
            let refuse = |key: &str, why: &str| Err(Invalid::at(key, why.to_string()));
            match (&self.import_dir, &self.import_s3) {
                (None, None) => {
                    return refuse(
                        "import_dir",
                        "`mode: import` needs `import_dir` (a local-storage server's directory) or `import_s3` (the bucket of a server on S3-protocol storage): where the server reads the files",
                    );
                }
                (Some(_), Some(_)) => {
                    return refuse(
                        "import_s3",
                        "set `import_dir` or `import_s3`, not both: the server reads the files from one place",
                    );
                }
                _ => {}
            }
            if let Some(s3) = &self.import_s3
                && let Some(endpoint) = &s3.endpoint
                && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            {
                return refuse(
                    "import_s3.endpoint",
                    "an endpoint is a URL: `http://host:port` or `https://host`",
                );
            }
            if super::is_local_path(&self.uri) {
                return refuse(
                    "mode",
                    "Milvus Lite has no bulk import: use `mode: upsert`, or a Milvus server `uri`",
                );
            }
            if !around.source_bounded {
                return refuse(
                    "mode",
                    "`mode: import` is for bounded runs (files), not a Kafka source: use `mode: upsert`",
                );
            }
        }
        if self.text_max_length.get() > 65_535 {
            return Err(Invalid::at(
                "text_max_length",
                "Milvus VARCHAR holds at most 65535 bytes",
            ));
        }
        if self.bm25 == Bm25Mode::Server
            && around.stage_fields.contains(&self.sparse_field.as_str())
        {
            return Err(Invalid::at(
                "bm25",
                format!(
                    "`server` makes Milvus compute `{}` from the text; remove the stage that writes it or use `bm25: client`",
                    self.sparse_field
                ),
            ));
        }
        Ok(())
    }

    fn destination_exists(&self) -> bool {
        !super::is_local_path(&self.uri) || std::path::Path::new(&self.uri).exists()
    }

    fn destination_key(&self) -> &'static str {
        "uri"
    }

    fn build(&self, dead_letters: &DeadLetters) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            MilvusSink::new(self, dead_letters.clone()).map_err(SinkError::Milvus)?,
        ))
    }
}

/// Whether `uri` carries `user[:password]@` before its host.
fn uri_has_credentials(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

impl crate::config::RelativePaths for MilvusSinkConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        if super::lite::is_local_path(&self.uri) {
            crate::config::rebase_text(base, &mut self.uri);
        }
        crate::config::rebase_optional(base, &mut self.milvus_lite);
        crate::config::rebase_optional(base, &mut self.tls.ca_file);
        crate::config::rebase_optional(base, &mut self.tls.client_cert_file);
        crate::config::rebase_optional(base, &mut self.tls.client_key_file);
        crate::config::rebase_optional(base, &mut self.import_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::uri_has_credentials;

    #[test]
    fn credentials_are_found_in_the_authority_only() {
        assert!(uri_has_credentials("https://root:Milvus@host:19530"));
        assert!(uri_has_credentials("http://user@host"));
        assert!(!uri_has_credentials("http://host:19530/db?x=a@b"));
        assert!(!uri_has_credentials("./milvus-data"));
    }
}
