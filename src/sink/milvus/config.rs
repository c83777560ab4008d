//! The `milvus` sink's config: where, which collection, how its fields and
//! indexes are made.

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
    /// Retries of a write that fails in transport (backoff 0.5 s doubling to
    /// 30 s); default: until it succeeds or the process is stopped.
    #[serde(default)]
    pub max_retries: Option<usize>,
}

impl MilvusSinkConfig {
    /// The token, when one is set and not empty.
    pub fn token(&self) -> Option<&str> {
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

/// `index: { dense: {type, metric}, sparse: {type, metric} }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexConfig {
    #[serde(default = "default_dense_index")]
    pub dense: IndexSpec,
    #[serde(default = "default_sparse_index")]
    pub sparse: IndexSpec,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dense: default_dense_index(),
            sparse: default_sparse_index(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub metric: String,
}

fn default_dense_index() -> IndexSpec {
    IndexSpec {
        kind: "AUTOINDEX".into(),
        metric: "COSINE".into(),
    }
}
fn default_sparse_index() -> IndexSpec {
    IndexSpec {
        kind: "SPARSE_INVERTED_INDEX".into(),
        metric: "IP".into(),
    }
}

impl SinkComponent for MilvusSinkConfig {
    fn kind() -> &'static str {
        "milvus"
    }

    fn validate(&self, around: &Surroundings) -> Result<(), Invalid> {
        if self.collection.trim().is_empty() {
            return Err(Invalid::at("collection", "must not be empty"));
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

    fn destination_key(&self) -> &'static str {
        "uri"
    }

    fn build(&self, dead_letters: &DeadLetters) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            MilvusSink::new(self, dead_letters.clone()).map_err(SinkError::Milvus)?,
        ))
    }
}
