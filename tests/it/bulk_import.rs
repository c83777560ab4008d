//! `mode: import` against the real Milvus 2.3.5 server (Milvus Lite has no
//! import): the rows a backfill imports are the rows an upsert run writes; a
//! run killed mid-import and resumed ends with exactly the expected ids; a
//! job the server rejects fails the run with the server's reason and
//! records nothing.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, StringArray};

use crate::common::*;

const GROUPS: usize = 4;
const ROWS: usize = 10;

/// `docs.parquet`: 4 row groups of 10 documents with texts of `text_len` characters.
fn corpus(ws: &Workspace, text_len: usize) -> BTreeSet<String> {
    let ids: Vec<String> = (0..GROUPS * ROWS).map(|i| format!("d{i:02}")).collect();
    let texts: Vec<String> = ids
        .iter()
        .map(|id| {
            format!("{id} {}", "about bulk import ".repeat(text_len / 18 + 1))[..text_len]
                .to_string()
        })
        .collect();
    write_parquet(
        &ws.path("docs.parquet"),
        vec![
            (
                "id",
                Arc::new(StringArray::from(ids.clone())) as Arc<dyn Array>,
            ),
            ("text", Arc::new(StringArray::from(texts))),
        ],
        ROWS,
    );
    ids.into_iter().collect()
}

/// The pipeline `NAME.yaml`: Parquet → dense (the test's model service) →
/// the collection `NAME`, with `sink` added to the sink's settings.
fn pipeline(ws: &Workspace, name: &str, service: &FakeService, uri: &str, sink: &str) {
    ws.write(
        &format!("{name}.yaml"),
        format!(
            "name: {name}\nsource: {{ type: parquet, path: docs.parquet, id_field: id, batch_rows: {ROWS} }}\nstages:\n  - {{ type: dense, provider: openai, model: m, base_url: '{}' }}\nsinks:\n  - {{ type: milvus, uri: '{uri}', collection: {name}{sink} }}\n",
            service.url
        ),
    );
}

/// The pipeline `imported.yaml` with `mode: import` (and `extra` settings);
/// returns its `import_dir`.
fn import_pipeline(ws: &Workspace, service: &FakeService, uri: &str, extra: &str) -> String {
    let import_dir = ws.path("imports").display().to_string();
    pipeline(
        ws,
        "imported",
        service,
        uri,
        &format!(", mode: import, import_dir: '{import_dir}'{extra}"),
    );
    import_dir
}

fn rows(uri: &str, collection: &str) -> serde_json::Value {
    serde_json::from_slice(&python_script(
        "milvus_rows.py",
        &[uri.as_ref(), collection.as_ref(), "id,text,dense".as_ref()],
    ))
    .unwrap()
}

fn ids_in(uri: &str, collection: &str) -> Vec<String> {
    rows(uri, collection)
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap().to_string())
        .collect()
}

fn service() -> FakeService {
    FakeService::start(Box::new(|_, body| (200, embeddings(body), Duration::ZERO)))
}

#[test]
fn a_backfill_through_import_lands_the_rows_an_upsert_run_writes() {
    let milvus = MilvusServer::start_kind(MilvusKind::Real);
    let ws = Workspace::new();
    let expected = corpus(&ws, 60);
    let service = service();
    pipeline(&ws, "upserted", &service, &milvus.uri, "");
    import_pipeline(&ws, &service, &milvus.uri, "");
    ws.vecpipe(&["run", "upserted.yaml"]).expect_code(0);
    let run = Run(ws
        .command(&["run", "imported.yaml"])
        .env("VECPIPE_LOG", "info")
        .env("VECPIPE_PROGRESS_SECS", "1")
        .output()
        .unwrap())
    .expect_code(0);
    assert_eq!(run.summary_number("records"), (GROUPS * ROWS) as u64);
    assert_job_progress_shown(&run);
    assert_eq!(
        recorded_row_groups(&ws.path(".vecpipe/state/imported.jsonl")),
        (0..GROUPS).collect::<Vec<_>>()
    );
    let imported = rows(&milvus.uri, "imported");
    assert_eq!(
        imported,
        rows(&milvus.uri, "upserted"),
        "ids, texts and vectors"
    );
    let ids: BTreeSet<String> = ids_in(&milvus.uri, "imported").into_iter().collect();
    assert_eq!(ids, expected);
    assert_eq!(
        std::fs::read_dir(ws.path("imports")).unwrap().count(),
        0,
        "the imported file is removed"
    );
}

