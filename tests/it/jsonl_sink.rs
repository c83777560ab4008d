//! The `jsonl` sink: one JSON object per output row, appended and synced per
//! batch; a full disk fails the run with nothing recorded; tombstones become
//! delete lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, StringArray};
use arrow::datatypes::UInt32Type;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{Value, json};

use crate::common::*;

const DOCS: &str = r#"{"id": "a", "text": "Rivers carry silt to the sea. Deltas grow where they slow down.", "lang": "en"}
{"id": "b", "text": "Kurzer Text.", "lang": "de"}
{"id": "c", "text": "No language is given for this document about mountain glaciers."}
"#;

/// The JSON lines of a file, with every non-integer number rounded to f32
/// (the precision of the vectors).
fn json_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| as_f32(serde_json::from_str(line).unwrap()))
        .collect()
}

fn as_f32(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => json!(n.as_f64().unwrap() as f32),
        Value::Array(items) => Value::Array(items.into_iter().map(as_f32).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, as_f32(v))).collect()),
        other => other,
    }
}

/// The rows of the Parquet file the `arrow` sink wrote, as the JSON objects
/// the `jsonl` sink should have written.
fn rows_of(path: &std::path::Path) -> Vec<Value> {
    let batch = read_parquet(path);
    let strings = |name: &str| strings(&batch, name);
    let (ids, texts, langs, doc_ids) = (
        strings("id"),
        strings("text"),
        strings("lang"),
        strings("doc_id"),
    );
    let chunk_index = batch.column_by_name("chunk_index").unwrap();
    let chunk_index = chunk_index.as_primitive::<UInt32Type>();
    let sparse = sparse_rows(&batch, "sparse");
    (0..batch.num_rows())
        .map(|i| {
            let sparse: Vec<Value> = sparse[i]
                .iter()
                .map(|(index, value)| json!({ "index": index, "value": value }))
                .collect();
            json!({
                "id": ids[i], "text": texts[i], "lang": langs[i], "doc_id": doc_ids[i],
                "chunk_index": chunk_index.value(i), "sparse": sparse,
            })
        })
        .collect()
}

#[test]
fn every_row_is_one_object_with_every_column_and_a_second_run_appends() {
    let ws = Workspace::new();
    ws.write("docs.jsonl", DOCS);
    ws.vecpipe(&["bm25", "fit", "--input", "docs.jsonl", "--out", "bm25.json"])
        .expect_code(0);
    ws.write(
        "p.yaml",
        "name: rows\nsource: { type: jsonl, path: docs.jsonl, id_field: id, metadata: [lang] }\nstages:\n  - { type: chunk, max_chars: 32 }\n  - { type: bm25, params: bm25.json }\nsinks:\n  - { type: arrow, path: out/rows.parquet }\n  - { type: jsonl, path: out/rows.jsonl }\n",
    );
    ws.vecpipe(&["validate", "p.yaml"]).expect_code(0);
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);

    let expected = as_f32(Value::Array(rows_of(&ws.path("out/rows.parquet"))));
    let Value::Array(expected) = expected else {
        unreachable!()
    };
    assert_eq!(expected.len() as u64, run.summary_number("chunks"));
    assert!(expected.len() > 3, "the documents were chunked");
    assert_eq!(json_lines(&ws.path("out/rows.jsonl")), expected);
    // Nulls are written, not left out.
    assert!(
        expected
            .iter()
            .filter(|row| row["doc_id"] == "c")
            .all(|row| row.as_object().unwrap()["lang"].is_null())
    );

    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let twice: Vec<Value> = expected.iter().chain(&expected).cloned().collect();
    assert_eq!(json_lines(&ws.path("out/rows.jsonl")), twice);
}

#[test]
fn an_unfinished_last_line_is_cut_before_appending() {
    let ws = Workspace::new();
    ws.write("docs.jsonl", DOCS);
    ws.write(
        "p.yaml",
        "name: rows\nsource: { type: jsonl, path: docs.jsonl, id_field: id }\nsinks:\n  - { type: jsonl, path: rows.jsonl }\n",
    );
    // What a crash in the middle of a write leaves: whole lines, then part of one.
    ws.write(
        "rows.jsonl",
        "{\"id\":\"old\",\"text\":\"kept\"}\n{\"id\":\"b\",\"te",
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let ids: Vec<Value> = json_lines(&ws.path("rows.jsonl"))
        .into_iter()
        .map(|row| row["id"].clone())
        .collect();
    assert_eq!(ids, ["old", "a", "b", "c"]);
}

#[test]
fn a_full_disk_fails_the_run_records_nothing_and_a_restart_writes_every_row() {
    let ws = Workspace::new();
    let rows = 3000;
    let texts: Vec<String> = (0..rows).map(|i| format!("document {i}")).collect();
    let ids: Vec<String> = (0..rows).map(|i| format!("d{i}")).collect();
    write_parquet(
        &ws.path("in.parquet"),
        vec![
            (
                "id",
                Arc::new(StringArray::from(ids.clone())) as Arc<dyn Array>,
            ),
            ("text", Arc::new(StringArray::from(texts))),
            ("n", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
        ],
        1000,
    );
    let pipeline = |path: &str| {
        format!(
            "name: full\nsource: {{ type: parquet, path: in.parquet, id_field: id, batch_rows: 500 }}\nsinks:\n  - {{ type: jsonl, path: {path} }}\n"
        )
    };
    ws.write("p.yaml", pipeline("/dev/full"));
    let failed = ws.vecpipe(&["run", "p.yaml"]).expect_code(1);
    assert_output_eq!(
        failed.stderr(),
        "error: /dev/full: No space left on device (os error 28)\n"
    );
    let state = ws.path(".vecpipe/state/full.jsonl");
    assert_eq!(recorded_row_groups(&state), Vec::<usize>::new());

    ws.write("p.yaml", pipeline("rows.jsonl"));
    ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    let written: Vec<String> = json_lines(&ws.path("rows.jsonl"))
        .into_iter()
        .map(|row| row["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(written, ids, "every row once, in order");
    assert_eq!(recorded_row_groups(&state), [0, 1, 2]);
}

#[test]
fn a_tombstone_becomes_a_delete_line_after_the_rows() {
    let broker = KafkaBroker::start();
    broker.create_topic("docs", 1);
    let ws = Workspace::new();
    ws.write(
        "daemon.yaml",
        format!(
            "name: daemon\nsource:\n  type: kafka\n  brokers: '{}'\n  topics: [docs]\n  group_id: jsonl-test\n  key_as_id: true\n  batch_rows: 10\n  max_latency_ms: 100\nsinks:\n  - {{ type: jsonl, path: rows.jsonl }}\n",
            broker.brokers
        ),
    );
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .create()
        .unwrap();
    for (key, text) in [("doc-a", "first text"), ("doc-b", "second text")] {
        let payload = json!({ "text": text }).to_string();
        producer
            .send(BaseRecord::to("docs").key(key).payload(&payload))
            .unwrap();
    }
    producer
        .send(BaseRecord::<str, str>::to("docs").key("doc-a"))
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let mut daemon = start_daemon(&ws, free_port());
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(ws.path("rows.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "three lines within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&daemon, "-TERM");
    let _ = daemon.wait_with_output().map(Run).unwrap().expect_code(0);
    assert_output_eq!(
        std::fs::read_to_string(ws.path("rows.jsonl")).unwrap(),
        "{\"id\":\"doc-a\",\"text\":\"first text\"}\n{\"id\":\"doc-b\",\"text\":\"second text\"}\n{\"deleted\":true,\"doc_id\":\"doc-a\"}\n"
    );
}
