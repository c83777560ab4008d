//! Arrow batches → the field columns the Milvus SDK upserts (the protocol's
//! own shape), converted column by column: one cast per column, not per value.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type, UInt32Type};
use arrow::record_batch::RecordBatch;
use milvus::v2::prelude::{Error as SdkError, FieldData};
use serde_json::Value;

use std::sync::Arc;

use super::schema::{CollectionPlan, Element, FieldKind};

/// The dimension that stands for "no weight" on servers that reject an empty
/// sparse vector (Milvus Lite): one below the maximum, which the sparse
/// protocol reserves. No query has it (vocabularies are far smaller), so the
/// row is never a sparse hit and stays reachable through its other vectors.
pub(super) const EMPTY_SPARSE_DIMENSION: u32 = u32::MAX - 1;
/// The marker's weight: the smallest positive normal float32.
const EMPTY_SPARSE_WEIGHT: f32 = f32::MIN_POSITIVE;

/// How a sparse vector with no weight is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EmptySparse {
    /// `{}`: what Milvus 2.4 and later accept.
    AsEmpty,
    /// One marker weight at [`EMPTY_SPARSE_DIMENSION`].
    AsMarker,
}

/// Whether any sparse field of `plan` holds an empty vector in `batch`.
pub(super) fn has_empty_sparse(plan: &CollectionPlan, batch: &RecordBatch) -> bool {
    plan.fields
        .iter()
        .filter(|f| f.kind == FieldKind::SparseVector)
        .filter_map(|f| f.column)
        .any(|column| {
            let list = batch.column(column).as_list::<i32>();
            (0..list.len()).any(|r| list.is_valid(r) && list.value_length(r) == 0)
        })
}

/// `batch` as one Milvus field column per planned field (fields Milvus
/// computes are left out). A nullable field with nulls carries the values of
/// its valid rows only, and a validity mask over all rows (the SDK's shape).
pub(super) fn field_columns(
    plan: &CollectionPlan,
    batch: &RecordBatch,
    empty_sparse: EmptySparse,
) -> Result<Vec<FieldData>, Box<SdkError>> {
    let mut fields = Vec::with_capacity(plan.fields.len());
    for field in &plan.fields {
        let Some(column) = field.column else { continue };
        let array = batch.column(column);
        let validity = (field.nullable && array.null_count() > 0).then(|| {
            (0..array.len())
                .map(|r| array.is_valid(r))
                .collect::<Vec<bool>>()
        });
        let name = field.name.clone();
        let data = match &field.kind {
            FieldKind::PrimaryKey | FieldKind::VarChar(_) => FieldData::varchar(
                name,
                valid_values(array, &DataType::Utf8, field.nullable, |a, r| {
                    a.as_string::<i32>().value(r).to_string()
                }),
            ),
            FieldKind::Int64 => FieldData::int64(
                name,
                valid_values(array, &DataType::Int64, field.nullable, |a, r| {
                    a.as_primitive::<Int64Type>().value(r)
                }),
            ),
            FieldKind::Double => FieldData::double(
                name,
                valid_values(array, &DataType::Float64, field.nullable, |a, r| {
                    a.as_primitive::<Float64Type>().value(r)
                }),
            ),
            FieldKind::Bool => FieldData::boolean(
                name,
                valid_values(array, &DataType::Boolean, field.nullable, |a, r| {
                    a.as_boolean().value(r)
                }),
            ),
            FieldKind::Json => FieldData::json(
                name,
                json_values(array)
                    .map_err(|e| Box::new(SdkError::Unexpected(e.to_string())))?
                    .into_iter()
                    .enumerate()
                    .filter(|&(r, _)| !field.nullable || array.is_valid(r))
                    .map(|(_, value)| value)
                    .collect(),
            ),
            FieldKind::Array(element) => array_values(name, array, *element, field.nullable)
                .map_err(|e| Box::new(SdkError::Unexpected(e.to_string())))?,
            FieldKind::FloatVector(_) => {
                let list = array.as_fixed_size_list();
                let dim = list.value_length() as usize;
                let values = list.values().as_primitive::<Float32Type>().values();
                let start = list.offset() * dim;
                FieldData::float_vector(
                    name,
                    values[start..start + list.len() * dim]
                        .chunks_exact(dim.max(1))
                        .map(<[f32]>::to_vec)
                        .collect(),
                )
            }
            FieldKind::SparseVector => {
                let list = array.as_list::<i32>();
                FieldData::sparse_float_vector(
                    name,
                    (0..list.len())
                        .map(|r| {
                            let entries = list.value(r);
                            let entries = entries.as_struct();
                            let index = entries.column(0).as_primitive::<UInt32Type>();
                            let value = entries.column(1).as_primitive::<Float32Type>();
                            if entries.is_empty() && empty_sparse == EmptySparse::AsMarker {
                                return [(EMPTY_SPARSE_DIMENSION, EMPTY_SPARSE_WEIGHT)].into();
                            }
                            (0..entries.len())
                                .map(|i| (index.value(i), value.value(i)))
                                .collect()
                        })
                        .collect(),
                )
            }
        };
        fields.push(match validity {
            Some(validity) => data.with_validity(validity).map_err(Box::new)?,
            None => data,
        });
    }
    Ok(fields)
}

