//! Debezium change events (`envelope: debezium` on a Kafka source), in
//! Debezium's JSON form with or without the `schema`/`payload` wrapper:
//! `c` (insert), `r` (snapshot read) and `u` (update) write the `after`
//! row; `d` deletes the document whose id is in `before` (or in the key);
//! the tombstone Debezium sends after a delete is skipped; `t` (truncate)
//! and `m` (logical message) are skipped with a warning, since a truncate
//! names no rows to delete.

use serde_json::{Map, Value};

use super::records::object_id;

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

/// A Debezium event's change (`Ok(Err(reason))` for a bad one), with `key`
/// read for a delete whose `before` lacks the id (Debezium puts the key
/// columns in both). `key` yields the message key's object, or why not.
pub(crate) fn change<E>(
    event: Map<String, Value>,
    key: impl FnOnce() -> Result<Result<Map<String, Value>, String>, E>,
    id_field: &str,
) -> Result<Result<Change, String>, E> {
    let event = match unwrapped(event) {
        Ok(event) => event,
        Err(reason) => return Ok(Err(reason)),
    };
    let op = match event.get("op") {
        Some(Value::String(op)) => op.as_str(),
        _ => return Ok(Err("not a Debezium change event: no `op`".to_string())),
    };
    if op != "d" {
        return Ok(write_or_skip(op, &event));
    }
    if let Some(Value::Object(before)) = event.get("before")
        && let Ok(id) = object_id(before, id_field)
    {
        return Ok(Ok(Change::Delete(id)));
    }
    let why = match key()? {
        Ok(key) => match unwrapped(key).and_then(|key| object_id(&key, id_field)) {
            Ok(id) => return Ok(Ok(Change::Delete(id))),
            Err(e) => format!("its key: {e}"),
        },
        Err(e) => e,
    };
    Ok(Err(format!(
        "Debezium delete without the id field `{id_field}` in `before`, and {why}"
    )))
}

/// Every op but a delete.
fn write_or_skip(op: &str, event: &Map<String, Value>) -> Result<Change, String> {
    match op {
        "c" | "r" | "u" => match event.get("after") {
            Some(Value::Object(after)) => Ok(Change::Upsert(after.clone())),
            _ => Err(format!("Debezium `{op}` event without an `after` row")),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::records::json_object;

    fn row(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    /// The change of a JSON event and key, as the Kafka source reads them.
    fn of(event: &[u8], key: Option<&[u8]>) -> Result<Change, String> {
        let key = || -> Result<_, ()> {
            Ok(match key {
                Some(key) => json_object(key),
                None => Err("the message has no key".to_string()),
            })
        };
        change(json_object(event)?, key, "id").unwrap()
    }

    #[test]
    fn inserts_reads_and_updates_write_after_wrapped_or_not() {
        let bare = br#"{"before":null,"after":{"id":1,"body":"a"},"op":"c"}"#;
        let wrapped = br#"{"schema":{"type":"struct"},"payload":{"before":{"id":1,"body":"a"},"after":{"id":1,"body":"b"},"op":"u"}}"#;
        assert_eq!(
            of(bare, None).unwrap(),
            Change::Upsert(row(r#"{"id":1,"body":"a"}"#))
        );
        assert_eq!(
            of(wrapped, None).unwrap(),
            Change::Upsert(row(r#"{"id":1,"body":"b"}"#))
        );
    }

    #[test]
    fn a_delete_takes_its_id_from_before_else_from_the_key() {
        let with_before = br#"{"before":{"id":7,"body":null},"after":null,"op":"d"}"#;
        let without = br#"{"before":null,"after":null,"op":"d"}"#;
        let key = br#"{"schema":{},"payload":{"id":8}}"#;
        assert_eq!(of(with_before, None).unwrap(), Change::Delete("7".into()));
        assert_eq!(of(without, Some(key)).unwrap(), Change::Delete("8".into()));
        assert_eq!(
            of(without, None).unwrap_err(),
            "Debezium delete without the id field `id` in `before`, and the message has no key"
        );
    }

    #[test]
    fn truncates_are_skipped_and_other_shapes_are_refused() {
        assert_eq!(
            of(br#"{"op":"t","before":null,"after":null}"#, None).unwrap(),
            Change::Skip("truncate")
        );
        assert_eq!(
            of(br#"{"id":1,"body":"plain"}"#, None).unwrap_err(),
            "not a Debezium change event: no `op`"
        );
        assert_eq!(
            of(br#"{"op":"x"}"#, None).unwrap_err(),
            "unknown Debezium op `x`"
        );
        assert_eq!(
            of(br#"{"op":"c","after":null}"#, None).unwrap_err(),
            "Debezium `c` event without an `after` row"
        );
    }
}
