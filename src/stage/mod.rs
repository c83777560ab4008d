//! Stages transform batches in order: `chunk`, `bm25`.

pub mod bm25;
mod chunk;
mod dense;
mod rerank;
mod splade;

use arrow::record_batch::RecordBatch;

use crate::batch::Position;
use crate::config::StageConfig;
use crate::dead_letter::{DeadLetterError, DeadLetters};

pub use dense::{DenseEncoder, DenseStage};
pub use rerank::{RerankStage, Reranker};
pub use splade::SpladeStage;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot load tokenizer {path}: {message}")]
    Tokenizer {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("invalid chunk settings: {0}")]
    ChunkConfig(String),
    #[error(transparent)]
    Bm25(#[from] bm25::Bm25Error),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("batch at {position}: {source}")]
    Arrow {
        position: String,
        source: arrow::error::ArrowError,
    },
    #[error("batch at {position}: column `{column}` is missing or not {expected}")]
    Column {
        position: String,
        column: String,
        expected: &'static str,
    },
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

/// One step of the chain; runs on a blocking thread, one batch at a time.
pub trait Stage: Send {
    /// The `type:` of the stage, for logs and metrics.
    fn kind(&self) -> &'static str;
    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError>;
}

/// What stages share when they are built.
#[derive(Clone, Default)]
pub struct StageContext {
    pub dead_letters: DeadLetters,
    /// The model of the pipeline's `dense` stage, whose tokenizer `chunk`
    /// uses for `max_tokens` when it names none.
    pub dense_model: Option<String>,
}

impl StageContext {
    pub fn for_stages(stages: &[StageConfig], dead_letters: &DeadLetters) -> Self {
        StageContext {
            dead_letters: dead_letters.clone(),
            dense_model: stages.iter().find_map(|s| match s {
                StageConfig::Dense(d) => Some(d.model.clone()),
                _ => None,
            }),
        }
    }
}

/// Builds a stage from its config, loading whatever files it needs.
pub fn build_stage(cfg: &StageConfig, ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
    Ok(match cfg {
        StageConfig::Chunk(c) => chunk::build(c, ctx)?,
        StageConfig::Dense(c) => Box::new(DenseStage::new(c)?),
        StageConfig::Bm25(c) => Box::new(bm25::Bm25Stage::new(c)?),
        StageConfig::Splade(c) => Box::new(SpladeStage::new(c)?),
        StageConfig::Rerank(c) => Box::new(RerankStage::new(c)?),
    })
}

/// Maps Arrow errors of the batch at `position` to stage errors.
fn arrow_error(position: &Position) -> impl Fn(arrow::error::ArrowError) -> StageError + Copy + '_ {
    move |source| StageError::Arrow {
        position: position.to_string(),
        source,
    }
}

/// The batch's texts, in row order.
fn texts<'a>(batch: &'a RecordBatch, position: &Position) -> Result<Vec<&'a str>, StageError> {
    Ok(text_column(batch, position)?
        .iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// `batch` with one more (non-null) column named `name`.
fn append_column(
    batch: &RecordBatch,
    name: &str,
    column: arrow::array::ArrayRef,
    position: &Position,
) -> Result<RecordBatch, StageError> {
    let field = arrow::datatypes::Field::new(name, column.data_type().clone(), false);
    crate::batch::with_column(batch, field, column).map_err(arrow_error(position))
}

/// `batch` with a sparse column built from one (index, value) list per row.
fn append_sparse(
    batch: &RecordBatch,
    name: &str,
    rows: impl IntoIterator<Item = Vec<(u32, f32)>>,
    position: &Position,
) -> Result<RecordBatch, StageError> {
    let mut sparse = crate::batch::sparse::SparseColumnBuilder::default();
    for row in rows {
        sparse.append_row(&row);
    }
    append_column(batch, name, std::sync::Arc::new(sparse.finish()), position)
}

/// The `text` column of a batch as strings.
fn text_column<'a>(
    batch: &'a RecordBatch,
    position: &Position,
) -> Result<&'a arrow::array::StringArray, StageError> {
    use arrow::array::AsArray;
    batch
        .column_by_name(crate::batch::columns::TEXT)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| StageError::Column {
            position: position.to_string(),
            column: crate::batch::columns::TEXT.to_string(),
            expected: "a string column",
        })
}
