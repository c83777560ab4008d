//! Progress follows the slow work, and a stop finishes only the batch being
//! written: a Parquet backfill whose model service takes its time.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, StringArray};

use crate::common::*;

const GROUPS: usize = 6;
const ROWS: usize = 10;

/// `docs.parquet` (6 row groups of 10) → dense through a service that takes
/// `delay` per batch → `out.jsonl`.
fn slow_backfill(delay: Duration) -> (Workspace, FakeService) {
    let ws = Workspace::new();
    let ids: Vec<String> = (0..GROUPS * ROWS).map(|i| format!("d{i:02}")).collect();
    let texts: Vec<String> = ids.iter().map(|id| format!("Document {id}.")).collect();
    write_parquet(
        &ws.path("docs.parquet"),
        vec![
            ("id", Arc::new(StringArray::from(ids)) as Arc<dyn Array>),
            ("text", Arc::new(StringArray::from(texts))),
        ],
        ROWS,
    );
    // Request 0 is the dimension probe, answered at once.
    let service = FakeService::start(Box::new(move |index, body| {
        let wait = if index == 0 { Duration::ZERO } else { delay };
        (200, embeddings(body), wait)
    }));
    ws.write(
        "p.yaml",
        format!(
            "name: slow\nsource: {{ type: parquet, path: docs.parquet, id_field: id, batch_rows: {ROWS} }}\nstages:\n  - {{ type: dense, provider: openai, model: m, base_url: '{}' }}\nsinks:\n  - {{ type: jsonl, path: out.jsonl }}\n",
            service.url
        ),
    );
    (ws, service)
}

fn written_ids(ws: &Workspace) -> Vec<String> {
    std::fs::read_to_string(ws.path("out.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// One logged progress line: `written/total records written (read R · dense D) …`.
fn parse(line: &str) -> (u64, u64, u64) {
    let number = |s: &str| s.replace(',', "").parse::<u64>().unwrap();
    let (written, rest) = line.split_once('/').unwrap();
    let (total, rest) = rest.split_once(" records written (read ").unwrap();
    let (read, rest) = rest.split_once(" · dense ").unwrap();
    let (dense, rest) = rest.split_once(')').unwrap();
    assert_eq!(number(total), (GROUPS * ROWS) as u64, "{line}");
    let rest = rest.trim();
    if number(written) > 0 {
        let (rate, eta) = rest.split_once(" eta ").unwrap_or_else(|| panic!("{line}"));
        let rate: f64 = rate
            .strip_suffix("/s")
            .unwrap()
            .replace(',', "")
            .parse()
            .unwrap();
        assert!(rate > 0.0 && rate < 1000.0, "{line}");
        assert!(!eta.is_empty(), "{line}");
    } else {
        assert_eq!(rest, "", "{line}");
    }
    (number(written), number(read), number(dense))
}

#[test]
fn progress_counts_what_the_sinks_wrote_while_the_source_reads_ahead() {
    let (ws, _service) = slow_backfill(Duration::from_millis(300));
    let run = Run(ws
        .command(&["run", "p.yaml"])
        .env("VECPIPE_LOG", "info")
        .env("VECPIPE_PROGRESS_SECS", "0.05")
        .output()
        .unwrap())
    .expect_code(0);
    let lines: Vec<(u64, u64, u64)> = run
        .log_lines()
        .iter()
        .filter_map(|l| l.strip_prefix(" INFO vecpipe::progress: "))
        .map(parse)
        .collect();
    assert!(lines.len() >= 3, "{}", run.stderr());
    for pair in lines.windows(2) {
        let ((w0, r0, d0), (w1, r1, d1)) = (pair[0], pair[1]);
        assert!(w0 <= w1 && r0 <= r1 && d0 <= d1, "{}", run.stderr());
    }
    for (written, read, dense) in &lines {
        assert!(written <= dense && dense <= read, "{}", run.stderr());
    }
    assert!(
        lines.iter().any(|(written, read, _)| written < read),
        "the source reads ahead; the count follows the writing: {}",
        run.stderr()
    );
    let total = (GROUPS * ROWS) as u64;
    assert_eq!(lines.last().map(|l| l.0), Some(total), "{}", run.stderr());
}

#[test]
fn an_interrupt_finishes_the_batch_being_written_and_resume_writes_exactly_the_rest() {
    let (ws, service) = slow_backfill(Duration::from_millis(700));
    let child = ws
        .command(&["run", "p.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while written_ids(&ws).is_empty() {
        assert!(Instant::now() < deadline, "nothing was ever written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let asked_before = service.count();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let run = wait_for_exit(child, Duration::from_secs(30), "vecpipe after Ctrl-C").expect_code(0);
    // At most the batch already at the model service is finished; the
    // batches queued behind it are dropped, not embedded.
    assert!(
        service.count() <= asked_before + 1,
        "{} requests after the interrupt",
        service.count() - asked_before
    );
    let written = written_ids(&ws);
    let unwritten = run.unwritten_after_stop() as usize;
    assert_eq!(
        written.len() + unwritten,
        run.summary_number("records") as usize,
        "{}",
        run.stdout()
    );
    assert!(
        unwritten > 0 && written.len() < GROUPS * ROWS,
        "{}",
        run.stdout()
    );

    ws.vecpipe(&["run", "p.yaml", "--resume"]).expect_code(0);
    let all = written_ids(&ws);
    let set: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), set.len(), "a row was written twice");
    let expected: Vec<String> = (0..GROUPS * ROWS).map(|i| format!("d{i:02}")).collect();
    assert_eq!(set, expected.iter().collect());
}
