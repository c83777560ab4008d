//! Kafka as production runs it: a broker that enforces SASL/SCRAM over TLS
//! (Tansu with `--authentication` behind stunnel, see `SecuredKafka`), the
//! daemon reading from it into Milvus and dead-lettering to it, and the
//! refusals — a wrong password, an unknown CA — named as such, with no
//! password in any output.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::BrokerKind;
use crate::common::secured_kafka::KAFKA_PASSWORD;
use crate::common::*;
use crate::kafka_daemon::{STAGES, document, expected_ids, wait_healthy};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

const WRONG_PASSWORD: &str = "Wr0ng-also-never-printed";

fn pipeline(ws: &Workspace, kafka: &SecuredKafka, sink: &str, dead_letter: &str) {
    ws.write(
        "daemon.yaml",
        format!(
            "name: secured\nsource:\n  type: kafka\n  brokers: '{}'\n  topics: [docs]\n  group_id: vecpipe-secured\n  id_field: id\n  batch_rows: 16\n  max_latency_ms: 100\n  options: {}\n{STAGES}sinks:\n  - {sink}\n{dead_letter}",
            kafka.brokers,
            kafka.options_yaml("SCRAM-SHA-256"),
        ),
    );
}

/// Neither password appears anywhere in a run's output.
fn assert_no_password(run: &Run) {
    let all = format!("{}{}", run.stdout(), run.stderr());
    for secret in [KAFKA_PASSWORD, WRONG_PASSWORD] {
        assert!(!all.contains(secret), "a password was printed:\n{all}");
    }
}

