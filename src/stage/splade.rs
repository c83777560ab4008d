//! `splade`: learned sparse vectors from a SPLADE model on ONNX Runtime,
//! written to a sparse column (like `bm25`'s).

use std::sync::Arc;

use arrow::datatypes::Field;
use arrow::record_batch::RecordBatch;

use super::{Stage, StageError, text_column};
use crate::batch::sparse::{SparseColumnBuilder, data_type};
use crate::batch::{Position, with_column};
use crate::config::SpladeStageConfig;
use crate::model::{ModelError, SessionOptions, SpladeEncoder, resolve_model};

pub struct SpladeStage {
    encoder: SpladeEncoder,
    field: String,
}

impl SpladeStage {
    pub fn new(cfg: &SpladeStageConfig) -> Result<Self, ModelError> {
        let files = resolve_model(&cfg.model)?;
        let options = SessionOptions {
            batch_size: cfg.batch_size.get(),
            max_length: cfg.max_length.get(),
            threads: crate::model::threads_or_cores(cfg.threads),
            onnxruntime: cfg.onnxruntime.clone(),
        };
        Ok(SpladeStage {
            encoder: SpladeEncoder::load(&files, &options, cfg.top_k.map(|k| k.get()))?,
            field: cfg.field.clone(),
        })
    }
}

impl Stage for SpladeStage {
    fn kind(&self) -> &'static str {
        "splade"
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let texts = text_column(&batch, position)?;
        let texts: Vec<&str> = texts.iter().map(|t| t.unwrap_or_default()).collect();
        let mut sparse = SparseColumnBuilder::default();
        for row in self.encoder.encode(&texts)? {
            sparse.append_row(&row);
        }
        let field = Field::new(&self.field, data_type(), false);
        with_column(&batch, field, Arc::new(sparse.finish())).map_err(|source| StageError::Arrow {
            position: position.to_string(),
            source,
        })
    }
}
