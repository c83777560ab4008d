//! Debezium change events (`envelope: debezium` on a Kafka source), in
//! Debezium's JSON form with or without the `schema`/`payload` wrapper:
//! `c` (insert), `r` (snapshot read) and `u` (update) write the `after`
//! row; `d` deletes the document whose id is in `before` (or in the key);
//! the tombstone Debezium sends after a delete is skipped; `t` (truncate)
//! and `m` (logical message) are skipped with a warning, since a truncate
//! names no rows to delete.

use serde_json::{Map, Value};

use super::records::{json_object, object_id};

/// What one change event asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    /// Write this row (`c`, `r`, `u`).
    Upsert(Map<String, Value>),
    /// Delete the document with this id (`d`).
    Delete(String),
    /// Nothing to write; the reason is logged.
    Skip(&'static str),
}

/// A Debezium value's change, with `key` for a delete whose `before` lacks
/// the id (a table without `REPLICA IDENTITY FULL` still has its key there,
/// but a message key is the other place Debezium puts it).
pub(crate) fn change(payload: &[u8], key: Option<&[u8]>, id_field: &str) -> Result<Change, String> {
    let event = unwrapped(json_object(payload)?)?;
    let op = match event.get("op") {
        Some(Value::String(op)) => op.as_str(),
        _ => return Err("not a Debezium change event: no `op`".to_string()),
    };
    match op {
        "c" | "r" | "u" => match event.get("after") {
            Some(Value::Object(after)) => Ok(Change::Upsert(after.clone())),
            _ => Err(format!("Debezium `{op}` event without an `after` row")),
        },
        "d" => {
            let from_before = match event.get("before") {
                Some(Value::Object(before)) => object_id(before, id_field).ok(),
                _ => None,
            };
            let id = match from_before {
                Some(id) => id,
                None => key_id(key, id_field).map_err(|why| {
                    format!(
                        "Debezium delete without the id field `{id_field}` in `before`, and {why}"
                    )
                })?,
            };
            Ok(Change::Delete(id))
        }
        "t" => Ok(Change::Skip("truncate")),
        "m" => Ok(Change::Skip("logical decoding message")),
        other => Err(format!("unknown Debezium op `{other}`")),
    }
}

/// The event inside Debezium's `{schema, payload}` wrapper, or the object itself.
fn unwrapped(mut object: Map<String, Value>) -> Result<Map<String, Value>, String> {
    if !(object.contains_key("schema") && object.contains_key("payload")) {
        return Ok(object);
    }
    match object.remove("payload") {
        Some(Value::Object(payload)) => Ok(payload),
        _ => Err("Debezium `payload` is not an object".to_string()),
    }
}

/// The id in a Debezium message key (`{"id": 1}`, wrapped or not).
fn key_id(key: Option<&[u8]>, id_field: &str) -> Result<String, String> {
    let key = key.ok_or("the message has no key")?;
    let key = unwrapped(json_object(key).map_err(|e| format!("its key: {e}"))?)?;
    object_id(&key, id_field).map_err(|e| format!("its key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn inserts_reads_and_updates_write_after_wrapped_or_not() {
        let bare = br#"{"before":null,"after":{"id":1,"body":"a"},"op":"c"}"#;
        let wrapped = br#"{"schema":{"type":"struct"},"payload":{"before":{"id":1,"body":"a"},"after":{"id":1,"body":"b"},"op":"u"}}"#;
        assert_eq!(
            change(bare, None, "id").unwrap(),
            Change::Upsert(row(r#"{"id":1,"body":"a"}"#))
        );
        assert_eq!(
            change(wrapped, None, "id").unwrap(),
            Change::Upsert(row(r#"{"id":1,"body":"b"}"#))
        );
    }

    #[test]
    fn a_delete_takes_its_id_from_before_else_from_the_key() {
        let with_before = br#"{"before":{"id":7,"body":null},"after":null,"op":"d"}"#;
        let without = br#"{"before":null,"after":null,"op":"d"}"#;
        let key = br#"{"schema":{},"payload":{"id":8}}"#;
        assert_eq!(
            change(with_before, None, "id").unwrap(),
            Change::Delete("7".into())
        );
        assert_eq!(
            change(without, Some(key), "id").unwrap(),
            Change::Delete("8".into())
        );
        assert_eq!(
            change(without, None, "id").unwrap_err(),
            "Debezium delete without the id field `id` in `before`, and the message has no key"
        );
    }

    #[test]
    fn truncates_are_skipped_and_other_shapes_are_refused() {
        assert_eq!(
            change(br#"{"op":"t","before":null,"after":null}"#, None, "id").unwrap(),
            Change::Skip("truncate")
        );
        assert_eq!(
            change(br#"{"id":1,"body":"plain"}"#, None, "id").unwrap_err(),
            "not a Debezium change event: no `op`"
        );
        assert_eq!(
            change(br#"{"op":"x"}"#, None, "id").unwrap_err(),
            "unknown Debezium op `x`"
        );
        assert_eq!(
            change(br#"{"op":"c","after":null}"#, None, "id").unwrap_err(),
            "Debezium `c` event without an `after` row"
        );
    }
}
