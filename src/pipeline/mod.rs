//! Running a pipeline, top to bottom as the data flows: build the nodes
//! from the config, spawn them as tokio tasks joined by bounded channels,
//! route acknowledgements, stop on a signal, and report a summary.

mod build;
mod check;
mod fit;
mod incremental;
mod nodes;
pub mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::batch::AckOutcome;
use crate::dead_letter::{DeadLetterError, DeadLetters};
use crate::error::Phased;
use crate::registry::PipelineConfig;
use crate::sink::SinkError;
use crate::source::backfill::Backfill;
use crate::source::{AckHandler, SourceError};
use crate::stage::StageError;

pub use crate::stop::StopSignal;
pub use check::{EnvironmentProblem, check_environment};
pub use fit::{FileFormat, FitInput, FitSummary, fit_bm25};

/// What went wrong in one node of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    #[error("{0}")]
    Usage(String),
    #[error("{node} stopped unexpectedly: {message}")]
    Crashed { node: String, message: String },
    #[error(
        "the first {records} records were all dead-lettered, each for the same reason: {reason}; \
         check the source's `text_field`, `id_field` and `metadata` against the records"
    )]
    EveryRecordRefused { records: u64, reason: String },
}

/// A pipeline error and its phase: set-up errors exit 2, run-time ones 1.
pub type PipelineError = Phased<NodeError>;

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
    /// Documents skipped because the sinks hold them as they are (incremental runs).
    pub unchanged: Option<u64>,
    /// The kind of sink that kept a run with a Milvus sink from being incremental.
    pub not_incremental: Option<&'static str>,
    /// Documents `--sync` deleted because the source no longer has them.
    pub deleted: Option<u64>,
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
            "{}: {} records in, {}{} chunks out, {} dead-lettered, {}{:.2} s, {:.0} records/s{}{}",
            self.name,
            self.records_in,
            self.unchanged
                .map_or(String::new(), |n| format!("{n} unchanged, ")),
            self.rows_out,
            self.dead_lettered,
            self.deleted
                .map_or(String::new(), |n| format!("{n} deleted (sync), ")),
            secs,
            rate,
            match self.records_in.saturating_sub(self.records_acknowledged) {
                _ if !self.stopped_early => String::new(),
                0 => " (stopped early by signal)".to_string(),
                dropped => format!(
                    " (stopped early by signal; {dropped} records read were not written; the next run reads them again)"
                ),
            },
            self.not_incremental.map_or(String::new(), |kind| format!(
                " (not incremental: the `{kind}` sink rewrites its output each run, so every document was embedded; see Incremental runs)"
            ))
        )
    }
}

/// Counters the nodes update while the run goes on.
#[derive(Default)]
struct Counters {
    records_in: AtomicU64,
    rows_out: AtomicU64,
}

/// How a run goes besides its pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Shards and resumes Parquet runs.
    pub backfill: Backfill,
    /// Embed and write every document, unchanged ones too; with `sync`,
    /// delete whatever share of documents has vanished.
    pub force: bool,
    /// After the run, delete the documents the source no longer has, unless
    /// that is more than this share of them (see `sync::DEFAULT_MAX_DELETE`).
    pub sync: Option<f64>,
}

