//! TLS and auth on the real Milvus 2.3.5 server (Milvus Lite has neither): one-way with
//! a private CA, and mutual with a client certificate; certificates made by
//! the `openssl` command for each test.

use crate::common::*;

fn pipeline(ws: &Workspace, uri: &str, tls: &str) {
    sample_corpus(ws);
    ws.write(
        "p.yaml",
        format!(
            "name: t\nsource: {{ type: jsonl, path: corpus.jsonl, id_field: id, metadata: [title] }}\nstages:\n  - {{ type: chunk, max_chars: 200 }}\n  - {{ type: dense }}\nsinks:\n  - {{ type: milvus, uri: '{uri}', collection: docs{tls} }}\n"
        ),
    );
}

fn top_doc(ws: &Workspace) -> String {
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
        serde_json::from_str(run.stdout().lines().next().unwrap()).unwrap();
    hit["doc_id"].as_str().unwrap().to_string()
}

#[test]
fn one_way_tls_with_a_private_ca_writes_and_searches_and_without_it_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let server = MilvusServer::start_real(RealOptions {
        tls_mode: 1,
        tls_dir: Some(certs.path().to_path_buf()),
        ..RealOptions::default()
    });
    let ca = certs.path().join("ca.pem");
    let ws = Workspace::new();
    pipeline(
        &ws,
        &server.uri,
        &format!(", tls: {{ ca_file: '{}' }}", ca.display()),
    );
    ws.vecpipe(&["validate", "p.yaml"]).expect_code(0);
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert!(run.summary_number("chunks") > 12);
    assert_eq!(top_doc(&ws), "turing");

    // The certificate's problem is named at once, not after the SDK's
    // 10 s connect timeout as "operation timed out".
    let untrusting = Workspace::new();
    pipeline(&untrusting, &server.uri, "");
    let started = std::time::Instant::now();
    let refused = untrusting.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        refused.stderr(),
        format!(
            "error: cannot connect to Milvus at {}: TLS: invalid peer certificate: UnknownIssuer; set `tls.ca_file` to the CA that signed the server's certificate\n",
            server.uri
        )
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let misnamed = Workspace::new();
    pipeline(
        &misnamed,
        &server.uri,
        &format!(
            ", tls: {{ ca_file: '{}', server_name: milvus.example }}",
            ca.display()
        ),
    );
    let refused = misnamed.vecpipe(&["validate", "p.yaml"]).expect_code(2);
    let expected_start = format!(
        "error: p.yaml:7:26: sinks[0].uri: cannot connect to Milvus at {}: TLS: invalid peer certificate: ",
        server.uri
    );
    assert!(
        refused.stderr().starts_with(&expected_start)
            && refused
                .stderr()
                .ends_with("; set `tls.server_name` to a name the certificate carries\n"),
        "{}",
        refused.stderr()
    );
}

/// A real server asking for client certificates; its certificates, and the
/// sink's `tls` settings that reach it (`, tls: { … }`).
fn mutual_tls_server() -> (tempfile::TempDir, MilvusServer, String) {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let server = MilvusServer::start_real(RealOptions {
        tls_mode: 2,
        tls_dir: Some(certs.path().to_path_buf()),
        ..RealOptions::default()
    });
    let file = |name: &str| certs.path().join(name).display().to_string();
    let tls = format!(
        ", tls: {{ ca_file: '{}', server_name: localhost, client_cert_file: '{}', client_key_file: '{}' }}",
        file("ca.pem"),
        file("client.pem"),
        file("client.key")
    );
    (certs, server, tls)
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let (certs, server, tls) = mutual_tls_server();
    let file = |name: &str| certs.path().join(name).display().to_string();
    let ws = Workspace::new();
    pipeline(&ws, &server.uri, &tls);
    ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert_eq!(top_doc(&ws), "turing");

    let anonymous = Workspace::new();
    pipeline(
        &anonymous,
        &server.uri,
        &format!(", tls: {{ ca_file: '{}' }}", file("ca.pem")),
    );
    let refused = anonymous.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert!(
        refused.stderr().starts_with(&format!(
            "error: cannot connect to Milvus at {}",
            server.uri
        )),
        "{}",
        refused.stderr()
    );
}

