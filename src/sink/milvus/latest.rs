//! A batch may hold two versions of one document (a Kafka key sent twice,
//! a JSONL file with a repeated id): Milvus keeps both rows of one id sent
//! in one upsert (2.3) or the first one, so only each document's last
//! version is written.

use std::collections::HashMap;

use arrow::array::{AsArray, UInt32Array};
use arrow::datatypes::UInt32Type;
use arrow::record_batch::RecordBatch;

use crate::batch::columns;

/// The rows of each document's last version, in order; `None` when every
/// document appears once (the batch is written as it is).
pub(super) fn last_versions(
    batch: &RecordBatch,
) -> Result<Option<RecordBatch>, arrow::error::ArrowError> {
    let keep = match chunked_columns(batch) {
        Some((doc_ids, indexes)) => {
            // A version's chunks are consecutive and start at chunk 0: the
            // last chunk 0 of a document starts its last version.
            let mut starts: HashMap<&str, usize> = HashMap::new();
            for row in 0..batch.num_rows() {
                if indexes.value(row) == 0 {
                    starts.insert(doc_ids.value(row), row);
                }
            }
            (0..batch.num_rows())
                .filter(|&row| {
                    starts
                        .get(doc_ids.value(row))
                        .is_none_or(|&start| row >= start)
                })
                .collect::<Vec<_>>()
        }
        None => {
            let Some(ids) = batch
                .column_by_name(columns::ID)
                .and_then(|c| c.as_string_opt::<i32>())
            else {
                return Ok(None);
            };
            let mut last: HashMap<&str, usize> = HashMap::new();
            for row in 0..batch.num_rows() {
                last.insert(ids.value(row), row);
            }
            (0..batch.num_rows())
                .filter(|&row| last[ids.value(row)] == row)
                .collect()
        }
    };
    if keep.len() == batch.num_rows() {
        return Ok(None);
    }
    let indices = UInt32Array::from_iter_values(keep.into_iter().map(|row| row as u32));
    let columns = batch
        .columns()
        .iter()
        .map(|column| arrow::compute::take(column, &indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(batch.schema(), columns).map(Some)
}

fn chunked_columns(
    batch: &RecordBatch,
) -> Option<(
    &arrow::array::StringArray,
    &arrow::array::PrimitiveArray<UInt32Type>,
)> {
    let doc_ids = batch
        .column_by_name(columns::DOC_ID)?
        .as_string_opt::<i32>()?;
    let indexes = batch
        .column_by_name(columns::CHUNK_INDEX)?
        .as_primitive_opt::<UInt32Type>()?;
    Some((doc_ids, indexes))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, StringArray, UInt32Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn ids(batch: &RecordBatch) -> Vec<String> {
        let ids = batch
            .column_by_name(columns::ID)
            .unwrap()
            .as_string::<i32>();
        (0..ids.len()).map(|i| ids.value(i).to_string()).collect()
    }

    fn chunked(rows: &[(&str, u32, &str)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new(columns::ID, DataType::Utf8, false),
            Field::new(columns::DOC_ID, DataType::Utf8, false),
            Field::new(columns::CHUNK_INDEX, DataType::UInt32, false),
            Field::new(columns::TEXT, DataType::Utf8, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|(d, i, _)| format!("{d}#{i}")),
                )),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_documents_later_version_replaces_every_chunk_of_the_earlier_one() {
        let batch = chunked(&[
            ("dup", 0, "v1 a"),
            ("dup", 1, "v1 b"),
            ("other", 0, "o"),
            ("dup", 0, "v2"),
        ]);
        let latest = last_versions(&batch).unwrap().unwrap();
        assert_eq!(ids(&latest), ["other#0", "dup#0"]);
        let text = latest
            .column_by_name(columns::TEXT)
            .unwrap()
            .as_string::<i32>();
        assert_eq!(text.value(1), "v2");
    }

    #[test]
    fn a_batch_without_repeats_is_left_as_it_is() {
        let batch = chunked(&[("a", 0, "x"), ("a", 1, "y"), ("b", 0, "z")]);
        assert!(last_versions(&batch).unwrap().is_none());
    }

    #[test]
    fn unchunked_rows_keep_the_last_row_of_each_id() {
        let schema = Schema::new(vec![
            Field::new(columns::ID, DataType::Utf8, false),
            Field::new(columns::TEXT, DataType::Utf8, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["k1", "k2", "k1"])),
                Arc::new(StringArray::from(vec!["v1", "x", "v2"])),
            ],
        )
        .unwrap();
        let latest = last_versions(&batch).unwrap().unwrap();
        assert_eq!(ids(&latest), ["k2", "k1"]);
    }
}
