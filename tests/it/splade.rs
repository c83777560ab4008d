//! The SPLADE stage on a real SPLADE-tiny model (set up by scripts/setup.sh):
//! term expansion, parity with Python onnxruntime, and sparse search in Milvus.

use crate::common::*;

fn model() -> std::path::PathBuf {
    setup(None);
    repo_root().join("models/splade-tiny")
}

/// Runs texts through `jsonl → splade → parquet`; returns the sparse rows.
fn splade_rows(ws: &Workspace, texts: &[&str], stage: &str) -> Vec<Vec<(u32, f32)>> {
    ws.write(
        "in.jsonl",
        id_text_lines(texts.iter().enumerate().map(|(i, t)| (format!("t{i}"), t))),
    );
    ws.write(
        "p.yaml",
        format!(
            "name: splade\nsource: {{ type: jsonl, path: in.jsonl, id_field: id }}\nstages:\n  - {stage}\nsinks:\n  - {{ type: arrow, path: out/s.parquet }}\n"
        ),
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    sparse_rows(&read_parquet(&ws.path("out/s.parquet")), "sparse")
}

#[test]
fn capital_of_france_expands_to_related_terms() {
    let ws = Workspace::new();
    let stage = format!("{{ type: splade, model: {} }}", model().display());
    let rows = splade_rows(&ws, &["capital of france"], &stage);
    let tokenizer = tokenizers::Tokenizer::from_file(model().join("tokenizer.json")).unwrap();
    let terms: Vec<String> = rows[0]
        .iter()
        .map(|(i, _)| tokenizer.id_to_token(*i).unwrap())
        .collect();
    for expected in ["capital", "france", "french", "paris"] {
        assert!(
            terms.iter().any(|t| t == expected),
            "{expected} missing from {terms:?}"
        );
    }
    assert!(
        terms.len() > 3,
        "expansion adds terms that are not in the text: {terms:?}"
    );

    let top = splade_rows(
        &ws,
        &["capital of france"],
        &format!("{{ type: splade, model: {}, top_k: 3 }}", model().display()),
    );
    assert_eq!(top[0].len(), 3);
}

#[test]
fn vectors_match_python_onnxruntime_on_the_same_model() {
    setup(Some("test"));
    let ws = Workspace::new();
    let texts = [
        "capital of france",
        "Alan Turing was born in Maida Vale, London.",
        "a much longer text about vector databases, sparse retrieval and learned term weights for search",
    ];
    let stage = format!(
        "{{ type: splade, model: {}, batch_size: 8 }}",
        model().display()
    );
    let ours = splade_rows(&ws, &texts, &stage);
    let texts_file = ws.write("texts.json", serde_json::to_string(&texts).unwrap());
    let output = python_script(
        "splade_reference.py",
        &[model().as_os_str(), texts_file.as_os_str()],
    );
    let theirs: Vec<Vec<(u32, f32)>> = serde_json::from_slice(&output).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        let (ia, ib): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|e| e.0).collect(),
            b.iter().map(|e| e.0).collect(),
        );
        assert_eq!(ia, ib, "same terms");
        for ((_, x), (_, y)) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
        }
    }
}

#[test]
fn splade_vectors_in_milvus_answer_a_sparse_search() {
    let milvus = MilvusServer::start();
    let ws = Workspace::new();
    sample_corpus(&ws);
    ws.write(
        "p.yaml",
        format!(
            "name: s\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: chunk, max_chars: 300 }}\n  - {{ type: splade, model: {} }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: splade }}\n",
            model().display(),
            milvus.uri
        ),
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let run = ws
        .vecpipe(&[
            "search",
            "p.yaml",
            "Where was Turing born?",
            "--json",
            "--limit",
            "1",
        ])
        .expect_code(0);
    let hit: serde_json::Value =
        serde_json::from_str(run.stdout().lines().next().expect("a hit")).unwrap();
    assert_eq!(hit["doc_id"], "turing", "{}", run.stdout());
}
