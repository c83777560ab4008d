//! Incremental runs against Milvus Lite and the real Milvus 2.3 server: unchanged documents
//! are neither embedded nor written again, edited ones are replaced, and a
//! change of chunking or model re-embeds everything.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// Document `i` of the corpus; every seventh is long enough for several chunks.
fn document(i: usize, edit: &str) -> String {
    let body = if i.is_multiple_of(7) {
        "It goes on about vectors, fingerprints and search for a while. ".repeat(5)
    } else {
        String::new()
    };
    serde_json::json!({
        "id": format!("doc-{i:03}"),
        "title": format!("Title {i}"),
        "text": format!("Document {i} is about topic {}{edit}. {body}", i % 11),
    })
    .to_string()
        + "\n"
}

fn corpus(edits: &BTreeMap<usize, &str>) -> String {
    (0..100)
        .map(|i| document(i, edits.get(&i).copied().unwrap_or("")))
        .collect()
}

/// Chunks of `max_chars`, `model`, and BM25 where the server has sparse
/// vectors (Milvus Lite; not the real 2.3); fits the BM25 params then.
fn pipeline(ws: &Workspace, milvus: &MilvusServer, max_chars: usize, model: &str) {
    let bm25 = match milvus.kind {
        MilvusKind::Lite => "  - { type: bm25, params: bm25.json }\n",
        MilvusKind::Real => "",
    };
    ws.write(
        "p.yaml",
        format!(
            "name: inc\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id, metadata: [title] }}\nstages:\n  - {{ type: chunk, max_chars: {max_chars} }}\n  - {{ type: dense, model: {model} }}\n{bm25}sinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            milvus.uri
        ),
    );
}

/// `bm25 fit` when the pipeline has a BM25 stage.
fn fit(ws: &Workspace, milvus: &MilvusServer) {
    if milvus.kind == MilvusKind::Lite {
        ws.vecpipe(&["bm25", "fit", "--pipeline", "p.yaml"])
            .expect_code(0);
    }
}

/// Every row of the collection, by id: (doc_id, text, fingerprint, dense vector).
fn rows(uri: &str) -> BTreeMap<String, Value> {
    milvus_rows(uri, "docs", "id,doc_id,text,title,fingerprint,dense")
        .into_iter()
        .map(|row| (row["id"].as_str().unwrap().to_string(), row))
        .collect()
}

/// A workspace with the 100-document corpus, its pipeline (chunks of
/// `max_chars`, the setup's dense model, BM25) and fitted BM25 params.
fn fitted(milvus: &MilvusServer, max_chars: usize) -> (Workspace, String) {
    let ws = Workspace::new();
    let model = repo_root()
        .join("models/all-MiniLM-L6-v2")
        .display()
        .to_string();
    pipeline(&ws, milvus, max_chars, &model);
    ws.write("corpus.jsonl", corpus(&BTreeMap::new()));
    fit(&ws, milvus);
    (ws, model)
}

fn run(ws: &Workspace, args: &[&str]) -> Run {
    ws.vecpipe(&[&["run", "p.yaml"], args].concat())
        .expect_code(0)
}

