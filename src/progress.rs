//! Progress of long work: a bar on a terminal, a log line per interval
//! otherwise.
//!
//! A run's bar follows the slow end of the pipeline, not the source: its
//! position is the records every sink has written, so it moves as batches
//! are embedded and written, and its rate and ETA are of finished work. The
//! message beside it counts what each stage has put out and what the source
//! has read ahead.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often progress is logged when stderr is not a terminal:
/// `$VECPIPE_PROGRESS_SECS`, else every 10 s (at `info`).
fn log_interval() -> Duration {
    crate::config::duration_var(
        "VECPIPE_PROGRESS_SECS",
        Duration::from_secs(1),
        Duration::from_secs(10),
    )
}

#[derive(Clone)]
pub(crate) struct Progress {
    bar: ProgressBar,
    unit: &'static str,
    /// Shown in the message: documents skipped as unchanged.
    unchanged: Option<Arc<AtomicU64>>,
    /// A run's counts, when this is a run's progress.
    run: Option<Arc<RunCounts>>,
    /// When stderr is not a terminal: when progress was last logged.
    logged: Option<Arc<Mutex<Instant>>>,
    interval: Duration,
}

/// What each part of a running pipeline has done.
struct RunCounts {
    read: AtomicU64,
    /// Each shown stage's `type:` and the rows it has put out.
    stages: Vec<(&'static str, AtomicU64)>,
    /// The records each sink has written.
    sinks: Vec<AtomicU64>,
    /// What each sink says a long write is waiting on (an import job), if anything.
    statuses: Vec<Mutex<String>>,
}

/// Where one sink of a run says what a long write is waiting on; shown
/// after the bar's rate until cleared.
#[derive(Clone)]
pub(crate) struct SinkStatus {
    progress: Progress,
    sink: usize,
}

impl SinkStatus {
    /// Shows `status` for this sink (replacing what it showed).
    pub(crate) fn set(&self, status: impl Into<String>) {
        self.replace(status.into());
    }

    /// Shows nothing for this sink.
    pub(crate) fn clear(&self) {
        self.replace(String::new());
    }

