//! `dense`: embed each text with a transformer on ONNX Runtime and append a
//! `FixedSizeList<Float32>(dim)` column.

use std::sync::Arc;

use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;

use super::{Stage, StageError, text_column};
use crate::batch::{Position, dense, with_column};
use crate::config::DenseStageConfig;
use crate::model::{EmbedderOptions, ModelError, TextEmbedder, resolve_model};

pub struct DenseStage {
    embedder: TextEmbedder,
    field: String,
}

impl DenseStage {
    pub fn new(cfg: &DenseStageConfig) -> Result<Self, ModelError> {
        let files = resolve_model(&cfg.model)?;
        let threads = cfg
            .threads
            .map(|t| t.get())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
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
        Ok(DenseStage {
            embedder,
            field: cfg.field.clone(),
        })
    }

    pub fn dim(&self) -> usize {
        self.embedder.dim()
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
        let texts = text_column(&batch, position)?;
        let texts: Vec<&str> = texts.iter().map(|t| t.unwrap_or_default()).collect();
        let values = self.embedder.embed(&texts)?;
        let arrow_err = |source| StageError::Arrow {
            position: position.to_string(),
            source,
        };
        let dim = self.embedder.dim();
        let column = dense::column(values, dim).map_err(arrow_err)?;
        let field = Field::new(&self.field, dense::data_type(dim), false);
        with_column(&batch, field, Arc::new(column)).map_err(arrow_err)
    }
}
