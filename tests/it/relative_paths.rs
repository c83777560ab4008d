//! Paths in a pipeline file are relative to the file, as docker compose reads
//! its files: the same pipeline run from its parent directory and from its
//! own directory reads the same corpus, model and Milvus Lite data, and
//! `validate` creates nothing.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;

/// Every file and directory under `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            found.insert(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            }
        }
    }
    found
}

#[test]
fn a_pipeline_reads_and_writes_next_to_its_file_from_any_directory_and_validate_creates_nothing() {
    setup(None);
    let ws = Workspace::new();
    ws.write(
        "app/in/docs.jsonl",
        concat!(
            r#"{"id":"turing","text":"Alan Turing was born in Maida Vale, London."}"#,
            "\n",
            r#"{"id":"lovelace","text":"Ada Lovelace wrote the first published program."}"#,
            "\n",
            r#"{"id":"blank","text":""}"#,
            "\n",
        ),
    );
    std::os::unix::fs::symlink(
        repo_root().join("models/all-MiniLM-L6-v2"),
        ws.path("app/models-here"),
    )
    .unwrap();
    ws.write(
        "app/p.yaml",
        "name: here\nsource: { type: jsonl, path: in/docs.jsonl, id_field: id }\nstages:\n  - { type: dense, model: ./models-here }\nsinks:\n  - { type: milvus, uri: milvus-data, collection: docs }\ndead_letter: { path: out/dead.jsonl }\n",
    );
    let before = tree(ws.dir.path());

    let validate = ws.vecpipe(&["validate", "app/p.yaml"]).expect_code(0);
    assert_output_eq!(
        validate.stdout(),
        "app/p.yaml: ok (1 stage(s), 1 sink(s))\n"
    );
    assert_eq!(tree(ws.dir.path()), before, "validate created files");

    let first = ws.vecpipe(&["run", "app/p.yaml"]).expect_code(0);
    assert_eq!(first.summary_number("records"), 3, "{}", first.stdout());
    let created: BTreeSet<String> = tree(ws.dir.path())
        .difference(&before)
        .filter(|p| !p.starts_with("app/milvus-data/"))
        .cloned()
        .collect();
    assert_eq!(
        created,
        ["app/milvus-data", "app/out", "app/out/dead.jsonl"]
            .map(String::from)
            .into(),
        "the run wrote outside the pipeline's directory"
    );
    let dead = std::fs::read_to_string(ws.path("app/out/dead.jsonl")).unwrap();
    let letter: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert_eq!(
        (&letter["position"], &letter["reason"], dead.lines().count()),
        (&"app/in/docs.jsonl:3".into(), &"empty text".into(), 1),
        "{dead}"
    );

    // From the pipeline's own directory: the same data, nothing re-embedded
    // (the model is named by its files, not by the path it was reached by).
    let mut again = ws.command(&["run", "p.yaml"]);
    again.current_dir(ws.path("app"));
    let again = Run(again.output().unwrap()).expect_code(0);
    assert_eq!(again.summary_number("unchanged"), 2, "{}", again.stdout());

    let search = ws
        .vecpipe(&[
            "search",
            "app/p.yaml",
            "Where was Turing born?",
            "--json",
            "--limit",
            "1",
        ])
        .expect_code(0);
    let mut hit: serde_json::Value = serde_json::from_str(search.stdout().trim()).unwrap();
    assert!(hit["score"].as_f64().unwrap() > 0.5, "{hit}");
    hit.as_object_mut().unwrap().remove("score");
    assert_eq!(
        hit,
        serde_json::json!({"rank": 1, "id": "turing", "doc_id": null,
            "text": "Alan Turing was born in Maida Vale, London."})
    );
    assert!(!ws.path("milvus-data").exists() && !ws.path(".vecpipe").exists());
}
