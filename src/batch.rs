//! What flows between nodes: an Arrow [`RecordBatch`] with its [`Ack`], the
//! column names every batch uses, and the source [`Position`] of records.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

/// Column names shared by sources, stages and sinks.
pub(crate) mod columns {
    /// The record id: the document id, or `{doc_id}#{chunk_index}` after chunking.
    pub(crate) const ID: &str = "id";
    pub(crate) const TEXT: &str = "text";
    /// Added by the chunk stage.
    pub(crate) const DOC_ID: &str = "doc_id";
    pub(crate) const CHUNK_INDEX: &str = "chunk_index";
    /// Added for incremental runs: a hash of the document and of what shapes its rows.
    pub(crate) const FINGERPRINT: &str = "fingerprint";
}

/// A Kafka (topic, partition).
pub(crate) type TopicPartition = (Arc<str>, i32);
/// A partition and the first and last offsets a batch read from it.
pub(crate) type OffsetRange = (TopicPartition, i64, i64);

/// Where records came from, precise enough to find them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// `row` is the first row of the batch within the row group.
    Parquet {
        file: Arc<PathBuf>,
        row_group: usize,
        row: usize,
    },
    /// `line` is 1-based.
    Jsonl { file: Arc<PathBuf>, line: usize },
    /// Batch `batch` of a consumer: (topic, partition), first and last offset.
    Kafka {
        batch: u64,
        ranges: Arc<Vec<OffsetRange>>,
    },
}

impl Position {
    /// The position of the `offset`-th record of a batch that starts here.
    pub(crate) fn record(&self, offset: usize) -> RecordPosition<'_> {
        RecordPosition {
            batch: self,
            offset,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.record(0).fmt(f)
    }
}

/// One record inside a batch; displays as `file:line N` or `file row group G row R`.
pub(crate) struct RecordPosition<'a> {
    batch: &'a Position,
    offset: usize,
}

impl fmt::Display for RecordPosition<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.batch {
            Position::Parquet {
                file,
                row_group,
                row,
            } => {
                write!(
                    f,
                    "{} row_group {} row {}",
                    file.display(),
                    row_group,
                    row + self.offset
                )
            }
            Position::Jsonl { file, line } => {
                write!(f, "{}:{}", file.display(), line + self.offset)
            }
            Position::Kafka { ranges, .. } => {
                let parts: Vec<String> = ranges
                    .iter()
                    .map(|((topic, partition), first, last)| {
                        format!("{topic}/{partition}@{first}..={last}")
                    })
                    .collect();
                write!(f, "{}", parts.join(","))
            }
        }
    }
}

/// The outcome of one batch once every holder of its [`Ack`] is done.
#[derive(Debug)]
pub(crate) struct AckOutcome {
    pub position: Position,
    /// Source records the batch covers (dead-lettered ones included).
    pub records: usize,
    /// True only when every handle of the batch's ack was confirmed.
    pub delivered: bool,
}

/// Acknowledgement of one batch: positive, and owned by the runner.
///
/// Every handle must be [`confirm`](Ack::confirm)ed once the data it stands
/// for is durable; a handle dropped without confirmation — a stage error, a
/// sink error, a closed channel, a panic, a shutdown — marks the batch as not
/// delivered. When the last handle is gone the outcome goes to the run's ack
/// channel, so a batch is delivered only if every holder confirmed it.
#[derive(Debug)]
pub(crate) struct Ack {
    shared: Arc<AckShared>,
    confirmed: bool,
}

#[derive(Debug)]
struct AckShared {
    position: Position,
    /// The source batch's `id` column and each row's offset from
    /// `position` (its line or row), for naming one record when it is
    /// dead-lettered downstream; looked up only then.
    row_offsets: Option<(arrow::array::ArrayRef, Vec<usize>)>,
    records: usize,
    failed: AtomicBool,
    outcomes: mpsc::UnboundedSender<AckOutcome>,
}

