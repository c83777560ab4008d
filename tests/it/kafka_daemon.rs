//! The Kafka source and `vecpipe daemon` against real Kafka-protocol brokers
//! and a real Milvus Lite, all started by the harness. Every test runs twice:
//! against Tansu and against noida-db, two independent implementations.

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let results = runtime
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

/// Produces `(key, payload)` records and waits until the broker has them.
fn produce(producer: &BaseProducer, topic: &str, records: &[(String, String)]) {
    for (key, payload) in records {
        let headers = OwnedHeaders::new().insert(Header {
            key: "origin",
            value: Some("test"),
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .key(key)
                    .payload(payload)
                    .headers(headers),
            )
            .unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Document `i`: every fifth is long enough to make several chunks.
pub(crate) fn document(i: usize) -> (String, String) {
    let text = if i.is_multiple_of(5) {
        format!(
            "Document {i} is long. {}",
            "It has many sentences about vectors and search. ".repeat(6)
        )
    } else {
        format!("Document {i} is short.")
    };
    (
        format!("doc-{i}"),
        serde_json::json!({"id": format!("doc-{i}"), "text": text}).to_string(),
    )
}

pub(crate) const STAGES: &str =
    "stages:\n  - { type: chunk, max_chars: 120 }\n  - { type: dense }\n";

/// The chunk ids these documents must become: the same stages run on a JSONL copy.
pub(crate) fn expected_ids(ws: &Workspace, docs: &[(String, String)]) -> BTreeSet<String> {
    let lines: String = docs
        .iter()
        .map(|(_, payload)| format!("{payload}\n"))
        .collect();
    ws.write("expected.jsonl", lines);
    ws.write(
        "expected.yaml",
        format!("name: expected\nsource: {{ type: jsonl, path: expected.jsonl, id_field: id }}\n{STAGES}sinks:\n  - {{ type: arrow, path: out/expected.arrow }}\n"),
    );
    ws.vecpipe(&["run", "expected.yaml"]).expect_code(0);
    strs(&read_ipc(&ws.path("out/expected.arrow")), "id")
        .into_iter()
        .collect()
}

pub(crate) fn daemon_pipeline(
    ws: &Workspace,
    broker: &KafkaBroker,
    milvus: &MilvusServer,
    topic: &str,
    dead_letter: &str,
) {
    ws.write(
        "daemon.yaml",
        format!(
            "name: daemon\nsource:\n  type: kafka\n  brokers: '{}'\n  topics: [{topic}]\n  group_id: vecpipe-test\n  id_field: id\n  batch_rows: 16\n  max_latency_ms: 100\n  options: {{ session.timeout.ms: '6000', heartbeat.interval.ms: '500' }}\n{STAGES}sinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n{dead_letter}",
            broker.brokers, milvus.uri
        ),
    );
}

/// Stops a healthy daemon with SIGTERM: exit 0.
fn stop_gracefully(port: u16, mut daemon: Child) -> Run {
    wait_healthy(port, &mut daemon);
    signal(&daemon, "-TERM");
    Run(daemon.wait_with_output().unwrap()).expect_code(0)
}

/// Rewrites `daemon.yaml`, each `(from, to)` replaced in turn.
pub(crate) fn edit_pipeline(ws: &Workspace, edits: &[(&str, &str)]) {
    let mut config = std::fs::read_to_string(ws.path("daemon.yaml")).unwrap();
    for (from, to) in edits {
        assert!(config.contains(from), "daemon.yaml has no {from:?}");
        config = config.replace(from, to);
    }
    ws.write("daemon.yaml", config);
}

pub(crate) fn wait_healthy(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "daemon exited early");
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http_get(port, "/health").0 == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "daemon never became healthy");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn daemon_writes_every_chunk_exposes_metrics_and_stops_gracefully_with_offsets_committed(
    kind: BrokerKind,
) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 3);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..60).map(document).collect();
    let expected = expected_ids(&ws, &docs);
    daemon_pipeline(&ws, &broker, &milvus, "docs", "");
    produce(&producer(&broker.brokers), "docs", &docs);

    let port = free_port();
    let mut daemon = start_daemon(&ws, port);
    wait_healthy(port, &mut daemon);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(120));
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("vecpipe_records_in_total{node=\"source\"} 60"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vecpipe_batch_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vecpipe_embedding_tokens_total"),
        "{metrics}"
    );
    // Lag is reported with each offset commit (every second).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http_get(port, "/metrics")
        .1
        .contains("vecpipe_consumer_lag{")
    {
        assert!(Instant::now() < deadline, "no consumer lag metric");
        std::thread::sleep(Duration::from_millis(200));
    }
    if kind == BrokerKind::Noida {
        // noida-db's high watermarks are right: drained, every partition's lag is 0.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let metrics = http_get(port, "/metrics").1;
            let lags: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("vecpipe_consumer_lag{"))
                .collect();
            if lags.len() == 3 && lags.iter().all(|l| l.ends_with(" 0")) {
                break;
            }
            assert!(Instant::now() < deadline, "lag never reached 0: {lags:?}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    signal(&daemon, "-TERM");
    let run = Run(daemon.wait_with_output().unwrap()).expect_code(0);
    assert!(run.stdout().contains("60 records in"), "{}", run.stdout());

    // Offsets were committed: a restarted member of the group reads nothing again.
    let port = free_port();
    let mut again = start_daemon(&ws, port);
    wait_healthy(port, &mut again);
    std::thread::sleep(Duration::from_secs(2));
    signal(&again, "-TERM");
    let run = Run(again.wait_with_output().unwrap()).expect_code(0);
    assert!(run.stdout().contains("0 records in"), "{}", run.stdout());
}

fn kill_9_at_random_moments_loses_nothing_and_duplicates_nothing(
    kind: BrokerKind,
    milvus: MilvusKind,
) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start_kind(milvus);
    create_topic(&broker.brokers, "docs", 3);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..300).map(document).collect();
    let expected = expected_ids(&ws, &docs);
    daemon_pipeline(&ws, &broker, &milvus, "docs", "");

    let brokers = broker.brokers.clone();
    let to_send = docs.clone();
    let producing = std::thread::spawn(move || {
        let producer = producer(&brokers);
        for chunk in to_send.chunks(20) {
            produce(&producer, "docs", chunk);
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    // Pseudo-random kill moments, fixed so a failure can be replayed.
    let mut seed: u64 = 0x5eed;
    for round in 0..5 {
        let mut daemon = start_daemon(&ws, free_port());
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let alive = Duration::from_millis(1500 + (seed >> 33) % 2500);
        std::thread::sleep(alive);
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "round {round}: daemon died by itself"
        );
        signal(&daemon, "-KILL");
        daemon.wait().unwrap();
    }
    producing.join().unwrap();
    let daemon = start_daemon(&ws, free_port());
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(180));
    signal(&daemon, "-TERM");
    Run(daemon.wait_with_output().unwrap()).expect_code(0);
}