/// The progress lines logged while the job ran show where it stood, each
/// in one of the forms a job goes through.
fn assert_job_progress_shown(run: &Run) {
    let n = GROUPS * ROWS;
    let shown = fancy_regex::Regex::new(&format!(
        r"^ INFO vecpipe::progress: {n}/{n} records written \(read {n} · dense {n} · 0 unchanged\) [\d.,]+/s eta .+ · milvus: import job 1 \({n} rows into imported\) (started|(waiting for a data node|reading the file|persisting), \d+%|completed; waiting until its rows are searchable \(\d+ of {n} counted\))$"
    ))
    .unwrap();
    let lines: Vec<String> = run
        .log_lines()
        .into_iter()
        .filter(|line| line.contains(" · milvus: import job"))
        .collect();
    assert!(!lines.is_empty(), "no job progress:\n{}", run.stderr());
    for line in &lines {
        assert!(shown.is_match(line).unwrap(), "{line}");
    }
}

#[test]
fn a_killed_import_run_resumed_ends_with_exactly_the_expected_ids() {
    let milvus = MilvusServer::start_kind(MilvusKind::Real);
    let ws = Workspace::new();
    let expected = corpus(&ws, 60);
    let service = service();
    // One job per row group, so the kill lands between or inside jobs.
    let extra = format!(", import_file_rows: {ROWS}");
    import_pipeline(&ws, &service, &milvus.uri, &extra);
    let mut child = ws
        .command(&["run", "imported.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = ws.path(".vecpipe/state/imported.jsonl");
    let deadline = Instant::now() + Duration::from_secs(180);
    while recorded_row_groups(&state).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill"
        );
        assert!(Instant::now() < deadline, "no row group was ever recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let recorded = recorded_row_groups(&state);
    assert!(
        recorded.len() < GROUPS,
        "killed after the last job: {recorded:?}"
    );

    ws.vecpipe(&["run", "imported.yaml", "--resume"])
        .expect_code(0);
    assert_eq!(
        recorded_row_groups(&state)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        (0..GROUPS).collect()
    );
    let ids = ids_in(&milvus.uri, "imported");
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "a row was imported twice");
    assert_eq!(set, expected);
}

#[test]
fn a_job_the_server_rejects_fails_the_run_with_its_reason_and_records_nothing() {
    // A server that imports files of at most 1 KiB refuses the job.
    let milvus = MilvusServer::start_real(RealOptions {
        import_max_file_size: Some(1024),
        ..RealOptions::default()
    });
    let ws = Workspace::new();
    corpus(&ws, 60);
    let service = service();
    let import_dir = import_pipeline(&ws, &service, &milvus.uri, "");
    let run = ws.vecpipe(&["run", "imported.yaml"]).expect_code(1);
    // Under load a call may be retried with a warning; the error is one line.
    let stderr = run.stderr();
    let (errors, others): (Vec<&str>, Vec<&str>) =
        stderr.lines().partition(|line| line.starts_with("error: "));
    assert!(
        others.iter().all(|line| line.contains(" WARN ")),
        "{stderr}"
    );
    let [error] = errors[..] else {
        panic!("not one error line: {stderr}")
    };
    let file = error
        .strip_prefix("error: the import job of ")
        .and_then(|rest| rest.split_once(" into "))
        .map(|(file, _)| file.to_string())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        file.starts_with(&format!("{import_dir}/imported-")) && file.ends_with("-00001.parquet"),
        "{file}"
    );
    assert_eq!(
        error,
        format!(
            "error: the import job of {file} into `imported` failed: the file '{file}' size exceeds the maximum size: 1024 bytes: importing data failed; nothing of it was recorded (`--resume` writes and imports it again)"
        ),
        "{stderr}"
    );
    assert!(
        !std::path::Path::new(&file).exists(),
        "the refused file is removed"
    );
    assert!(recorded_row_groups(&ws.path(".vecpipe/state/imported.jsonl")).is_empty());
    assert_eq!(ids_in(&milvus.uri, "imported"), Vec::<String>::new());
}