fn an_unchanged_corpus_embeds_nothing_and_three_edits_reembed_exactly_those(kind: MilvusKind) {
    let milvus = MilvusServer::start_kind(kind);
    let (ws, _) = fitted(&milvus, 150);
    let first = run(&ws, &[]);
    assert_eq!(first.summary_number("unchanged"), 0);
    let chunks = first.summary_number("chunks");
    let before = rows(&milvus.uri);
    assert_eq!(before.len() as u64, chunks);
    assert!(chunks > 100, "some documents make several chunks");
    assert!(
        before
            .values()
            .all(|r| r["fingerprint"].as_str().unwrap().len() == 32)
    );

    let again = run(&ws, &[]);
    assert_eq!(again.summary_number("records"), 100);
    assert_eq!(again.summary_number("unchanged"), 100);
    assert_eq!(
        again.summary_number("chunks"),
        0,
        "nothing reached the dense stage"
    );
    assert_eq!(rows(&milvus.uri), before, "the collection is as it was");

    // Three documents change; doc-007 (several chunks) becomes one chunk.
    let edits = BTreeMap::from([(3, " (revised)"), (50, " (revised)"), (98, " (revised)")]);
    let mut text = corpus(&edits);
    text = text.replace(
        &document(7, ""),
        &(serde_json::json!({"id": "doc-007", "title": "Title 7", "text": "Now short."})
            .to_string()
            + "\n"),
    );
    ws.write("corpus.jsonl", text);
    let edited = run(&ws, &[]);
    assert_eq!(edited.summary_number("unchanged"), 96);
    let after = rows(&milvus.uri);
    let changed = ["doc-003", "doc-007", "doc-050", "doc-098"];
    let rewritten: Vec<&Value> = after
        .values()
        .filter(|r| changed.contains(&r["doc_id"].as_str().unwrap()))
        .collect();
    assert_eq!(edited.summary_number("chunks"), rewritten.len() as u64);
    assert_eq!(
        after
            .keys()
            .filter(|id| id.starts_with("doc-007#"))
            .collect::<Vec<_>>(),
        ["doc-007#0"],
        "the shorter document's stale chunks are gone"
    );
    assert_eq!(after["doc-007#0"]["text"], "Now short.");
    for id in ["doc-003#0", "doc-050#0", "doc-098#0"] {
        assert!(after[id]["text"].as_str().unwrap().contains("(revised)"));
        assert_ne!(after[id]["fingerprint"], before[id]["fingerprint"]);
    }
    let untouched = |rows: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        rows.iter()
            .filter(|(_, r)| !changed.contains(&r["doc_id"].as_str().unwrap()))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect()
    };
    assert_eq!(untouched(&after), untouched(&before));

    // --force embeds and writes everything, and skips nothing.
    let forced = run(&ws, &["--force"]);
    assert!(
        !forced.stdout().contains("unchanged"),
        "{}",
        forced.stdout()
    );
    assert_eq!(forced.summary_number("chunks"), after.len() as u64);
    assert_eq!(rows(&milvus.uri), after);
}

#[test]
fn changing_the_chunk_size_or_the_model_reembeds_everything() {
    let milvus = MilvusServer::start();
    let (ws, model) = fitted(&milvus, 150);
    run(&ws, &[]);

    pipeline(&ws, &milvus, 90, &model);
    let rechunked = run(&ws, &[]);
    assert_eq!(rechunked.summary_number("unchanged"), 0);
    let ids = rows(&milvus.uri);
    assert_eq!(
        ids.len() as u64,
        rechunked.summary_number("chunks"),
        "no chunk of the old size is left"
    );

    // The same files reached by another path are the same model: a model
    // directory is named by its files, so moving it re-embeds nothing.
    std::os::unix::fs::symlink(&model, ws.path("same-model")).unwrap();
    pipeline(&ws, &milvus, 90, "./same-model");
    assert_eq!(run(&ws, &[]).summary_number("unchanged"), 100);

    // The same weights pooled otherwise (its `1_Pooling/config.json`) are another model.
    let other = ws.path("other-model");
    std::fs::create_dir_all(other.join("1_Pooling")).unwrap();
    for file in ["model.onnx", "tokenizer.json"] {
        std::os::unix::fs::symlink(Path::new(&model).join(file), other.join(file)).unwrap();
    }
    ws.write(
        "other-model/1_Pooling/config.json",
        r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    );
    pipeline(&ws, &milvus, 90, "./other-model");
    let remodelled = run(&ws, &[]);
    assert_eq!(remodelled.summary_number("unchanged"), 0);
    assert_eq!(remodelled.summary_number("chunks"), ids.len() as u64);
    assert_eq!(run(&ws, &[]).summary_number("unchanged"), 100);

    // Growing the BM25 vocabulary keeps every fingerprint: only the new
    // document is embedded. A new fit is a new vocabulary: all are.
    let mut text = corpus(&BTreeMap::new());
    text.push_str(
        &(serde_json::json!({"id": "doc-new", "text": "Zebras and okapis are new words."})
            .to_string()
            + "\n"),
    );
    ws.write("corpus.jsonl", text);
    ws.vecpipe(&[
        "bm25",
        "fit",
        "--pipeline",
        "p.yaml",
        "--update",
        "bm25.json",
    ])
    .expect_code(0);
    let grown = run(&ws, &[]);
    assert_eq!(grown.summary_number("unchanged"), 100);
    assert_eq!(grown.summary_number("chunks"), 1);
    ws.vecpipe(&["bm25", "fit", "--pipeline", "p.yaml"])
        .expect_code(0);
    assert_eq!(run(&ws, &[]).summary_number("unchanged"), 0);
}

