//! Arrow rows → the JSON rows the Milvus SDK upserts.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float32Type, UInt32Type};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use super::schema::{CollectionPlan, FieldKind};

/// Row `row` of `batch` as a Milvus entity (fields Milvus computes are left out).
pub fn entity(plan: &CollectionPlan, batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut entity = Map::with_capacity(plan.fields.len());
    for field in &plan.fields {
        let Some(column) = field.column else { continue };
        let array = batch.column(column);
        let value = if array.is_null(row) {
            Value::Null
        } else {
            match &field.kind {
                FieldKind::FloatVector(_) => {
                    let list = array.as_fixed_size_list();
                    let values = list.value(row);
                    Value::from(values.as_primitive::<Float32Type>().values().to_vec())
                }
                FieldKind::SparseVector => {
                    let entries = array.as_list::<i32>().value(row);
                    let entries = entries.as_struct();
                    let index = entries.column(0).as_primitive::<UInt32Type>();
                    let value = entries.column(1).as_primitive::<Float32Type>();
                    Value::Object(
                        (0..entries.len())
                            .map(|i| (index.value(i).to_string(), json!(value.value(i))))
                            .collect(),
                    )
                }
                _ => scalar(array.as_ref(), row),
            }
        };
        entity.insert(field.name.clone(), value);
    }
    entity
}

fn scalar(array: &dyn Array, row: usize) -> Value {
    match array.data_type() {
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(array.as_string::<i64>().value(row)),
        DataType::Boolean => Value::from(array.as_boolean().value(row)),
        t if t.is_integer() || t.is_floating() => {
            let as_f64 = arrow::compute::cast(&array.slice(row, 1), &DataType::Float64).ok();
            let as_i64 = arrow::compute::cast(&array.slice(row, 1), &DataType::Int64).ok();
            match (t.is_integer(), as_i64, as_f64) {
                (true, Some(v), _) => {
                    Value::from(v.as_primitive::<arrow::datatypes::Int64Type>().value(0))
                }
                (false, _, Some(v)) => {
                    json!(v.as_primitive::<arrow::datatypes::Float64Type>().value(0))
                }
                _ => Value::Null,
            }
        }
        _ => match arrow::compute::cast(&array.slice(row, 1), &DataType::Utf8) {
            Ok(text) => Value::from(text.as_string::<i32>().value(0)),
            Err(_) => Value::Null,
        },
    }
}
