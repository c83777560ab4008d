//! Remote model providers against a small HTTP server started by the test on
//! 127.0.0.1: OpenAI-compatible embeddings, the common rerank API, retries on
//! 429/5xx, timeouts, and malformed responses.

use std::time::Duration;

use crate::common::*;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Float32Type;

fn pipeline(ws: &Workspace, stage: &str) {
    ws.write("in.jsonl", "{\"id\": \"a\", \"text\": \"short\"}\n{\"id\": \"b\", \"text\": \"a longer text\"}\n{\"id\": \"c\", \"text\": \"mid text\"}\n");
    ws.write(
        "p.yaml",
        format!("name: h\nsource: {{ type: jsonl, path: in.jsonl, id_field: id }}\nstages:\n  - {stage}\nsinks:\n  - {{ type: arrow, path: out/h.arrow }}\n"),
    );
}

#[test]
fn openai_embeddings_provider_writes_the_services_vectors_and_sends_the_key() {
    let service = FakeService::start(Box::new(|_, body| (200, embeddings(body), Duration::ZERO)));
    let ws = Workspace::new();
    pipeline(
        &ws,
        &format!(
            "{{ type: dense, provider: openai, model: text-embedding-3-small, base_url: '{}/v1', api_key: '${{TEST_API_KEY}}', batch_size: 2 }}",
            service.url
        ),
    );
    let mut cmd = ws.command(&["run", "p.yaml"]);
    cmd.env("TEST_API_KEY", "sk-test-123");
    Run(cmd.output().unwrap()).expect_code(0);
    let batch = read_ipc(&ws.path("out/h.arrow"));
    let dense = batch.column_by_name("dense").unwrap().as_fixed_size_list();
    assert_eq!(
        dense.value_length(),
        4,
        "the dimension comes from the service"
    );
    let firsts: Vec<f32> = (0..dense.len())
        .map(|i| dense.value(i).as_primitive::<Float32Type>().value(0))
        .collect();
    assert_eq!(
        firsts,
        vec![5.0, 13.0, 8.0],
        "vectors stay with their texts"
    );
    let requests = service.requests.lock().unwrap();
    assert!(
        requests
            .iter()
            .all(|(auth, _)| auth == "Authorization: Bearer sk-test-123"),
        "{requests:?}"
    );
    assert_eq!(
        requests.len(),
        3,
        "a probe, then batches of two: {requests:?}"
    );
}

#[test]
fn throttling_and_server_errors_are_retried() {
    let service = FakeService::start(Box::new(|n, body| match n {
        0 => (429, "{}".into(), Duration::ZERO),
        1 => (503, "{}".into(), Duration::ZERO),
        _ => (200, embeddings(body), Duration::ZERO),
    }));
    let ws = Workspace::new();
    pipeline(
        &ws,
        &format!(
            "{{ type: dense, provider: openai, model: m, base_url: '{}' }}",
            service.url
        ),
    );
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert_eq!(
        service.count(),
        4,
        "two failures, then the probe and one batch"
    );
}

#[test]
fn a_slow_service_times_out_and_a_malformed_answer_is_a_clear_error() {
    let slow = FakeService::start(Box::new(|_, body| {
        (200, embeddings(body), Duration::from_secs(3))
    }));
    let ws = Workspace::new();
    pipeline(
        &ws,
        &format!(
            "{{ type: dense, provider: openai, model: m, base_url: '{}', timeout_secs: 1, max_retries: 1 }}",
            slow.url
        ),
    );
    // The stage asks the service for its dimension while the pipeline is
    // built: a service that does not answer then is a set-up error (exit 2).
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert!(
        run.stderr().contains("model service") && run.stderr().contains("after 1 retries"),
        "{}",
        run.stderr()
    );

    let broken = FakeService::start(Box::new(|_, _| {
        (200, "<html>not json</html>".into(), Duration::ZERO)
    }));
    pipeline(
        &ws,
        &format!(
            "{{ type: dense, provider: openai, model: m, base_url: '{}' }}",
            broken.url
        ),
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert!(
        run.stderr().contains("malformed JSON response"),
        "{}",
        run.stderr()
    );
}

#[test]
fn http_reranker_scores_rows_in_tei_and_cohere_shapes() {
    // Score = the document's length: TEI answers a list, Cohere/Jina `results`.
    let scores = |body: &serde_json::Value| -> Vec<serde_json::Value> {
        body["documents"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, d)| serde_json::json!({"index": i, "score": d.as_str().unwrap().len(), "relevance_score": d.as_str().unwrap().len()}))
            .collect()
    };
    let tei = FakeService::start(Box::new(move |_, body| {
        (
            200,
            serde_json::Value::from(scores(body)).to_string(),
            Duration::ZERO,
        )
    }));
    let cohere = FakeService::start(Box::new(move |_, body| {
        (
            200,
            serde_json::json!({"results": scores(body)}).to_string(),
            Duration::ZERO,
        )
    }));
    for service in [&tei, &cohere] {
        let ws = Workspace::new();
        pipeline(
            &ws,
            &format!(
                "{{ type: rerank, provider: http, model: reranker, base_url: '{}', query: 'q', min_score: 6 }}",
                service.url
            ),
        );
        ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
        let batch = read_ipc(&ws.path("out/h.arrow"));
        assert_eq!(
            strs(&batch, "id"),
            ["b", "c"],
            "the short text scored under min_score"
        );
        let score = batch
            .column_by_name("score")
            .unwrap()
            .as_primitive::<Float32Type>();
        assert_eq!(score.values().to_vec(), vec![13.0, 8.0]);
        assert!(score.null_count() == 0);
    }
}