#[test]
fn import_mode_is_refused_where_it_cannot_work_naming_the_setting() {
    let ws = Workspace::new();
    let cases = [
        (
            "source: { type: parquet, path: docs.parquet }\nsinks:\n  - { type: milvus, uri: 'http://127.0.0.1:1', collection: c, mode: import }\n",
            "p.yaml:4:5: sinks[0].import_dir: `mode: import` needs `import_dir` (a local-storage server's directory) or `import_s3` (the bucket of a server on S3-protocol storage): where the server reads the files",
        ),
        (
            "source: { type: parquet, path: docs.parquet }\nsinks:\n  - { type: milvus, uri: 'http://127.0.0.1:1', collection: c, mode: import, import_dir: i, import_s3: { bucket: b } }\n",
            "p.yaml:4:103: sinks[0].import_s3: set `import_dir` or `import_s3`, not both: the server reads the files from one place",
        ),
        (
            "source: { type: parquet, path: docs.parquet }\nsinks:\n  - { type: milvus, uri: 'http://127.0.0.1:1', collection: c, mode: import, import_s3: { bucket: b, endpoint: 'minio:9000' } }\n",
            "p.yaml:4:111: sinks[0].import_s3.endpoint: an endpoint is a URL: `http://host:port` or `https://host`",
        ),
        (
            "source: { type: parquet, path: docs.parquet }\nsinks:\n  - { type: milvus, uri: lite-data, collection: c, mode: import, import_dir: i }\n",
            "p.yaml:4:58: sinks[0].mode: Milvus Lite has no bulk import: use `mode: upsert`, or a Milvus server `uri`",
        ),
        (
            "source: { type: kafka, brokers: 'localhost:9092', topics: [t], group_id: g }\nsinks:\n  - { type: milvus, uri: 'http://127.0.0.1:1', collection: c, mode: import, import_dir: i }\n",
            "p.yaml:4:69: sinks[0].mode: `mode: import` is for bounded runs (files), not a Kafka source: use `mode: upsert`",
        ),
    ];
    for (body, expected) in cases {
        ws.write("p.yaml", format!("name: p\n{body}"));
        let run = ws
            .vecpipe(&["validate", "--no-environment", "p.yaml"])
            .expect_code(2);
        assert_output_eq!(run.stderr(), format!("error: {expected}\n"));
    }
}

/// The pipeline `NAME.yaml` importing through the bucket of `s3` under `imports/`.
fn bucket_pipeline(ws: &Workspace, name: &str, service: &FakeService, uri: &str, s3: &S3Server) {
    bucket_pipeline_at(ws, name, service, uri, &s3.endpoint());
}

/// The same with the S3 endpoint `endpoint`, retrying a failed upload twice.
fn bucket_pipeline_at(
    ws: &Workspace,
    name: &str,
    service: &FakeService,
    uri: &str,
    endpoint: &str,
) {
    pipeline(
        ws,
        name,
        service,
        uri,
        &format!(
            ", mode: import, import_file_rows: {}, max_retries: 2, import_s3: {{ bucket: {}, prefix: imports, endpoint: '{endpoint}' }}",
            2 * ROWS,
            s3_server::BUCKET,
        ),
    );
}

/// An S3-protocol server, and a real Milvus server keeping all its data in
/// it, as a cluster does.
fn milvus_on_s3() -> (S3Server, MilvusServer) {
    let s3 = S3Server::start();
    let milvus = MilvusServer::start_real(RealOptions {
        s3: Some(s3.address.clone()),
        ..RealOptions::default()
    });
    (s3, milvus)
}

/// vecpipe with the bucket's access key and `secret` in its environment.
fn with_keys(ws: &Workspace, args: &[&str], secret: &str) -> std::process::Command {
    let mut command = ws.command(args);
    command
        .env("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret);
    command
}

/// A run with the bucket's keys, logging at `info`.
fn run_with_keys(ws: &Workspace, args: &[&str]) -> Run {
    Run(with_keys(ws, args, s3_server::SECRET_KEY)
        .env("VECPIPE_LOG", "info")
        .output()
        .unwrap())
}

#[test]
fn a_backfill_through_the_bucket_of_a_server_on_s3_storage_lands_the_rows_an_upsert_run_writes() {
    // The server keeps all its data in the S3-protocol server, as a cluster
    // does; vecpipe uploads the files to its bucket, and the server reads
    // them from there.
    let (s3, milvus) = milvus_on_s3();
    let ws = Workspace::new();
    let expected = corpus(&ws, 60);
    let service = service();
    pipeline(&ws, "upserted", &service, &milvus.uri, "");
    bucket_pipeline(&ws, "imported", &service, &milvus.uri, &s3);
    ws.vecpipe(&["run", "upserted.yaml"]).expect_code(0);
    run_with_keys(&ws, &["validate", "imported.yaml"]).expect_code(0);
    let run = run_with_keys(&ws, &["run", "imported.yaml"]).expect_code(0);
    assert_eq!(run.summary_number("records"), (GROUPS * ROWS) as u64);
    // Two files of 20 rows, each a job reading its key in the bucket.
    let started: Vec<String> = run
        .log_lines()
        .into_iter()
        .filter(|line| line.contains("import job started"))
        .collect();
    assert_eq!(started.len(), 2, "{}", run.stderr());
    for line in &started {
        assert!(
            line.contains(&format!(
                "rows=20 file=s3://{}/imports/imported-",
                s3_server::BUCKET
            )),
            "{line}"
        );
    }
    assert_eq!(
        recorded_row_groups(&ws.path(".vecpipe/state/imported.jsonl")),
        (0..GROUPS).collect::<Vec<_>>()
    );
    assert_eq!(rows(&milvus.uri, "imported"), rows(&milvus.uri, "upserted"));
    let ids: Vec<String> = ids_in(&milvus.uri, "imported");
    assert_eq!(ids.len(), expected.len());
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        s3.objects("imports"),
        Vec::<std::path::PathBuf>::new(),
        "imported files are removed from the bucket"
    );
    let secret = s3_server::SECRET_KEY;
    assert!(!run.stdout().contains(secret) && !run.stderr().contains(secret));
}