fn two_daemons_in_one_group_split_the_partitions_and_write_every_record(kind: BrokerKind) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 4);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..200).map(document).collect();
    let expected = expected_ids(&ws, &docs);
    daemon_pipeline(&ws, &broker, &milvus, "docs", "");
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start_daemon(&ws, port_a);
    let mut b = start_daemon(&ws, port_b);
    wait_healthy(port_a, &mut a);
    wait_healthy(port_b, &mut b);
    produce(&producer(&broker.brokers), "docs", &docs);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(120));
    signal(&a, "-TERM");
    signal(&b, "-TERM");
    let a = Run(a.wait_with_output().unwrap()).expect_code(0);
    let b = Run(b.wait_with_output().unwrap()).expect_code(0);
    assert!(
        a.summary_number("records") > 0 && b.summary_number("records") > 0,
        "both members got partitions: {} / {}",
        a.stdout(),
        b.stdout()
    );
    assert!(a.summary_number("records") + b.summary_number("records") >= 200);
}

fn malformed_payloads_go_to_the_dead_letter_topic_and_good_records_around_them_are_written(
    kind: BrokerKind,
) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 1);
    create_topic(&broker.brokers, "docs-dead", 1);
    let ws = Workspace::new();
    let good: Vec<_> = (1..=4).map(|i| document(i * 2 + 1)).collect();
    let expected = expected_ids(&ws, &good);
    let records = vec![
        good[0].clone(),
        ("bad-json".to_string(), "{not json".to_string()),
        good[1].clone(),
        ("no-text".to_string(), "{\"id\": \"x\"}".to_string()),
        good[2].clone(),
        (
            "empty".to_string(),
            "{\"id\": \"e\", \"text\": \"  \"}".to_string(),
        ),
        good[3].clone(),
    ];
    daemon_pipeline(
        &ws,
        &broker,
        &milvus,
        "docs",
        &format!(
            "dead_letter: {{ type: kafka, topic: docs-dead, brokers: '{}' }}\n",
            broker.brokers
        ),
    );
    produce(&producer(&broker.brokers), "docs", &records);
    let mut daemon = start_daemon(&ws, free_port());
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(60));

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["docs-dead"]).unwrap();
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters.len() < 3 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let header = |name: &str| {
                m.headers()
                    .and_then(|h| {
                        h.iter()
                            .find(|x| x.key == name)
                            .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                    })
                    .unwrap_or_default()
            };
            letters.push((
                String::from_utf8_lossy(m.key().unwrap()).into_owned(),
                String::from_utf8_lossy(m.payload().unwrap()).into_owned(),
                header("vecpipe.reason"),
                header("origin"),
            ));
        }
    }
    signal(&daemon, "-TERM");
    let _ = daemon.wait();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!(letters[0].0, "bad-json");
    assert_eq!(letters[0].1, "{not json", "the original payload is kept");
    assert!(letters[0].2.starts_with("invalid JSON"), "{letters:?}");
    assert_eq!(letters[0].3, "test", "original headers are kept");
    assert_eq!(letters[1].2, "missing text field `text`");
    assert_eq!(letters[2].2, "empty text");
}

fn milvus_down_for_20_seconds_pauses_the_daemon_and_loses_nothing(kind: BrokerKind) {
    let broker = KafkaBroker::start_kind(kind);
    let mut milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 2);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..80).map(document).collect();
    let expected_first = expected_ids(&ws, &docs[..40]);
    let expected = expected_ids(&ws, &docs);
    daemon_pipeline(&ws, &broker, &milvus, "docs", "");
    let producer = producer(&broker.brokers);
    produce(&producer, "docs", &docs[..40]);
    let port = free_port();
    let mut daemon = start_daemon(&ws, port);
    wait_for_ids(&milvus.uri, &expected_first, Duration::from_secs(60));

    milvus.stop();
    produce(&producer, "docs", &docs[40..]);
    let outage = Instant::now();
    let mut saw_unhealthy = false;
    while outage.elapsed() < Duration::from_secs(20) {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon must wait for Milvus, not exit"
        );
        saw_unhealthy |= http_get(port, "/health").0 == 503;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(saw_unhealthy, "/health reports the outage");
    milvus.restart();
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(120));
    stop_gracefully(port, daemon);
}

fn a_tombstone_deletes_the_documents_chunks(kind: BrokerKind) {
    tombstones_on(kind, MilvusKind::Lite)
}

fn tombstones_on(kind: BrokerKind, milvus: MilvusKind) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start_kind(milvus);
    create_topic(&broker.brokers, "docs", 1);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..6).map(document).collect();
    let expected = expected_ids(&ws, &docs);
    daemon_pipeline(&ws, &broker, &milvus, "docs", "");
    edit_pipeline(&ws, &[("  id_field: id\n", "  key_as_id: true\n")]);
    let producer = producer(&broker.brokers);
    produce(&producer, "docs", &docs);
    let mut daemon = start_daemon(&ws, free_port());
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(60));

    // doc-0 has several chunks; its tombstone removes them all.
    assert!(
        expected
            .iter()
            .filter(|id| id.starts_with("doc-0#"))
            .count()
            > 1
    );
    producer
        .send(BaseRecord::<str, str>::to("docs").key("doc-0"))
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    let remaining: BTreeSet<String> = expected
        .iter()
        .filter(|id| !id.starts_with("doc-0#"))
        .cloned()
        .collect();
    wait_for_ids(&milvus.uri, &remaining, Duration::from_secs(60));
    assert!(daemon.try_wait().unwrap().is_none());
    signal(&daemon, "-TERM");
    Run(daemon.wait_with_output().unwrap()).expect_code(0);
}