impl Ack {
    pub(crate) fn new(
        position: Position,
        records: usize,
        outcomes: mpsc::UnboundedSender<AckOutcome>,
    ) -> Self {
        Ack {
            shared: Arc::new(AckShared {
                position,
                row_offsets: None,
                records,
                failed: AtomicBool::new(false),
                outcomes,
            }),
            confirmed: false,
        }
    }

    /// Names each row's record: `offsets[i]` is row `i`'s offset from the
    /// batch's position (a JSONL line, a Parquet row). Only on a fresh ack,
    /// before it is shared; keeps the `id` column (reference-counted), so a
    /// batch pays nothing until a record is named.
    pub(crate) fn with_row_offsets(mut self, batch: &RecordBatch, offsets: Vec<usize>) -> Self {
        if let (Some(shared), Some(ids)) = (
            Arc::get_mut(&mut self.shared),
            batch.column_by_name(columns::ID),
        ) {
            shared.row_offsets = Some((ids.clone(), offsets));
        }
        self
    }

    pub(crate) fn position(&self) -> &Position {
        &self.shared.position
    }

    /// Where `document`'s record is: its own line or row when the source
    /// said, else the batch's first.
    /// (The last record of a repeated id: the version that was written.)
    pub(crate) fn position_of(&self, document: &str) -> RecordPosition<'_> {
        let offset = self
            .shared
            .row_offsets
            .as_ref()
            .and_then(|(ids, offsets)| {
                let ids = ids.as_string_opt::<i32>()?;
                let row = (0..ids.len().min(offsets.len()))
                    .rev()
                    .find(|&row| ids.value(row) == document)?;
                Some(offsets[row])
            })
            .unwrap_or(0);
        self.shared.position.record(offset)
    }

    /// Source records this batch covers, dead-lettered ones included.
    pub(crate) fn records(&self) -> usize {
        self.shared.records
    }

    /// One more handle, for one more holder (a fan-out reader, a part of the
    /// batch written elsewhere); it too must be confirmed.
    pub(crate) fn share(&self) -> Ack {
        Ack {
            shared: self.shared.clone(),
            confirmed: false,
        }
    }

    /// This holder's part of the batch is durable.
    pub(crate) fn confirm(mut self) {
        self.confirmed = true;
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.confirmed {
            self.shared.failed.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for AckShared {
    fn drop(&mut self) {
        // The receiver is gone only when the run is over; nothing to report then.
        let _ = self.outcomes.send(AckOutcome {
            position: self.position.clone(),
            records: self.records,
            delivered: !self.failed.load(Ordering::SeqCst),
        });
    }
}

/// A batch and its acknowledgement.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub batch: RecordBatch,
    pub ack: Ack,
    /// Documents to delete after the batch's rows are written (Kafka
    /// tombstones); stages pass them through untouched.
    pub deletes: Vec<String>,
}

impl Envelope {
    pub(crate) fn new(batch: RecordBatch, ack: Ack) -> Self {
        Envelope {
            batch,
            ack,
            deletes: Vec::new(),
        }
    }

    /// The same batch for one more reader, with its own ack handle.
    pub(crate) fn share(&self) -> Envelope {
        Envelope {
            batch: self.batch.clone(),
            ack: self.ack.share(),
            deletes: self.deletes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> Position {
        Position::Jsonl {
            file: Arc::new(PathBuf::from("a.jsonl")),
            line: 3,
        }
    }

    #[test]
    fn outcome_is_reported_only_after_every_handle_is_confirmed() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ack = Ack::new(position(), 5, tx);
        let second = ack.share();
        ack.confirm();
        assert!(rx.try_recv().is_err(), "one holder still has it");
        second.confirm();
        let outcome = rx.try_recv().unwrap();
        assert!(outcome.delivered);
        assert_eq!(outcome.records, 5);
    }

    #[test]
    fn a_handle_dropped_without_confirmation_fails_the_batch() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ack = Ack::new(position(), 1, tx);
        let sink_a = ack.share();
        ack.confirm();
        drop(sink_a);
        let outcome = rx.try_recv().unwrap();
        assert!(!outcome.delivered);
        assert_eq!(outcome.records, 1);
    }

    #[test]
    fn an_ack_nobody_confirms_is_not_delivered() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        drop(Ack::new(position(), 3, tx));
        assert!(!rx.try_recv().unwrap().delivered);
    }

    #[test]
    fn record_positions_point_at_the_line() {
        assert_eq!(position().record(2).to_string(), "a.jsonl:5");
    }
}

