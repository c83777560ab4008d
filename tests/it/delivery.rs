//! Delivery under failure, each fault caused for real: a model service that
//! answers an error, a Milvus server stopped mid-run, a dead-letter file on a
//! full device, an output file over the process's size limit. Each test
//! checks the exit code, the whole error line, what the backfill state
//! recorded, and that `--resume` leaves exactly the expected ids.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::*;
use arrow::array::{Array, StringArray};

const ROW_GROUPS: usize = 4;
const ROWS_PER_GROUP: usize = 10;

/// `in/docs.parquet`: 4 row groups of 10 documents, ids `g{group}-{row}`;
/// `bad_row` (group, row) gets an empty text, `long_group` long random texts.
fn write_corpus(ws: &Workspace, bad_row: Option<(usize, usize)>, long_group: Option<usize>) {
    let mut seed: u64 = 7;
    let mut random_words = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("w{:x}", seed >> 40)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (mut ids, mut texts) = (Vec::new(), Vec::new());
    for group in 0..ROW_GROUPS {
        for row in 0..ROWS_PER_GROUP {
            ids.push(format!("g{group}-{row}"));
            texts.push(if bad_row == Some((group, row)) {
                "   ".to_string()
            } else if long_group == Some(group) {
                random_words(900)
            } else {
                format!("Document g{group}-{row} is about vectors and search.")
            });
        }
    }
    write_parquet(
        &ws.path("in/docs.parquet"),
        vec![
            ("id", Arc::new(StringArray::from(ids)) as Arc<dyn Array>),
            ("text", Arc::new(StringArray::from(texts))),
        ],
        ROWS_PER_GROUP,
    );
}

fn ids_of_groups(groups: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    groups
        .into_iter()
        .flat_map(|g| (0..ROWS_PER_GROUP).map(move |r| format!("g{g}-{r}")))
        .collect()
}

/// Parquet → dense (the test's model service) → Milvus `docs`.
fn backfill_pipeline(ws: &Workspace, service: &FakeService, milvus_uri: &str, extra: &str) {
    ws.write(
        "p.yaml",
        format!(
            "name: backfill\nsource: {{ type: parquet, path: in/docs.parquet, id_field: id, batch_rows: {ROWS_PER_GROUP} }}\nstages:\n  - {{ type: dense, provider: openai, model: m, base_url: '{}', max_retries: 0 }}\nsinks:\n  - {{ type: milvus, uri: '{milvus_uri}', collection: docs, max_retries: 1 }}\n{extra}",
            service.url
        ),
    );
}

fn state(ws: &Workspace) -> Vec<usize> {
    recorded_row_groups(&ws.path(".vecpipe/state/backfill.jsonl"))
}

fn milvus_set(uri: &str) -> BTreeSet<String> {
    let ids = milvus_ids(uri);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "duplicate ids in Milvus");
    set
}

