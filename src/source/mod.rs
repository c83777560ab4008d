//! Sources: read records, turn them into batches of `id`, `text` and
//! metadata columns, and send bad records to the dead letter. Each source
//! module owns its config struct and implements [`SourceComponent`];
//! `crate::registry` lists them.

pub(crate) mod backfill;
pub(crate) mod debezium;
pub(crate) mod files;
pub(crate) mod jsonl;
pub(crate) mod kafka;
pub(crate) mod parquet;
pub(crate) mod protobuf;
pub(crate) mod records;
pub(crate) mod registry;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tokio::sync::mpsc;

use crate::batch::{AckOutcome, Envelope, columns};
use crate::config::{Invalid, Surroundings};
use crate::dead_letter::{DeadLetterError, DeadLetters};

pub(crate) use files::resolve_files;
use records::RecordFields;

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
    #[error("Kafka source: nothing from this batch was committed")]
    RegistryUnreachable(#[source] registry::RegistryError),
    /// Credentials or a certificate the registry refuses: final.
    #[error(transparent)]
    RegistryRefused(registry::RegistryError),
    #[error("Kafka at {brokers}")]
    Kafka {
        brokers: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("Kafka at {brokers}")]
    KafkaRefused {
        brokers: String,
        #[source]
        source: crate::kafka_client::Refused,
    },
    #[error(
        "none of the first {records} records can be read: {reason}; check `text_field`, `id_field` and `metadata` against the records"
    )]
    SampleRefused { records: u64, reason: String },
    #[error("Kafka at {brokers}: no such topic: {topics}")]
    MissingTopics { brokers: String, topics: String },
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

/// A bounded source read on a blocking thread, one batch at a time.
pub(crate) trait RecordSource: Send {
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
pub(crate) trait AckHandler: Send + Sync {
    fn on_outcome(&self, outcome: &AckOutcome);
    /// `last`: the run is ending; make it durable now.
    fn flush(&self, last: bool);
}

/// What every source needs from the runner.
#[derive(Clone)]
pub(crate) struct SourceContext {
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
    pub(crate) fn detached(dead_letters: DeadLetters) -> Self {
        let (acks, _) = mpsc::unbounded_channel();
        SourceContext {
            acks,
            dead_letters,
            stop: crate::stop::StopSignal::default(),
            backfill: backfill::Backfill::default(),
        }
    }
}

/// A source's config: its `type:` name, its rules, and how it is opened
/// and checked. One per source module; `crate::registry` lists them.
pub(crate) trait SourceComponent {
    /// The `type:` that selects this source.
    fn kind() -> &'static str
    where
        Self: Sized;
    /// The id field, the text field and the metadata fields of its records.
    fn fields(&self) -> RecordFields;
    /// Rules serde cannot express; paths are relative to `source`.
    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        Ok(())
    }
    /// False for sources that never end by themselves (Kafka).
    fn is_bounded(&self) -> bool {
        true
    }
    /// True when it reads by units a backfill can shard, record and resume
    /// (Parquet row groups).
    fn supports_backfill(&self) -> bool {
        false
    }
    /// Opens it; schemas are checked here, before any record is read.
    fn open(&self, ctx: SourceContext) -> Result<Box<dyn RecordSource>, SourceError>;
    /// The key naming where records come from (`path`, `brokers`), blamed
    /// when they cannot be read.
    fn origin_key(&self) -> &'static str;
    /// `validate`'s look: the schema of the batches it would produce, or
    /// what stops it. Changes nothing.
    fn check(&self, dead_letters: &DeadLetters) -> Result<SchemaRef, SourceError>;
}

/// Opens a source for a run or a fit, refusing a backfill plan it cannot follow.
pub(crate) fn open_source(
    cfg: &dyn SourceComponent,
    ctx: SourceContext,
) -> Result<Box<dyn RecordSource>, SourceError> {
    if !cfg.supports_backfill() && !ctx.backfill.is_default() {
        return Err(SourceError::Usage(
            "--shard, --state and --resume work on parquet sources (by row group)".into(),
        ));
    }
    cfg.open(ctx)
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
