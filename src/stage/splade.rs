//! `splade`: learned sparse vectors from a SPLADE model on ONNX Runtime,
//! written to a sparse column (like `bm25`'s).

use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{Stage, StageComponent, StageContext, StageError, StageShape, append_sparse, texts};
use crate::batch::Position;
use crate::config::PositiveInt;
use crate::model::{ModelError, SessionOptions, SpladeEncoder, resolve_model};

/// `{ type: splade, model: splade-tiny, top_k: 200, field: sparse }`: learned sparse vectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpladeStageConfig {
    /// A directory with a SPLADE `model.onnx` (see scripts/convert_bert_onnx.py --head splade)
    /// and `tokenizer.json`, or a name under the models directory.
    #[serde(default = "default_splade_model")]
    pub model: String,
    #[serde(default = "default_splade_batch")]
    pub batch_size: PositiveInt,
    /// Padded tokens per inference call, at most (rows × the longest).
    #[serde(default = "crate::model::default_batch_tokens")]
    pub batch_tokens: PositiveInt,
    #[serde(default = "crate::model::default_max_length")]
    pub max_length: PositiveInt,
    #[serde(default)]
    pub threads: Option<PositiveInt>,
    /// Keep only the k heaviest terms of each text.
    #[serde(default)]
    pub top_k: Option<PositiveInt>,
    #[serde(default = "crate::batch::sparse::default_field")]
    pub field: String,
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
}

fn default_splade_model() -> String {
    "splade-tiny".to_string()
}
fn default_splade_batch() -> PositiveInt {
    PositiveInt(32)
}

impl SpladeStageConfig {
    /// The stage's model, for batches of `batch_size` texts (the stage's, or
    /// 1 for a search query) on `threads` threads.
    pub(crate) fn encoder(
        &self,
        batch_size: usize,
        threads: usize,
    ) -> Result<SpladeEncoder, ModelError> {
        let options = SessionOptions {
            batch_size,
            batch_tokens: self.batch_tokens.get(),
            max_length: self.max_length.get(),
            threads,
            onnxruntime: self.onnxruntime.clone(),
        };
        SpladeEncoder::load(
            &resolve_model(&self.model)?,
            &options,
            self.top_k.map(|k| k.get()),
        )
    }
}

impl StageComponent for SpladeStageConfig {
    fn kind() -> &'static str {
        "splade"
    }

    fn output_field(&self) -> Option<&str> {
        Some(&self.field)
    }

    fn shape(&self) -> Result<StageShape, StageError> {
        let settings = serde_json::json!({
            "model": crate::model::model_name(&self.model),
            "max_length": self.max_length,
            "top_k": self.top_k,
            "field": self.field,
        });
        StageShape::with_model(settings, Some(&self.model))
    }

    fn build(&self, _ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
        Ok(Box::new(SpladeStage::new(self)?))
    }
}

pub(crate) struct SpladeStage {
    encoder: SpladeEncoder,
    field: String,
}

impl SpladeStage {
    pub(crate) fn new(cfg: &SpladeStageConfig) -> Result<Self, ModelError> {
        let threads = crate::model::threads_or_cores(cfg.threads);
        Ok(SpladeStage {
            encoder: cfg.encoder(cfg.batch_size.get(), threads)?,
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

impl crate::config::RelativePaths for SpladeStageConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::rebase_model(base, &mut self.model);
        crate::config::rebase_optional(base, &mut self.onnxruntime);
    }
}