#[test]
fn a_collection_without_a_fingerprint_field_keeps_working_and_a_new_one_skips_by_row_id() {
    let milvus = MilvusServer::start();
    let ws = Workspace::new();
    ws.write("corpus.jsonl", corpus(&BTreeMap::new()));
    // With a Parquet sink beside it the run is not incremental: the
    // collection is created without a fingerprint field, as before.
    ws.write(
        "old.yaml",
        format!(
            "name: old\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: dense }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n  - {{ type: arrow, path: out/old.parquet }}\n",
            milvus.uri
        ),
    );
    let old = ws.vecpipe(&["run", "old.yaml"]).expect_code(0);
    assert!(!old.stdout().contains("unchanged"), "{}", old.stdout());
    assert!(
        old.stdout().ends_with(" records/s (not incremental: the `arrow` sink rewrites its output each run, so every document was embedded; see Incremental runs)\n"),
        "the summary says why nothing was skipped: {}",
        old.stdout()
    );
    ws.write(
        "p.yaml",
        format!(
            "name: new\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: dense }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            milvus.uri
        ),
    );
    for _ in 0..2 {
        let run = run(&ws, &[]);
        assert_eq!(run.summary_number("unchanged"), 0);
        assert_eq!(run.summary_number("chunks"), 100);
        assert!(
            run.stderr().contains("has no `fingerprint` field"),
            "{}",
            run.stderr()
        );
    }
    assert_eq!(milvus_ids_in(&milvus.uri, "docs").len(), 100);

    // The same unchunked pipeline into a new collection: skipped by row id.
    let config = std::fs::read_to_string(ws.path("p.yaml")).unwrap();
    ws.write(
        "p.yaml",
        config.replace("collection: docs", "collection: fresh"),
    );
    assert_eq!(run(&ws, &[]).summary_number("unchanged"), 0);
    let again = run(&ws, &[]);
    assert_eq!(again.summary_number("unchanged"), 100);
    assert_eq!(again.summary_number("chunks"), 0);
}

fn sync_deletes_exactly_the_vanished_documents_and_refuses_after_a_failure_or_too_many(
    kind: MilvusKind,
) {
    let milvus = MilvusServer::start_kind(kind);
    let ws = Workspace::new();
    let model = repo_root().join("models/all-MiniLM-L6-v2");
    pipeline(&ws, &milvus, 150, &model.display().to_string());
    let keep = |ids: &dyn Fn(usize) -> bool| -> String {
        (0..100)
            .filter(|i| ids(*i))
            .map(|i| document(i, ""))
            .collect()
    };
    ws.write("corpus.jsonl", keep(&|_| true));
    fit(&ws, &milvus);
    assert_eq!(run(&ws, &["--sync"]).summary_number("deleted"), 0);
    let all = rows(&milvus.uri);
    let held_by = |rows: &BTreeMap<String, Value>, docs: &dyn Fn(usize) -> bool| {
        rows.iter()
            .filter(|(_, r)| {
                let doc = r["doc_id"].as_str().unwrap();
                docs(doc.trim_start_matches("doc-").parse().unwrap())
            })
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect::<BTreeMap<_, _>>()
    };

    // Five documents leave the source, two of them with several chunks.
    let gone = [7, 14, 20, 33, 41];
    let present = |i: usize| !gone.contains(&i);
    ws.write("corpus.jsonl", keep(&present));
    let synced = run(&ws, &["--sync"]);
    assert_eq!(synced.summary_number("unchanged"), 95);
    assert_eq!(synced.summary_number("deleted"), 5);
    assert_eq!(rows(&milvus.uri), held_by(&all, &present));

    // A run that fails deletes nothing: a bad record whose dead letter cannot be written.
    let fewer = |i: usize| present(i) && i >= 5;
    let config = std::fs::read_to_string(ws.path("p.yaml")).unwrap();
    ws.write(
        "p.yaml",
        format!("{config}dead_letter: {{ path: /dev/full }}\n"),
    );
    ws.write("corpus.jsonl", keep(&fewer) + "not json\n");
    let failed = ws.vecpipe(&["run", "p.yaml", "--sync"]).expect_code(1);
    assert!(
        failed.stderr().contains("No space left on device"),
        "{}",
        failed.stderr()
    );
    assert_eq!(rows(&milvus.uri), held_by(&all, &present));
    // Nor does a run that dead-lettered a record: the source was not read in full.
    ws.write(
        "p.yaml",
        format!("{config}dead_letter: {{ path: dead.jsonl }}\n"),
    );
    let refused = ws.vecpipe(&["run", "p.yaml", "--sync"]).expect_code(1);
    assert_output_eq!(
        refused.stderr(),
        "error: --sync: nothing deleted: 1 record(s) were dead-lettered, so the source was not read in full\n"
    );
    assert_eq!(rows(&milvus.uri), held_by(&all, &present));

    // Deleting more than the allowed share of the documents needs --force.
    ws.write("corpus.jsonl", keep(&fewer));
    let guarded = ["run", "p.yaml", "--sync", "--sync-max-delete", "0.03"];
    let refused = ws.vecpipe(&guarded).expect_code(1);
    assert_output_eq!(
        refused.stderr(),
        "error: --sync: nothing deleted: 5 of 95 documents are not in the source (5 %, more than --sync-max-delete 3 %); pass --force to delete them\n"
    );
    assert_eq!(rows(&milvus.uri), held_by(&all, &present));
    let forced = ws
        .vecpipe(&[&guarded[..], &["--force"]].concat())
        .expect_code(0);
    assert_eq!(forced.summary_number("deleted"), 5);
    assert_eq!(rows(&milvus.uri), held_by(&all, &fewer));
}