/// A model service that answers one request with HTTP 400 stops the daemon
/// (exit 1); every committed offset covers only documents Milvus holds, the
/// failed batch's documents are not committed, and a restart writes the rest.
fn a_model_service_error_stops_the_daemon_commits_nothing_unwritten_and_a_restart_writes_the_rest(
    kind: BrokerKind,
) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 2);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..300).map(document).collect();
    let failed_inputs: Arc<Mutex<Vec<String>>> = Arc::default();
    let embedded_inputs: Arc<Mutex<Vec<String>>> = Arc::default();
    let (fail, seen, embedded) = (
        Arc::new(AtomicBool::new(true)),
        failed_inputs.clone(),
        embedded_inputs.clone(),
    );
    // Request 0 is the dimension probe; request 6 is the sixth batch.
    let service = FakeService::start(Box::new(move |index, body| {
        let texts = body["input"].as_array().unwrap();
        let texts = texts.iter().map(|t| t.as_str().unwrap().to_string());
        if index == 6 && fail.swap(false, Ordering::SeqCst) {
            seen.lock().unwrap().extend(texts);
            return (400, r#"{"error":"bad request"}"#.into(), Duration::ZERO);
        }
        embedded.lock().unwrap().extend(texts);
        (200, embeddings(body), Duration::ZERO)
    }));
    ws.write(
        "daemon.yaml",
        format!(
            "name: daemon\nsource:\n  type: kafka\n  brokers: '{}'\n  topics: [docs]\n  group_id: vecpipe-test\n  id_field: id\n  batch_rows: 20\n  max_latency_ms: 100\n  options: {{ session.timeout.ms: '6000', heartbeat.interval.ms: '500' }}\nstages:\n  - {{ type: dense, provider: openai, model: m, base_url: '{}', max_retries: 0 }}\nsinks:\n  - {{ type: milvus, uri: '{}', collection: docs }}\n",
            broker.brokers, service.url, milvus.uri
        ),
    );
    produce(&producer(&broker.brokers), "docs", &docs);

    let daemon = start_daemon(&ws, free_port());
    let run = wait_for_exit(
        daemon,
        Duration::from_secs(120),
        "the daemon stopping on the failure",
    )
    .expect_code(1);
    let last_line = run.stderr().lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last_line,
        format!(
            "error: model service {}/embeddings: HTTP 400: {{\"error\":\"bad request\"}}",
            service.url
        )
    );

    // Where each document is: (partition, offset) → id.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "position-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&["docs"]).unwrap();
    let mut positions = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while positions.len() < docs.len() {
        assert!(Instant::now() < deadline, "read {} of 300", positions.len());
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            let key = String::from_utf8_lossy(m.key().unwrap()).into_owned();
            positions.push((m.partition(), m.offset(), key));
        }
    }
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "vecpipe-test")
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    partitions.add_partition("docs", 0);
    partitions.add_partition("docs", 1);
    let committed = group
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    let committed_offset = |partition: i32| match committed
        .find_partition("docs", partition)
        .unwrap()
        .offset()
    {
        rdkafka::Offset::Offset(o) => o,
        _ => 0,
    };
    let in_milvus: BTreeSet<String> = milvus_ids(&milvus.uri).into_iter().collect();
    let ids_of = |texts: &Mutex<Vec<String>>| -> BTreeSet<String> {
        texts
            .lock()
            .unwrap()
            .iter()
            .map(|text| {
                let number: String = text["Document ".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                format!("doc-{number}")
            })
            .collect()
    };
    let failed = ids_of(&failed_inputs);
    assert!(!failed.is_empty());
    // A record read twice (a rebalance hands its partition back before its
    // offset was committed) may have been embedded and written by an
    // earlier request: only what the failed request alone carried must be
    // missing.
    let failed_only: BTreeSet<String> = failed
        .difference(&ids_of(&embedded_inputs))
        .cloned()
        .collect();
    for (partition, offset, id) in &positions {
        if *offset < committed_offset(*partition) {
            assert!(
                in_milvus.contains(id),
                "{id} is committed but not in Milvus"
            );
            assert!(!failed.contains(id), "{id} failed but is committed");
        }
    }
    assert!(
        in_milvus.is_disjoint(&failed_only),
        "the failed batch was written: {:?}\n{}",
        in_milvus.intersection(&failed_only).collect::<Vec<_>>(),
        run.stderr()
    );

    let daemon = start_daemon(&ws, free_port());
    let expected: BTreeSet<String> = docs.iter().map(|(id, _)| id.clone()).collect();
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(120));
    signal(&daemon, "-TERM");
    Run(daemon.wait_with_output().unwrap()).expect_code(0);
}

/// The value of a metric line that starts with `name` (0 when absent).
fn metric(port: u16, name: &str) -> f64 {
    http_get(port, "/metrics")
        .1
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the metric reaches `value`.
fn wait_for_metric(port: u16, name: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(port, name) < value {
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {} (waiting for {value})",
            metric(port, name)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Documents published again unchanged (as CDC and compacted topics do) are
/// skipped before the dense stage and leave the collection as it was; a
/// changed one is embedded again and replaced.
fn republished_unchanged_documents_write_nothing_and_a_changed_one_is_replaced(kind: BrokerKind) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 1);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..10).map(document).collect();
    let expected = expected_ids(&ws, &docs);
    daemon_pipeline(&ws, &broker, &milvus, "docs", "");
    let producer = producer(&broker.brokers);
    produce(&producer, "docs", &docs);
    let port = free_port();
    let mut daemon = start_daemon(&ws, port);
    wait_healthy(port, &mut daemon);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(60));
    let rows = || milvus_rows(&milvus.uri, "docs", "id,text,fingerprint,dense");
    let before = rows();
    let embedded = metric(port, "vecpipe_records_in_total{node=\"dense\"}");
    assert_eq!(embedded, expected.len() as f64);

    produce(&producer, "docs", &docs);
    wait_for_metric(port, "vecpipe_records_in_total{node=\"source\"}", 20.0);
    wait_for_metric(port, "vecpipe_documents_unchanged_total", 10.0);
    assert_eq!(
        metric(port, "vecpipe_records_in_total{node=\"dense\"}"),
        embedded
    );
    assert_eq!(rows(), before, "nothing was written again");

    let changed = serde_json::json!({"id": "doc-1", "text": "Document 1 now says something else."});
    produce(&producer, "docs", &[("doc-1".into(), changed.to_string())]);
    wait_for_metric(port, "vecpipe_records_in_total{node=\"source\"}", 21.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rows().iter().any(|r| r["text"] == changed["text"]) {
        assert!(Instant::now() < deadline, "doc-1 was not replaced");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        metric(port, "vecpipe_records_in_total{node=\"dense\"}"),
        embedded + 1.0
    );
    let after = rows();
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        if old["id"] == "doc-1#0" {
            assert_ne!(old["fingerprint"], new["fingerprint"]);
        } else {
            assert_eq!(old, new);
        }
    }
    signal(&daemon, "-TERM");
    Run(daemon.wait_with_output().unwrap()).expect_code(0);
}

/// Each test, once per broker.
/// A Debezium PostgreSQL change event for table `public.docs` (id, title,
/// body), in the shape Debezium documents, with or without the JSON
/// converter's `schema`/`payload` wrapper; and its key.
fn debezium_event(
    op: &str,
    before: serde_json::Value,
    after: serde_json::Value,
    wrapped: bool,
) -> serde_json::Value {
    let row_schema = |name: &str| {
        serde_json::json!({"type": "struct", "optional": true, "name": name, "field": name, "fields": [
            {"type": "int32", "optional": false, "field": "id"},
            {"type": "string", "optional": true, "field": "title"},
            {"type": "string", "optional": true, "field": "body"}
        ]})
    };
    let payload = serde_json::json!({
        "before": before,
        "after": after,
        "source": {
            "version": "2.7.0.Final", "connector": "postgresql", "name": "pg",
            "ts_ms": 1733390000000_i64, "snapshot": if op == "r" { "true" } else { "false" },
            "db": "inventory", "sequence": "[null,\"24023128\"]", "schema": "public",
            "table": "docs", "txId": 555, "lsn": 24023128, "xmin": null
        },
        "op": op,
        "ts_ms": 1733390000100_i64,
        "transaction": null
    });
    if !wrapped {
        return payload;
    }
    serde_json::json!({
        "schema": {
            "type": "struct", "optional": false, "name": "pg.public.docs.Envelope",
            "fields": [row_schema("before"), row_schema("after"),
                {"type": "struct", "optional": false, "field": "source", "fields": []},
                {"type": "string", "optional": false, "field": "op"},
                {"type": "int64", "optional": true, "field": "ts_ms"}]
        },
        "payload": payload
    })
}

