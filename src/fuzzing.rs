//! Entry points for the fuzz targets in `fuzz/` (`scripts/fuzz.sh`): each
//! feeds arbitrary bytes to one decoder of untrusted Kafka input, which may
//! reject them but must not panic. Not an API.

use serde_json::Value;

use crate::config::PositiveInt;
use crate::source::debezium;
use crate::source::records::{RecordFields, Rows, json_object};
use crate::source::registry::{Encoding, RegistryDecoder, SchemaRegistryConfig, frame};

/// The Confluent wire-format header (magic byte, schema id).
pub fn wire_format(data: &[u8]) {
    let _ = frame(data);
}

/// An Avro writer schema with every kind of field a topic may carry.
const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Doc", "fields": [
  {"name": "id", "type": "long"},
  {"name": "body", "type": ["null", "string"]},
  {"name": "score", "type": "double"},
  {"name": "small", "type": "int"},
  {"name": "ratio", "type": "float"},
  {"name": "flag", "type": "boolean"},
  {"name": "raw", "type": "bytes"},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "counts", "type": {"type": "map", "values": "long"}},
  {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
  {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "meta", "type": {"type": "record", "name": "Meta", "fields": [
    {"name": "title", "type": ["null", "string", "long"]}]}}
]}"#;

const JSON_SCHEMA: &str = r#"{"type": "object", "required": ["id", "body"], "properties": {
  "id": {"type": "integer", "minimum": 0},
  "body": {"type": "string", "minLength": 1, "pattern": "^[^\\u0000]*$"},
  "meta": {"type": "object", "properties": {"title": {"type": ["string", "null"]}}},
  "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
  "email": {"type": "string", "format": "email"}
}}"#;

/// A `.proto` with nested types, repeated, map, enum, oneof and well-known types.
const PROTO: &str = r#"syntax = "proto3";
package fuzz;
import "google/protobuf/timestamp.proto";
message Envelope { string note = 1; }
message Doc {
  int64 id = 1;
  string body = 2;
  message Meta { string title = 1; repeated string tags = 2; }
  Meta meta = 3;
  map<string, int64> counts = 4;
  enum Kind { A = 0; B = 1; }
  Kind kind = 5;
  oneof choice { double score = 6; bytes raw = 7; }
  google.protobuf.Timestamp at = 8;
  repeated Meta history = 9;
  uint64 big = 10;
  sint32 small = 11;
  float ratio = 12;
  bool flag = 13;
}
"#;

/// The fields the record decoders are asked for: nested paths included.
fn fields() -> RecordFields {
    RecordFields::new(
        &Some("id".to_string()),
        "body",
        &["meta.title".to_string(), "tags".to_string()],
        PositiveInt(1 << 20),
    )
}

/// The schema-registry decoder of `encoding` with schema 1 cached, made
/// once per process (parsing the schema per input would be most of the
/// fuzzer's time); then the record fields.
fn registry_record(
    decoder: &'static std::sync::OnceLock<RegistryDecoder>,
    encoding: Encoding,
    kind: &str,
    schema: &str,
    datum: &[u8],
) {
    let decoder = decoder.get_or_init(|| {
        let cfg = SchemaRegistryConfig {
            url: "http://127.0.0.1:1".to_string(),
            ..SchemaRegistryConfig::default()
        };
        let decoder = RegistryDecoder::new(&cfg, encoding).expect("no TLS files to read");
        decoder
            .remember(1, kind, schema)
            .expect("the fuzzing schema parses");
        decoder
    });
    let mut message = vec![0, 0, 0, 0, 1];
    message.extend_from_slice(datum);
    if let Ok(object) = decoder.decode(&message, |_, _| {}, || true) {
        let fields = fields();
        let mut rows = Rows::new(&fields);
        let _ = fields.decode_object(&object, None, &mut rows);
        let _ = rows.finish(fields.schema());
    }
}

/// An Avro datum of [`AVRO_SCHEMA`] (after the wire-format header).
pub fn avro(data: &[u8]) {
    static DECODER: std::sync::OnceLock<RegistryDecoder> = std::sync::OnceLock::new();
    registry_record(&DECODER, Encoding::Avro, "AVRO", AVRO_SCHEMA, data);
}

/// Protobuf message indexes and a message of [`PROTO`] (after the header).
pub fn protobuf(data: &[u8]) {
    static DECODER: std::sync::OnceLock<RegistryDecoder> = std::sync::OnceLock::new();
    registry_record(&DECODER, Encoding::Protobuf, "PROTOBUF", PROTO, data);
}

/// A JSON document checked against [`JSON_SCHEMA`] (after the header).
pub fn json_schema(data: &[u8]) {
    static DECODER: std::sync::OnceLock<RegistryDecoder> = std::sync::OnceLock::new();
    registry_record(&DECODER, Encoding::JsonSchema, "JSON", JSON_SCHEMA, data);
}

/// A Debezium change event, the same bytes as its key.
pub fn debezium(data: &[u8]) {
    if let Ok(event) = json_object(data) {
        let key = || {
            Ok::<_, ()>(json_object(data).map(|mut key| {
                key.insert("id".to_string(), Value::from(1));
                key
            }))
        };
        if let Ok(Ok(debezium::Change::Upsert(after))) = debezium::change(event, key, "id") {
            let fields = fields();
            let mut rows = Rows::new(&fields);
            let _ = fields.decode_object(&after, None, &mut rows);
        }
    }
}

/// A JSON record (JSONL line or Kafka `format: json`).
pub fn json_record(data: &[u8]) {
    let fields = fields();
    let mut rows = Rows::new(&fields);
    let _ = fields.decode_json(data, None, &mut rows);
    let _ = rows.finish(fields.schema());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The targets run on a few inputs, good and bad (the fuzzer runs them on millions).
    #[test]
    fn every_target_takes_good_and_bad_input() {
        let inputs: [&[u8]; 5] = [
            b"",
            b"\x00\x00\x00\x00\x01{}",
            br#"{"id": 3, "body": "text", "meta": {"title": "t"}, "tags": ["a"]}"#,
            br#"{"op": "c", "after": {"id": 3, "body": "text"}}"#,
            b"\x02\x00\xff\xff\xff\xff",
        ];
        for input in inputs {
            wire_format(input);
            avro(input);
            json_schema(input);
            protobuf(input);
            debezium(input);
            json_record(input);
        }
    }
}
