//! Parquet sources (row groups, globs, metadata types, hashed ids) and the
//! Arrow sink's formats, rotation and branching.

use std::collections::HashSet;
use std::sync::Arc;

use crate::common::*;
use arrow::array::{Array, Int64Array, StringArray};

fn corpus(ws: &Workspace, file: &str, first: usize, rows: usize) {
    let texts: Vec<String> = (first..first + rows)
        .map(|i| format!("document number {i} talks about topic {}", i % 7))
        .collect();
    let years: Vec<i64> = (first..first + rows).map(|i| 1900 + i as i64).collect();
    write_parquet(
        &ws.path(file),
        vec![
            ("text", Arc::new(StringArray::from(texts))),
            ("year", Arc::new(Int64Array::from(years))),
            ("unused", Arc::new(StringArray::from(vec!["x"; rows]))),
        ],
        1000,
    );
}

#[test]
fn parquet_row_groups_stream_in_order_with_typed_metadata_and_hashed_ids() {
    let ws = Workspace::new();
    corpus(&ws, "data/a.parquet", 0, 2500);
    corpus(&ws, "data/b.parquet", 2500, 700);
    ws.write(
        "p.yaml",
        "name: pq\nsource: { type: parquet, path: 'data/*.parquet', metadata: [year], batch_rows: 300 }\nsinks:\n  - { type: arrow, path: out/all.arrow }\n",
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert!(
        run.stdout()
            .contains("3200 records in, 3200 chunks out, 0 dead-lettered"),
        "{}",
        run.stdout()
    );

    let batch = read_ipc(&ws.path("out/all.arrow"));
    assert_eq!(batch.num_rows(), 3200);
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["id", "text", "year"],
        "only the needed columns are read"
    );
    let years = batch.column_by_name("year").unwrap();
    let years = years.as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(
        (0..3200).all(|i| years.value(i) == 1900 + i as i64),
        "rows keep file and row order"
    );

    let ids = strs(&batch, "id");
    let texts = strs(&batch, "text");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3200);
    assert!(
        ids.iter()
            .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert_eq!(
        ids[0],
        vecpipe::text_id(&texts[0]),
        "id is a stable hash of the text"
    );
}

#[test]
fn rotation_splits_files_by_rows_and_leaves_no_temporary_files() {
    let ws = Workspace::new();
    corpus(&ws, "in.parquet", 0, 2500);
    ws.write(
        "p.yaml",
        "name: rot\nsource: { type: parquet, path: in.parquet, batch_rows: 400 }\nsinks:\n  - { type: arrow, path: out/part.parquet, rotate_rows: 1000 }\n",
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let mut files: Vec<String> = std::fs::read_dir(ws.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "part-00000.parquet",
            "part-00001.parquet",
            "part-00002.parquet"
        ]
    );
    let rows: Vec<usize> = files
        .iter()
        .map(|f| read_parquet(&ws.path(&format!("out/{f}"))).num_rows())
        .collect();
    assert_eq!(rows, [1000, 1000, 500]);
    let last = read_parquet(&ws.path("out/part-00002.parquet"));
    assert_eq!(
        strs(&last, "text")[499],
        "document number 2499 talks about topic 0"
    );
}

#[test]
fn a_sink_can_read_from_a_named_stage_while_another_reads_the_end() {
    let ws = Workspace::new();
    ws.write(
        "in.jsonl",
        "{\"id\": \"a\", \"text\": \"one two three four five six seven eight nine ten\"}\n{\"id\": \"b\", \"text\": \"short\"}\n",
    );
    ws.vecpipe(&["bm25", "fit", "--input", "in.jsonl", "--out", "bm25.json"])
        .expect_code(0);
    ws.write(
        "p.yaml",
        "name: branch\nsource: { type: jsonl, path: in.jsonl, id_field: id }\nstages:\n  - { id: chunks, type: chunk, max_chars: 20 }\n  - { type: bm25, params: bm25.json }\nsinks:\n  - { type: arrow, path: out/chunks.arrow, inputs: [chunks] }\n  - { type: arrow, path: out/vectors.parquet }\n",
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let chunks = read_ipc(&ws.path("out/chunks.arrow"));
    let vectors = read_parquet(&ws.path("out/vectors.parquet"));
    assert!(chunks.column_by_name("sparse").is_none());
    assert!(vectors.column_by_name("sparse").is_some());
    assert_eq!(strs(&chunks, "id"), strs(&vectors, "id"));
    assert!(chunks.num_rows() > 2);
}

#[test]
fn chunking_by_tokens_uses_the_tokenizer_file() {
    let ws = Workspace::new();
    // A word-level tokenizer: every whitespace-separated word is one token.
    let vocab: serde_json::Map<String, serde_json::Value> =
        ["[UNK]", "alpha", "beta", "gamma", "delta"]
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), serde_json::json!(i)))
            .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    ws.write("tokenizer.json", tokenizer.to_string());
    ws.write(
        "in.jsonl",
        "{\"text\": \"alpha beta gamma delta alpha beta gamma delta alpha beta\"}\n",
    );
    ws.write(
        "p.yaml",
        "name: tok\nsource: { type: jsonl, path: in.jsonl }\nstages:\n  - { type: chunk, max_tokens: 4, overlap: 1, tokenizer: tokenizer.json }\nsinks:\n  - { type: arrow, path: out/t.arrow }\n",
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let texts = strs(&read_ipc(&ws.path("out/t.arrow")), "text");
    assert!(texts.len() >= 3, "{texts:?}");
    assert!(
        texts.iter().all(|t| t.split_whitespace().count() <= 4),
        "{texts:?}"
    );
    // Overlap: each chunk starts with the last word of the previous one.
    for pair in texts.windows(2) {
        assert_eq!(
            pair[0].split_whitespace().last(),
            pair[1].split_whitespace().next(),
            "{texts:?}"
        );
    }

    ws.write("broken.json", "{not json");
    ws.write(
        "q.yaml",
        std::fs::read_to_string(ws.path("p.yaml"))
            .unwrap()
            .replace("tokenizer.json", "broken.json"),
    );
    let run = ws.vecpipe(&["run", "q.yaml"]).expect_code(2);
    assert!(
        run.stderr().contains("cannot load tokenizer broken.json"),
        "{}",
        run.stderr()
    );
}