fn debezium_key(id: i64) -> String {
    serde_json::json!({
        "schema": {"type": "struct", "optional": false, "name": "pg.public.docs.Key",
                   "fields": [{"type": "int32", "optional": false, "field": "id"}]},
        "payload": {"id": id}
    })
    .to_string()
}

/// Debezium change events from a PostgreSQL table: snapshot reads, an
/// insert, an update, a delete and its tombstone, a truncate, with and
/// without the schema wrapper; an event of an unknown op is a dead letter.
fn debezium_change_events_write_updates_and_delete_in_order(kind: BrokerKind) {
    use serde_json::{Value, json};
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 1);
    let ws = Workspace::new();
    let row = |id: i64, body: &str| json!({"id": id, "title": format!("t{id}"), "body": body});
    let body2 = "Hybrid search joins dense and sparse vectors. ".repeat(4);
    let final_docs: Vec<(String, String)> = [
        (2, body2.as_str()),
        (3, "Milvus stores vectors."),
        (4, "Kafka carries change events."),
    ]
    .iter()
    .map(|(id, body)| {
        (
            id.to_string(),
            json!({"id": id.to_string(), "text": body}).to_string(),
        )
    })
    .collect();
    let expected = expected_ids(&ws, &final_docs);
    let event = |op: &str, before: Value, after: Value, wrapped: bool| {
        debezium_event(op, before, after, wrapped).to_string()
    };
    let records: Vec<(String, String)> = vec![
        (
            debezium_key(1),
            event(
                "r",
                Value::Null,
                row(1, "A document that will be deleted."),
                true,
            ),
        ),
        (
            debezium_key(2),
            event(
                "r",
                Value::Null,
                row(2, "The first version of document two."),
                true,
            ),
        ),
        (
            debezium_key(3),
            event("c", Value::Null, row(3, "Milvus stores vectors."), false),
        ),
        (
            debezium_key(2),
            event(
                "u",
                row(2, "The first version of document two."),
                row(2, &body2),
                true,
            ),
        ),
        (
            debezium_key(1),
            event(
                "d",
                json!({"id": 1, "title": null, "body": null}),
                Value::Null,
                true,
            ),
        ),
        (
            debezium_key(9),
            event("x", Value::Null, row(9, "never"), false),
        ),
        (debezium_key(0), event("t", Value::Null, Value::Null, false)),
        (
            debezium_key(4),
            event(
                "c",
                Value::Null,
                row(4, "Kafka carries change events."),
                true,
            ),
        ),
    ];
    daemon_pipeline(
        &ws,
        &broker,
        &milvus,
        "docs",
        "dead_letter: { type: file, path: dead.jsonl }\n",
    );
    edit_pipeline(
        &ws,
        &[(
            "  id_field: id\n",
            "  id_field: id\n  text_field: body\n  envelope: debezium\n",
        )],
    );
    let producer = producer(&broker.brokers);
    produce(&producer, "docs", &records[..5]);
    // Debezium's tombstone after the delete: no payload, the delete's key.
    producer
        .send(BaseRecord::<str, str>::to("docs").key(&debezium_key(1)))
        .unwrap();
    produce(&producer, "docs", &records[5..]);
    let port = free_port();
    let daemon = start_daemon(&ws, port);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(60));
    let texts: Vec<Value> = milvus_rows(&milvus.uri, "docs", "id,text")
        .into_iter()
        .filter(|r| r["id"].as_str().unwrap().starts_with("2#"))
        .collect();
    assert!(
        texts
            .iter()
            .all(|r| body2.contains(r["text"].as_str().unwrap().trim())),
        "document 2 holds its updated body: {texts:?}"
    );
    stop_gracefully(port, daemon);
    let dead: Vec<Value> = std::fs::read_to_string(ws.path("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "unknown Debezium op `x`");
    assert_eq!(dead[0]["position"], "docs/0@6");
}

/// The writers' Avro schemas: v2 adds a field with a default (a compatible
/// evolution, registered under a new id).
pub(crate) const AVRO_V1: &str = r#"{"type": "record", "name": "Doc", "namespace": "test", "fields": [
  {"name": "id", "type": "string"}, {"name": "text", "type": "string"},
  {"name": "title", "type": ["null", "string"], "default": null}]}"#;
const AVRO_V2: &str = r#"{"type": "record", "name": "Doc", "namespace": "test", "fields": [
  {"name": "id", "type": "string"}, {"name": "text", "type": "string"},
  {"name": "title", "type": ["null", "string"], "default": null},
  {"name": "lang", "type": "string", "default": "en"}]}"#;

/// Produces `docs` with confluent-kafka's AvroSerializer under `schema`;
/// returns the schema id it registered.
pub(crate) fn produce_avro(
    ws: &Workspace,
    broker: &KafkaBroker,
    registry: &SchemaRegistry,
    schema: &str,
    docs: &[(String, String)],
) -> u32 {
    produce_registered(ws, broker, registry, schema, docs, &[])
}

/// Produces `docs` with confluent-kafka's serializer (`options` of
/// registry_produce.py choose it) under `schema`; returns the schema id it
/// registered.
fn produce_registered(
    ws: &Workspace,
    broker: &KafkaBroker,
    registry: &SchemaRegistry,
    schema: &str,
    docs: &[(String, String)],
    options: &[&str],
) -> u32 {
    let records = titled_records(docs, schema == AVRO_V2);
    let schema_file = ws.write("schema.txt", schema);
    let records_file = ws.write("records.jsonl", records);
    let mut args: Vec<&std::ffi::OsStr> = options.iter().map(|o| o.as_ref()).collect();
    args.extend([
        broker.brokers.as_ref(),
        "docs".as_ref(),
        registry.url.as_ref(),
        schema_file.as_os_str(),
        records_file.as_os_str(),
    ]);
    let out = python_script("registry_produce.py", &args);
    String::from_utf8(out).unwrap().trim().parse().unwrap()
}

/// `docs` as JSON lines with a `title` (`title of KEY`), and `lang` for Avro's version 2.
fn titled_records(docs: &[(String, String)], with_lang: bool) -> String {
    docs.iter()
        .map(|(key, payload)| {
            let mut record: serde_json::Value = serde_json::from_str(payload).unwrap();
            record["title"] = serde_json::json!(format!("title of {key}"));
            if with_lang {
                record["lang"] = serde_json::json!("fr");
            }
            format!("{record}\n")
        })
        .collect()
}