    fn replace(&self, status: String) {
        let Some(slot) = self
            .progress
            .run
            .as_ref()
            .and_then(|r| r.statuses.get(self.sink))
        else {
            return;
        };
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = status;
        self.progress.refresh();
    }
}

impl Progress {
    /// A bar when the total is known, a counter otherwise; `unit` names what
    /// is counted ("queries"). On a terminal it is drawn; otherwise a line is
    /// logged per interval.
    pub(crate) fn new(total: Option<u64>, unit: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let template = match total {
            Some(_) => "{bar:20} {human_pos}/{human_len} {msg}",
            None => "{spinner} {human_pos} {msg}",
        };
        let bar = ProgressBar::with_draw_target(total, target)
            .with_style(ProgressStyle::with_template(template).expect("valid template"));
        if terminal {
            // Keeps the spinner, rate and ETA moving while a slow batch runs.
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        let progress = Progress {
            bar,
            unit,
            unchanged: None,
            run: None,
            logged: (!terminal).then(|| Arc::new(Mutex::new(Instant::now()))),
            interval: log_interval(),
        };
        progress.refresh();
        progress
    }

    /// A run's progress: records written by every sink of `sinks`, out of
    /// `total` when the source knows it; `stages` are the kinds shown.
    pub(crate) fn for_run(total: Option<u64>, stages: Vec<&'static str>, sinks: usize) -> Self {
        let mut progress = Progress::new(total, "records written");
        progress.run = Some(Arc::new(RunCounts {
            read: AtomicU64::new(0),
            stages: stages.into_iter().map(|s| (s, AtomicU64::new(0))).collect(),
            sinks: (0..sinks.max(1)).map(|_| AtomicU64::new(0)).collect(),
            statuses: (0..sinks.max(1)).map(|_| Mutex::default()).collect(),
        }));
        progress.refresh();
        progress
    }

    /// Also shows how many documents were skipped as unchanged.
    pub(crate) fn with_unchanged(mut self, unchanged: Option<Arc<AtomicU64>>) -> Self {
        self.unchanged = unchanged;
        self
    }

    /// `n` more units done (outside a run: queries evaluated).
    pub(crate) fn advance(&self, n: u64) {
        self.bar.inc(n);
        self.refresh();
    }

    /// The source read `records` more.
    pub(crate) fn read(&self, records: u64) {
        if let Some(run) = &self.run {
            run.read.fetch_add(records, Ordering::Relaxed);
            self.refresh();
        }
    }

    /// Shown stage `stage` put out `rows` more.
    pub(crate) fn stage_rows(&self, stage: usize, rows: u64) {
        if let Some((_, count)) = self.run.as_ref().and_then(|r| r.stages.get(stage)) {
            count.fetch_add(rows, Ordering::Relaxed);
            self.refresh();
        }
    }

    /// Sink `sink` wrote a batch of `records`: the bar stands at what the
    /// slowest sink has written.
    pub(crate) fn written(&self, sink: usize, records: u64) {
        if let Some(run) = &self.run {
            if let Some(count) = run.sinks.get(sink) {
                count.fetch_add(records, Ordering::Relaxed);
            }
            let slowest = run
                .sinks
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .min()
                .unwrap_or_default();
            self.bar.set_position(slowest);
            self.refresh();
        }
    }

    /// Where sink `sink` says what it is waiting on.
    pub(crate) fn sink_status(&self, sink: usize) -> SinkStatus {
        SinkStatus {
            progress: self.clone(),
            sink,
        }
    }

    /// Clears the bar; in logs, the last line is logged whatever the interval.
    pub(crate) fn finish(&self) {
        if self.logged.is_some() {
            tracing::info!("{}", self.line(&self.message()));
        }
        self.bar.finish_and_clear();
    }

    /// Redraws the message, and logs the whole line when it is time.
    /// Off a terminal the bar is hidden, so the text is made only when a
    /// line is due, not on every batch.
    fn refresh(&self) {
        let Some(logged) = &self.logged else {
            self.bar.set_message(self.message());
            return;
        };
        let mut last = logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= self.interval {
            *last = Instant::now();
            tracing::info!("{}", self.line(&self.message()));
        }
    }

    /// `records written (read 3,000 · chunk 4,512 · dense 2,048 · 12 unchanged) 120/s eta 15s`.
    fn message(&self) -> String {
        let mut parts = Vec::new();
        if let Some(run) = &self.run {
            parts.push(format!(
                "read {}",
                HumanCount(run.read.load(Ordering::Relaxed))
            ));
            for (kind, rows) in &run.stages {
                parts.push(format!(
                    "{kind} {}",
                    HumanCount(rows.load(Ordering::Relaxed))
                ));
            }
        }
        if let Some(unchanged) = &self.unchanged {
            parts.push(format!(
                "{} unchanged",
                HumanCount(unchanged.load(Ordering::Relaxed))
            ));
        }
        let mut message = self.unit.to_string();
        if !parts.is_empty() {
            message.push_str(&format!(" ({})", parts.join(" · ")));
        }
        // The mean rate since the start: steady, where indicatif's estimate
        // of the last steps swings with every batch.
        let (done, seconds) = (self.bar.position(), self.bar.elapsed().as_secs_f64());
        if done > 0 && seconds > 0.0 {
            let per_second = done as f64 / seconds;
            message.push_str(&format!(" {}", rate(per_second)));
            if let Some(total) = self.bar.length() {
                let left = total.saturating_sub(done) as f64 / per_second;
                let left = Duration::from_secs_f64(left.min(1e9));
                message.push_str(&format!(" eta {}", HumanDuration(left)));
            }
        }
        if let Some(run) = &self.run {
            for status in &run.statuses {
                let status = status.lock().unwrap_or_else(|p| p.into_inner());
                if !status.is_empty() {
                    message.push_str(&format!(" · {status}"));
                }
            }
        }
        message
    }

    /// The bar's text without the bar, for logs: `2,048/3,000 records written (…)`.
    fn line(&self, message: &str) -> String {
        let position = HumanCount(self.bar.position());
        match self.bar.length() {
            Some(total) => format!("{position}/{} {message}", HumanCount(total)),
            None => format!("{position} {message}"),
        }
    }
}

/// `1,234/s` for a fast rate, `2.5/s` for a slow one.
fn rate(per_second: f64) -> String {
    if per_second >= 100.0 {
        format!("{}/s", HumanCount(per_second.round() as u64))
    } else {
        format!("{per_second:.1}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_whole_when_fast_and_keep_one_decimal_when_slow() {
        assert_eq!(rate(133_460.298_7), "133,460/s");
        assert_eq!(rate(2.54), "2.5/s");
    }

    #[test]
    fn a_runs_bar_stands_at_what_the_slowest_sink_wrote_and_counts_each_stage() {
        let progress = Progress::for_run(Some(100), vec!["chunk", "dense"], 2);
        progress.read(60);
        progress.stage_rows(0, 90);
        progress.stage_rows(1, 30);
        progress.written(0, 20);
        progress.written(1, 10);
        assert_eq!(progress.bar.position(), 10);
        let message = progress.message();
        assert!(
            message.starts_with("records written (read 60 · chunk 90 · dense 30) "),
            "{message}"
        );
        assert!(message.contains(" eta "), "{message}");
    }

    #[test]
    fn a_sinks_status_follows_the_rate_until_cleared() {
        let progress = Progress::for_run(Some(100), vec![], 2);
        progress.written(0, 100);
        progress.written(1, 100);
        let status = progress.sink_status(1);
        status.set("milvus: import job 1 persisted, 90%");
        let message = progress.message();
        let (before, after) = message.split_once(" · ").expect("a status");
        assert!(
            before.starts_with("records written (read 0) ") && before.contains(" eta "),
            "{message}"
        );
        assert_eq!(after, "milvus: import job 1 persisted, 90%");
        status.clear();
        let cleared = progress.message();
        assert!(
            !cleared.contains(" · ") && cleared.contains(" eta "),
            "{cleared}"
        );
    }
}