#[test]
fn column_data_survives_a_round_trip_unchanged() {
    let ws = Workspace::new();
    let text = "naïve café — 東京 emoji 🚀 and \"quotes\"";
    ws.write(
        "in.jsonl",
        serde_json::json!({"id": "u", "text": text, "meta": {"k": [1, 2]}}).to_string() + "\n",
    );
    ws.write(
        "p.yaml",
        "name: rt\nsource: { type: jsonl, path: in.jsonl, id_field: id, metadata: [meta] }\nsinks:\n  - { type: arrow, path: out/rt.parquet }\n",
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let batch = read_parquet(&ws.path("out/rt.parquet"));
    assert_eq!(strs(&batch, "text"), [text]);
    assert_eq!(strs(&batch, "meta"), ["{\"k\":[1,2]}"]);
    assert_eq!(batch.column_by_name("id").unwrap().null_count(), 0);
}

#[test]
fn shards_split_row_groups_without_overlap_and_together_cover_everything() {
    let ws = Workspace::new();
    corpus(&ws, "data/a.parquet", 0, 2500);
    corpus(&ws, "data/b.parquet", 2500, 700);
    for k in 0..2 {
        ws.write(
            &format!("p{k}.yaml"),
            format!("name: shard\nsource: {{ type: parquet, path: 'data/*.parquet', metadata: [year] }}\nsinks:\n  - {{ type: arrow, path: out/shard{k}.arrow }}\n"),
        );
        ws.vecpipe(&["run", &format!("p{k}.yaml"), "--shard", &format!("{k}/2")])
            .expect_code(0);
    }
    let years = |k: usize| -> std::collections::BTreeSet<i64> {
        let batch = read_ipc(&ws.path(&format!("out/shard{k}.arrow")));
        let years = batch.column_by_name("year").unwrap();
        let years = years.as_any().downcast_ref::<Int64Array>().unwrap();
        (0..years.len()).map(|i| years.value(i)).collect()
    };
    let (a, b) = (years(0), years(1));
    assert!(!a.is_empty() && !b.is_empty());
    assert!(a.is_disjoint(&b));
    assert_eq!(a.len() + b.len(), 3200);
    assert!(ws.path(".vecpipe/state/shard.shard-0-of-2.jsonl").exists());

    let run = ws
        .vecpipe(&["run", "p0.yaml", "--shard", "2/2"])
        .expect_code(2);
    assert!(run.stderr().contains("K < N"), "{}", run.stderr());
}

#[test]
fn resume_skips_the_row_groups_a_previous_run_finished() {
    let ws = Workspace::new();
    corpus(&ws, "data/a.parquet", 0, 2500);
    ws.write(
        "p.yaml",
        "name: resumable\nsource: { type: parquet, path: data/a.parquet }\nsinks:\n  - { type: arrow, path: out/a.arrow }\n",
    );
    let first = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert_eq!(first.summary_number("records"), 2500);
    let state = std::fs::read_to_string(ws.path(".vecpipe/state/resumable.jsonl")).unwrap();
    assert_eq!(
        state.lines().count(),
        3,
        "three row groups finished: {state}"
    );
    let again = ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    assert_eq!(again.summary_number("records"), 0, "{}", again.stdout());

    // A state file naming only the first row group (as after a crash) resumes with the rest.
    let first_line = state
        .lines()
        .find(|l| l.contains("\"row_group\":0"))
        .unwrap()
        .to_string();
    ws.write("partial.jsonl", first_line + "\n");
    let resumed = ws
        .vecpipe(&["run", "p.yaml", "--resume", "--state", "partial.jsonl"])
        .expect_code(0);
    assert_eq!(resumed.summary_number("records"), 1500);
    let rows = read_ipc(&ws.path("out/a.arrow"));
    assert_eq!(
        strs(&rows, "text")[0],
        "document number 1000 talks about topic 6"
    );
}