/// Produces `docs` with confluent-kafka's ProtobufSerializer under
/// registry_produce.py's `.proto` version `version`; returns the schema id.
fn produce_protobuf(world: &RegistryWorld, version: &str, docs: &[(String, String)]) -> u32 {
    let records = world.ws.write("records.jsonl", titled_records(docs, false));
    let out = python_script(
        "registry_produce.py",
        &[
            "--protobuf".as_ref(),
            version.as_ref(),
            world.broker.brokers.as_ref(),
            "docs".as_ref(),
            world.registry.url.as_ref(),
            records.as_os_str(),
        ],
    );
    String::from_utf8(out).unwrap().trim().parse().unwrap()
}

/// One message of raw bytes (`hex`), produced by confluent-kafka.
fn produce_raw(broker: &KafkaBroker, key: &str, hex: &str) {
    python_script(
        "registry_produce.py",
        &[
            "--raw".as_ref(),
            broker.brokers.as_ref(),
            "docs".as_ref(),
            key.as_ref(),
            hex.as_ref(),
        ],
    );
}

/// The daemon pipeline reading Avro from `registry`, dead letters to a file.
fn avro_pipeline(
    ws: &Workspace,
    broker: &KafkaBroker,
    milvus: &MilvusServer,
    registry: &SchemaRegistry,
) {
    daemon_pipeline(
        ws,
        broker,
        milvus,
        "docs",
        "dead_letter: { type: file, path: dead.jsonl }\n",
    );
    registry_pipeline(ws, "avro", registry);
}

/// Reading `format` (`avro`, `json_schema`) with schemas from `registry`.
pub(crate) fn registry_pipeline(ws: &Workspace, format: &str, registry: &SchemaRegistry) {
    let source = format!(
        "  id_field: id\n  format: {format}\n  schema_registry: {{ url: '{}' }}\n  metadata: [title]\n",
        registry.url
    );
    edit_pipeline(ws, &[("  id_field: id\n", &source)]);
}

fn dead_letter_lines(ws: &Workspace) -> Vec<serde_json::Value> {
    std::fs::read_to_string(ws.path("dead.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A broker, Milvus Lite and a Schema Registry, with topic `docs`.
pub(crate) struct RegistryWorld {
    pub(crate) broker: KafkaBroker,
    pub(crate) milvus: MilvusServer,
    pub(crate) registry: SchemaRegistry,
    pub(crate) ws: Workspace,
}

impl RegistryWorld {
    pub(crate) fn start(kind: BrokerKind) -> Self {
        let world = RegistryWorld {
            broker: KafkaBroker::start_kind(kind),
            milvus: MilvusServer::start(),
            registry: SchemaRegistry::start(),
            ws: Workspace::new(),
        };
        create_topic(&world.broker.brokers, "docs", 1);
        world
    }

    /// Runs a daemon reading `format` (with `edits` to its pipeline) until
    /// Milvus holds `expected`, stops it, and returns its dead letters as
    /// (position, reason).
    fn run_until(
        &self,
        format: &str,
        edits: &[(&str, &str)],
        expected: &BTreeSet<String>,
    ) -> Vec<(String, String)> {
        daemon_pipeline(
            &self.ws,
            &self.broker,
            &self.milvus,
            "docs",
            "dead_letter: { type: file, path: dead.jsonl }\n",
        );
        registry_pipeline(&self.ws, format, &self.registry);
        edit_pipeline(&self.ws, edits);
        let port = free_port();
        let daemon = start_daemon(&self.ws, port);
        wait_for_ids(&self.milvus.uri, expected, Duration::from_secs(60));
        stop_gracefully(port, daemon);
        dead_letter_lines(&self.ws)
            .iter()
            .map(|d| {
                let text = |key: &str| d[key].as_str().unwrap().to_string();
                (text("position"), text("reason"))
            })
            .collect()
    }
}

/// Avro records from confluent-kafka's serializer, with the writers moving
/// to a new schema version mid-topic: each decodes with its own schema;
/// a message not in the wire format and one naming an unknown schema id go
/// to the dead letter with the reason.
fn avro_records_decode_with_their_writers_schema_and_bad_ones_are_dead_letters(kind: BrokerKind) {
    let world = RegistryWorld::start(kind);
    let (ws, broker, registry) = (&world.ws, &world.broker, &world.registry);
    let docs: Vec<_> = (0..8).map(document).collect();
    let expected = expected_ids(ws, &docs);
    let v1 = produce_avro(ws, broker, registry, AVRO_V1, &docs[..4]);
    produce_raw(broker, "not-framed", "7b226964223a2231227d");
    produce_raw(broker, "unknown-id", "000000270f02");
    let v2 = produce_avro(ws, broker, registry, AVRO_V2, &docs[4..]);
    assert_ne!(v1, v2, "the evolved schema has an id of its own");
    let dead = world.run_until("avro", &[], &expected);
    let titles: BTreeSet<String> = milvus_rows(&world.milvus.uri, "docs", "id,title")
        .into_iter()
        .map(|r| r["title"].as_str().unwrap().to_string())
        .collect();
    let wanted: BTreeSet<String> = (0..8).map(|i| format!("title of doc-{i}")).collect();
    assert_eq!(titles, wanted, "metadata decoded from both schema versions");
    assert_eq!(
        dead,
        [
            (
                "docs/0@4".to_string(),
                "not in the Confluent wire format (the first byte is not 0)".to_string()
            ),
            (
                "docs/0@5".to_string(),
                "schema id 9999 is unknown to the Schema Registry".to_string()
            ),
        ]
    );
}

/// A Schema Registry that is down is waited for: `/health` says 503,
/// nothing is dead-lettered or committed; a stop while it waits exits 1
/// naming the registry; once it is back, a restarted daemon writes exactly
/// the records.
fn a_schema_registry_that_is_down_is_waited_for_and_nothing_is_dead_lettered(kind: BrokerKind) {
    let broker = KafkaBroker::start_kind(kind);
    let milvus = MilvusServer::start();
    let mut registry = SchemaRegistry::start();
    create_topic(&broker.brokers, "docs", 1);
    let ws = Workspace::new();
    let docs: Vec<_> = (0..4).map(document).collect();
    let expected = expected_ids(&ws, &docs);
    let id = produce_avro(&ws, &broker, &registry, AVRO_V1, &docs[..3]);
    assert_eq!(
        id, 1,
        "a fresh registry numbers from 1 (its restart does again)"
    );
    registry.stop();
    avro_pipeline(&ws, &broker, &milvus, &registry);
    let port = free_port();
    let mut daemon = start_daemon(&ws, port);
    // The gauge appears at the first failed fetch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || !http_get(port, "/metrics")
            .1
            .lines()
            .any(|l| l == "vecpipe_schema_registry_up 0")
    {
        assert!(
            Instant::now() < deadline,
            "the registry outage was never noticed"
        );
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon waits, not exits"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(3) {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon waits, not exits"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(http_get(port, "/health").0, 503);
    assert!(
        dead_letter_lines(&ws).is_empty(),
        "nothing is dead-lettered"
    );
    assert!(
        !has_collection(&milvus.uri, "docs") || milvus_ids(&milvus.uri).is_empty(),
        "nothing is written"
    );

    // Stopped while it waits: exit 1, the registry named, nothing committed.
    signal(&daemon, "-TERM");
    let run = Run(daemon.wait_with_output().unwrap()).expect_code(1);
    let last = run.stderr().lines().last().unwrap_or_default().to_string();
    let expected_start = format!(
        "error: Kafka source: nothing from this batch was committed: stopped while waiting for the Schema Registry: Schema Registry {}: ",
        registry.url
    );
    assert!(last.starts_with(&expected_start), "{last}");
    assert!(last.contains("Connection refused"), "{last}");
    wait_committed(&broker.brokers, -1001, || {});
    assert!(
        dead_letter_lines(&ws).is_empty(),
        "nothing is dead-lettered"
    );

    // Back (with no schemas: it is in-memory); the writer registers v1 again
    // as id 1; a restarted daemon writes every record.
    registry.restart();
    assert_eq!(
        produce_avro(&ws, &broker, &registry, AVRO_V1, &docs[3..]),
        1
    );
    let daemon = start_daemon(&ws, port);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(90));
    stop_gracefully(port, daemon);
    assert_eq!(dead_letter_lines(&ws), Vec::<serde_json::Value>::new());
}

/// Debezium's Avro converter: change events in Avro (the envelope's schema
/// as Debezium registers it for a PostgreSQL table, reduced to the fields
/// read), from confluent-kafka's AvroSerializer.
const DEBEZIUM_AVRO: &str = r#"{"type": "record", "name": "Envelope", "namespace": "pg.public.docs", "fields": [
  {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
    {"name": "id", "type": "int"},
    {"name": "title", "type": ["null", "string"], "default": null},
    {"name": "body", "type": ["null", "string"], "default": null}]}], "default": null},
  {"name": "after", "type": ["null", "Value"], "default": null},
  {"name": "op", "type": "string"},
  {"name": "ts_ms", "type": ["null", "long"], "default": null}]}"#;