/// The values of `array` cast to `target` and read by `value`: for a
/// nullable field only the non-null ones (nulls are carried by validity);
/// for a field that cannot be null (servers before 2.5) a null is the
/// type's empty value. The plan only maps types that cast.
fn valid_values<T: Default>(
    array: &ArrayRef,
    target: &DataType,
    nullable: bool,
    value: impl Fn(&ArrayRef, usize) -> T,
) -> Vec<T> {
    let rows = (0..array.len()).filter(|&r| !nullable || array.is_valid(r));
    match arrow::compute::cast(array, target) {
        Ok(cast) => rows
            .map(|r| {
                if cast.is_valid(r) {
                    value(&cast, r)
                } else {
                    T::default()
                }
            })
            .collect(),
        Err(_) => rows.map(|_| T::default()).collect(),
    }
}

/// A list column as an ARRAY field: each row's items cast to the element
/// type (a null item becomes its empty value; a null list is left out of a
/// nullable field, and empty in a required one).
fn array_values(
    name: String,
    array: &ArrayRef,
    element: Element,
    nullable: bool,
) -> Result<FieldData, arrow::error::ArrowError> {
    let item = Arc::new(arrow::datatypes::Field::new(
        "item",
        element.arrow_type(),
        true,
    ));
    let list = arrow::compute::cast(array, &DataType::List(item))?;
    let list = list.as_list::<i32>();
    let rows: Vec<ArrayRef> = (0..list.len())
        .filter(|&r| !nullable || list.is_valid(r))
        .map(|r| {
            if list.is_valid(r) {
                list.value(r)
            } else {
                arrow::array::new_empty_array(&element.arrow_type())
            }
        })
        .collect();
    Ok(match element {
        Element::VarChar => FieldData::array_varchar(
            name,
            list_items(&rows, element, |a, r| {
                a.as_string::<i32>().value(r).to_string()
            }),
        ),
        Element::Int64 => FieldData::array_int64(
            name,
            list_items(&rows, element, |a, r| {
                a.as_primitive::<Int64Type>().value(r)
            }),
        ),
        Element::Double => FieldData::array_double(
            name,
            list_items(&rows, element, |a, r| {
                a.as_primitive::<Float64Type>().value(r)
            }),
        ),
        Element::Bool => FieldData::array_bool(
            name,
            list_items(&rows, element, |a, r| a.as_boolean().value(r)),
        ),
    })
}

