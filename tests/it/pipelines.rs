//! Every example pipeline in `pipelines/` runs end to end and writes what it says.

use std::collections::HashMap;

use crate::common::*;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;
use vecpipe::bm25::{Analyzer, Bm25Encoder, Bm25Params};
use vecpipe::{EmbedderOptions, TextEmbedder, resolve_model};

/// Pipelines this file runs; a new example must be added here (and tested).
const TESTED: &[&str] = &[
    "beir-eval.yaml", // in eval.rs
    "hybrid-server-bm25.yaml",
    "kafka-to-milvus.yaml",
    "kafka-to-parquet.yaml",
    "parquet-backfill.yaml",
    "quickstart.yaml",
];

/// Runs the binary from the repository root with `env`; outputs under a temp dir.
fn vecpipe(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    ws.command_at_root(args, env)
}

fn top_hit(
    ws: &Workspace,
    pipeline: &str,
    query: &str,
    env: &[(&str, &str)],
) -> Option<serde_json::Value> {
    let output = vecpipe(
        ws,
        &["search", pipeline, query, "--json", "--limit", "1"],
        env,
    )
    .output()
    .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    out.lines().next().map(|l| serde_json::from_str(l).unwrap())
}

#[test]
fn parquet_backfill_example_fits_runs_and_finds_turing() {
    let milvus = MilvusServer::start();
    let ws = Workspace::new();
    let state = ws.path("state.jsonl").display().to_string();
    let env = [("MILVUS_URI", milvus.uri.as_str())];
    Run(vecpipe(
        &ws,
        &[
            "bm25",
            "fit",
            "--pipeline",
            "pipelines/parquet-backfill.yaml",
        ],
        &env,
    )
    .output()
    .unwrap())
    .expect_code(0);
    let run = Run(vecpipe(
        &ws,
        &["run", "pipelines/parquet-backfill.yaml", "--state", &state],
        &env,
    )
    .output()
    .unwrap())
    .expect_code(0);
    assert_eq!(run.summary_number("records"), 12);
    let again = Run(vecpipe(
        &ws,
        &[
            "run",
            "pipelines/parquet-backfill.yaml",
            "--state",
            &state,
            "--resume",
        ],
        &env,
    )
    .output()
    .unwrap())
    .expect_code(0);
    assert_eq!(
        again.summary_number("records"),
        0,
        "resume skips the finished row group"
    );
    let hit = top_hit(
        &ws,
        "pipelines/parquet-backfill.yaml",
        "Where was Turing born?",
        &env,
    )
    .unwrap();
    assert_eq!(hit["doc_id"], "turing");
}

#[test]
fn hybrid_server_bm25_example_searches_with_milvus_bm25() {
    let milvus = MilvusServer::start();
    let ws = Workspace::new();
    let env = [("MILVUS_URI", milvus.uri.as_str())];
    Run(
        vecpipe(&ws, &["run", "pipelines/hybrid-server-bm25.yaml"], &env)
            .output()
            .unwrap(),
    )
    .expect_code(0);
    for mode in ["sparse", "hybrid"] {
        let output = vecpipe(
            &ws,
            &[
                "search",
                "pipelines/hybrid-server-bm25.yaml",
                "Who invented the World Wide Web?",
                "--json",
                "--mode",
                mode,
            ],
            &env,
        )
        .output()
        .unwrap();
        let first = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(first.contains("\"doc_id\":\"web\""), "{mode}: {first}");
    }
}

fn start_daemon(
    ws: &Workspace,
    pipeline: &str,
    env: &[(&str, &str)],
) -> (std::process::Child, u16) {
    let port = free_port();
    let child = vecpipe(
        ws,
        &[
            "daemon",
            pipeline,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ],
        env,
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    (child, port)
}

fn stop(child: std::process::Child) -> Run {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    Run(child.wait_with_output().unwrap()).expect_code(0)
}

#[test]
fn kafka_to_milvus_example_ingests_and_answers_searches() {
    let broker = KafkaBroker::start();
    let milvus = MilvusServer::start();
    broker.create_topic("documents", 2);
    broker.produce_jsonl(
        "documents",
        &repo_root().join("pipelines/data/sample.jsonl"),
    );
    let ws = Workspace::new();
    let env = [
        ("KAFKA_BROKERS", broker.brokers.as_str()),
        ("MILVUS_URI", milvus.uri.as_str()),
    ];
    let (daemon, _) = start_daemon(&ws, "pipelines/kafka-to-milvus.yaml", &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let hit = top_hit(
            &ws,
            "pipelines/kafka-to-milvus.yaml",
            "Where was Turing born?",
            &env,
        );
        if hit.as_ref().is_some_and(|h| h["doc_id"] == "turing") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Turing never showed up: {hit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let run = stop(daemon);
    assert!(run.summary_number("records") >= 12, "{}", run.stdout());
}

#[test]
fn kafka_to_parquet_example_exports_every_document() {
    let broker = KafkaBroker::start();
    broker.create_topic("documents", 1);
    broker.produce_jsonl(
        "documents",
        &repo_root().join("pipelines/data/sample.jsonl"),
    );
    let ws = Workspace::new();
    let env = [("KAFKA_BROKERS", broker.brokers.as_str())];
    let (daemon, port) = start_daemon(&ws, "pipelines/kafka-to-parquet.yaml", &env);
    // Stop once the sink has written every chunk of the twelve documents (a
    // stop drops what is not written yet; the file is completed at shutdown).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let count = |metrics: &str, series: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    };
    loop {
        let metrics = if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            http_get(port, "/metrics").1
        } else {
            String::new()
        };
        let read = count(&metrics, "vecpipe_records_in_total{node=\"source\"}");
        let embedded = count(&metrics, "vecpipe_records_out_total{node=\"dense\"}");
        let written = count(&metrics, "vecpipe_records_in_total{node=\"arrow\"}");
        if read == Some(12) && written.is_some() && written == embedded {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never read the 12 documents"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let run = stop(daemon);
    assert_eq!(run.summary_number("records"), 12, "{}", run.stdout());
    let batch = read_parquet(&ws.path("kafka-to-parquet/chunks-00000.parquet"));
    let docs: std::collections::BTreeSet<String> = strs(&batch, "doc_id").into_iter().collect();
    assert_eq!(docs.len(), 12);
    assert!(batch.column_by_name("dense").is_some());
}

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
    let validated = run(&["validate", "pipelines/quickstart.yaml", "--no-environment"]);
    assert!(validated.stdout().contains("ok (3 stage(s), 2 sink(s))"));
    let fitted = run(&["bm25", "fit", "--pipeline", "pipelines/quickstart.yaml"]);
    assert!(
        fitted.stdout().contains("fitted BM25 on"),
        "{}",
        fitted.stdout()
    );
    // With the params fitted, the environment is ready too.
    let validated = run(&["validate", "pipelines/quickstart.yaml"]);
    assert!(validated.stdout().contains("ok (3 stage(s), 2 sink(s))"));
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
        session: vecpipe::SessionOptions {
            batch_size: 8,
            batch_tokens: 1024,
            max_length: 256,
            threads: 1,
            onnxruntime: Some(repo_root().join("models/onnxruntime/libonnxruntime.so")),
        },
        pooling: None,
        normalize: true,
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