/// Debezium events in Avro: a snapshot read, an insert, an update and a
/// delete end as the table is.
fn debezium_avro_events_write_updates_and_delete(kind: BrokerKind) {
    use serde_json::{Value, json};
    let world = RegistryWorld::start(kind);
    let (ws, broker, registry) = (&world.ws, &world.broker, &world.registry);
    let row = |id: i64, body: &str| json!({"id": id, "title": format!("t{id}"), "body": body});
    let event = |op: &str, before: Value, after: Value| json!({"before": before, "after": after, "op": op, "ts_ms": 1733390000100_i64});
    let events = [
        event("r", Value::Null, row(1, "A row that the table deletes.")),
        event("c", Value::Null, row(2, "The first version of row two.")),
        event(
            "u",
            row(2, "The first version of row two."),
            row(2, "Row two, as updated."),
        ),
        event("d", row(1, "A row that the table deletes."), Value::Null),
    ];
    let records: String = events.iter().map(|e| format!("{e}\n")).collect();
    let schema_file = ws.write("envelope.avsc", DEBEZIUM_AVRO);
    let records_file = ws.write("events.jsonl", records);
    python_script(
        "registry_produce.py",
        &[
            "--key-field".as_ref(),
            "op".as_ref(),
            broker.brokers.as_ref(),
            "docs".as_ref(),
            registry.url.as_ref(),
            schema_file.as_os_str(),
            records_file.as_os_str(),
        ],
    );
    let final_docs = vec![(
        "2".to_string(),
        json!({"id": "2", "text": "Row two, as updated."}).to_string(),
    )];
    let expected = expected_ids(ws, &final_docs);
    let debezium = [(
        "  metadata: [title]\n",
        "  metadata: [title]\n  text_field: body\n  envelope: debezium\n",
    )];
    let dead = world.run_until("avro", &debezium, &expected);
    let rows = milvus_rows(&world.milvus.uri, "docs", "id,text,title");
    assert_eq!(
        rows,
        vec![json!({"id": "2#0", "text": "Row two, as updated.", "title": "t2"})]
    );
    assert_eq!(dead, []);
}

/// A JSON Schema for the same records (draft 7): `text` is required.
const JSON_SCHEMA: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "title": "Doc",
  "type": "object", "required": ["id", "text"], "additionalProperties": true,
  "properties": {"id": {"type": "string"}, "text": {"type": "string"}, "title": {"type": "string"}}}"#;

