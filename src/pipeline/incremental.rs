//! Incremental runs. Every document gets a fingerprint: a hash of its text,
//! its other columns, and the shape of every stage (settings that change
//! rows or vectors, and the contents of the files stages load). Before the
//! first stage that is not `chunk`, documents whose rows the sinks already
//! hold — the same row ids, each with this fingerprint — are dropped: they
//! are neither embedded nor written again, and their records are
//! acknowledged as delivered.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::datatypes::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use xxhash_rust::xxh3::Xxh3;

use crate::batch::{Position, columns};
use crate::registry::PipelineConfig;
use crate::sink::DocumentStore;
use crate::stage::{Stage, StageError, StageShape};

/// A hash of every stage's shape: settings, and the contents of its files.
pub(super) fn pipeline_shape(cfg: &PipelineConfig) -> Result<u128, StageError> {
    let mut hash = Xxh3::new();
    for stage in cfg.stage_configs() {
        let StageShape { settings, files } = stage.component().shape()?;
        hash.update(stage.kind().as_bytes());
        hash.update(settings.as_bytes());
        for file in files {
            hash_file(&mut hash, &file)?;
        }
    }
    Ok(hash.digest128())
}

fn hash_file(hash: &mut Xxh3, path: &std::path::Path) -> Result<(), StageError> {
    let io = |source| StageError::Fingerprint {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        hash.update(&buffer[..n]);
    }
}

/// Adds the `fingerprint` column: the pipeline's shape, then each column's
/// name and value (the id, the text, the metadata), hashed per row.
pub(super) struct Fingerprinter {
    pub shape: u128,
    /// Every document id seen, when the run syncs.
    pub seen: Option<Arc<Mutex<HashSet<String>>>>,
}

impl Stage for Fingerprinter {
    fn kind(&self) -> &'static str {
        "fingerprint"
    }

    fn is_shown(&self) -> bool {
        false
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let arrow = |source| StageError::Arrow {
            position: position.to_string(),
            source,
        };
        let options = FormatOptions::default();
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(arrow)?;
        if let (Some(seen), Some(ids)) = (
            &self.seen,
            batch
                .column_by_name(columns::ID)
                .and_then(|c| c.as_string_opt::<i32>()),
        ) {
            let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.extend(ids.iter().flatten().map(str::to_string));
        }
        let schema = batch.schema();
        let fingerprints = (0..batch.num_rows())
            .map(|row| {
                let mut hash = Xxh3::new();
                hash.update(&FINGERPRINT_VERSION.to_le_bytes());
                hash.update(&self.shape.to_le_bytes());
                for ((field, column), formatter) in
                    schema.fields().iter().zip(batch.columns()).zip(&formatters)
                {
                    hash_bytes(&mut hash, field.name().as_bytes());
                    hash_cell(&mut hash, column.as_ref(), row, formatter)?;
                }
                Ok(Some(format!("{:032x}", hash.digest128())))
            })
            .collect::<Result<StringArray, _>>()
            .map_err(arrow)?;
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(columns::FINGERPRINT, DataType::Utf8, false));
        let mut arrays = batch.columns().to_vec();
        arrays.push(Arc::new(fingerprints));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(arrow)
    }
}

/// Bumped whenever what a fingerprint hashes changes in a way that could
/// leave an old fingerprint equal for a changed row: every stored
/// fingerprint then mismatches once, and the next run re-embeds everything.
/// Version 2: settings as explicit JSON, values by their bytes. (Lists of
/// numbers hashed by their bytes instead of their text changed only the
/// fingerprints of rows with list columns, which mismatch once by
/// themselves; the version stayed.)
const FINGERPRINT_VERSION: u32 = 2;