/// `--sync` over more rows than one listing page (4,096): every document is
/// listed, so exactly the vanished ones are deleted (Milvus 2.3 answered the
/// SDK's iterator a short page, which it took for the end: nothing deleted).
fn sync_lists_every_row_past_one_page_and_deletes_exactly_the_vanished(kind: MilvusKind) {
    let milvus = MilvusServer::start_kind(kind);
    let ws = Workspace::new();
    let model = repo_root().join("models/all-MiniLM-L6-v2");
    ws.write(
        "p.yaml",
        format!(
            "name: many\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: dense, model: {} }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            model.display(),
            milvus.uri
        ),
    );
    let corpus = |ids: &mut dyn Iterator<Item = usize>| {
        id_text_lines(ids.map(|i| (format!("doc-{i:05}"), format!("note {i}"))))
    };
    ws.write("corpus.jsonl", corpus(&mut (0..5_000)));
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    ws.write(
        "corpus.jsonl",
        corpus(&mut (0..5_000).filter(|i| i % 10 == 3)),
    );
    let synced = ws
        .vecpipe(&["run", "p.yaml", "--sync", "--force"])
        .expect_code(0);
    assert_eq!(synced.summary_number("deleted"), 4_500);
    let held: std::collections::BTreeSet<String> = milvus_ids(&milvus.uri).into_iter().collect();
    let expected: std::collections::BTreeSet<String> = (0..5_000)
        .filter(|i| i % 10 == 3)
        .map(|i| format!("doc-{i:05}"))
        .collect();
    assert_eq!(held, expected);
}

/// A real server refuses to load a collection without an index, and a run's
/// lookups start while its own sink is still creating the collection, then
/// its index (or another writer is). The lookup waits for the index instead
/// of failing the run: here the index is dropped, the run is seen waiting,
/// and the index made again lets it finish, every document unchanged.
#[test]
fn a_lookup_waits_for_the_collections_index_and_the_run_then_skips_every_unchanged_document() {
    use std::io::BufRead;
    let milvus = MilvusServer::start_kind(MilvusKind::Real);
    let (ws, _) = fitted(&milvus, 150);
    run(&ws, &[]);
    let before = rows(&milvus.uri);
    let index = |action: &str| {
        let args = [milvus.uri.as_str(), "docs", "dense", action];
        python_script("milvus_index.py", &args.map(std::ffi::OsStr::new));
    };
    index("drop");

    let mut child = ws
        .command(&["run", "p.yaml"])
        .env("VECPIPE_LOG", "vecpipe=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, heard) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut said = Vec::new();
    while !said
        .iter()
        .any(|l: &String| l.contains("has no index yet: waiting"))
    {
        match heard.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(line) => said.push(line),
            Err(e) => panic!(
                "the run never waited for the index ({e}):\n{}",
                said.join("\n")
            ),
        }
    }
    index("create");
    let again = wait_for_exit(child, std::time::Duration::from_secs(300), "the run");
    let said: Vec<String> = said.into_iter().chain(heard.try_iter()).collect();
    assert_eq!(again.code(), 0, "{}", said.join("\n"));
    assert_eq!(again.summary_number("unchanged"), 100, "{}", again.stdout());
    assert_eq!(again.summary_number("chunks"), 0);
    assert_eq!(rows(&milvus.uri), before, "the collection is as it was");
}

on_every_milvus!(
    an_unchanged_corpus_embeds_nothing_and_three_edits_reembed_exactly_those,
    sync_deletes_exactly_the_vanished_documents_and_refuses_after_a_failure_or_too_many,
    sync_lists_every_row_past_one_page_and_deletes_exactly_the_vanished,
);