/// JSON records from confluent-kafka's JSONSerializer, validated against
/// their registered JSON Schema: one that breaks it (no `text`) and one
/// framed with an Avro schema's id go to the dead letter with the reason.
fn json_schema_records_are_validated_and_bad_ones_are_dead_letters(kind: BrokerKind) {
    let world = RegistryWorld::start(kind);
    let (ws, broker, registry) = (&world.ws, &world.broker, &world.registry);
    let docs: Vec<_> = (0..4).map(document).collect();
    let expected = expected_ids(ws, &docs);
    let json = ["--json-schema"];
    let json_id = produce_registered(ws, broker, registry, JSON_SCHEMA, &docs[..2], &json);
    // A document without `text`, framed with the JSON Schema's id.
    let missing_text = format!("00{json_id:08x}{}", hex(br#"{"id": "x", "title": "t"}"#));
    produce_raw(broker, "no-text", &missing_text);
    // An Avro schema's id, where JSON Schema is expected.
    let avro_id = produce_avro(ws, broker, registry, AVRO_V1, &[]);
    produce_raw(broker, "avro-id", &format!("00{avro_id:08x}{}", hex(b"{}")));
    produce_registered(ws, broker, registry, JSON_SCHEMA, &docs[2..], &json);
    let dead = world.run_until("json_schema", &[], &expected);
    assert_eq!(
        dead,
        [
            (
                "docs/0@2".to_string(),
                format!(
                    "does not match JSON Schema {json_id}: \"text\" is a required property (at ``)"
                )
            ),
            (
                "docs/0@3".to_string(),
                format!("schema {avro_id} is AVRO, not what `format: json_schema` reads")
            ),
        ]
    );
}

/// Protobuf records from confluent-kafka's ProtobufSerializer, the writers
/// moving mid-topic to a version whose `Doc` is the second message (message
/// index 1) with the title in a nested message (`meta.title`): each decodes
/// with its own schema; an unknown schema id, a message index naming no type
/// and a payload that does not decode go to the dead letter with the reason.
fn protobuf_records_decode_with_their_writers_schema_and_bad_ones_are_dead_letters(
    kind: BrokerKind,
) {
    let world = RegistryWorld::start(kind);
    let docs: Vec<_> = (0..8).map(document).collect();
    let expected = expected_ids(&world.ws, &docs);
    let v1 = produce_protobuf(&world, "1", &docs[..4]);
    produce_raw(&world.broker, "unknown-id", "000000270f00");
    produce_raw(
        &world.broker,
        "no-such-type",
        &format!("{}0204", frame_header(v1)),
    );
    produce_raw(
        &world.broker,
        "cut-short",
        &format!("{}000a05ab", frame_header(v1)),
    );
    let v2 = produce_protobuf(&world, "2", &docs[4..]);
    assert_ne!(v1, v2, "the evolved schema has an id of its own");
    let dead = world.run_until(
        "protobuf",
        &[("metadata: [title]", "metadata: [meta.title]")],
        &expected,
    );
    let titles: BTreeSet<(String, Option<String>)> =
        milvus_rows(&world.milvus.uri, "docs", "doc_id,title")
            .into_iter()
            .map(|r| {
                let title = r["title"].as_str().map(str::to_string);
                (r["doc_id"].as_str().unwrap().to_string(), title)
            })
            .collect();
    let wanted: BTreeSet<(String, Option<String>)> = (0..8)
        .map(|i| {
            let title = (i >= 4).then(|| format!("title of doc-{i}"));
            (format!("doc-{i}"), title)
        })
        .collect();
    assert_eq!(
        titles, wanted,
        "version 1 has no title; version 2's is nested"
    );
    assert_eq!(
        dead,
        [
            (
                "docs/0@4".to_string(),
                "schema id 9999 is unknown to the Schema Registry".to_string()
            ),
            (
                "docs/0@5".to_string(),
                "message index 2 names no message type (indexes [2])".to_string()
            ),
            (
                "docs/0@6".to_string(),
                "Protobuf message `docs.Doc` does not decode: failed to decode Protobuf message: buffer underflow"
                    .to_string()
            ),
        ]
    );
}

/// The Confluent header of schema `id`, in hex.
fn frame_header(id: u32) -> String {
    format!("00{}", hex(&id.to_be_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! on_every_broker {
    ($($name:ident),* $(,)?) => {
        mod tansu {
            $(#[test]
            fn $name() {
                super::$name(super::BrokerKind::Tansu)
            })*
        }
        mod noida {
            $(#[test]
            fn $name() {
                super::$name(super::BrokerKind::Noida)
            })*
        }
    };
}

// Tansu only: noida-db 0.2.3 never expires a killed member's session. Its
// JoinGroup answer keeps naming the dead member as the group's leader and
// SyncGroup answers "rebalance in progress" to every new member, so after a
// kill -9 no member of that group gets partitions again until the broker
// restarts (seen in librdkafka's `debug: cgrp` trace). Nothing is lost: the
// restarted daemon just reads nothing. A broker bug, not a delivery one.
#[test]
fn tansu_kill_9_at_random_moments_loses_nothing_and_duplicates_nothing() {
    kill_9_at_random_moments_loses_nothing_and_duplicates_nothing(
        BrokerKind::Tansu,
        MilvusKind::Lite,
    )
}

/// Waits until the test group has committed `offset` on partition 0 of
/// `docs` (-1001: nothing committed), calling `check` between looks;
/// panics after 60 s.
fn wait_committed(brokers: &str, offset: i64, mut check: impl FnMut()) {
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "vecpipe-test")
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    partitions.add_partition("docs", 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        check();
        let committed = group
            .committed_offsets(partitions.clone(), Duration::from_secs(10))
            .unwrap();
        let at = committed.find_partition("docs", 0).unwrap().offset();
        if at.to_raw() == Some(offset) {
            return;
        }
        assert!(Instant::now() < deadline, "committed {at:?}, not {offset}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Offsets committed when partitions are revoked wait for the dead letters
/// of the batches they cover, like every other commit (before, the
/// revocation committed without that flush: a kill right after lost the
/// dead letters of committed records). The periodic commit is set far off,
/// so the revocation is the only commit before the kill.
#[test]
fn a_revocation_makes_the_dead_letters_durable_before_it_commits() {
    let broker = KafkaBroker::start_kind(BrokerKind::Tansu);
    let milvus = MilvusServer::start();
    create_topic(&broker.brokers, "docs", 1);
    let ws = Workspace::new();
    let good: Vec<_> = (0..4).map(document).collect();
    let expected = expected_ids(&ws, &good);
    let mut records = good.clone();
    records.insert(2, ("bad".to_string(), "{not json".to_string()));
    daemon_pipeline(
        &ws,
        &broker,
        &milvus,
        "docs",
        "dead_letter: { type: file, path: dead.jsonl }\n",
    );
    let start = |port: u16| {
        ws.command(&[
            "daemon",
            "daemon.yaml",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("VECPIPE_COMMIT_INTERVAL_MS", "600000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
    };
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start(port_a);
    wait_healthy(port_a, &mut a);
    produce(&producer(&broker.brokers), "docs", &records);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(60));
    // The batch is written; its acknowledgement follows at once.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        std::fs::read_to_string(ws.path("dead.jsonl"))
            .unwrap_or_default()
            .is_empty(),
        "nothing made the dead letter durable yet"
    );

    // A second member joins: the first revokes its partition and commits.
    let mut b = start(port_b);
    wait_committed(&broker.brokers, records.len() as i64, || {
        assert!(a.try_wait().unwrap().is_none(), "daemon a exited");
    });
    a.kill().unwrap();
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();

    let dead = std::fs::read_to_string(ws.path("dead.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "the one dead letter: {dead}");
    assert_eq!(lines[0]["raw"], "{not json", "{dead}");
    assert_eq!(lines[0]["key"], "bad", "{dead}");
}

/// A daemon that sends tombstones to Milvus as deletes with no lookup first,
/// with documents doc-0..doc-5 written and doc-6 held back for later.
struct DeletingDaemon {
    broker: KafkaBroker,
    milvus: MilvusServer,
    docs: Vec<(String, String)>,
    expected: BTreeSet<String>,
    producer: BaseProducer,
    port: u16,
    daemon: std::process::Child,
    _ws: Workspace,
}

impl DeletingDaemon {
    fn start(milvus: MilvusKind) -> Self {
        let broker = KafkaBroker::start_kind(BrokerKind::Tansu);
        let milvus = MilvusServer::start_kind(milvus);
        create_topic(&broker.brokers, "docs", 1);
        let ws = Workspace::new();
        let docs: Vec<_> = (0..7).map(document).collect();
        let expected = expected_ids(&ws, &docs);
        daemon_pipeline(&ws, &broker, &milvus, "docs", "");
        // A second sink (which holds no documents) turns incremental skipping
        // off, so a tombstone goes to Milvus as a delete with no lookup first
        // (a lookup would meet the fault itself).
        edit_pipeline(
            &ws,
            &[
                ("  id_field: id\n", "  key_as_id: true\n"),
                (
                    "sinks:\n",
                    "sinks:\n  - { type: jsonl, path: out/rows.jsonl }\n",
                ),
            ],
        );
        let producer = producer(&broker.brokers);
        produce(&producer, "docs", &docs[..6]);
        let port = free_port();
        let daemon = start_daemon(&ws, port);
        let running = DeletingDaemon {
            broker,
            milvus,
            docs,
            expected,
            producer,
            port,
            daemon,
            _ws: ws,
        };
        wait_for_ids(
            &running.milvus.uri,
            &running.expected_without(&["doc-6#"]),
            Duration::from_secs(60),
        );
        running
    }

    /// The chunk ids expected in Milvus, but those of the documents `prefixes` name.
    fn expected_without(&self, prefixes: &[&str]) -> BTreeSet<String> {
        self.expected
            .iter()
            .filter(|id| !prefixes.iter().any(|p| id.starts_with(p)))
            .cloned()
            .collect()
    }

    fn send_tombstone(&self, key: &str) {
        self.producer
            .send(BaseRecord::<str, str>::to("docs").key(key))
            .unwrap();
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    fn send_held_back_document(&self) {
        produce(&self.producer, "docs", &self.docs[6..]);
    }

    /// Waits until the daemon's group has committed `offset` on the
    /// topic's one partition: the records before it are written.
    fn wait_committed(&mut self, offset: i64) {
        let brokers = self.broker.brokers.clone();
        wait_committed(&brokers, offset, || self.assert_running());
    }

    fn assert_running(&mut self) {
        if self.daemon.try_wait().unwrap().is_some() {
            let mut stderr = String::new();
            if let Some(pipe) = self.daemon.stderr.as_mut() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("the daemon must wait for Milvus, not exit:\n{stderr}");
        }
    }

    /// Stops the daemon with SIGTERM: exit 0.
    fn stop(mut self) {
        wait_healthy(self.port, &mut self.daemon);
        signal(&self.daemon, "-TERM");
        Run(self.daemon.wait_with_output().unwrap()).expect_code(0);
        drop(self.broker);
    }
}

/// A delete that meets a stopped server is retried like an upsert: the
/// daemon rides out the outage (before, `MilvusSink` sent deletes once, and a
/// tombstone arriving while Milvus was away stopped the daemon, exit 1).
fn a_delete_during_an_outage_waits_for_the_server(milvus: MilvusKind) {
    let mut running = DeletingDaemon::start(milvus);
    // Only a delete is in flight while the server is away.
    running.milvus.stop();
    running.send_tombstone("doc-0");
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(10) {
        running.assert_running();
        std::thread::sleep(Duration::from_millis(500));
    }
    running.milvus.restart();
    // doc-6 is an upsert to the restarted server.
    running.send_held_back_document();
    let expected = running.expected_without(&["doc-0#"]);
    wait_for_ids(&running.milvus.uri, &expected, Duration::from_secs(120));
    running.stop();
}

/// A collection released under a running daemon (a restarted Milvus 2.3
/// brings its collections back released until it reloads them) is loaded
/// again by the daemon's next delete and its next upsert (before, the
/// server's "collection not loaded" stopped the daemon, exit 1, and the
/// tombstone was lost; Milvus Lite deletes and upserts without loading).
/// The test's own reads load the collection, so they wait until the daemon
/// has committed what it wrote.
fn a_released_collection_is_loaded_again_for_deletes_and_upserts(milvus: MilvusKind) {
    let mut running = DeletingDaemon::start(milvus);
    release_collection(&running.milvus.uri, "docs");
    running.send_tombstone("doc-0");
    running.wait_committed(7);
    let expected = running.expected_without(&["doc-0#", "doc-6#"]);
    assert_eq!(milvus_id_set(&running.milvus.uri), expected);

    release_collection(&running.milvus.uri, "docs");
    running.send_held_back_document();
    running.wait_committed(8);
    let expected = running.expected_without(&["doc-0#"]);
    assert_eq!(milvus_id_set(&running.milvus.uri), expected);
    running.stop();
}

/// The ids in Milvus, none twice.
fn milvus_id_set(uri: &str) -> BTreeSet<String> {
    let ids = milvus_ids(uri);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "duplicate ids in Milvus");
    set
}

#[test]
fn a_delete_during_an_outage_waits_for_milvus_lite() {
    a_delete_during_an_outage_waits_for_the_server(MilvusKind::Lite)
}

#[test]
fn a_released_collection_is_loaded_again_by_milvus_lite() {
    a_released_collection_is_loaded_again_for_deletes_and_upserts(MilvusKind::Lite)
}

/// The real Milvus 2.3 server behind the daemon: kill -9 and tombstones.
mod real_milvus {
    use super::*;

    #[test]
    fn tansu_kill_9_at_random_moments_loses_nothing_and_duplicates_nothing() {
        kill_9_at_random_moments_loses_nothing_and_duplicates_nothing(
            BrokerKind::Tansu,
            MilvusKind::Real,
        )
    }

    #[test]
    fn a_tombstone_deletes_the_documents_chunks() {
        tombstones_on(BrokerKind::Noida, MilvusKind::Real)
    }

    /// The restarted server answers the delete with "collection not
    /// loaded" until the sink loads it again.
    #[test]
    fn a_delete_during_an_outage_waits_for_the_server() {
        super::a_delete_during_an_outage_waits_for_the_server(MilvusKind::Real)
    }

    #[test]
    fn a_released_collection_is_loaded_again_for_deletes_and_upserts() {
        super::a_released_collection_is_loaded_again_for_deletes_and_upserts(MilvusKind::Real)
    }
}

on_every_broker!(
    daemon_writes_every_chunk_exposes_metrics_and_stops_gracefully_with_offsets_committed,
    two_daemons_in_one_group_split_the_partitions_and_write_every_record,
    malformed_payloads_go_to_the_dead_letter_topic_and_good_records_around_them_are_written,
    milvus_down_for_20_seconds_pauses_the_daemon_and_loses_nothing,
    a_tombstone_deletes_the_documents_chunks,
    a_model_service_error_stops_the_daemon_commits_nothing_unwritten_and_a_restart_writes_the_rest,
    republished_unchanged_documents_write_nothing_and_a_changed_one_is_replaced,
    debezium_change_events_write_updates_and_delete_in_order,
    avro_records_decode_with_their_writers_schema_and_bad_ones_are_dead_letters,
    a_schema_registry_that_is_down_is_waited_for_and_nothing_is_dead_lettered,
    debezium_avro_events_write_updates_and_delete,
    json_schema_records_are_validated_and_bad_ones_are_dead_letters,
    protobuf_records_decode_with_their_writers_schema_and_bad_ones_are_dead_letters,
);