/// Each list's items read by `value`, a null item as its type's empty value.
fn list_items<T: Default>(
    rows: &[ArrayRef],
    element: Element,
    value: impl Fn(&ArrayRef, usize) -> T + Copy,
) -> Vec<Vec<T>> {
    rows.iter()
        .map(|items| valid_values(items, &element.arrow_type(), false, value))
        .collect()
}

/// Each row of `array` as JSON, as Arrow's JSON writer writes it: lists
/// as arrays, structs as objects, timestamps and dates as ISO 8601 text,
/// binary as hex; nulls as null.
pub(super) fn json_values(array: &ArrayRef) -> Result<Vec<Value>, arrow::error::ArrowError> {
    let batch = RecordBatch::try_from_iter([("v", array.clone())])?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(&batch)?;
    writer.finish()?;
    let text = writer.into_inner();
    let rows: Vec<serde_json::Map<String, Value>> = if text.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&text)
            .map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?
    };
    Ok(rows
        .into_iter()
        .map(|mut row| row.remove("v").unwrap_or(Value::Null))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};
    use arrow::record_batch::RecordBatch;

    use super::*;
    use crate::batch::{dense, sparse};
    use crate::sink::milvus::schema::PlannedField;

    fn planned(name: &str, kind: FieldKind, nullable: bool, column: usize) -> PlannedField {
        PlannedField {
            name: name.into(),
            kind,
            nullable,
            column: Some(column),
        }
    }

    #[test]
    fn columns_carry_every_row_and_only_the_valid_values_of_nullable_fields() {
        let mut weights = sparse::SparseColumnBuilder::default();
        weights.append_row(&[(3, 0.5), (7, 1.5)]);
        weights.append_row(&[]);
        weights.append_row(&[(1, 2.0)]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a", "b", "c"])),
            Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            Arc::new(dense::column(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2).unwrap()),
            Arc::new(weights.finish()),
        ];
        let batch =
            RecordBatch::try_from_iter(["id", "title", "dense", "sparse"].into_iter().zip(columns))
                .unwrap();
        let plan = CollectionPlan {
            fields: vec![
                planned("id", FieldKind::PrimaryKey, false, 0),
                planned("title", FieldKind::VarChar(64), true, 1),
                planned("dense", FieldKind::FloatVector(2), false, 2),
                planned("sparse", FieldKind::SparseVector, false, 3),
            ],
            server_bm25: false,
            has_chunks: false,
        };
        // A slice, as the sink sends groups: rows b and c.
        let fields = field_columns(&plan, &batch.slice(1, 2), EmptySparse::AsMarker).unwrap();
        let names: Vec<&str> = fields.iter().map(FieldData::name).collect();
        assert_eq!(names, ["id", "title", "dense", "sparse"]);
        assert_eq!(fields[0].as_varchar().unwrap(), ["b", "c"]);
        assert_eq!(fields[0].valid_data(), None);
        assert_eq!(fields[1].as_varchar().unwrap(), ["z"]);
        assert_eq!(fields[1].valid_data(), Some(&[false, true][..]));
        assert_eq!(
            fields[2].as_float_vectors().unwrap(),
            [vec![3.0, 4.0], vec![5.0, 6.0]]
        );
        let sparse = fields[3].as_sparse_float_vectors().unwrap();
        assert_eq!(
            sparse[0].iter().collect::<Vec<_>>(),
            [(&EMPTY_SPARSE_DIMENSION, &EMPTY_SPARSE_WEIGHT)]
        );
        assert_eq!(sparse[1].iter().collect::<Vec<_>>(), [(&1, &2.0)]);
        assert!(has_empty_sparse(&plan, &batch));
        assert!(!has_empty_sparse(&plan, &batch.slice(2, 1)));
        let as_empty = field_columns(&plan, &batch, EmptySparse::AsEmpty).unwrap();
        assert!(as_empty[3].as_sparse_float_vectors().unwrap()[1].is_empty());
    }
}
