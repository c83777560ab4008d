//! `vecpipe validate` checks the world a pipeline points at: each kind of
//! problem is reported at its place in the file with exit code 2, and
//! `--no-environment` checks only the file.

use crate::common::*;

/// The `error:` lines of a run, without the prefix.
fn problems(run: &Run) -> Vec<String> {
    run.stderr()
        .lines()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
        .collect()
}

#[test]
fn missing_files_models_params_and_an_unreachable_milvus_are_each_reported_where_they_are_set() {
    let ws = Workspace::new();
    let port = free_port();
    ws.write(
        "p.yaml",
        format!(
            "name: env\nsource: {{ type: jsonl, path: 'nowhere/*.jsonl' }}\nstages:\n  - {{ type: dense, model: /no/such/model }}\n  - {{ type: bm25, params: missing.json }}\nsinks:\n  - {{ type: milvus, uri: 'http://127.0.0.1:{port}', collection: docs }}\n"
        ),
    );
    let run = ws.vecpipe(&["validate", "p.yaml"]).expect_code(2);
    let found = problems(&run);
    assert_eq!(found.len(), 4, "{}", run.stderr());
    assert_eq!(
        found[0],
        "p.yaml:2:30: source.path: source path `nowhere/*.jsonl` matches no jsonl files"
    );
    assert!(
        found[1].starts_with("p.yaml:4:5: stages[0]: model `/no/such/model` not found"),
        "{}",
        found[1]
    );
    assert_eq!(
        found[2],
        "p.yaml:5:5: stages[1]: BM25 params missing.json do not exist yet: fit them on the corpus first (`vecpipe bm25 fit --pipeline` with this pipeline file)"
    );
    assert!(
        found[3].starts_with(&format!(
            "p.yaml:7:26: sinks[0].uri: cannot connect to Milvus at http://127.0.0.1:{port}"
        )),
        "{}",
        found[3]
    );

    let run = ws
        .vecpipe(&["validate", "p.yaml", "--no-environment"])
        .expect_code(0);
    assert_output_eq!(run.stdout(), "p.yaml: ok (2 stage(s), 1 sink(s))\n");
}

#[test]
fn a_missing_parquet_column_and_an_existing_collection_that_does_not_fit_are_reported() {
    let server = MilvusServer::start();
    let ws = Workspace::new();
    sample_corpus(&ws);
    // A collection with only a dense field…
    ws.write(
        "first.yaml",
        format!(
            "name: first\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: dense }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            server.uri
        ),
    );
    ws.vecpipe(&["run", "first.yaml"]).expect_code(0);
    assert_output_eq!(
        ws.vecpipe(&["validate", "first.yaml"])
            .expect_code(0)
            .stdout(),
        "first.yaml: ok (1 stage(s), 1 sink(s))\n"
    );
    // …that a pipeline with chunks does not fit; its Parquet lacks the text column.
    write_parquet(
        &ws.path("in/docs.parquet"),
        vec![(
            "body",
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["a text"]))
                as std::sync::Arc<dyn arrow::array::Array>,
        )],
        10,
    );
    ws.write(
        "second.yaml",
        format!(
            "name: second\nsource: {{ type: parquet, path: in/docs.parquet }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            server.uri
        ),
    );
    let run = ws.vecpipe(&["validate", "second.yaml"]).expect_code(2);
    assert_output_eq!(
        run.stderr(),
        "error: second.yaml:2:32: source.path: in/docs.parquet: column `text` does not exist\n"
    );
    ws.write(
        "third.yaml",
        format!(
            "name: third\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id }}\nstages:\n  - {{ type: chunk, max_chars: 100 }}\n  - {{ type: dense }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            server.uri
        ),
    );
    let run = ws.vecpipe(&["validate", "third.yaml"]).expect_code(2);
    let found = problems(&run);
    assert!(
        found[0].starts_with(
            "third.yaml:7:5: sinks[0]: collection `docs` does not fit this pipeline: field `doc_id` is missing"
        ),
        "{}",
        run.stderr()
    );
    ws.vecpipe(&["validate", "third.yaml", "--no-environment"])
        .expect_code(0);
}

#[test]
fn unreachable_kafka_brokers_and_missing_topics_are_reported() {
    let ws = Workspace::new();
    let kafka = |brokers: &str| {
        format!(
            "name: k\nsource: {{ type: kafka, brokers: '{brokers}', topics: [docs], group_id: g }}\nsinks:\n  - {{ type: arrow, path: out/k.parquet }}\n"
        )
    };
    let nobody = format!("127.0.0.1:{}", free_port());
    ws.write("down.yaml", kafka(&nobody));
    let run = ws.vecpipe(&["validate", "down.yaml"]).expect_code(2);
    let found = problems(&run);
    assert_eq!(found.len(), 1, "{}", run.stderr());
    assert!(
        found[0].starts_with(&format!(
            "down.yaml:2:33: source.brokers: Kafka at {nobody}: "
        )),
        "{}",
        found[0]
    );

    let broker = KafkaBroker::start();
    ws.write("topic.yaml", kafka(&broker.brokers));
    let run = ws.vecpipe(&["validate", "topic.yaml"]).expect_code(2);
    assert_output_eq!(
        run.stderr(),
        format!(
            "error: topic.yaml:2:33: source.brokers: Kafka at {}: no such topic: docs\n",
            broker.brokers
        )
    );
    broker.create_topic("docs", 1);
    ws.vecpipe(&["validate", "topic.yaml"]).expect_code(0);
}

#[test]
fn a_debezium_envelope_or_avro_without_what_they_need_is_refused() {
    let ws = Workspace::new();
    let pipeline = |extra: &str| {
        format!(
            "name: cdc\nsource:\n  type: kafka\n  brokers: '127.0.0.1:1'\n  topics: [pg.public.docs]\n  group_id: g\n  envelope: debezium\n{extra}sinks:\n  - {{ type: jsonl, path: out.jsonl }}\n"
        )
    };
    let refused = [
        (
            "no-id.yaml",
            "",
            "error: no-id.yaml:7:13: source.envelope: `envelope: debezium` needs `id_field`: the row's key column, found in `after` and in a delete's `before` (not `key_as_id`)\n",
        ),
        (
            "text.yaml",
            "  id_field: id\n  format: text\n",
            "error: text.yaml:7:13: source.envelope: `envelope: debezium` reads Debezium's JSON, Avro or Protobuf: use `format: json`, `avro`, `protobuf` or `json_schema`\n",
        ),
        (
            "avro.yaml",
            "  id_field: id\n  format: avro\n",
            "error: avro.yaml:9:11: source.format: `format: avro`, `protobuf` and `json_schema` need `schema_registry: { url: http://HOST:PORT }`\n",
        ),
        (
            "registry.yaml",
            "  id_field: id\n  schema_registry: { url: 'http://127.0.0.1:1' }\n",
            "error: registry.yaml:9:20: source.schema_registry: a Schema Registry is for `format: avro`, `protobuf` or `json_schema`\n",
        ),
    ];
    for (file, extra, error) in refused {
        ws.write(file, pipeline(extra));
        let run = ws
            .vecpipe(&["validate", file, "--no-environment"])
            .expect_code(2);
        assert_output_eq!(run.stderr(), error);
    }
    ws.write("ok.yaml", pipeline("  id_field: id\n  text_field: body\n"));
    let run = ws
        .vecpipe(&["validate", "ok.yaml", "--no-environment"])
        .expect_code(0);
    assert_output_eq!(run.stdout(), "ok.yaml: ok (0 stage(s), 1 sink(s))\n");
}