/// Runs a pipeline to the end of its source, or until `stop` is raised.
pub async fn run_pipeline(
    cfg: &PipelineConfig,
    stop: StopSignal,
    options: RunOptions,
) -> Result<RunSummary, PipelineError> {
    let started = Instant::now();
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let mut built = build::build(cfg, ack_tx, stop.clone(), options)?;
    let unchanged = built.unchanged.clone();
    let not_incremental = built.not_incremental;
    let sync = built.sync.take();
    let dead_letters = built.dead_letters.clone();
    let progress = crate::progress::Progress::for_run(
        built.source.total_records(),
        built
            .stages
            .iter()
            .filter(|s| s.is_shown())
            .map(|s| s.kind())
            .collect(),
        built.sinks.len(),
    )
    .with_unchanged(built.unchanged.clone());
    let acks = tokio::spawn(collect_outcomes(
        ack_rx,
        built.source.ack_handler(),
        dead_letters.clone(),
        stop.clone(),
    ));
    let counters = Arc::new(Counters::default());

    crate::metrics::set_running(true);
    let result = nodes::run_graph(built, &counters, &stop, &progress).await;
    crate::metrics::set_running(false);
    progress.finish();
    // Every ack is gone once the graph is: the collector makes its last commit.
    let outcomes = acks.await.map_err(|e| {
        PipelineError::Run(NodeError::Crashed {
            node: "the acknowledgement collector".into(),
            message: e.to_string(),
        })
    })?;
    result?;
    let records_acknowledged = outcomes.map_err(PipelineError::run)?;
    let deleted = match sync {
        Some(sync) if !stop.is_raised() => Some(tokio::task::block_in_place(|| {
            sync.delete_vanished(dead_letters.count())
        })?),
        _ => None,
    };
    Ok(RunSummary {
        name: cfg.name.clone(),
        records_in: counters.records_in.load(Ordering::Relaxed),
        rows_out: counters.rows_out.load(Ordering::Relaxed),
        dead_lettered: dead_letters.count(),
        records_acknowledged,
        elapsed: started.elapsed(),
        stopped_early: stop.is_raised(),
        unchanged: unchanged.map(|n| n.load(Ordering::Relaxed)),
        not_incremental,
        deleted,
    })
}

/// How often acknowledged Kafka offsets are committed and finished row
/// groups recorded: `$VECPIPE_COMMIT_INTERVAL_MS`, else 1 s.
fn commit_interval() -> Duration {
    crate::config::duration_var(
        "VECPIPE_COMMIT_INTERVAL_MS",
        Duration::from_millis(1),
        Duration::from_secs(1),
    )
}

/// Receives every batch's outcome until the last ack is gone, passing each
/// to the source's handler; periodically and at the end, it makes the dead
/// letters durable and only then lets the handler commit (Kafka offsets,
/// finished row groups). If the dead letters cannot be made durable, nothing
/// more is committed, the run is stopped, and the error is returned.
async fn collect_outcomes(
    mut outcomes: mpsc::UnboundedReceiver<AckOutcome>,
    handler: Option<Arc<dyn AckHandler>>,
    dead_letters: DeadLetters,
    stop: StopSignal,
) -> Result<u64, DeadLetterError> {
    let mut delivered = 0;
    let mut tick = tokio::time::interval(commit_interval());
    let mut broken: Option<DeadLetterError> = None;
    loop {
        tokio::select! {
            outcome = outcomes.recv() => {
                let Some(outcome) = outcome else { break };
                if outcome.delivered {
                    delivered += outcome.records as u64;
                } else {
                    tracing::debug!(position = %outcome.position, "batch not delivered");
                }
                if let Some(handler) = &handler {
                    handler.on_outcome(&outcome);
                }
            }
            _ = tick.tick(), if broken.is_none() => {
                if let Err(e) = commit(&handler, &dead_letters, false).await {
                    stop.fail();
                    broken = Some(e);
                }
            }
        }
    }
    if broken.is_none()
        && let Err(e) = commit(&handler, &dead_letters, true).await
    {
        broken = Some(e);
    }
    broken.map_or(Ok(delivered), Err)
}

/// Dead letters first, then the handler's commit (on the blocking pool).
async fn commit(
    handler: &Option<Arc<dyn AckHandler>>,
    dead_letters: &DeadLetters,
    last: bool,
) -> Result<(), DeadLetterError> {
    let (handler, dead_letters) = (handler.clone(), dead_letters.clone());
    tokio::task::spawn_blocking(move || {
        dead_letters.flush()?;
        if let Some(handler) = handler {
            handler.flush(last);
        }
        Ok(())
    })
    .await
    .unwrap_or(Ok(()))
}
