//! BM25 interoperability with pymilvus.model's `BM25EmbeddingFunction`:
//! same params when fitted on the same corpus, and the same document and
//! query vectors whichever side saved the params file.

use std::path::{Path, PathBuf};

use crate::common::*;
use vecpipe::bm25::{Analyzer, Bm25Encoder, Bm25Params};
use vecpipe::bm25::{AnalyzerConfig, StopWords, TokenizerKind};

pub(crate) type Sparse = Vec<Vec<(u32, f32)>>;

pub(crate) fn reference(args: &[&Path]) -> String {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    String::from_utf8(python_script("bm25_reference.py", &args)).unwrap()
}

fn whitespace_lowercase() -> AnalyzerConfig {
    AnalyzerConfig {
        language: None,
        tokenizer: TokenizerKind::Whitespace,
        lowercase: true,
        stop_words: StopWords::None,
        stemmer: "none".into(),
    }
}

const QUERIES: &[&str] = &[
    "the quick fox",
    "Vectors vectors and Milvus",
    "search the the index",
    "nothing-known-here",
];

/// A corpus with repeated words, mixed case, and words in over half the
/// documents (negative idf, replaced by epsilon × mean idf).
fn corpus() -> Vec<String> {
    let subjects = [
        "The quick fox",
        "A lazy dog",
        "The Milvus index",
        "Sparse vectors",
        "The BM25 ranker",
    ];
    let verbs = ["jumps over", "stores", "ranks", "finds the", "indexes"];
    let objects = [
        "the fence",
        "dense and sparse vectors",
        "the documents fast",
        "every query",
        "the the corpus",
    ];
    let mut docs = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for (j, v) in verbs.iter().enumerate() {
            let o = objects[(i + 2 * j) % objects.len()];
            docs.push(format!(
                "{s} {v} {o} doc{} {}",
                i * 5 + j,
                if j % 2 == 0 { "Search search" } else { "" }
            ));
        }
    }
    docs
}

fn write_corpus(ws: &Workspace) -> PathBuf {
    let records = corpus().into_iter().enumerate();
    ws.write(
        "corpus.jsonl",
        id_text_lines(records.map(|(i, text)| (format!("d{i}"), text))),
    )
}

/// Document vectors of `corpus.jsonl` through a real vecpipe pipeline
/// (JSONL → bm25 → Parquet), the stage's analyzer written as `analyzer`.
pub(crate) fn vecpipe_documents(ws: &Workspace, params: &str, analyzer: &str) -> Sparse {
    ws.write(
        "bm25.yaml",
        format!(
            "name: interop\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - type: bm25\n    params: {params}\n    analyzer: {analyzer}\nsinks:\n  - {{ type: arrow, path: out/{params}.parquet }}\n"
        ),
    );
    ws.vecpipe(&["run", "bm25.yaml"]).expect_code(0);
    sparse_rows(
        &read_parquet(&ws.path(&format!("out/{params}.parquet"))),
        "sparse",
    )
}

const WHITESPACE_LOWERCASE: &str =
    "{ tokenizer: whitespace, lowercase: true, stop_words: none, stemmer: none }";

fn vecpipe_queries(params_path: &Path) -> Sparse {
    let params = Bm25Params::load(params_path).unwrap();
    let encoder = Bm25Encoder::new(params, Analyzer::new(&whitespace_lowercase()).unwrap());
    QUERIES.iter().map(|q| encoder.encode_query(q)).collect()
}

fn pymilvus_vectors(ws: &Workspace, params: &Path) -> (Sparse, Sparse) {
    let queries: Vec<String> = QUERIES.iter().map(|q| q.to_string()).collect();
    pymilvus_encodings(ws, params, &queries, &[])
}

/// pymilvus.model's vectors of `corpus.jsonl` and of `queries` with the
/// params file `params`; `options` are the reference script's
/// (`--language L`).
pub(crate) fn pymilvus_encodings(
    ws: &Workspace,
    params: &Path,
    queries: &[String],
    options: &[&str],
) -> (Sparse, Sparse) {
    let queries = ws.write("queries.json", serde_json::to_string(queries).unwrap());
    let corpus = ws.path("corpus.jsonl");
    let mut args = vec![Path::new("encode"), params, &corpus, &queries];
    args.extend(options.iter().map(Path::new));
    let out: serde_json::Value = serde_json::from_str(&reference(&args)).unwrap();
    let parse = |v: &serde_json::Value| -> Sparse {
        v.as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
                    .collect()
            })
            .collect()
    };
    (parse(&out["documents"]), parse(&out["queries"]))
}

pub(crate) fn assert_same(what: &str, ours: &Sparse, theirs: &Sparse) {
    assert_eq!(ours.len(), theirs.len(), "{what}: row count");
    for (row, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let a_idx: Vec<u32> = a.iter().map(|e| e.0).collect();
        let b_idx: Vec<u32> = b.iter().map(|e| e.0).collect();
        assert_eq!(a_idx, b_idx, "{what} row {row}: indexes");
        for ((_, x), (_, y)) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-6, "{what} row {row}: {x} vs {y}");
        }
    }
    assert!(
        ours.iter().any(|r| !r.is_empty()),
        "{what}: vectors are not all empty"
    );
}

