//! Arrow batches → the JSON rows the Milvus SDK upserts, converted column by
//! column (one cast per column, not per value).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type, UInt32Type};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use super::schema::{CollectionPlan, FieldKind};

/// The dimension that stands for "no weight" on servers that reject an empty
/// sparse vector (Milvus Lite): one below the maximum, which the sparse
/// protocol reserves. No query has it (vocabularies are far smaller), so the
/// row is never a sparse hit and stays reachable through its other vectors.
pub const EMPTY_SPARSE_DIMENSION: u32 = u32::MAX - 1;
/// The marker's weight: the smallest positive normal float32.
const EMPTY_SPARSE_WEIGHT: f32 = f32::MIN_POSITIVE;

/// How a sparse vector with no weight is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptySparse {
    /// `{}`: what Milvus 2.4 and later accept.
    AsEmpty,
    /// One marker weight at [`EMPTY_SPARSE_DIMENSION`].
    AsMarker,
}

/// `row` with every empty sparse vector of `plan` replaced by the marker;
/// `None` when it has none.
pub fn with_empty_sparse_marked(plan: &CollectionPlan, row: &Value) -> Option<Value> {
    let mut row = row.clone();
    let mut changed = false;
    for field in plan
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::SparseVector)
    {
        if let Some(value) = row.get_mut(&field.name)
            && value.as_object().is_some_and(Map::is_empty)
        {
            *value = marker();
            changed = true;
        }
    }
    changed.then_some(row)
}

fn marker() -> Value {
    json!({ EMPTY_SPARSE_DIMENSION.to_string(): EMPTY_SPARSE_WEIGHT })
}

/// Every row of `batch` as a Milvus entity (fields Milvus computes are left out).
pub fn entities(
    plan: &CollectionPlan,
    batch: &RecordBatch,
    empty_sparse: EmptySparse,
) -> Vec<Map<String, Value>> {
    let mut rows: Vec<Map<String, Value>> = (0..batch.num_rows())
        .map(|_| Map::with_capacity(plan.fields.len()))
        .collect();
    for field in &plan.fields {
        let Some(column) = field.column else { continue };
        let values = column_values(&field.kind, batch.column(column), empty_sparse);
        for (row, value) in rows.iter_mut().zip(values) {
            row.insert(field.name.clone(), value);
        }
    }
    rows
}

fn column_values(kind: &FieldKind, array: &ArrayRef, empty_sparse: EmptySparse) -> Vec<Value> {
    let rows = 0..array.len();
    let value_or_null = |row: usize, value: &dyn Fn(usize) -> Value| {
        if array.is_null(row) {
            Value::Null
        } else {
            value(row)
        }
    };
    match kind {
        FieldKind::FloatVector(_) => {
            let list = array.as_fixed_size_list();
            rows.map(|r| {
                value_or_null(r, &|r| {
                    Value::from(
                        list.value(r)
                            .as_primitive::<Float32Type>()
                            .values()
                            .to_vec(),
                    )
                })
            })
            .collect()
        }
        FieldKind::SparseVector => {
            let list = array.as_list::<i32>();
            rows.map(|r| {
                value_or_null(r, &|r| {
                    let entries = list.value(r);
                    let entries = entries.as_struct();
                    let index = entries.column(0).as_primitive::<UInt32Type>();
                    let value = entries.column(1).as_primitive::<Float32Type>();
                    if entries.is_empty() && empty_sparse == EmptySparse::AsMarker {
                        return marker();
                    }
                    Value::Object(
                        (0..entries.len())
                            .map(|i| (index.value(i).to_string(), json!(value.value(i))))
                            .collect(),
                    )
                })
            })
            .collect()
        }
        _ => scalars(array, rows),
    }
}

/// Strings, booleans, integers and floats as themselves; anything else as text.
fn scalars(array: &ArrayRef, rows: std::ops::Range<usize>) -> Vec<Value> {
    let target = match array.data_type() {
        DataType::Boolean => DataType::Boolean,
        t if t.is_integer() => DataType::Int64,
        t if t.is_floating() => DataType::Float64,
        _ => DataType::Utf8,
    };
    let Ok(cast) = arrow::compute::cast(array, &target) else {
        return rows.map(|_| Value::Null).collect();
    };
    rows.map(|r| {
        if cast.is_null(r) {
            return Value::Null;
        }
        match &target {
            DataType::Boolean => Value::from(cast.as_boolean().value(r)),
            DataType::Int64 => Value::from(cast.as_primitive::<Int64Type>().value(r)),
            DataType::Float64 => json!(cast.as_primitive::<Float64Type>().value(r)),
            _ => Value::from(cast.as_string::<i32>().value(r)),
        }
    })
    .collect()
}
