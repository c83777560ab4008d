//! Stages transform batches in order. Each stage module owns its config
//! struct and implements [`StageComponent`]; `crate::registry` lists them.

pub mod bm25;
pub(crate) mod chunk;
pub(crate) mod dense;
pub(crate) mod rerank;
pub(crate) mod splade;

use arrow::record_batch::RecordBatch;

use crate::batch::Position;
use crate::config::{Invalid, Surroundings};
use crate::dead_letter::{DeadLetterError, DeadLetters};

pub(crate) use dense::DenseEncoder;
pub(crate) use rerank::Reranker;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("cannot load tokenizer {}", path.display())]
    Tokenizer {
        path: std::path::PathBuf,
        #[source]
        source: tokenizers::Error,
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
    #[error("cannot read {} to fingerprint the pipeline (a file a stage loads)", path.display())]
    Fingerprint {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("batch at {position}: cannot look up what the sinks hold")]
    Lookup {
        position: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One step of the chain; runs on a blocking thread, one batch at a time.
pub(crate) trait Stage: Send {
    /// The `type:` of the stage, for logs and metrics.
    fn kind(&self) -> &'static str;
    /// Whether the progress line counts its output: false for the run's own
    /// bookkeeping stages (fingerprints, skipping unchanged documents).
    fn is_shown(&self) -> bool {
        true
    }
    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError>;
}

/// What stages share when they are built.
#[derive(Clone, Default)]
pub(crate) struct StageContext {
    pub dead_letters: DeadLetters,
    /// The model of the pipeline's first stage that names one with a
    /// tokenizer (`dense`), which `chunk` uses for `max_tokens` when it
    /// names none.
    pub tokenizer_model: Option<String>,
}

/// A stage's config: its `type:` name, its rules, what it adds and how it
/// is built. One per stage module; `crate::registry` lists them.
///
/// `validate`'s environment check for a stage is [`build`](Self::build)
/// (models, tokenizers and params files load; services answer) followed by
/// a run on an empty batch.
pub(crate) trait StageComponent {
    /// The `type:` that selects this stage.
    fn kind() -> &'static str
    where
        Self: Sized;
    /// Rules serde cannot express; paths are relative to the stage.
    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        Ok(())
    }
    /// The column the stage adds, if it adds one.
    fn output_field(&self) -> Option<&str> {
        None
    }
    /// A model whose tokenizer an earlier stage may borrow.
    fn tokenizer_model(&self) -> Option<&str> {
        None
    }
    /// True when it changes the rows or their text (what `bm25 fit` replays
    /// before counting terms); false when it only adds columns.
    fn reshapes_rows(&self) -> bool {
        false
    }
    /// What of this stage shapes the rows it outputs, for incremental runs'
    /// fingerprints: the settings that change rows or vectors (not batch
    /// sizes, threads or keys) and the files it loads (their contents count).
    fn shape(&self) -> Result<StageShape, StageError>;
    /// Loads whatever the stage needs.
    fn build(&self, ctx: &StageContext) -> Result<Box<dyn Stage>, StageError>;
}

/// See [`StageComponent::shape`]. The settings are a JSON object whose keys
/// each stage names explicitly (the config's own keys) and whose values are
/// the config's values as a pipeline file writes them: so a fingerprint does
/// not move with a field rename, a `Debug` format or a toolchain upgrade.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StageShape {
    pub settings: String,
    pub files: Vec<std::path::PathBuf>,
}

impl StageShape {
    /// Settings alone.
    pub(crate) fn settings(settings: serde_json::Value) -> Self {
        StageShape {
            settings: settings.to_string(),
            files: Vec::new(),
        }
    }

    /// Settings and the files of a model run locally (none for a service).
    pub(crate) fn with_model(
        settings: serde_json::Value,
        model: Option<&str>,
    ) -> Result<Self, StageError> {
        let Some(model) = model else {
            return Ok(Self::settings(settings));
        };
        // A local model is its files and the pooling its directory asks for,
        // not the path it was reached by.
        let files = crate::model::resolve_model(model)?;
        let mut settings = settings;
        if let Some(object) = settings.as_object_mut() {
            object.insert("model_pooling".into(), serde_json::json!(files.pooling));
        }
        let mut shape = Self::settings(settings);
        shape.files = vec![files.onnx, files.tokenizer];
        Ok(shape)
    }
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
