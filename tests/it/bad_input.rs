//! Bad input gets a clear error or the dead letter — never a panic, never silent loss.

use std::sync::Arc;

use crate::common::*;
use arrow::array::{BinaryArray, Int64Array, StringArray};

fn pipeline(source: &str) -> String {
    format!(
        "name: bad\nsource: {source}\nstages:\n  - {{ type: chunk, max_chars: 500 }}\nsinks:\n  - {{ type: arrow, path: out/rows.arrow }}\ndead_letter: {{ path: out/dead.jsonl }}\n"
    )
}

#[test]
fn bad_jsonl_lines_are_dead_lettered_with_reasons_and_good_ones_written() {
    let ws = Workspace::new();
    let mut data = Vec::new();
    data.extend_from_slice(b"{\"id\": \"good-1\", \"text\": \"first good record\"}\n");
    data.extend_from_slice(b"{\"id\": \"broken\", \"text\": \n");
    data.extend_from_slice(b"{\"id\": \"no-text\", \"body\": \"wrong field\"}\n");
    data.extend_from_slice(b"{\"id\": \"empty\", \"text\": \"   \"}\n");
    data.extend_from_slice(b"{\"id\": \"bytes\", \"text\": \"caf\xC3\x28\"}\n");
    data.extend_from_slice(
        format!(
            "{{\"id\": \"huge\", \"text\": \"{}\"}}\n",
            "x".repeat(5 << 20)
        )
        .as_bytes(),
    );
    data.extend_from_slice(b"[1, 2, 3]\n");
    data.extend_from_slice(b"\n");
    data.extend_from_slice(b"{\"id\": 42, \"text\": \"second good record\"}\n");
    ws.write("in.jsonl", &data);
    ws.write(
        "p.yaml",
        pipeline("{ type: jsonl, path: in.jsonl, id_field: id }"),
    );

    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert!(
        run.stdout()
            .contains("8 records in, 2 chunks out, 6 dead-lettered"),
        "{}",
        run.stdout()
    );

    let rows = read_ipc(&ws.path("out/rows.arrow"));
    assert_eq!(strs(&rows, "doc_id"), ["good-1", "42"]);

    let letters = dead_letters(&ws.path("out/dead.jsonl"));
    let reasons: Vec<(&str, &str)> = letters
        .iter()
        .map(|l| {
            (
                l["position"].as_str().unwrap(),
                l["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(
        reasons[0].0.ends_with("in.jsonl:2") && reasons[0].1.starts_with("invalid JSON"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].1, "missing text field `text`");
    assert_eq!(reasons[2].1, "empty text");
    assert!(reasons[3].1.starts_with("invalid UTF-8"), "{reasons:?}");
    assert!(
        reasons[4].0.ends_with("in.jsonl:6") && reasons[4].1.contains("over"),
        "{reasons:?}"
    );
    assert_eq!(reasons[5].1, "not a JSON object");
    // The raw record is kept, truncated, so the 5 MiB line does not bloat the file.
    assert!(letters[4]["raw"].as_str().unwrap().len() < 2048);
}

#[test]
fn text_just_over_max_text_bytes_is_dead_lettered_not_truncated() {
    let ws = Workspace::new();
    ws.write(
        "in.jsonl",
        format!(
            "{{\"text\": \"{}\"}}\n{{\"text\": \"ok\"}}\n",
            "y".repeat(2000)
        ),
    );
    ws.write(
        "p.yaml",
        pipeline("{ type: jsonl, path: in.jsonl, max_text_bytes: 1000 }"),
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert!(
        run.stdout()
            .contains("2 records in, 1 chunks out, 1 dead-lettered"),
        "{}",
        run.stdout()
    );
    let letters = dead_letters(&ws.path("out/dead.jsonl"));
    assert_eq!(
        letters[0]["reason"],
        "text is 2000 bytes, over max_text_bytes (1000)"
    );
}

#[test]
fn parquet_text_column_of_int64_is_a_config_error_naming_file_and_column() {
    let ws = Workspace::new();
    write_parquet(
        &ws.path("nums.parquet"),
        vec![
            ("id", Arc::new(StringArray::from(vec!["a", "b"]))),
            ("text", Arc::new(Int64Array::from(vec![1, 2]))),
        ],
        10,
    );
    ws.write("p.yaml", pipeline("{ type: parquet, path: nums.parquet }"));
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert!(
        run.stderr()
            .contains("nums.parquet: column `text` is Int64, expected a string column"),
        "{}",
        run.stderr()
    );
    assert!(!ws.path("out/rows.arrow").exists());
}

#[test]
fn parquet_missing_column_names_it() {
    let ws = Workspace::new();
    write_parquet(
        &ws.path("d.parquet"),
        vec![("body", Arc::new(StringArray::from(vec!["x"])))],
        10,
    );
    ws.write("p.yaml", pipeline("{ type: parquet, path: d.parquet }"));
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert!(
        run.stderr()
            .contains("d.parquet: column `text` does not exist"),
        "{}",
        run.stderr()
    );
}

#[test]
fn parquet_null_text_and_invalid_utf8_binary_are_dead_lettered() {
    let ws = Workspace::new();
    write_parquet(
        &ws.path("d.parquet"),
        vec![
            (
                "id",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    None,
                ])),
            ),
            (
                "text",
                Arc::new(BinaryArray::from(vec![
                    Some(&b"fine text"[..]),
                    None,
                    Some(&b"\xff\xfe"[..]),
                    Some(&b"no id"[..]),
                ])),
            ),
        ],
        10,
    );
    ws.write(
        "p.yaml",
        pipeline("{ type: parquet, path: d.parquet, id_field: id }"),
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert!(
        run.stdout()
            .contains("4 records in, 1 chunks out, 3 dead-lettered"),
        "{}",
        run.stdout()
    );
    let letters = dead_letters(&ws.path("out/dead.jsonl"));
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "missing text field `text`");
    assert!(reasons[1].starts_with("invalid UTF-8"));
    assert_eq!(reasons[2], "missing id field `id`");
    assert!(
        letters[1]["position"]
            .as_str()
            .unwrap()
            .ends_with("d.parquet row_group 0 row 2")
    );
}

#[test]
fn typo_in_the_yaml_is_reported_with_line_and_column_and_exit_2() {
    let ws = Workspace::new();
    ws.write("in.jsonl", "{\"text\": \"a\"}\n");
    ws.write(
        "p.yaml",
        "name: typo\nsource: { type: jsonl, path: in.jsonl }\nstages:\n  - type: chunk\n    max_chars: 100\n    overlpa: 10\nsinks:\n  - { type: arrow, path: out/x.parquet }\n",
    );
    for command in ["validate", "run"] {
        let run = ws.vecpipe(&[command, "p.yaml"]).expect_code(2);
        assert!(
            run.stderr().contains(
                "p.yaml:6:5: stages[0].overlpa: Unknown field `overlpa`, expected one of"
            ),
            "{command}: {}",
            run.stderr()
        );
    }
}

#[test]
fn missing_source_files_and_unset_variables_exit_2() {
    let ws = Workspace::new();
    ws.write("p.yaml", pipeline("{ type: jsonl, path: nowhere/*.jsonl }"));
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert!(
        run.stderr()
            .contains("source path `nowhere/*.jsonl` matches no jsonl files"),
        "{}",
        run.stderr()
    );

    ws.write(
        "q.yaml",
        pipeline("{ type: jsonl, path: '${VECPIPE_TEST_UNSET_VAR}' }"),
    );
    let run = ws.vecpipe(&["validate", "q.yaml"]).expect_code(2);
    assert!(run.stderr().contains("q.yaml:2:"), "{}", run.stderr());
    assert!(
        run.stderr().contains("VECPIPE_TEST_UNSET_VAR"),
        "{}",
        run.stderr()
    );
}

#[test]
fn missing_bm25_params_file_is_a_clear_config_error() {
    let ws = Workspace::new();
    ws.write("in.jsonl", "{\"text\": \"a\"}\n");
    ws.write(
        "p.yaml",
        "name: x\nsource: { type: jsonl, path: in.jsonl }\nstages:\n  - { type: bm25, params: models/none.json }\nsinks:\n  - { type: arrow, path: out/x.parquet }\n",
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        run.stderr(),
        "error: BM25 params models/none.json do not exist yet: fit them on the corpus first (`vecpipe bm25 fit --pipeline` with this pipeline file)\n"
    );
}

#[test]
fn log_lines_to_a_pipe_carry_no_colour_codes() {
    let ws = Workspace::new();
    ws.write("w.jsonl", "{\"id\":\"a\",\"text\":\"fine\"}\n{not json\n");
    ws.write(
        "w.yaml",
        "name: w\nsource: { type: jsonl, path: w.jsonl, id_field: id }\nsinks:\n  - { type: jsonl, path: out.jsonl }\n",
    );
    let run = ws.vecpipe(&["run", "w.yaml"]).expect_code(0);
    let stderr = run.stderr();
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a pipe: {stderr:?}"
    );
    // Each line: a timestamp, then the level, target and fields in plain text.
    assert_eq!(
        run.log_lines(),
        [
            " WARN vecpipe::dead_letter: dead letter (no dead_letter output configured) position=\"w.jsonl:2\" reason=\"invalid JSON: key must be a string at line 1 column 2\""
        ]
    );
}