/// `mode: import` starts and polls its jobs on a channel of its own: over
/// mutual TLS it carries the sink's CA, server name and client certificate.
#[test]
fn an_import_over_mutual_tls_lands_every_document_a_rerun_finds_unchanged() {
    let (_certs, server, tls) = mutual_tls_server();
    let ws = Workspace::new();
    let imports = ws.path("imports");
    pipeline(
        &ws,
        &server.uri,
        &format!("{tls}, mode: import, import_dir: '{}'", imports.display()),
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    let records = run.summary_number("records");
    assert!(run.summary_number("chunks") > 12, "{}", run.stdout());
    assert_eq!(top_doc(&ws), "turing");
    assert_eq!(std::fs::read_dir(&imports).unwrap().count(), 0);
    // Every document's rows are there with their fingerprints: an upsert
    // run of the same pipeline finds each one unchanged and writes nothing.
    pipeline(&ws, &server.uri, &tls);
    let rerun = ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
    assert_eq!(
        rerun.summary_number("unchanged"),
        records,
        "{}",
        rerun.stdout()
    );
    assert_eq!(rerun.summary_number("chunks"), 0, "{}", rerun.stdout());
}

/// Credentials written into the uri are refused before anything connects,
/// and the password appears nowhere in the output.
#[test]
fn credentials_in_the_uri_are_refused_and_never_printed() {
    let ws = Workspace::new();
    pipeline(&ws, "http://root:s3cr3t-Pa55@127.0.0.1:19530", "");
    let validate = ws.vecpipe(&["validate", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        validate.stderr(),
        "error: p.yaml:7:26: sinks[0].uri: holds credentials (`user:password@`), which are not used and would be shown in messages; remove them and set `token: ${MILVUS_TOKEN}` (user:password or an API key) from the environment\n"
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    for output in [validate.stdout(), run.stdout(), run.stderr()] {
        assert!(!output.contains("s3cr3t-Pa55"), "{output}");
    }
}

/// Token auth against the real server with authorization on: the right
/// `user:password` from the environment writes and searches; a wrong one is
/// refused (exit 2) and shown nowhere.
#[test]
fn token_auth_writes_and_a_wrong_password_is_refused_and_never_printed() {
    let server = MilvusServer::start_real(RealOptions {
        auth: true,
        ..RealOptions::default()
    });
    let ws = Workspace::new();
    pipeline(&ws, &server.uri, ", token: '${MILVUS_TOKEN}'");
    let with_token = |token: &str, args: &[&str]| {
        let mut command = ws.command(args);
        command.env("MILVUS_TOKEN", token);
        Run(command.output().unwrap())
    };
    with_token("root:Milvus", &["run", "p.yaml"]).expect_code(0);
    let hits = with_token(
        "root:Milvus",
        &[
            "search",
            "p.yaml",
            "Where was Turing born?",
            "--json",
            "--limit",
            "1",
        ],
    )
    .expect_code(0);
    assert!(
        hits.stdout().contains("\"doc_id\":\"turing\""),
        "{}",
        hits.stdout()
    );
    for args in [&["validate", "p.yaml"][..], &["run", "p.yaml"][..]] {
        let refused = with_token("root:wr0ng-Pa55", args).expect_code(2);
        assert!(
            refused
                .stderr()
                .contains(&format!("cannot connect to Milvus at {}", server.uri)),
            "{}",
            refused.stderr()
        );
        for output in [refused.stdout(), refused.stderr()] {
            assert!(!output.contains("wr0ng-Pa55"), "{output}");
        }
    }
}
