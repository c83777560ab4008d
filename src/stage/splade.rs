//! `splade`: learned sparse vectors from a SPLADE model on ONNX Runtime,
//! written to a sparse column (like `bm25`'s).

use arrow::record_batch::RecordBatch;

use super::{Stage, StageError, append_sparse, texts};
use crate::batch::Position;
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
        let rows = self.encoder.encode(&texts(&batch, position)?)?;
        append_sparse(&batch, &self.field, rows, position)
    }
}