#[test]
fn a_text_field_no_record_has_is_refused_by_validate_and_stops_the_run_with_exit_2() {
    let ws = Workspace::new();
    let lines: String = (1..=200)
        .map(|i| format!("{{\"id\": \"d{i}\", \"body\": \"text {i}\"}}\n"))
        .collect();
    ws.write("docs.jsonl", lines);
    ws.write(
        "p.yaml",
        "name: p\nsource: { type: jsonl, path: docs.jsonl, id_field: id }\nsinks:\n  - { type: jsonl, path: out.jsonl }\ndead_letter: { path: dead.jsonl }\n",
    );
    let validate = ws.vecpipe(&["validate", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        validate.stderr(),
        "error: p.yaml:2:30: source.path: none of the first 200 records can be read: missing text field `text`; check `text_field`, `id_field` and `metadata` against the records\n"
    );
    assert!(!ws.path("dead.jsonl").exists(), "validate wrote nothing");

    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        run.stderr(),
        "error: the first 200 records were all dead-lettered, each for the same reason: missing text field `text`; check the source's `text_field`, `id_field` and `metadata` against the records\n"
    );
    assert_eq!(dead_letters(&ws.path("dead.jsonl")).len(), 200);

    // One good record among them: the run goes on and writes it.
    let mut mixed = std::fs::read_to_string(ws.path("docs.jsonl")).unwrap();
    mixed.push_str("{\"id\": \"good\", \"text\": \"readable\"}\n");
    ws.write("docs.jsonl", mixed);
    std::fs::remove_file(ws.path("dead.jsonl")).unwrap();
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert_eq!(run.summary_number("dead-lettered"), 200);
    assert_eq!(
        std::fs::read_to_string(ws.path("out.jsonl")).unwrap(),
        "{\"id\":\"good\",\"text\":\"readable\"}\n"
    );
}
