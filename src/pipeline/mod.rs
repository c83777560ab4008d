//! Running a pipeline, top to bottom as the data flows: build the nodes
//! from the config, spawn them as tokio tasks joined by bounded channels,
//! route acknowledgements, stop on a signal, and report a summary.

mod build;
mod fit;
mod nodes;
mod progress;
mod shutdown;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::batch::AckOutcome;
use crate::config::PipelineConfig;
use crate::dead_letter::DeadLetterError;
use crate::sink::SinkError;
use crate::source::backfill::Backfill;
use crate::source::{AckHandler, SourceError};
use crate::stage::StageError;

pub use fit::{FitInput, FitSummary, fit_bm25};
pub use shutdown::StopSignal;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("source: {0}")]
    Source(#[from] SourceError),
    #[error("stage: {0}")]
    Stage(#[from] StageError),
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    #[error("{0}")]
    Usage(String),
    #[error("{node} stopped unexpectedly: {message}")]
    Crashed { node: String, message: String },
}

impl PipelineError {
    /// True when the pipeline file (or what it points at) is wrong: exit code 2.
    pub fn is_config(&self) -> bool {
        match self {
            PipelineError::Source(e) => e.is_config(),
            PipelineError::Stage(e) => e.is_config(),
            PipelineError::Sink(e) => e.is_config(),
            PipelineError::Usage(_) => true,
            _ => false,
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub name: String,
    /// Records read from the source, bad ones included.
    pub records_in: u64,
    /// Rows leaving the last stage (chunks, when chunking).
    pub rows_out: u64,
    pub dead_lettered: u64,
    /// Records whose batches every sink acknowledged.
    pub records_acknowledged: u64,
    pub elapsed: Duration,
    /// True when a signal stopped the run before the source was exhausted.
    pub stopped_early: bool,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.records_in as f64 / secs
        } else {
            0.0
        };
        write!(
            f,
            "{}: {} records in, {} chunks out, {} dead-lettered, {:.2} s, {:.0} records/s{}",
            self.name,
            self.records_in,
            self.rows_out,
            self.dead_lettered,
            secs,
            rate,
            if self.stopped_early {
                " (stopped early by signal)"
            } else {
                ""
            }
        )
    }
}

/// Counters the nodes update while the run goes on.
#[derive(Default)]
struct Counters {
    records_in: AtomicU64,
    rows_out: AtomicU64,
}

/// Runs a pipeline to the end of its source, or until `stop` is raised;
/// `backfill` shards and resumes Parquet runs.
pub async fn run_pipeline(
    cfg: &PipelineConfig,
    stop: StopSignal,
    backfill: Backfill,
) -> Result<RunSummary, PipelineError> {
    let started = Instant::now();
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let built = build::build(cfg, ack_tx, stop.clone(), backfill)?;
    let dead_letters = built.dead_letters.clone();
    let progress = progress::Progress::new(built.source.total_records());
    let acks = tokio::spawn(count_acknowledged(ack_rx, built.source.ack_handler()));
    let counters = Arc::new(Counters::default());
    let failed = Arc::new(AtomicBool::new(false));

    crate::metrics::set_running(true);
    let result = nodes::run_graph(built, &counters, &failed, &stop, &progress).await;
    crate::metrics::set_running(false);
    progress.finish();
    dead_letters.flush()?;
    let records_acknowledged = acks.await.unwrap_or_default();
    result?;
    Ok(RunSummary {
        name: cfg.name.clone(),
        records_in: counters.records_in.load(Ordering::Relaxed),
        rows_out: counters.rows_out.load(Ordering::Relaxed),
        dead_lettered: dead_letters.count(),
        records_acknowledged,
        elapsed: started.elapsed(),
        stopped_early: stop.is_raised(),
    })
}

/// How often acknowledged Kafka offsets are committed.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Sums the records of delivered batches until every ack is gone, passing
/// each outcome to the source's handler (which commits, periodically and last).
async fn count_acknowledged(
    mut outcomes: mpsc::UnboundedReceiver<AckOutcome>,
    handler: Option<Arc<dyn AckHandler>>,
) -> u64 {
    let mut delivered = 0;
    let mut tick = tokio::time::interval(COMMIT_INTERVAL);
    loop {
        tokio::select! {
            outcome = outcomes.recv() => {
                let Some(outcome) = outcome else { break };
                if outcome.delivered {
                    delivered += outcome.records as u64;
                } else {
                    tracing::warn!(position = %outcome.position, "batch not delivered");
                }
                if let Some(handler) = &handler {
                    handler.on_outcome(&outcome);
                }
            }
            _ = tick.tick() => {
                if let Some(handler) = handler.clone() {
                    let _ = tokio::task::spawn_blocking(move || handler.flush(false)).await;
                }
            }
        }
    }
    if let Some(handler) = handler {
        let _ = tokio::task::spawn_blocking(move || handler.flush(true)).await;
    }
    delivered
}
