//! `dense`: embed each text — with a transformer on ONNX Runtime, or an
//! OpenAI-compatible embeddings service — and append a
//! `FixedSizeList<Float32>(dim)` column.

use std::sync::Arc;

use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{
    Stage, StageComponent, StageContext, StageError, StageShape, append_column, arrow_error, texts,
};
use crate::batch::{Position, dense};
use crate::config::{Invalid, PositiveInt, Surroundings};
use crate::model::Pooling;
use crate::model::http::{HttpClient, HttpOptions, openai_embeddings};
use crate::model::{EmbedderOptions, ModelError, SessionOptions, TextEmbedder, resolve_model};

/// `{ type: dense, model: all-MiniLM-L6-v2, batch_size: 64, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenseStageConfig {
    /// A short name, a Hugging Face repo id, or a directory with `model.onnx` + `tokenizer.json`.
    #[serde(default = "default_dense_model")]
    pub model: String,
    /// Texts per inference call.
    #[serde(default = "default_dense_batch")]
    pub batch_size: PositiveInt,
    /// Padded tokens per inference call, at most (rows × the longest).
    #[serde(default = "crate::model::default_batch_tokens")]
    pub batch_tokens: PositiveInt,
    /// Tokens kept per text; longer texts are truncated.
    #[serde(default = "crate::model::default_max_length")]
    pub max_length: PositiveInt,
    /// ONNX Runtime intra-op threads; default: the machine's cores.
    #[serde(default)]
    pub threads: Option<PositiveInt>,
    /// `mean` or `cls`; default: the model's sentence-transformers config, else `mean`.
    #[serde(default)]
    pub pooling: Option<Pooling>,
    #[serde(default = "crate::config::yes")]
    pub normalize: bool,
    #[serde(default = "default_dense_field")]
    pub field: String,
    /// libonnxruntime.so, when neither ORT_DYLIB_PATH nor the setup location has it.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// `local` (ONNX Runtime) or `openai` (an OpenAI-compatible `/embeddings` service).
    #[serde(default)]
    pub provider: DenseProvider,
    /// Remote provider: the service's base URL (e.g. `https://api.openai.com/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Remote provider: the API key; keep it in the environment (`${OPENAI_API_KEY}`).
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "crate::model::http::default_timeout_secs")]
    pub timeout_secs: PositiveInt,
    /// Remote provider: retries on 429, 5xx and transport errors.
    #[serde(default = "crate::model::http::default_retries")]
    pub max_retries: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DenseProvider {
    #[default]
    Local,
    Openai,
}

pub(crate) const DEFAULT_DENSE_MODEL: &str = "all-MiniLM-L6-v2";

fn default_dense_model() -> String {
    DEFAULT_DENSE_MODEL.to_string()
}
fn default_dense_batch() -> PositiveInt {
    PositiveInt(64)
}
fn default_dense_field() -> String {
    "dense".to_string()
}

impl StageComponent for DenseStageConfig {
    fn kind() -> &'static str {
        "dense"
    }

    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        if self.provider == DenseProvider::Openai && self.base_url.is_none() {
            return Err(Invalid::at("", "`provider: openai` needs `base_url`"));
        }
        Ok(())
    }

    fn output_field(&self) -> Option<&str> {
        Some(&self.field)
    }

    fn tokenizer_model(&self) -> Option<&str> {
        (self.provider == DenseProvider::Local).then_some(self.model.as_str())
    }

    fn shape(&self) -> Result<StageShape, StageError> {
        let local = self.provider == DenseProvider::Local;
        let settings = serde_json::json!({
            "model": if local { crate::model::model_name(&self.model) } else { Some(self.model.as_str()) },
            "max_length": self.max_length,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "field": self.field,
            "provider": self.provider,
            "base_url": self.base_url,
        });
        StageShape::with_model(settings, local.then_some(self.model.as_str()))
    }

    fn build(&self, _ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
        Ok(Box::new(DenseStage::new(self)?))
    }
}

/// Text → vectors, wherever the model runs.
pub(crate) enum DenseEncoder {
    Local(Box<TextEmbedder>),
    Remote {
        client: HttpClient,
        model: String,
        batch_size: usize,
        dim: usize,
    },
}

impl DenseEncoder {
    pub(crate) fn from_config(cfg: &DenseStageConfig) -> Result<Self, ModelError> {
        match cfg.provider {
            DenseProvider::Local => {
                let files = resolve_model(&cfg.model)?;
                let threads = crate::model::threads_or_cores(cfg.threads);
                let embedder = TextEmbedder::load(
                    &files,
                    &EmbedderOptions {
                        session: SessionOptions {
                            batch_size: cfg.batch_size.get(),
                            batch_tokens: cfg.batch_tokens.get(),
                            max_length: cfg.max_length.get(),
                            threads,
                            onnxruntime: cfg.onnxruntime.clone(),
                        },
                        pooling: cfg.pooling,
                        normalize: cfg.normalize,
                    },
                )?;
                tracing::info!(model = %cfg.model, onnx = %files.onnx.display(), dim = embedder.dim(), "dense model loaded");
                Ok(DenseEncoder::Local(Box::new(embedder)))
            }
            DenseProvider::Openai => {
                let client = HttpClient::new(HttpOptions::new(
                    &cfg.base_url,
                    &cfg.api_key,
                    cfg.timeout_secs,
                    cfg.max_retries,
                ));
                // The dimension comes from the service itself.
                let probe = openai_embeddings(&client, &cfg.model, &["dimension probe"])?;
                let dim = probe.first().map_or(0, Vec::len);
                Ok(DenseEncoder::Remote {
                    client,
                    model: cfg.model.clone(),
                    batch_size: cfg.batch_size.get(),
                    dim,
                })
            }
        }
    }

    pub(crate) fn dim(&self) -> usize {
        match self {
            DenseEncoder::Local(embedder) => embedder.dim(),
            DenseEncoder::Remote { dim, .. } => *dim,
        }
    }

    /// `texts.len() × dim` values, row-major, in input order.
    pub(crate) fn embed(&mut self, texts: &[&str]) -> Result<Vec<f32>, ModelError> {
        match self {
            DenseEncoder::Local(embedder) => embedder.embed(texts),
            DenseEncoder::Remote {
                client,
                model,
                batch_size,
                dim,
            } => {
                let mut values = Vec::with_capacity(texts.len() * *dim);
                for group in texts.chunks(*batch_size) {
                    for vector in openai_embeddings(client, model, group)? {
                        if vector.len() != *dim {
                            return Err(ModelError::Remote {
                                url: model.clone(),
                                message: format!(
                                    "a vector of {} values, expected {dim}",
                                    vector.len()
                                ),
                            });
                        }
                        values.extend(vector);
                    }
                }
                Ok(values)
            }
        }
    }
}

pub(crate) struct DenseStage {
    encoder: DenseEncoder,
    field: String,
}

impl DenseStage {
    pub(crate) fn new(cfg: &DenseStageConfig) -> Result<Self, ModelError> {
        Ok(DenseStage {
            encoder: DenseEncoder::from_config(cfg)?,
            field: cfg.field.clone(),
        })
    }
}

impl Stage for DenseStage {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let values = self.encoder.embed(&texts(&batch, position)?)?;
        let column = dense::column(values, self.encoder.dim()).map_err(arrow_error(position))?;
        append_column(&batch, &self.field, Arc::new(column), position)
    }
}

impl crate::config::RelativePaths for DenseStageConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        if self.provider == DenseProvider::Local {
            crate::config::rebase_model(base, &mut self.model);
        }
        crate::config::rebase_optional(base, &mut self.onnxruntime);
    }
}