#[test]
fn vecpipe_and_pymilvus_fit_identical_params_and_encode_identically_both_ways() {
    let ws = Workspace::new();
    let corpus_file = write_corpus(&ws);

    // Fit on both sides.
    ws.vecpipe(&[
        "bm25",
        "fit",
        "--input",
        "corpus.jsonl",
        "--tokenizer",
        "whitespace",
        "--stop-words",
        "none",
        "--stemmer",
        "none",
        "--out",
        "ours.json",
    ])
    .expect_code(0);
    let theirs_path = ws.path("theirs.json");
    reference(&[Path::new("fit"), &corpus_file, &theirs_path]);

    let ours = Bm25Params::load(&ws.path("ours.json")).unwrap();
    let theirs = Bm25Params::load(&theirs_path).unwrap();
    assert_eq!(ours.idf_word, theirs.idf_word);
    assert_eq!(ours.corpus_size, theirs.corpus_size);
    assert_eq!(ours.avgdl, theirs.avgdl);
    assert_eq!(ours.idf_value.len(), theirs.idf_value.len());
    for (word, (a, b)) in ours
        .idf_word
        .iter()
        .zip(ours.idf_value.iter().zip(&theirs.idf_value))
    {
        assert!((a - b).abs() <= 1e-6, "idf of {word}: {a} vs {b}");
    }
    // "the" is in over half the documents: its raw idf is negative, so both
    // sides must have floored it to epsilon × mean idf.
    let n = corpus().len() as f64;
    let df = corpus()
        .iter()
        .filter(|d| d.to_lowercase().split_whitespace().any(|w| w == "the"))
        .count() as f64;
    assert!(
        (n - df + 0.5).ln() - (df + 0.5).ln() < 0.0,
        "the corpus exercises the epsilon floor"
    );
    let the = theirs.idf_word.iter().position(|w| w == "the").unwrap();
    assert!(theirs.idf_value[the] > 0.0);
    assert_eq!(
        ours.analyzer,
        Some(whitespace_lowercase()),
        "vecpipe stores its analyzer"
    );
    assert_eq!(theirs.analyzer, None);

    // vecpipe's file, loaded by pymilvus; pymilvus' file, loaded by vecpipe.
    for (params, name) in [
        (ws.path("ours.json"), "ours.json"),
        (theirs_path.clone(), "theirs.json"),
    ] {
        let (py_docs, py_queries) = pymilvus_vectors(&ws, &params);
        assert_same(
            &format!("documents ({name})"),
            &vecpipe_documents(&ws, name, WHITESPACE_LOWERCASE),
            &py_docs,
        );
        assert_same(
            &format!("queries ({name})"),
            &vecpipe_queries(&params),
            &py_queries,
        );
    }
}

#[test]
fn an_update_keeps_existing_indexes_appends_new_terms_and_pymilvus_agrees() {
    let ws = Workspace::new();
    let all = write_corpus(&ws);
    let lines: Vec<String> = std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // The first 15 documents, then 10 more and one full of new words.
    let new_words = serde_json::json!({"id": "d-new", "text": "Zebra quagga okapi index"});
    ws.write("first.jsonl", lines[..15].join("\n") + "\n");
    ws.write(
        "more.jsonl",
        format!("{}\n{new_words}\n", lines[15..].join("\n")),
    );
    ws.write(
        "corpus.jsonl",
        format!("{}\n{new_words}\n", lines.join("\n")),
    );
    let fit = |input: &str, extra: &[&str]| {
        let mut args = vec!["bm25", "fit", "--input", input, "--tokenizer", "whitespace"];
        args.extend(["--stop-words", "none", "--stemmer", "none"]);
        args.extend(extra);
        ws.vecpipe(&args).expect_code(0)
    };
    fit("first.jsonl", &["--out", "updated.json"]);
    let before = Bm25Params::load(&ws.path("updated.json")).unwrap();
    let run = ws
        .vecpipe(&[
            "bm25",
            "fit",
            "--input",
            "more.jsonl",
            "--update",
            "updated.json",
        ])
        .expect_code(0);
    let updated = Bm25Params::load(&ws.path("updated.json")).unwrap();
    assert_eq!(
        run.stdout(),
        format!(
            "updated BM25 with 11 chunks (0 skipped): 26 chunks, {} terms ({} new) → updated.json\n",
            updated.idf_word.len(),
            updated.idf_word.len() - before.idf_word.len()
        )
    );
    assert_eq!(
        updated.idf_word[..before.idf_word.len()],
        before.idf_word[..],
        "every existing term keeps its index"
    );
    for word in ["zebra", "quagga", "okapi"] {
        assert!(updated.idf_word[before.idf_word.len()..].contains(&word.to_string()));
    }

    // The same as pymilvus.model fitting on both parts at once.
    let theirs_path = ws.path("theirs.json");
    reference(&[Path::new("fit"), &ws.path("corpus.jsonl"), &theirs_path]);
    let theirs = Bm25Params::load(&theirs_path).unwrap();
    assert_eq!(updated.idf_word, theirs.idf_word);
    assert_eq!(updated.corpus_size, theirs.corpus_size);
    assert!((updated.avgdl - theirs.avgdl).abs() < 1e-12);
    for (word, (a, b)) in updated
        .idf_word
        .iter()
        .zip(updated.idf_value.iter().zip(&theirs.idf_value))
    {
        assert!((a - b).abs() <= 1e-6, "idf of {word}: {a} vs {b}");
    }
    // pymilvus.model loads the updated file and encodes as vecpipe does.
    let (py_docs, py_queries) = pymilvus_vectors(&ws, &ws.path("updated.json"));
    assert_same(
        "documents",
        &vecpipe_documents(&ws, "updated.json", WHITESPACE_LOWERCASE),
        &py_docs,
    );
    assert_same(
        "queries",
        &vecpipe_queries(&ws.path("updated.json")),
        &py_queries,
    );
}