/// `vecpipe daemon daemon.yaml` at debug level, the secret in `variable`.
fn daemon_with_secret(
    ws: &Workspace,
    variable: &str,
    secret: &str,
    metrics_port: u16,
) -> std::process::Child {
    ws.command(&[
        "daemon",
        "daemon.yaml",
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
    ])
    .env(variable, secret)
    .env("VECPIPE_LOG", "debug")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// The committed offset of the daemon's group on `docs/0`, read as the test's own user.
fn committed_offset(kafka: &SecuredKafka) -> Option<i64> {
    let consumer: BaseConsumer = kafka
        .client()
        .set("group.id", "vecpipe-secured")
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition("docs", 0);
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    match committed.elements()[0].offset() {
        rdkafka::Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

#[test]
fn a_wrong_password_stops_the_daemon_and_the_right_one_reads_scram_over_tls_into_milvus() {
    let kafka = SecuredKafka::start();
    let milvus = MilvusServer::start();
    kafka.create_topic("docs", 1);
    kafka.create_topic("docs-dead", 1);
    let ws = Workspace::new();
    let good: Vec<_> = (1..=6).map(document).collect();
    let expected = expected_ids(&ws, &good);
    let mut lines: String = good
        .iter()
        .map(|(_, payload)| format!("{payload}\n"))
        .collect();
    lines.push_str("{\"id\": \"bad\", \"body\": \"no text field\"}\n");
    ws.write("records.jsonl", lines);
    kafka.produce_jsonl("docs", &ws.path("records.jsonl"));
    pipeline(
        &ws,
        &kafka,
        &format!(
            "{{ type: milvus, uri: '{}', collection: docs }}",
            milvus.uri
        ),
        &format!(
            "dead_letter: {{ type: kafka, topic: docs-dead, brokers: '{}', options: {} }}\n",
            kafka.brokers,
            kafka.options_yaml("SCRAM-SHA-512")
        ),
    );

    // A wrong password: the daemon stops at once, naming the refusal; nothing is written or committed.
    let refused = wait_for_exit(
        daemon_with_secret(&ws, "KAFKA_PASSWORD", WRONG_PASSWORD, free_port()),
        Duration::from_secs(30),
        "the daemon refused by the broker",
    )
    .expect_code(1);
    assert_no_password(&refused);
    let last = refused
        .stderr()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        last,
        format!(
            "error: Kafka at {}: authentication failed (check `sasl.mechanism`, `sasl.username` and the password in `options`): SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof",
            kafka.brokers
        ),
        "{}\n{}",
        refused.stderr(),
        kafka.logs()
    );
    assert!(!has_collection(&milvus.uri, "docs"));
    assert_eq!(committed_offset(&kafka), None);

    // The right one: every good record lands in Milvus, the bad one in the dead-letter topic.
    let port = free_port();
    let mut daemon = daemon_with_secret(&ws, "KAFKA_PASSWORD", KAFKA_PASSWORD, port);
    wait_healthy(port, &mut daemon);
    wait_for_ids(&milvus.uri, &expected, Duration::from_secs(60));
    let dead: BaseConsumer = kafka
        .client()
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dead.subscribe(&["docs-dead"]).unwrap();
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while letters.is_empty() && Instant::now() < deadline {
        if let Some(Ok(m)) = dead.poll(Duration::from_millis(200)) {
            letters.push((
                String::from_utf8_lossy(m.key().unwrap()).into_owned(),
                String::from_utf8_lossy(m.payload().unwrap()).into_owned(),
            ));
        }
    }
    assert_eq!(
        letters,
        vec![(
            "bad".to_string(),
            "{\"id\": \"bad\", \"body\": \"no text field\"}".to_string()
        )]
    );
    signal(&daemon, "-TERM");
    let stopped = Run(daemon.wait_with_output().unwrap()).expect_code(0);
    assert_no_password(&stopped);
    assert_eq!(
        committed_offset(&kafka),
        Some(7),
        "every record, the bad one too"
    );
    let ids: BTreeSet<String> = milvus_ids(&milvus.uri).into_iter().collect();
    assert_eq!(ids, expected);
}

#[test]
fn validate_names_a_wrong_password_and_an_unknown_ca_without_printing_a_password() {
    let kafka = SecuredKafka::start();
    kafka.create_topic("docs", 1);
    let ws = Workspace::new();
    pipeline(&ws, &kafka, "{ type: jsonl, path: out.jsonl }", "");
    let validate = |password: &str| {
        Run(ws
            .command(&["validate", "daemon.yaml"])
            .env("KAFKA_PASSWORD", password)
            .output()
            .unwrap())
    };

    let ok = validate(KAFKA_PASSWORD).expect_code(0);
    assert_eq!(ok.stdout(), "daemon.yaml: ok (2 stage(s), 1 sink(s))\n");

    let started = Instant::now();
    let wrong = validate(WRONG_PASSWORD).expect_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_no_password(&wrong);
    assert_output_eq!(
        wrong.stderr(),
        format!(
            "error: daemon.yaml:4:12: source.brokers: Kafka at {}: authentication failed (check `sasl.mechanism`, `sasl.username` and the password in `options`): SASL authentication error: SASL SCRAM authentication failed: broker responded with invalid-proof\n",
            kafka.brokers
        )
    );

    // A CA that did not sign the broker's certificate.
    let other = tempfile::tempdir().unwrap();
    certificates(other.path());
    let config = std::fs::read_to_string(ws.path("daemon.yaml")).unwrap();
    ws.write(
        "daemon.yaml",
        config.replace(
            &kafka.ca.display().to_string(),
            &other.path().join("ca.pem").display().to_string(),
        ),
    );
    let untrusted = validate(KAFKA_PASSWORD).expect_code(2);
    assert_no_password(&untrusted);
    assert_output_eq!(
        untrusted.stderr(),
        format!(
            "error: daemon.yaml:4:12: source.brokers: Kafka at {}: TLS handshake failed (check `ssl.ca.location`: the CA that signed the brokers' certificates): SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package)\n",
            kafka.brokers
        )
    );
}

/// An `https://` Schema Registry with a private CA and basic authentication
/// (nginx in front of rivven-schema): the daemon reads Avro through it with
/// `ca_file`, `username` and the password from the environment; `validate`
/// names a wrong password, a missing CA and a wrong bearer token, each on
/// one line, printing neither secret.
#[test]
fn a_schema_registry_behind_tls_and_authentication_is_read_with_its_ca_and_credentials() {
    use crate::common::registry_proxy::{REGISTRY_PASSWORD, REGISTRY_TOKEN, REGISTRY_USER};
    use crate::kafka_daemon::{
        AVRO_V1, RegistryWorld, daemon_pipeline, edit_pipeline, produce_avro, registry_pipeline,
    };
    let world = RegistryWorld::start(BrokerKind::Tansu);
    let proxy = RegistryProxy::start(&world.registry.url);
    let ws = &world.ws;
    let docs: Vec<_> = (0..4).map(document).collect();
    let expected = expected_ids(ws, &docs);
    produce_avro(ws, &world.broker, &world.registry, AVRO_V1, &docs);
    daemon_pipeline(
        ws,
        &world.broker,
        &world.milvus,
        "docs",
        "dead_letter: { type: file, path: dead.jsonl }\n",
    );
    registry_pipeline(ws, "avro", &world.registry);
    let plain = format!("schema_registry: {{ url: '{}' }}", world.registry.url);
    let secured = format!(
        "schema_registry: {{ url: '{}', ca_file: '{}', username: {REGISTRY_USER}, password: '${{SR_PASSWORD}}' }}",
        proxy.basic_url,
        proxy.ca.display()
    );
    edit_pipeline(ws, &[(plain.as_str(), secured.as_str())]);
    let secrets = [REGISTRY_PASSWORD, REGISTRY_TOKEN, "wrong-secret"];
    let validate = |password: &str| {
        let run = Run(ws
            .command(&["validate", "daemon.yaml"])
            .env("SR_PASSWORD", password)
            .output()
            .unwrap());
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            secrets.iter().all(|s| !all.contains(s)),
            "a secret was printed:\n{all}"
        );
        run
    };
    validate(REGISTRY_PASSWORD).expect_code(0);
    let wrong = validate("wrong-secret").expect_code(2);
    assert_output_eq!(
        wrong.stderr(),
        format!(
            "error: daemon.yaml:4:12: source.brokers: Schema Registry {} refused the connection: HTTP 401 for the subject list; check `schema_registry.username` and `password`, or `token`\n",
            proxy.basic_url
        )
    );

    let port = free_port();
    let mut daemon = daemon_with_secret(ws, "SR_PASSWORD", REGISTRY_PASSWORD, port);
    wait_healthy(port, &mut daemon);
    wait_for_ids(&world.milvus.uri, &expected, Duration::from_secs(60));
    signal(&daemon, "-TERM");
    let stopped = Run(daemon.wait_with_output().unwrap()).expect_code(0);
    let all = format!("{}{}", stopped.stdout(), stopped.stderr());
    assert!(
        secrets.iter().all(|s| !all.contains(s)),
        "a secret was printed"
    );
    assert_eq!(
        dead_letters(&ws.path("dead.jsonl")),
        Vec::<serde_json::Value>::new()
    );

    // Without the CA, the certificate is refused.
    let ca = format!(", ca_file: '{}'", proxy.ca.display());
    edit_pipeline(ws, &[(ca.as_str(), "")]);
    let untrusted = validate(REGISTRY_PASSWORD).expect_code(2);
    assert_output_eq!(
        untrusted.stderr(),
        format!(
            "error: daemon.yaml:4:12: source.brokers: Schema Registry {} refused the connection: TLS: invalid peer certificate: UnknownIssuer; check `schema_registry.ca_file` (the CA that signed the registry's certificate)\n",
            proxy.basic_url
        )
    );

    // Bearer authentication, on the other listener.
    let basic = format!(
        "url: '{}', username: {REGISTRY_USER}, password: '${{SR_PASSWORD}}' }}",
        proxy.basic_url
    );
    let bearer = format!(
        "url: '{}', ca_file: '{}', token: '${{SR_PASSWORD}}' }}",
        proxy.bearer_url,
        proxy.ca.display()
    );
    edit_pipeline(ws, &[(basic.as_str(), bearer.as_str())]);
    validate(REGISTRY_TOKEN).expect_code(0);
    let wrong = validate("wrong-secret").expect_code(2);
    assert_output_eq!(
        wrong.stderr(),
        format!(
            "error: daemon.yaml:4:12: source.brokers: Schema Registry {} refused the connection: HTTP 401 for the subject list; check `schema_registry.username` and `password`, or `token`\n",
            proxy.bearer_url
        )
    );
}
