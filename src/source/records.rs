//! Turning one record (a JSON object, or a plain text with an id) into a row
//! of `id`, `text` and metadata — shared by the JSONL and Kafka sources.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::{output_schema, text_id, text_problem};

/// Which fields make a record, and the limits it must respect.
#[derive(Debug, Clone)]
pub(crate) struct RecordFields {
    pub id_field: Option<String>,
    pub text_field: String,
    pub metadata: Vec<String>,
    pub max_text_bytes: usize,
}

/// The JSON object `bytes` hold, or why not.
pub(crate) fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Object(object) => Ok(object),
        _ => Err("not a JSON object".to_string()),
    }
}

/// The value at `path` in a JSON object: the key itself when the object has
/// it, else the dotted path through nested objects (`after.body`).
pub(crate) fn field_value<'a>(object: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = object.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = object.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// The output column of a metadata field: its path's last segment
/// (`after.title` → `title`).
pub(crate) fn metadata_column(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A record's id: its `id_field`, a non-empty string or a number.
pub(crate) fn object_id(
    object: &serde_json::Map<String, Value>,
    id_field: &str,
) -> Result<String, String> {
    match field_value(object, id_field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) => Err(format!("missing id field `{id_field}`")),
        Some(_) => Err(format!("id field `{id_field}` is not a string or number")),
    }
}

/// The defaults of the record keys every source shares.
pub(crate) fn default_text_field() -> String {
    "text".to_string()
}
pub(crate) fn default_batch_rows() -> crate::config::PositiveInt {
    crate::config::PositiveInt(1024)
}
pub(crate) fn default_max_text_bytes() -> crate::config::PositiveInt {
    crate::config::PositiveInt(1 << 20)
}

impl RecordFields {
    pub(crate) fn new(
        id_field: &Option<String>,
        text_field: &str,
        metadata: &[String],
        max_text_bytes: crate::config::PositiveInt,
    ) -> Self {
        RecordFields {
            id_field: id_field.clone(),
            text_field: text_field.to_string(),
            metadata: metadata.to_vec(),
            max_text_bytes: max_text_bytes.get(),
        }
    }

    /// `id`, `text`, then the metadata fields as strings.
    pub(crate) fn schema(&self) -> SchemaRef {
        output_schema(
            self.metadata_columns()
                .map(|name| Field::new(name, DataType::Utf8, true)),
        )
    }

    /// The metadata fields' output columns, in order.
    pub(crate) fn metadata_columns(&self) -> impl Iterator<Item = &str> {
        self.metadata.iter().map(|path| metadata_column(path))
    }

    /// Decodes a JSON object into `rows`, or says why it cannot be.
    /// `fallback_id` is used when there is no `id_field` (e.g. a Kafka key).
    pub(crate) fn decode_json(
        &self,
        bytes: &[u8],
        fallback_id: Option<&str>,
        rows: &mut Rows,
    ) -> Result<(), String> {
        let object = json_object(bytes)?;
        self.decode_object(&object, fallback_id, rows)
    }

    /// A record from a JSON object already parsed (a change event's `after`).
    pub(crate) fn decode_object(
        &self,
        object: &serde_json::Map<String, Value>,
        fallback_id: Option<&str>,
        rows: &mut Rows,
    ) -> Result<(), String> {
        let field = &self.text_field;
        let text = match field_value(object, field) {
            None | Some(Value::Null) => return Err(format!("missing text field `{field}`")),
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(format!("text field `{field}` is not a string")),
        };
        if let Some(problem) = text_problem(text, self.max_text_bytes) {
            return Err(problem);
        }
        let id = match (&self.id_field, fallback_id) {
            (None, Some(id)) => id.to_string(),
            (None, None) => text_id(text),
            (Some(id_field), _) => object_id(object, id_field)?,
        };
        rows.push(&id, text, &self.metadata, Some(object));
        Ok(())
    }

    /// A plain-text record: the bytes are the text.
    pub(crate) fn decode_text(
        &self,
        bytes: &[u8],
        id: Option<&str>,
        rows: &mut Rows,
    ) -> Result<(), String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
        if let Some(problem) = text_problem(text, self.max_text_bytes) {
            return Err(problem);
        }
        let id = id.map_or_else(|| text_id(text), str::to_string);
        rows.push(&id, text, &self.metadata, None);
        Ok(())
    }
}

/// Column builders for one batch.
pub(crate) struct Rows {
    ids: StringBuilder,
    texts: StringBuilder,
    metadata: Vec<StringBuilder>,
    pub len: usize,
}

impl Rows {
    pub(crate) fn new(fields: &RecordFields) -> Self {
        Rows {
            ids: StringBuilder::new(),
            texts: StringBuilder::new(),
            metadata: fields
                .metadata
                .iter()
                .map(|_| StringBuilder::new())
                .collect(),
            len: 0,
        }
    }

    fn push(
        &mut self,
        id: &str,
        text: &str,
        names: &[String],
        object: Option<&Map<String, Value>>,
    ) {
        self.ids.append_value(id);
        self.texts.append_value(text);
        for (builder, name) in self.metadata.iter_mut().zip(names) {
            match object.and_then(|o| field_value(o, name)) {
                None | Some(Value::Null) => builder.append_null(),
                Some(Value::String(s)) => builder.append_value(s),
                // Non-string metadata keeps its JSON text.
                Some(other) => builder.append_value(other.to_string()),
            }
        }
        self.len += 1;
    }

    pub(crate) fn finish(mut self, schema: SchemaRef) -> RecordBatch {
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(self.ids.finish()), Arc::new(self.texts.finish())];
        columns.extend(
            self.metadata
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(schema, columns).expect("builders match the schema")
    }
}
