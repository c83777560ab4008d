//! Stopping: SIGTERM finishes the batch being written, drops the rest and
//! publishes what was written; kill -9 never leaves a half-written file under
//! the final name.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const RECORDS: usize = 500_000;

/// A corpus large enough that the run is still going when the signal comes.
fn big_run(ws: &Workspace) -> Child {
    let mut file = std::io::BufWriter::new(std::fs::File::create(ws.path("big.jsonl")).unwrap());
    for i in 0..RECORDS {
        writeln!(
            file,
            "{{\"id\": \"d{i}\", \"text\": \"record {i} with a few words of text in it\"}}"
        )
        .unwrap();
    }
    file.flush().unwrap();
    ws.write(
        "p.yaml",
        "name: big\nsource: { type: jsonl, path: big.jsonl, id_field: id, batch_rows: 500 }\nstages:\n  - { type: chunk, max_chars: 1000 }\nsinks:\n  - { type: arrow, path: out/big.parquet }\n",
    );
    ws.command(&["run", "p.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the sink has started its temporary file.
fn wait_for_writing(ws: &Workspace, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ws.path("out/.big.parquet.tmp").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "vecpipe exited before writing"
        );
        assert!(Instant::now() < deadline, "vecpipe never started writing");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(30));
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_stops_reading_and_publishes_a_complete_prefix_of_what_was_read() {
    let ws = Workspace::new();
    let mut child = big_run(&ws);
    wait_for_writing(&ws, &mut child);
    signal(&child, "-TERM");
    let run = Run(child.wait_with_output().unwrap()).expect_code(0);
    let unwritten = run.unwritten_after_stop() as usize;

    let batch = read_parquet(&ws.path("out/big.parquet"));
    let rows = batch.num_rows();
    assert!(rows > 0 && rows < RECORDS, "{rows} rows");
    assert_eq!(
        rows + unwritten,
        run.summary_number("records") as usize,
        "what was read is what was published and what the summary says was not written: {}",
        run.stdout()
    );
    let doc_ids = strs(&batch, "doc_id");
    assert!(
        doc_ids
            .iter()
            .enumerate()
            .all(|(i, id)| *id == format!("d{i}")),
        "a contiguous prefix"
    );
    assert!(!ws.path("out/.big.parquet.tmp").exists());
}

#[test]
fn kill_9_leaves_no_file_under_the_final_name() {
    let ws = Workspace::new();
    let mut child = big_run(&ws);
    wait_for_writing(&ws, &mut child);
    signal(&child, "-KILL");
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        !ws.path("out/big.parquet").exists(),
        "a half file was published"
    );
}

/// A second Ctrl-C while a model runs exits 130 at once, and says only what
/// vecpipe says: no runtime noise from ONNX Runtime's teardown.
#[test]
fn a_second_interrupt_during_embedding_exits_130_with_nothing_but_vecpipes_lines() {
    let ws = Workspace::new();
    let lines: String = (0..20_000)
        .map(|i| {
            format!(
                "{{\"id\": \"d{i}\", \"text\": \"record {i}: {}\"}}\n",
                "words to embed ".repeat(20)
            )
        })
        .collect();
    ws.write("docs.jsonl", lines);
    ws.write(
        "p.yaml",
        "name: dense\nsource: { type: jsonl, path: docs.jsonl, id_field: id, batch_rows: 64 }\nstages:\n  - { type: dense }\nsinks:\n  - { type: arrow, path: out/dense.parquet }\n",
    );
    let mut child = ws
        .command(&["run", "p.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ws.path("out/.dense.parquet.tmp").exists() {
        assert!(child.try_wait().unwrap().is_none(), "vecpipe exited early");
        assert!(Instant::now() < deadline, "vecpipe never started writing");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let run = wait_for_exit(
        child,
        Duration::from_secs(30),
        "vecpipe after two interrupts",
    )
    .expect_code(130);
    assert_eq!(
        run.log_lines(),
        [
            " WARN vecpipe::stop: stopping: no new records are read; finishing the batches being written (signal again to exit at once)",
            "ERROR vecpipe::stop: second signal: exiting without draining",
        ]
    );
    assert!(!ws.path("out/dense.parquet").exists(), "nothing published");
}