/// `bytes`, after their length (so no two sequences of values hash alike).
fn hash_bytes(hash: &mut Xxh3, bytes: &[u8]) {
    hash.update(&(bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

/// One value, by its bytes: strings and binaries as they are, numbers and
/// booleans in little-endian, null as a marker, lists (vectors passed
/// through as metadata) by their type and elements. Other types (structs,
/// timestamps: Parquet metadata) by Arrow's display text of the value, which
/// an arrow upgrade could change.
fn hash_cell(
    hash: &mut Xxh3,
    column: &dyn Array,
    row: usize,
    formatter: &ArrayFormatter,
) -> Result<(), ArrowError> {
    if column.is_null(row) {
        hash.update(&[0]);
        return Ok(());
    }
    hash.update(&[1]);
    macro_rules! number {
        ($type:ty) => {
            hash_bytes(
                hash,
                &column.as_primitive::<$type>().value(row).to_le_bytes(),
            )
        };
    }
    match column.data_type() {
        DataType::Utf8 => hash_bytes(hash, column.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => hash_bytes(hash, column.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => hash_bytes(hash, column.as_string_view().value(row).as_bytes()),
        DataType::Binary => hash_bytes(hash, column.as_binary::<i32>().value(row)),
        DataType::LargeBinary => hash_bytes(hash, column.as_binary::<i64>().value(row)),
        DataType::Boolean => hash_bytes(hash, &[u8::from(column.as_boolean().value(row))]),
        DataType::Int8 => number!(Int8Type),
        DataType::Int16 => number!(Int16Type),
        DataType::Int32 => number!(Int32Type),
        DataType::Int64 => number!(Int64Type),
        DataType::UInt8 => number!(UInt8Type),
        DataType::UInt16 => number!(UInt16Type),
        DataType::UInt32 => number!(UInt32Type),
        DataType::UInt64 => number!(UInt64Type),
        DataType::Float32 => number!(Float32Type),
        DataType::Float64 => number!(Float64Type),
        DataType::List(_) => hash_list(
            hash,
            column.data_type(),
            &column.as_list::<i32>().value(row),
        )?,
        DataType::LargeList(_) => hash_list(
            hash,
            column.data_type(),
            &column.as_list::<i64>().value(row),
        )?,
        DataType::FixedSizeList(..) => hash_list(
            hash,
            column.data_type(),
            &column.as_fixed_size_list().value(row),
        )?,
        other => {
            hash_bytes(hash, other.to_string().as_bytes());
            hash_bytes(hash, formatter.value(row).to_string().as_bytes());
        }
    }
    Ok(())
}

/// A list value: its type, its length, then its elements — numbers without
/// nulls as their bytes in one piece (a 384-d vector is one update, not 384
/// formatted floats), anything else element by element.
fn hash_list(hash: &mut Xxh3, list_type: &DataType, values: &dyn Array) -> Result<(), ArrowError> {
    hash_bytes(hash, list_type.to_string().as_bytes());
    hash.update(&(values.len() as u64).to_le_bytes());
    let element = values.data_type();
    if let (true, Some(width)) = (values.null_count() == 0, element.primitive_width()) {
        let data = values.to_data();
        let start = data.offset() * width;
        let bytes = &data.buffers()[0].as_slice()[start..start + data.len() * width];
        if cfg!(target_endian = "little") {
            hash.update(bytes);
        } else {
            // Little-endian everywhere, as single numbers are hashed.
            let swapped: Vec<u8> = bytes
                .chunks_exact(width)
                .flat_map(|value| value.iter().rev().copied())
                .collect();
            hash.update(&swapped);
        }
        return Ok(());
    }
    let formatter = ArrayFormatter::try_new(values, &FormatOptions::default())?;
    for row in 0..values.len() {
        hash_cell(hash, values, row, &formatter)?;
    }
    Ok(())
}

/// Drops the rows of documents every sink already holds as they are.
pub(super) struct SkipUnchanged {
    pub stores: Vec<Box<dyn DocumentStore>>,
    /// Documents skipped so far, for the summary.
    pub unchanged: Arc<AtomicU64>,
}

impl Stage for SkipUnchanged {
    fn kind(&self) -> &'static str {
        "skip-unchanged"
    }

    fn is_shown(&self) -> bool {
        false
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
        };
        let chunked = batch.column_by_name(columns::DOC_ID).is_some();
        let key = if chunked {
            columns::DOC_ID
        } else {
            columns::ID
        };
        let (Some(documents), Some(ids), Some(fingerprints)) = (
            column(key),
            column(columns::ID),
            column(columns::FINGERPRINT),
        ) else {
            return Ok(batch);
        };
        // Each document's rows in this batch: ids and fingerprints (two
        // versions of one document in a batch have two, and are not skipped).
        let mut rows: HashMap<&str, (HashSet<&str>, HashSet<&str>)> = HashMap::new();
        for row in 0..batch.num_rows() {
            let entry = rows.entry(documents.value(row)).or_default();
            entry.0.insert(ids.value(row));
            entry.1.insert(fingerprints.value(row));
        }
        let names: Vec<&str> = rows.keys().copied().collect();
        let mut unchanged: HashSet<&str> = rows
            .iter()
            .filter(|(_, (_, fingerprints))| fingerprints.len() == 1)
            .map(|(doc, _)| *doc)
            .collect();
        for store in &self.stores {
            let stored = store
                .stored(&names, chunked)
                .map_err(|e| StageError::Lookup {
                    position: position.to_string(),
                    source: Box::new(e),
                })?;
            let Some(stored) = stored else {
                return Ok(batch);
            };
            unchanged.retain(|doc| {
                let (ids, fingerprints) = &rows[doc];
                stored.get(*doc).is_some_and(|held| {
                    held.len() == ids.len()
                        && held.iter().all(|(id, fingerprint)| {
                            fingerprints.contains(fingerprint.as_str()) && ids.contains(id.as_str())
                        })
                })
            });
        }
        if unchanged.is_empty() {
            return Ok(batch);
        }
        self.unchanged
            .fetch_add(unchanged.len() as u64, Ordering::Relaxed);
        crate::metrics::documents_unchanged(unchanged.len());
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|row| Some(!unchanged.contains(documents.value(row))))
            .collect();
        filter_record_batch(&batch, &keep).map_err(|source| StageError::Arrow {
            position: position.to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{SinkError, StoredRows};

    /// What a destination holds, in memory.
    struct Held(HashMap<String, StoredRows>);

    impl DocumentStore for Held {
        fn stored(
            &self,
            documents: &[&str],
            _chunked: bool,
        ) -> Result<Option<HashMap<String, StoredRows>>, SinkError> {
            Ok(Some(
                documents
                    .iter()
                    .filter_map(|d| Some((d.to_string(), self.0.get(*d)?.clone())))
                    .collect(),
            ))
        }

        fn documents(&self) -> Result<HashSet<String>, SinkError> {
            Ok(self.0.keys().cloned().collect())
        }

        fn present(&self, documents: &[&str]) -> Result<HashSet<String>, SinkError> {
            Ok(documents
                .iter()
                .filter(|d| self.0.contains_key(**d))
                .map(|d| d.to_string())
                .collect())
        }

        fn delete(&self, _documents: &[String]) -> Result<(), SinkError> {
            unreachable!("skipping deletes nothing")
        }
    }

    fn batch(rows: &[(&str, &str, &str)]) -> RecordBatch {
        let column = |i: usize| -> Arc<dyn arrow::array::Array> {
            Arc::new(StringArray::from(
                rows.iter().map(|r| [r.0, r.1, r.2][i]).collect::<Vec<_>>(),
            ))
        };
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new(columns::ID, DataType::Utf8, false),
                Field::new(columns::DOC_ID, DataType::Utf8, false),
                Field::new(columns::FINGERPRINT, DataType::Utf8, false),
            ])),
            vec![column(0), column(1), column(2)],
        )
        .unwrap()
    }

    #[test]
    fn only_documents_held_with_the_same_rows_and_fingerprint_are_dropped() {
        let held = |rows: &[(&str, &str)]| -> StoredRows {
            rows.iter()
                .map(|(id, f)| (id.to_string(), f.to_string()))
                .collect()
        };
        let store = Held(HashMap::from([
            (
                "same".to_string(),
                held(&[("same#0", "f1"), ("same#1", "f1")]),
            ),
            ("edited".to_string(), held(&[("edited#0", "old")])),
            (
                "fewer".to_string(),
                held(&[("fewer#0", "f3"), ("fewer#1", "f3")]),
            ),
            ("twice".to_string(), held(&[("twice#0", "f4")])),
        ]));
        let unchanged = Arc::new(AtomicU64::new(0));
        let mut stage = SkipUnchanged {
            stores: vec![Box::new(store)],
            unchanged: unchanged.clone(),
        };
        let input = batch(&[
            ("same#0", "same", "f1"),
            ("same#1", "same", "f1"),
            ("edited#0", "edited", "new"),
            ("fewer#0", "fewer", "f3"),
            ("new#0", "new", "f5"),
            // The held version, then an edit, of one document in one batch.
            ("twice#0", "twice", "f4"),
            ("twice#0", "twice", "f6"),
        ]);
        let position = Position::Jsonl {
            file: Arc::new("c.jsonl".into()),
            line: 1,
        };
        let output = stage.process(input, &position).unwrap();
        let ids: Vec<&str> = output
            .column_by_name(columns::ID)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(ids, ["edited#0", "fewer#0", "new#0", "twice#0", "twice#0"]);
        assert_eq!(unchanged.load(Ordering::Relaxed), 1);
    }

    /// A pipeline's fingerprints are pinned: a refactor, a toolchain or an
    /// arrow upgrade that moved them would re-embed every user's corpus.
    #[test]
    fn the_fingerprint_of_a_known_document_and_pipeline_is_pinned() {
        let cfg = crate::registry::load_pipeline_str(
            "pinned.yaml",
            "name: pinned\nsource: { type: jsonl, path: docs.jsonl, id_field: id, metadata: [title] }\nstages:\n  - { type: chunk, max_chars: 200, overlap: 20 }\nsinks:\n  - { type: jsonl, path: out.jsonl }\n",
            &|_| None,
        )
        .unwrap();
        let shape = pipeline_shape(&cfg).unwrap();
        assert_eq!(format!("{shape:032x}"), "007bc1422e6f5c7f6134ffffd0c13fd9");
        let input = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new(columns::ID, DataType::Utf8, false),
                Field::new(columns::TEXT, DataType::Utf8, false),
                Field::new("title", DataType::Utf8, true),
                Field::new("year", DataType::Int64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["turing", "lovelace"])),
                Arc::new(StringArray::from(vec![
                    "Alan Turing was born in Maida Vale.",
                    "Ada Lovelace wrote the first program.",
                ])),
                Arc::new(StringArray::from(vec![Some("Turing"), None])),
                Arc::new(arrow::array::Int64Array::from(vec![Some(1912), Some(1815)])),
            ],
        )
        .unwrap();
        let position = Position::Jsonl {
            file: Arc::new("docs.jsonl".into()),
            line: 1,
        };
        let out = Fingerprinter { shape, seen: None }
            .process(input, &position)
            .unwrap();
        let fingerprints: Vec<&str> = out
            .column_by_name(columns::FINGERPRINT)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(
            fingerprints,
            [
                "ac093f243421ac6d886d2dac6226c300",
                "2c4a30e276c32d10ba38ad636768a8d3"
            ]
        );
    }

    /// Vectors passed through as metadata are hashed by their values: equal
    /// vectors alike, one changed element or a null element apart, a slice
    /// like the whole, and a known vector's fingerprint pinned.
    #[test]
    fn vectors_are_fingerprinted_by_their_values() {
        use arrow::array::{FixedSizeListArray, Float32Array};
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        let vectors = |values: Vec<Option<f32>>| -> RecordBatch {
            let rows = values.len() / 3;
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new(columns::ID, DataType::Utf8, false),
                    Field::new("dense", DataType::FixedSizeList(item.clone(), 3), false),
                ])),
                vec![
                    Arc::new(StringArray::from_iter_values((0..rows).map(|_| "doc"))),
                    Arc::new(FixedSizeListArray::new(
                        item.clone(),
                        3,
                        Arc::new(Float32Array::from(values)),
                        None,
                    )),
                ],
            )
            .unwrap()
        };
        let fingerprints = |batch: RecordBatch| -> Vec<String> {
            let position = Position::Jsonl {
                file: Arc::new("docs.jsonl".into()),
                line: 1,
            };
            let out = Fingerprinter {
                shape: 7,
                seen: None,
            }
            .process(batch, &position)
            .unwrap();
            out.column_by_name(columns::FINGERPRINT)
                .unwrap()
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect()
        };
        let some = |v: &[f32]| v.iter().copied().map(Some).collect::<Vec<_>>();
        let hashed = fingerprints(vectors(some(&[
            0.5, -1.0, 2.0, 0.5, -1.0, 2.0, 0.5, -1.0, 2.5,
        ])));
        assert_eq!(hashed[0], hashed[1], "equal vectors hash alike");
        assert_ne!(hashed[0], hashed[2], "one element apart");
        assert_eq!(hashed[0], "a4009088c0374681b78b3e86f3b43681");
        let sliced = vectors(some(&[9.0, 9.0, 9.0, 0.5, -1.0, 2.0])).slice(1, 1);
        assert_eq!(
            fingerprints(sliced),
            [hashed[0].clone()],
            "a slice hashes its own rows"
        );
        let with_null = fingerprints(vectors(vec![Some(0.5), None, Some(2.0)]));
        assert_ne!(with_null[0], hashed[0]);
        assert_ne!(
            with_null[0],
            fingerprints(vectors(vec![Some(0.5), Some(0.0), Some(2.0)]))[0],
            "a null element is not a zero"
        );
    }
}
