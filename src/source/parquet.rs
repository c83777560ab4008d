//! Parquet files, streamed row group by row group with only the needed
//! columns projected.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, StringBuilder};
use arrow::compute::{cast, filter};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use serde::Deserialize;

use super::backfill::{
    Backfill, FinishedRowGroup, RowGroupProgress, RowGroupTracker, finished_row_groups,
};
use super::files::FileSourceConfig;
use super::records::RecordFields;
use super::{
    AckHandler, RecordSource, SourceComponent, SourceContext, SourceError, output_schema,
    resolve_files, text_id, text_problem,
};
use crate::batch::{Ack, Envelope, Position};
use crate::config::{Invalid, Surroundings};
use crate::dead_letter::DeadLetters;

/// `{ type: parquet, path, id_field, text_field, metadata, ... }`: read one
/// row group at a time; backfills shard, record and resume by row group.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct ParquetSourceConfig(pub FileSourceConfig);

impl SourceComponent for ParquetSourceConfig {
    fn kind() -> &'static str {
        "parquet"
    }

    fn fields(&self) -> RecordFields {
        self.0.fields()
    }

    fn supports_backfill(&self) -> bool {
        true
    }

    /// Parquet columns are read by name: a dotted path would name no column.
    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        let cfg = &self.0;
        let named = [
            ("id_field", cfg.id_field.as_ref()),
            ("text_field", Some(&cfg.text_field)),
        ]
        .into_iter()
        .filter_map(|(key, name)| name.map(|n| (key.to_string(), n)))
        .chain(
            cfg.metadata
                .iter()
                .enumerate()
                .map(|(i, name)| (format!("metadata[{i}]"), name)),
        );
        for (key, name) in named {
            if name.contains('.') {
                return Err(Invalid::at(
                    &key,
                    format!(
                        "`{name}`: nested field paths are for JSON records (jsonl, kafka); a Parquet source names top-level columns"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn open(&self, ctx: SourceContext) -> Result<Box<dyn RecordSource>, SourceError> {
        Ok(Box::new(ParquetSource::open(&self.0, ctx)?))
    }

    fn origin_key(&self) -> &'static str {
        "path"
    }

    fn check(&self, dead_letters: &DeadLetters) -> Result<SchemaRef, SourceError> {
        self.0.check(ParquetSource::open, dead_letters)
    }
}

pub(crate) struct ParquetSource {
    files: Vec<ParquetFile>,
    /// (file, row group) to read, in order, after sharding and resuming.
    units: Vec<(usize, usize)>,
    next_unit: usize,
    current: Option<RowGroupReader>,
    tracker: Option<Arc<Mutex<RowGroupTracker>>>,
    cfg: FileSourceConfig,
    schema: SchemaRef,
    ctx: SourceContext,
    total_rows: u64,
}

/// A file whose footer has been read and whose columns were checked.
struct ParquetFile {
    path: Arc<PathBuf>,
    metadata: ArrowReaderMetadata,
    projection: ProjectionMask,
}

struct RowGroupReader {
    file: usize,
    row_group: usize,
    /// Row of the next batch within the row group.
    row: usize,
    reader: ParquetRecordBatchReader,
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}
fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

impl ParquetSource {
    pub(crate) fn open(cfg: &FileSourceConfig, ctx: SourceContext) -> Result<Self, SourceError> {
        let mut files: Vec<ParquetFile> = Vec::new();
        let mut metadata_fields: Option<Vec<Field>> = None;
        for path in resolve_files(&cfg.path, "parquet")? {
            let (file, fields) = open_file(path, cfg)?;
            // Metadata columns must agree across files, since they share one output schema.
            match (&metadata_fields, files.first()) {
                (Some(first_fields), Some(first)) => {
                    same_metadata_types(first_fields, &first.path, &fields, &file.path)?;
                }
                _ => metadata_fields = Some(fields),
            }
            files.push(file);
        }
        let (units, total_rows) = plan_row_groups(&files, &ctx.backfill)?;
        let tracker = match &ctx.backfill.state_file {
            Some(path) => Some(Arc::new(Mutex::new(RowGroupTracker::open(
                path,
                ctx.backfill.resume,
            )?))),
            None => None,
        };
        Ok(ParquetSource {
            files,
            units,
            next_unit: 0,
            current: None,
            tracker,
            schema: output_schema(metadata_fields.unwrap_or_default()),
            cfg: cfg.clone(),
            ctx,
            total_rows,
        })
    }

    /// Opens the next row group of the plan; false when all are read.
    fn advance(&mut self) -> Result<bool, SourceError> {
        if let (Some(done), Some(tracker)) = (&self.current, &self.tracker) {
            let path = &self.files[done.file].path;
            tracker
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .row_group_read(path, done.row_group);
        }
        let Some(&(file, row_group)) = self.units.get(self.next_unit) else {
            self.current = None;
            return Ok(false);
        };
        self.next_unit += 1;
        let pf = &self.files[file];
        let handle = File::open(pf.path.as_ref()).map_err(|source| SourceError::Io {
            path: pf.path.to_path_buf(),
            source,
        })?;
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(handle, pf.metadata.clone())
                .with_projection(pf.projection.clone())
                .with_row_groups(vec![row_group])
                .with_batch_size(self.cfg.batch_rows.get())
                .build()
                .map_err(|source| SourceError::Parquet {
                    path: pf.path.to_path_buf(),
                    source,
                })?;
        self.current = Some(RowGroupReader {
            file,
            row_group,
            row: 0,
            reader,
        });
        Ok(true)
    }

    /// Turns a raw batch into `id`, `text`, metadata; bad rows go to the
    /// dead letter. Also returns each kept row's offset in `raw`.
    fn convert(
        &self,
        raw: &RecordBatch,
        position: &Position,
        path: &Path,
    ) -> Result<(RecordBatch, Vec<usize>), SourceError> {
        let arrow_err = |source| SourceError::Arrow {
            path: path.to_path_buf(),
            source,
        };
        let texts = raw.column_by_name(&self.cfg.text_field).expect("projected");
        let texts: ArrayRef = if is_binary(texts.data_type()) {
            cast(texts, &DataType::Binary).map_err(arrow_err)?
        } else {
            cast(texts, &DataType::Utf8).map_err(arrow_err)?
        };
        let ids = match &self.cfg.id_field {
            Some(name) => Some(
                cast(
                    raw.column_by_name(name).expect("projected"),
                    &DataType::Utf8,
                )
                .map_err(arrow_err)?,
            ),
            None => None,
        };
        let max_bytes = self.cfg.max_text_bytes.get();
        let mut keep = BooleanBuilder::with_capacity(raw.num_rows());
        let mut kept_rows = Vec::with_capacity(raw.num_rows());
        let mut out_ids = StringBuilder::new();
        let mut out_texts = StringBuilder::new();
        for row in 0..raw.num_rows() {
            let bytes: Option<&[u8]> = if texts.is_null(row) {
                None
            } else if let Some(bin) = texts.as_binary_opt::<i32>() {
                Some(bin.value(row))
            } else {
                Some(texts.as_string::<i32>().value(row).as_bytes())
            };
            let id = ids
                .as_ref()
                .map(|ids| (!ids.is_null(row)).then(|| ids.as_string::<i32>().value(row)));
            let verdict = match bytes {
                None => Err(format!("missing text field `{}`", self.cfg.text_field)),
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Err(e) => Err(format!("invalid UTF-8: {e}")),
                    Ok(text) => match (text_problem(text, max_bytes), id) {
                        (Some(problem), _) => Err(problem),
                        (None, Some(None) | Some(Some(""))) => Err(format!(
                            "missing id field `{}`",
                            self.cfg.id_field.as_deref().unwrap_or_default()
                        )),
                        (None, Some(Some(id))) => Ok((id.to_string(), text)),
                        (None, None) => Ok((text_id(text), text)),
                    },
                },
            };
            match verdict {
                Ok((id, text)) => {
                    out_ids.append_value(id);
                    out_texts.append_value(text);
                    keep.append_value(true);
                    kept_rows.push(row);
                }
                Err(reason) => {
                    let raw_bytes = bytes.unwrap_or_default();
                    self.ctx
                        .dead_letters
                        .send(position.record(row), &reason, raw_bytes)?;
                    keep.append_value(false);
                }
            }
        }
        let keep = keep.finish();
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(out_ids.finish()), Arc::new(out_texts.finish())];
        for name in &self.cfg.metadata {
            let column = raw.column_by_name(name).expect("projected");
            columns.push(filter(column, &keep).map_err(arrow_err)?);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow_err)?;
        Ok((batch, kept_rows))
    }
}

/// Reads a file's footer and checks its text, id and metadata columns;
/// returns the file with its projection, and the metadata fields.
fn open_file(
    path: PathBuf,
    cfg: &FileSourceConfig,
) -> Result<(ParquetFile, Vec<Field>), SourceError> {
    let file = File::open(&path).map_err(|source| SourceError::Io {
        path: path.clone(),
        source,
    })?;
    let metadata = ArrowReaderMetadata::load(&file, Default::default()).map_err(|source| {
        SourceError::Parquet {
            path: path.clone(),
            source,
        }
    })?;
    let schema = metadata.schema().clone();
    let column = |name: &str, accept: &dyn Fn(&DataType) -> bool, expected: &str| {
        let problem = |problem: String| SourceError::Column {
            path: path.clone(),
            column: name.to_string(),
            problem,
        };
        let (index, field) = schema
            .column_with_name(name)
            .ok_or_else(|| problem("does not exist".to_string()))?;
        if !accept(field.data_type()) {
            return Err(problem(format!(
                "is {}, expected {expected}",
                field.data_type()
            )));
        }
        Ok((index, field.clone()))
    };
    let text = |t: &DataType| is_string(t) || is_binary(t);
    let mut roots = vec![column(&cfg.text_field, &text, "a string column")?.0];
    if let Some(id_field) = &cfg.id_field {
        let accept = |t: &DataType| is_string(t) || t.is_integer();
        roots.push(column(id_field, &accept, "a string or integer column")?.0);
    }
    let mut fields = Vec::new();
    for name in &cfg.metadata {
        let (index, field) = column(name, &|_| true, "any type")?;
        roots.push(index);
        fields.push(Field::new(name, field.data_type().clone(), true));
    }
    let projection = ProjectionMask::roots(metadata.parquet_schema(), roots);
    let file = ParquetFile {
        path: Arc::new(path),
        metadata,
        projection,
    };
    Ok((file, fields))
}

/// An error naming both files when a metadata column's type differs.
fn same_metadata_types(
    first: &[Field],
    first_path: &Path,
    fields: &[Field],
    path: &Path,
) -> Result<(), SourceError> {
    for (a, b) in first.iter().zip(fields) {
        if a.data_type() != b.data_type() {
            return Err(SourceError::Column {
                path: path.to_path_buf(),
                column: a.name().clone(),
                problem: format!(
                    "is {} here but {} in {}",
                    b.data_type(),
                    a.data_type(),
                    first_path.display()
                ),
            });
        }
    }
    Ok(())
}

/// The row groups this run reads, as (file index, row group), and their rows:
/// this shard's, less those a resumed run finished before.
fn plan_row_groups(
    files: &[ParquetFile],
    backfill: &Backfill,
) -> Result<(Vec<(usize, usize)>, u64), SourceError> {
    let finished = match (&backfill.state_file, backfill.resume) {
        (Some(path), true) => finished_row_groups(path)?,
        _ => Default::default(),
    };
    let mut units = Vec::new();
    let mut total_rows = 0u64;
    let mut ordinal = 0usize;
    for (index, file) in files.iter().enumerate() {
        for row_group in 0..file.metadata.metadata().num_row_groups() {
            let mine = backfill.shard.is_none_or(|s| ordinal % s.count == s.index);
            ordinal += 1;
            let done = finished.contains(&FinishedRowGroup {
                file: file.path.to_path_buf(),
                row_group,
            });
            if mine && !done {
                units.push((index, row_group));
                total_rows += file
                    .metadata
                    .metadata()
                    .row_group(row_group)
                    .num_rows()
                    .max(0) as u64;
            }
        }
    }
    if !finished.is_empty() {
        tracing::info!(
            skipped = finished.len(),
            "resuming: skipping row groups finished earlier"
        );
    }
    Ok((units, total_rows))
}

impl RecordSource for ParquetSource {
    fn next_batch(&mut self) -> Result<Option<Envelope>, SourceError> {
        loop {
            if self.current.is_none() && !self.advance()? {
                return Ok(None);
            }
            let current = self.current.as_mut().expect("advanced above");
            let path = self.files[current.file].path.clone();
            let Some(raw) = current.reader.next() else {
                if !self.advance()? {
                    return Ok(None);
                }
                continue;
            };
            let raw = raw.map_err(|source| SourceError::Arrow {
                path: path.to_path_buf(),
                source,
            })?;
            let position = Position::Parquet {
                file: path.clone(),
                row_group: current.row_group,
                row: current.row,
            };
            current.row += raw.num_rows();
            if let Some(tracker) = &self.tracker {
                tracker
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .batch_read(&path, current.row_group);
            }
            let (batch, rows) = self.convert(&raw, &position, &path)?;
            let ack = Ack::new(position, raw.num_rows(), self.ctx.acks.clone())
                .with_row_offsets(&batch, rows);
            return Ok(Some(Envelope::new(batch, ack)));
        }
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn total_records(&self) -> Option<u64> {
        Some(self.total_rows)
    }

    fn ack_handler(&self) -> Option<Arc<dyn AckHandler>> {
        let tracker = self.tracker.clone()?;
        Some(Arc::new(RowGroupProgress(tracker)))
    }
}

impl crate::config::RelativePaths for ParquetSourceConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::RelativePaths::rebase(&mut self.0, base);
    }
}