#[test]
fn a_wrong_bucket_key_fails_the_run_naming_the_file_and_never_showing_a_key() {
    let (s3, milvus) = milvus_on_s3();
    let ws = Workspace::new();
    corpus(&ws, 60);
    let service = service();
    bucket_pipeline(&ws, "imported", &service, &milvus.uri, &s3);
    let wrong = "not-the-secret-4e8a";
    let with_wrong_key = |args: &[&str]| Run(with_keys(&ws, args, wrong).output().unwrap());
    // `validate` lists the bucket's prefix with the keys, and says it cannot.
    let validated = with_wrong_key(&["validate", "imported.yaml"]).expect_code(2);
    let problem = validated.stderr();
    assert!(
        problem.starts_with(&format!(
            "error: imported.yaml:6:5: sinks[0]: cannot reach the import bucket `{}`: ",
            s3_server::BUCKET
        )) && problem.contains("403 Forbidden")
            && problem.contains("<Code>SignatureDoesNotMatch</Code>")
            && problem.lines().count() == 1,
        "{problem}"
    );
    assert!(!problem.contains(wrong) && !problem.contains(s3_server::SECRET_KEY));
    let run = with_wrong_key(&["run", "imported.yaml"]).expect_code(1);
    let stderr = run.stderr();
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let prefix = format!(
        "error: cannot upload the import file s3://{}/imports/imported-",
        s3_server::BUCKET
    );
    assert!(error.starts_with(&prefix), "{stderr}");
    assert!(error.contains("-00001.parquet: "), "{stderr}");
    assert!(
        error.contains("SignatureDoesNotMatch"),
        "the server's reason: {stderr}"
    );
    for key in [wrong, s3_server::SECRET_KEY] {
        assert!(
            !run.stdout().contains(key) && !stderr.contains(key),
            "a key is shown: {stderr}"
        );
    }
    assert!(recorded_row_groups(&ws.path(".vecpipe/state/imported.jsonl")).is_empty());
    assert_eq!(ids_in(&milvus.uri, "imported"), Vec::<String>::new());
    assert_eq!(s3.objects("imports"), Vec::<std::path::PathBuf>::new());

    // Without a key in the environment the run does not start, and says where the key goes.
    let run = Run(ws
        .command(&["run", "imported.yaml"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap())
    .expect_code(2);
    assert_output_eq!(
        run.stderr(),
        format!(
            "error: `import_s3` (bucket `{}`) needs $AWS_ACCESS_KEY_ID in the environment: the bucket's keys come from there, never from the pipeline file\n",
            s3_server::BUCKET
        )
    );
}

#[test]
fn an_unreachable_bucket_fails_the_run_recording_nothing_and_a_resumed_run_ends_exact() {
    let (s3, milvus) = milvus_on_s3();
    let ws = Workspace::new();
    let expected = corpus(&ws, 60);
    let service = service();
    // Nothing listens at the endpoint: the first upload is refused, retried
    // twice, and fails the run.
    let closed = format!("http://127.0.0.1:{}", free_port());
    bucket_pipeline_at(&ws, "imported", &service, &milvus.uri, &closed);
    let run = run_with_keys(&ws, &["run", "imported.yaml"]).expect_code(1);
    let stderr = run.stderr();
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        error.starts_with(&format!(
            "error: cannot upload the import file s3://{}/imports/imported-",
            s3_server::BUCKET
        )) && error.contains("-00001.parquet: "),
        "{stderr}"
    );
    let state = ws.path(".vecpipe/state/imported.jsonl");
    assert!(recorded_row_groups(&state).is_empty());
    assert_eq!(ids_in(&milvus.uri, "imported"), Vec::<String>::new());

    // The storage is reachable again: the resumed run imports exactly what is missing.
    bucket_pipeline(&ws, "imported", &service, &milvus.uri, &s3);
    run_with_keys(&ws, &["run", "imported.yaml", "--resume"]).expect_code(0);
    assert_eq!(recorded_row_groups(&state), (0..GROUPS).collect::<Vec<_>>());
    let ids = ids_in(&milvus.uri, "imported");
    assert_eq!(ids.len(), expected.len(), "a row was imported twice");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(s3.objects("imports"), Vec::<std::path::PathBuf>::new());
}
