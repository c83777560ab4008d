//! `dense`: embed each text — with a transformer on ONNX Runtime, or an
//! OpenAI-compatible embeddings service — and append a
//! `FixedSizeList<Float32>(dim)` column.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use super::{Stage, StageError, append_column, arrow_error, texts};
use crate::batch::{Position, dense};
use crate::config::{DenseProvider, DenseStageConfig};
use crate::model::http::{HttpClient, HttpOptions, openai_embeddings};
use crate::model::{EmbedderOptions, ModelError, TextEmbedder, resolve_model};

/// Text → vectors, wherever the model runs.
pub enum DenseEncoder {
    Local(Box<TextEmbedder>),
    Remote {
        client: HttpClient,
        model: String,
        batch_size: usize,
        dim: usize,
    },
}

impl DenseEncoder {
    pub fn from_config(cfg: &DenseStageConfig) -> Result<Self, ModelError> {
        match cfg.provider {
            DenseProvider::Local => {
                let files = resolve_model(&cfg.model)?;
                let threads = crate::model::threads_or_cores(cfg.threads);
                let embedder = TextEmbedder::load(
                    &files,
                    &EmbedderOptions {
                        batch_size: cfg.batch_size.get(),
                        max_length: cfg.max_length.get(),
                        threads,
                        pooling: cfg.pooling,
                        normalize: cfg.normalize,
                        onnxruntime: cfg.onnxruntime.clone(),
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

    pub fn dim(&self) -> usize {
        match self {
            DenseEncoder::Local(embedder) => embedder.dim(),
            DenseEncoder::Remote { dim, .. } => *dim,
        }
    }

    /// `texts.len() × dim` values, row-major, in input order.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<f32>, ModelError> {
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

pub struct DenseStage {
    encoder: DenseEncoder,
    field: String,
}

impl DenseStage {
    pub fn new(cfg: &DenseStageConfig) -> Result<Self, ModelError> {
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
