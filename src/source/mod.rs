//! Sources: read records, turn them into batches of `id`, `text` and
//! metadata columns, and send bad records to the dead letter.

pub mod backfill;
mod files;
mod jsonl;
mod kafka;
mod parquet;
pub mod records;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tokio::sync::mpsc;

use crate::batch::{AckOutcome, Envelope, columns};
use crate::config::SourceConfig;
use crate::dead_letter::{DeadLetterError, DeadLetters};

pub use files::resolve_files;
pub use jsonl::JsonlSource;
pub use kafka::{KafkaSource, check_kafka};
pub use parquet::ParquetSource;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source path `{pattern}` matches no {extension} files")]
    NoFiles {
        pattern: String,
        extension: &'static str,
    },
    #[error("source path `{pattern}` is not a valid glob: {source}")]
    BadGlob {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: ::parquet::errors::ParquetError,
    },
    #[error("{}: column `{column}` {problem}", path.display())]
    Column {
        path: PathBuf,
        column: String,
        problem: String,
    },
    #[error("{}: {source}", path.display())]
    Arrow {
        path: PathBuf,
        source: arrow::error::ArrowError,
    },
    #[error("{0}")]
    Usage(String),
    #[error("Kafka at {brokers}")]
    Kafka {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("Kafka at {brokers}: no such topic: {topics}")]
    MissingTopics { brokers: String, topics: String },
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

/// A bounded source read on a blocking thread, one batch at a time.
pub trait RecordSource: Send {
    /// The next batch, or `None` when the source is exhausted.
    fn next_batch(&mut self) -> Result<Option<Envelope>, SourceError>;
    /// Records the whole source holds, when known up front (for progress).
    fn total_records(&self) -> Option<u64>;
    /// The schema of every batch it produces.
    fn schema(&self) -> SchemaRef;
    /// What to do with acknowledgements (e.g. commit Kafka offsets).
    fn ack_handler(&self) -> Option<Arc<dyn AckHandler>> {
        None
    }
}

/// Receives every batch's outcome; `flush` runs periodically and at the end.
pub trait AckHandler: Send + Sync {
    fn on_outcome(&self, outcome: &AckOutcome);
    /// `last`: the run is ending; make it durable now.
    fn flush(&self, last: bool);
}

/// What every source needs from the runner.
#[derive(Clone)]
pub struct SourceContext {
    pub acks: mpsc::UnboundedSender<AckOutcome>,
    pub dead_letters: DeadLetters,
    /// Unbounded sources return `None` once it is raised.
    pub stop: crate::stop::StopSignal,
    /// Sharding and resuming of bounded (Parquet) runs.
    pub backfill: backfill::Backfill,
}

impl SourceContext {
    /// For reading a source outside a run (`bm25 fit`, `validate`): outcomes
    /// go nowhere, nothing stops it, no backfill plan.
    pub fn detached(dead_letters: DeadLetters) -> Self {
        let (acks, _) = mpsc::unbounded_channel();
        SourceContext {
            acks,
            dead_letters,
            stop: crate::stop::StopSignal::default(),
            backfill: backfill::Backfill::default(),
        }
    }
}

/// Opens the configured source; schemas are checked here, before any record is read.
pub fn open_source(
    cfg: &SourceConfig,
    ctx: SourceContext,
) -> Result<Box<dyn RecordSource>, SourceError> {
    Ok(match cfg {
        SourceConfig::Jsonl(_) | SourceConfig::Kafka(_) if !ctx.backfill.is_default() => {
            return Err(SourceError::Usage(
                "--shard, --state and --resume work on parquet sources (by row group)".into(),
            ));
        }
        SourceConfig::Jsonl(c) => Box::new(JsonlSource::open(c, ctx)?),
        SourceConfig::Parquet(c) => Box::new(ParquetSource::open(c, ctx)?),
        SourceConfig::Kafka(c) => Box::new(KafkaSource::open(c, ctx)?),
    })
}

/// The id of a record without an id field: a stable hash of its text.
pub fn text_id(text: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// Why a text cannot be processed, if it cannot.
fn text_problem(text: &str, max_bytes: usize) -> Option<String> {
    if text.trim().is_empty() {
        Some("empty text".to_string())
    } else if text.len() > max_bytes {
        Some(format!(
            "text is {} bytes, over max_text_bytes ({max_bytes})",
            text.len()
        ))
    } else {
        None
    }
}

/// `id`, `text`, then the metadata fields.
fn output_schema(metadata: impl IntoIterator<Item = Field>) -> SchemaRef {
    let mut fields = vec![
        Field::new(columns::ID, DataType::Utf8, false),
        Field::new(columns::TEXT, DataType::Utf8, false),
    ];
    fields.extend(metadata);
    Arc::new(Schema::new(fields))
}