/// Blocks until Milvus holds at least `ids` (the sink has written them). It runs while the
/// sink may still be creating the collection and its index, so a refused read is retried.
fn wait_until_written(uri: &str, ids: &BTreeSet<String>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let last = match try_milvus_ids(uri) {
            Ok(held)
                if held
                    .iter()
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .is_superset(ids) =>
            {
                return;
            }
            Ok(held) => format!("{} of the {} ids", held.len(), ids.len()),
            Err(e) => e,
        };
        assert!(
            std::time::Instant::now() < deadline,
            "the first row groups never reached Milvus: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Request 0 is the dimension probe; request N (N ≥ 1) embeds row group N − 1.
const THIRD_ROW_GROUP: usize = 3;

fn a_model_service_error_mid_backfill_records_only_what_was_written_and_resume_writes_the_rest(
    kind: MilvusKind,
) {
    let milvus = MilvusServer::start_kind(kind);
    let uri = milvus.uri.clone();
    let fail = Arc::new(AtomicBool::new(true));
    let failing = fail.clone();
    let service = FakeService::start(Box::new(move |index, body| {
        if index == THIRD_ROW_GROUP && failing.swap(false, Ordering::SeqCst) {
            // Fail only once the first two row groups are written: a fixed order.
            wait_until_written(&uri, &ids_of_groups(0..2));
            return (400, r#"{"error":"bad request"}"#.into(), Duration::ZERO);
        }
        (200, embeddings(body), Duration::ZERO)
    }));
    let ws = Workspace::new();
    write_corpus(&ws, None, None);
    backfill_pipeline(&ws, &service, &milvus.uri, "");

    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(1);
    assert_output_eq!(
        run.stderr(),
        format!(
            "error: model service {}/embeddings: HTTP 400: {{\"error\":\"bad request\"}}\n",
            service.url
        )
    );
    assert_eq!(
        state(&ws),
        vec![0, 1],
        "only the written row groups are recorded"
    );
    assert_eq!(milvus_set(&milvus.uri), ids_of_groups(0..2));

    let run = ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    assert_eq!(run.summary_number("records"), 20, "{}", run.stdout());
    assert_eq!(state(&ws), vec![0, 1, 2, 3]);
    assert_eq!(milvus_set(&milvus.uri), ids_of_groups(0..ROW_GROUPS));
}

fn milvus_stopped_mid_backfill_fails_after_its_retries_and_resume_writes_exactly_the_rest(
    kind: MilvusKind,
) {
    let milvus = Arc::new(std::sync::Mutex::new(MilvusServer::start_kind(kind)));
    let uri = milvus.lock().unwrap().uri.clone();
    let server = milvus.clone();
    let (check_uri, stopped) = (uri.clone(), Arc::new(AtomicBool::new(false)));
    let stop_once = stopped.clone();
    let service = FakeService::start(Box::new(move |index, body| {
        if index == THIRD_ROW_GROUP && !stop_once.swap(true, Ordering::SeqCst) {
            wait_until_written(&check_uri, &ids_of_groups(0..2));
            let mut server = server.lock().unwrap();
            match kind {
                MilvusKind::Lite => server.stop(),
                MilvusKind::Real => server.kill(),
            }
        }
        (200, embeddings(body), Duration::ZERO)
    }));
    let ws = Workspace::new();
    write_corpus(&ws, None, None);
    backfill_pipeline(&ws, &service, &uri, "");

    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(1);
    let last_line = run.stderr().lines().last().unwrap_or_default().to_string();
    assert!(
        last_line.starts_with("error: Milvus upsert on `docs` failed: "),
        "{}",
        run.stderr()
    );
    assert_eq!(state(&ws), vec![0, 1]);

    milvus.lock().unwrap().restart();
    assert_eq!(milvus_set(&uri), ids_of_groups(0..2));
    let run = ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    assert_eq!(run.summary_number("records"), 20, "{}", run.stdout());
    assert_eq!(milvus_set(&uri), ids_of_groups(0..ROW_GROUPS));
}

#[test]
fn a_dead_letter_file_that_cannot_be_written_fails_the_run_and_records_nothing_after_it() {
    let milvus = MilvusServer::start();
    let service = FakeService::start(Box::new(|_, body| (200, embeddings(body), Duration::ZERO)));
    let ws = Workspace::new();
    write_corpus(&ws, Some((2, 4)), None);
    // /dev/full: every write fails with ENOSPC, like a full disk.
    backfill_pipeline(
        &ws,
        &service,
        &milvus.uri,
        "dead_letter: { type: file, path: /dev/full }\n",
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(1);
    assert_output_eq!(
        run.stderr(),
        "error: dead-letter file /dev/full: No space left on device (os error 28)\n"
    );
    let recorded = state(&ws);
    assert!(
        recorded.iter().all(|&g| g < 2) && recorded == (0..recorded.len()).collect::<Vec<_>>(),
        "nothing at or after the bad record's row group is recorded: {recorded:?}"
    );

    backfill_pipeline(
        &ws,
        &service,
        &milvus.uri,
        "dead_letter: { type: file, path: dead.jsonl }\n",
    );
    ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    let mut expected = ids_of_groups(0..ROW_GROUPS);
    expected.remove("g2-4");
    assert_eq!(milvus_set(&milvus.uri), expected);
    let letters = dead_letters(&ws.path("dead.jsonl"));
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["reason"], "empty text");
    assert_eq!(
        letters[0]["position"],
        format!("{} row_group 2 row 4", ws.path("in/docs.parquet").display())
            .replace(&format!("{}/", ws.dir.path().display()), "")
    );
}

#[test]
fn an_output_file_over_the_size_limit_fails_the_run_keeps_completed_parts_and_resume_adds_the_rest()
{
    let ws = Workspace::new();
    write_corpus(&ws, None, Some(3));
    ws.write(
        "p.yaml",
        format!(
            "name: backfill\nsource: {{ type: parquet, path: in/docs.parquet, id_field: id, batch_rows: {ROWS_PER_GROUP} }}\nsinks:\n  - {{ type: arrow, path: out/docs.parquet, rotate_rows: {ROWS_PER_GROUP} }}\n"
        ),
    );
    // A 24 KiB file-size limit: the last row group's part (long random texts)
    // cannot be written (EFBIG); SIGXFSZ is ignored so the write returns the error.
    let limited = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 24; exec '{}' run p.yaml",
            env!("CARGO_BIN_EXE_vecpipe")
        ))
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    let run = Run(limited).expect_code(1);
    assert_output_eq!(
        run.stderr(),
        "error: out/.docs-00003.parquet.tmp: File too large (os error 27)\n"
    );
    let mut parts: Vec<String> = std::fs::read_dir(ws.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        [
            "docs-00000.parquet",
            "docs-00001.parquet",
            "docs-00002.parquet"
        ],
        "completed parts stay, the failed one is removed"
    );
    assert_eq!(state(&ws), vec![0, 1, 2]);

    ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    let mut ids = Vec::new();
    for part in 0..ROW_GROUPS {
        let batch = read_parquet(&ws.path(&format!("out/docs-{part:05}.parquet")));
        ids.extend(strs(&batch, "id"));
    }
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), set.len(), "no row is written twice");
    assert_eq!(set, ids_of_groups(0..ROW_GROUPS));
}

#[test]
fn a_missing_source_column_is_one_line_naming_the_file_and_the_column() {
    let ws = Workspace::new();
    write_corpus(&ws, None, None);
    ws.write(
        "p.yaml",
        "name: backfill\nsource: { type: parquet, path: in/docs.parquet, id_field: id, text_field: body }\nsinks:\n  - { type: arrow, path: out/docs.parquet }\n",
    );
    let run = ws.vecpipe(&["run", "p.yaml"]).expect_code(2);
    assert_output_eq!(
        run.stderr(),
        "error: in/docs.parquet: column `body` does not exist\n"
    );
}

on_every_milvus!(
    a_model_service_error_mid_backfill_records_only_what_was_written_and_resume_writes_the_rest,
    milvus_stopped_mid_backfill_fails_after_its_retries_and_resume_writes_exactly_the_rest,
);