/// `batch` with one more column at the end.
pub(crate) fn with_column(
    batch: &RecordBatch,
    field: arrow::datatypes::Field,
    column: arrow::array::ArrayRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let schema = batch.schema();
    let mut fields: Vec<arrow::datatypes::Field> =
        schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(field);
    let mut columns = batch.columns().to_vec();
    columns.push(column);
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// Sparse vectors as `List<Struct<index: UInt32, value: Float32>>`, one list per row.
pub(crate) mod sparse {
    use std::sync::Arc;

    use arrow::array::{
        ArrayBuilder, Float32Builder, ListArray, ListBuilder, StructBuilder, UInt32Builder,
    };
    use arrow::datatypes::{DataType, Field, Fields};

    /// The default name of a sparse column (`bm25`, `splade`, Milvus' BM25 function).
    pub(crate) fn default_field() -> String {
        "sparse".to_string()
    }

    fn entry_fields() -> Fields {
        Fields::from(vec![
            Field::new("index", DataType::UInt32, false),
            Field::new("value", DataType::Float32, false),
        ])
    }

    /// The Arrow type of a sparse column.
    pub(crate) fn data_type() -> DataType {
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(entry_fields()),
            false,
        )))
    }

    /// Builds a sparse column row by row.
    pub(crate) struct SparseColumnBuilder(ListBuilder<StructBuilder>);

    impl Default for SparseColumnBuilder {
        fn default() -> Self {
            let entries = StructBuilder::new(
                entry_fields(),
                vec![
                    Box::new(UInt32Builder::new()) as Box<dyn ArrayBuilder>,
                    Box::new(Float32Builder::new()),
                ],
            );
            let item = Field::new("item", DataType::Struct(entry_fields()), false);
            SparseColumnBuilder(ListBuilder::new(entries).with_field(item))
        }
    }

    impl SparseColumnBuilder {
        /// Appends one row; `entries` should be sorted by index.
        pub(crate) fn append_row(&mut self, entries: &[(u32, f32)]) {
            let values = self.0.values();
            for &(index, value) in entries {
                values
                    .field_builder::<UInt32Builder>(0)
                    .expect("index builder")
                    .append_value(index);
                values
                    .field_builder::<Float32Builder>(1)
                    .expect("value builder")
                    .append_value(value);
                values.append(true);
            }
            self.0.append(true);
        }

        pub(crate) fn finish(mut self) -> ListArray {
            self.0.finish()
        }
    }
}

/// Dense vectors as `FixedSizeList<Float32>(dim)`.
pub(crate) mod dense {
    use std::sync::Arc;

    use arrow::array::{FixedSizeListArray, Float32Array};
    use arrow::datatypes::{DataType, Field};
    use arrow::error::ArrowError;

    fn item() -> Arc<Field> {
        Arc::new(Field::new("item", DataType::Float32, false))
    }

    /// A column from `rows × dim` values, row-major.
    pub(crate) fn column(values: Vec<f32>, dim: usize) -> Result<FixedSizeListArray, ArrowError> {
        FixedSizeListArray::try_new(
            item(),
            dim as i32,
            Arc::new(Float32Array::from(values)),
            None,
        )
    }
}
