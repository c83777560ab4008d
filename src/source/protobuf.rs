//! Protobuf records in the Confluent wire format: the writer's `.proto`
//! text (as the Schema Registry serves it) compiled at run time with protox,
//! the message picked by the frame's message indexes, decoded without
//! generated code by prost-reflect and turned into a JSON object whose keys
//! are the `.proto` field names.

use prost_reflect::prost::encoding::decode_varint;
use prost_reflect::{DynamicMessage, FileDescriptor, MessageDescriptor, SerializeOptions};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::Value;

/// The name the registry's schema text is compiled under.
const SCHEMA_FILE: &str = "schema.proto";

/// Serves the registry's schema text; imports other than Google's
/// well-known types (registry references) are not found.
struct SchemaText(String);

impl FileResolver for SchemaText {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == SCHEMA_FILE {
            File::from_source(name, &self.0)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// Compiles a writer's `.proto` text.
pub(crate) fn compile(text: &str) -> Result<FileDescriptor, String> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(SchemaText(text.to_string()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_file(SCHEMA_FILE).map_err(|e| e.to_string())?;
    compiler
        .descriptor_pool()
        .get_file_by_name(SCHEMA_FILE)
        .ok_or_else(|| "the schema compiled to no file".to_string())
}

/// The JSON form of the message a framed payload (after the schema id)
/// holds: message indexes, then the encoded message.
pub(crate) fn decode(file: &FileDescriptor, datum: &[u8]) -> Result<Value, String> {
    let mut rest = datum;
    let message = message_type(file, &mut rest)?;
    let decoded = DynamicMessage::decode(message.clone(), rest).map_err(|e| {
        format!(
            "Protobuf message `{}` does not decode: {e}",
            message.full_name()
        )
    })?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(false);
    decoded
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| {
            format!(
                "Protobuf message `{}` has no JSON form: {e}",
                message.full_name()
            )
        })
}

/// Reads the message indexes (a count, then a path of indexes into the
/// file's message types and their nested types, zig-zag varints; a count of
/// 0 is the first message) and returns the message type they name.
fn message_type(file: &FileDescriptor, rest: &mut &[u8]) -> Result<MessageDescriptor, String> {
    let count = varint(rest)?;
    let path: Vec<i64> = if count == 0 {
        vec![0]
    } else {
        if !(1..=64).contains(&count) {
            return Err(format!("{count} message indexes (a corrupt frame?)"));
        }
        (0..count).map(|_| varint(rest)).collect::<Result<_, _>>()?
    };
    let pick = |mut types: Box<dyn Iterator<Item = MessageDescriptor> + '_>, index: i64| {
        usize::try_from(index)
            .ok()
            .and_then(|i| types.nth(i))
            .ok_or_else(|| {
                format!("message index {index} names no message type (indexes {path:?})")
            })
    };
    let mut message = pick(Box::new(file.messages()), path[0])?;
    for &index in &path[1..] {
        let nested: Vec<MessageDescriptor> = message.child_messages().collect();
        message = pick(Box::new(nested.into_iter()), index)?;
    }
    Ok(message)
}

/// One zig-zag varint (as Confluent's serializers write message indexes).
fn varint(rest: &mut &[u8]) -> Result<i64, String> {
    let raw = decode_varint(rest).map_err(|_| "message indexes cut short".to_string())?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROTO: &str = r#"syntax = "proto3";
package docs;
message Doc {
  int64 id = 1;
  string body = 2;
  message Meta { string title = 1; }
  Meta meta = 3;
}
message Other { string name = 1; }
"#;

    /// `Doc{id: 7, body: "hi", meta: {title: "t"}}`, encoded by hand.
    const DOC: &[u8] = &[
        0x08, 0x07, 0x12, 0x02, b'h', b'i', 0x1a, 0x03, 0x0a, 0x01, b't',
    ];

    #[test]
    fn the_first_message_is_read_with_proto_field_names() {
        let file = compile(PROTO).unwrap();
        let mut frame = vec![0x00];
        frame.extend_from_slice(DOC);
        assert_eq!(
            decode(&file, &frame).unwrap(),
            serde_json::json!({"id": 7, "body": "hi", "meta": {"title": "t"}})
        );
    }

    #[test]
    fn message_indexes_pick_top_level_and_nested_types() {
        let file = compile(PROTO).unwrap();
        // [1]: Other; zig-zag 1 is 2.
        let other = [0x02, 0x02, 0x0a, 0x01, b'x'];
        assert_eq!(
            decode(&file, &other).unwrap(),
            serde_json::json!({"name": "x"})
        );
        // [0, 0]: Doc.Meta.
        let meta = [0x04, 0x00, 0x00, 0x0a, 0x01, b'm'];
        assert_eq!(
            decode(&file, &meta).unwrap(),
            serde_json::json!({"title": "m"})
        );
        // [2]: no such type.
        assert_eq!(
            decode(&file, &[0x02, 0x04]).unwrap_err(),
            "message index 2 names no message type (indexes [2])"
        );
        assert_eq!(decode(&file, &[]).unwrap_err(), "message indexes cut short");
    }

    #[test]
    fn bad_text_and_bad_payloads_say_why() {
        assert_eq!(
            compile("message {").unwrap_err(),
            "expected an identifier, but found '{'"
        );
        let file = compile(PROTO).unwrap();
        let error = decode(&file, &[0x00, 0x12, 0x05, b'a']).unwrap_err();
        assert!(
            error.starts_with("Protobuf message `docs.Doc` does not decode: "),
            "{error}"
        );
    }
}
