//! Every example pipeline in `pipelines/` runs end to end and writes what it says.

mod common;

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;
use common::*;
use vecpipe::model::{EmbedderOptions, TextEmbedder, resolve_model};
use vecpipe::stage::bm25::{Analyzer, Bm25Encoder, Bm25Params};

/// Pipelines this file runs; a new example must be added here (and tested).
const TESTED: &[&str] = &["quickstart.yaml"];

#[test]
fn every_example_pipeline_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    found.sort();
    assert_eq!(found, TESTED, "pipelines/ and the tested list differ");
}

#[test]
fn quickstart_fits_bm25_chunks_and_writes_parquet_that_finds_turing() {
    let ws = Workspace::new();
    let out = ws.dir.path().display().to_string();
    let run = |args: &[&str]| {
        let mut cmd = ws.command(args);
        cmd.current_dir(repo_root()).env("VECPIPE_OUT", &out);
        Run(cmd.output().unwrap()).expect_code(0)
    };
    setup(None);
    let validated = run(&["validate", "pipelines/quickstart.yaml"]);
    assert!(validated.stdout().contains("ok (3 stage(s), 2 sink(s))"));
    let fitted = run(&["bm25", "fit", "--pipeline", "pipelines/quickstart.yaml"]);
    assert!(
        fitted.stdout().contains("fitted BM25 on"),
        "{}",
        fitted.stdout()
    );
    let summary = run(&["run", "pipelines/quickstart.yaml"]).stdout();

    let corpus = std::fs::read_to_string(repo_root().join("pipelines/data/sample.jsonl")).unwrap();
    let docs: Vec<serde_json::Value> = corpus
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let batch = read_parquet(&ws.path("quickstart/chunks.parquet"));
    assert!(
        summary.contains(&format!(
            "{} records in, {} chunks out, 0 dead-lettered",
            docs.len(),
            batch.num_rows()
        )),
        "{summary}"
    );

    // Chunk ids are {doc_id}#{index}, indexes count from 0 per document, and
    // every document of the corpus is there with its title.
    let ids = strs(&batch, "id");
    let doc_ids = strs(&batch, "doc_id");
    let texts = strs(&batch, "text");
    let titles = strs(&batch, "title");
    let indexes = batch.column_by_name("chunk_index").unwrap();
    let indexes = arrow::compute::cast(indexes, &arrow::datatypes::DataType::Utf8).unwrap();
    let indexes = indexes
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    let mut next_index: HashMap<&str, usize> = HashMap::new();
    for row in 0..batch.num_rows() {
        let expected = next_index.entry(&doc_ids[row]).or_default();
        assert_eq!(ids[row], format!("{}#{}", doc_ids[row], expected));
        assert_eq!(indexes.value(row), expected.to_string());
        *expected += 1;
        assert!(
            texts[row].chars().count() <= 200,
            "chunk over max_chars: {}",
            texts[row]
        );
    }
    for doc in &docs {
        let id = doc["id"].as_str().unwrap();
        let rows: Vec<usize> = (0..batch.num_rows())
            .filter(|&r| doc_ids[r] == id)
            .collect();
        assert!(!rows.is_empty(), "document {id} is missing");
        assert!(
            rows.iter()
                .all(|&r| titles[r] == doc["title"].as_str().unwrap())
        );
    }
    assert!(
        next_index.values().any(|&n| n > 1),
        "some documents are long enough to chunk"
    );

    // Sparse vectors: sorted indexes into the fitted vocabulary, positive
    // values, and a BM25 query for Turing's birthplace ranks his chunk first.
    let params = Bm25Params::load(&ws.path("quickstart/bm25.json")).unwrap();
    let vocab = params.idf_word.len() as u32;
    let sparse = sparse_rows(&batch, "sparse");
    for row in &sparse {
        assert!(!row.is_empty());
        assert!(row.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(row.iter().all(|&(i, v)| i < vocab && v > 0.0));
    }
    let analyzer = Analyzer::new(&params.analyzer.clone().unwrap_or_default()).unwrap();
    let query = Bm25Encoder::new(params, analyzer).encode_query("Where was Turing born?");
    let score = |row: &[(u32, f32)]| -> f32 {
        row.iter()
            .filter_map(|(i, v)| query.iter().find(|(q, _)| q == i).map(|(_, w)| v * w))
            .sum()
    };
    let best = (0..sparse.len())
        .max_by(|&a, &b| score(&sparse[a]).total_cmp(&score(&sparse[b])))
        .unwrap();
    assert_eq!(doc_ids[best], "turing");
    assert!(texts[best].contains("Maida Vale"), "{}", texts[best]);

    // Dense vectors: 384 dimensions, unit length, and the same question
    // embedded with the same model is closest to Turing's chunk too.
    let dense = batch.column_by_name("dense").unwrap().as_fixed_size_list();
    assert_eq!(dense.value_length(), 384);
    let rows: Vec<Vec<f32>> = (0..dense.len())
        .map(|i| {
            dense
                .value(i)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec()
        })
        .collect();
    for row in &rows {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let files = resolve_model(
        &repo_root()
            .join("models/all-MiniLM-L6-v2")
            .display()
            .to_string(),
    )
    .unwrap();
    let options = EmbedderOptions {
        batch_size: 8,
        max_length: 256,
        threads: 1,
        pooling: None,
        normalize: true,
        onnxruntime: Some(repo_root().join("models/onnxruntime/libonnxruntime.so")),
    };
    let question = TextEmbedder::load(&files, &options)
        .unwrap()
        .embed(&["Where was Alan Turing born?"])
        .unwrap();
    let cosine = |row: &Vec<f32>| row.iter().zip(&question).map(|(a, b)| a * b).sum::<f32>();
    let best = (0..rows.len())
        .max_by(|&a, &b| cosine(&rows[a]).total_cmp(&cosine(&rows[b])))
        .unwrap();
    assert_eq!(
        doc_ids[best], "turing",
        "dense search picked {}",
        texts[best]
    );
}
