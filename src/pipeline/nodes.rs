//! The running graph: source → stage → … → stage, with sinks tapping the
//! chain where they read. Every node is a tokio task; CPU and file work runs
//! on the blocking pool; edges are bounded channels, so a slow sink slows
//! the source and memory stays bounded.
//!
//! The runner owns every acknowledgement: a sink task confirms a batch's ack
//! only when its sink says the batch is durable. Whatever else happens to an
//! envelope — a stage or sink error, a closed channel, a panic, a shutdown —
//! drops its ack unconfirmed, and the batch is reported as not delivered.
//!
//! On a stop signal the source reads nothing more, each sink finishes the
//! batch it is writing, and every other batch in flight (queued, or in a
//! stage) is dropped unconfirmed; the sinks then complete their output.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::build::BuiltPipeline;
use super::{Counters, NodeError, PipelineError, StopSignal};
use crate::batch::{Ack, Envelope};
use crate::dead_letter::DeadLetters;
use crate::metrics;
use crate::progress::Progress;
use crate::sink::{Durable, Sink};
use crate::source::RecordSource;
use crate::stage::Stage;

/// Batches buffered on each edge.
const EDGE_CAPACITY: usize = 2;

type Tx = mpsc::Sender<Envelope>;
type Rx = mpsc::Receiver<Envelope>;

pub(super) async fn run_graph(
    built: BuiltPipeline,
    counters: &Arc<Counters>,
    stop: &StopSignal,
    progress: &Progress,
) -> Result<(), PipelineError> {
    let BuiltPipeline {
        source,
        stages,
        sinks,
        dead_letters,
        bounded,
        ..
    } = built;
    let depth = stages.len();
    let mut tasks = JoinSet::new();

    // Inputs of everything that reads the stream after `d` stages.
    let mut readers: Vec<Vec<Tx>> = (0..=depth).map(|_| Vec::new()).collect();
    for (index, (sink, at)) in sinks.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel(EDGE_CAPACITY);
        readers[at].push(tx);
        let (stop, progress) = (stop.clone(), progress.clone());
        tasks.spawn(async move { sink_task(sink, rx, stop, (progress, index)).await });
    }
    // The progress line's index of each stage it shows.
    let mut shown = 0;
    let shown_index: Vec<Option<usize>> = stages
        .iter()
        .map(|s| {
            s.is_shown().then(|| {
                shown += 1;
                shown - 1
            })
        })
        .collect();
    // Stages, last first, so each knows where its output goes.
    let mut next_input: Option<Tx> = None;
    for (index, stage) in stages.into_iter().enumerate().rev() {
        let out = stream_to(&mut tasks, &mut readers[index + 1], next_input.take());
        let (tx, rx) = mpsc::channel(EDGE_CAPACITY);
        next_input = Some(tx);
        let counters = (index + 1 == depth).then(|| counters.clone());
        let stop = stop.clone();
        let progress = shown_index[index].map(|i| (progress.clone(), i));
        tasks.spawn(async move { stage_task(stage, rx, out, counters, stop, progress).await });
    }
    let out = stream_to(&mut tasks, &mut readers[0], next_input);
    {
        let (counters, stop, progress) = (counters.clone(), stop.clone(), progress.clone());
        // A bounded run whose first records all fail alike is misconfigured.
        let opening = bounded.then(|| OpeningCheck::new(dead_letters));
        tasks.spawn(async move {
            source_task(source, out, counters, depth == 0, stop, progress, opening).await
        });
    }

    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(crashed("a pipeline task", e)));
        if let Err(e) = result {
            stop.fail();
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn crashed(node: &str, e: impl ToString) -> PipelineError {
    PipelineError::Run(NodeError::Crashed {
        node: node.to_string(),
        message: e.to_string(),
    })
}

/// One sender for a stream read by `readers` (and `next`, the following
/// stage): direct when there is one reader, through a fan-out task otherwise.
/// A stream nobody reads is not possible: the builder drops stages past the
/// last one a sink reads.
fn stream_to(
    tasks: &mut JoinSet<Result<(), PipelineError>>,
    readers: &mut Vec<Tx>,
    next: Option<Tx>,
) -> Option<Tx> {
    let mut outs: Vec<Tx> = std::mem::take(readers);
    outs.extend(next);
    match outs.len() {
        0 => None,
        1 => outs.pop(),
        _ => {
            let (tx, mut rx) = mpsc::channel::<Envelope>(EDGE_CAPACITY);
            tasks.spawn(async move {
                while let Some(envelope) = rx.recv().await {
                    let (last, rest) = outs.split_last().expect("two or more readers");
                    for out in rest {
                        // Each reader gets its own ack handle to confirm.
                        if out.send(envelope.share()).await.is_err() {
                            return Ok(());
                        }
                    }
                    if last.send(envelope).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            });
            Some(tx)
        }
    }
}

/// Runs `work` on the blocking pool with `state` moved in and back out.
async fn blocking<S: Send + 'static, R: Send + 'static>(
    node: &str,
    state: S,
    work: impl FnOnce(&mut S) -> R + Send + 'static,
) -> Result<(S, R), PipelineError> {
    tokio::task::spawn_blocking(move || {
        let mut state = state;
        let result = work(&mut state);
        (state, result)
    })
    .await
    .map_err(|e| crashed(node, e))
}

/// How many records a bounded run reads before it decides whether every
/// one of them failing for the same reason means a misconfiguration.
const OPENING_RECORDS: u64 = 1000;

/// Stops a bounded run whose first [`OPENING_RECORDS`] records (or all of
/// them, when fewer) were dead-lettered for one reason: a `text_field` that
/// names no field, a file of another shape.
struct OpeningCheck {
    dead_letters: DeadLetters,
    done: bool,
}

impl OpeningCheck {
    fn new(dead_letters: DeadLetters) -> Self {
        OpeningCheck {
            dead_letters,
            done: false,
        }
    }

    /// After `records` were read (`ended`: all of them): the error that stops the run, if any.
    fn after(&mut self, records: u64, ended: bool) -> Result<(), PipelineError> {
        if self.done || records == 0 || (records < OPENING_RECORDS && !ended) {
            return Ok(());
        }
        self.done = true;
        match self.dead_letters.sole_reason() {
            Some(reason) if self.dead_letters.count() >= records => {
                Err(PipelineError::Setup(NodeError::EveryRecordRefused {
                    records,
                    reason,
                }))
            }
            _ => Ok(()),
        }
    }
}

async fn source_task(
    mut source: Box<dyn RecordSource>,
    out: Option<Tx>,
    counters: Arc<Counters>,
    is_last: bool,
    stop: StopSignal,
    progress: Progress,
    mut opening: Option<OpeningCheck>,
) -> Result<(), PipelineError> {
    let mut check = |records: u64, ended: bool| match opening.as_mut() {
        Some(opening) => opening.after(records, ended).inspect_err(|_| stop.fail()),
        None => Ok(()),
    };
    loop {
        if stop.is_raised() {
            return Ok(());
        }
        let started = Instant::now();
        let (back, next) = blocking("source", source, |s| s.next_batch()).await?;
        source = back;
        let envelope = match next {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return check(counters.records_in.load(Ordering::Relaxed), true),
            Err(e) => {
                stop.fail();
                return Err(PipelineError::run(e));
            }
        };
        let records = envelope.ack.records() as u64;
        metrics::batch_time("source", started.elapsed());
        metrics::records_in("source", records as usize);
        metrics::records_out("source", envelope.batch.num_rows());
        let read = counters.records_in.fetch_add(records, Ordering::Relaxed) + records;
        check(read, false)?;
        if is_last {
            counters
                .rows_out
                .fetch_add(envelope.batch.num_rows() as u64, Ordering::Relaxed);
        }
        progress.read(records);
        if let Some(out) = &out
            && out.send(envelope).await.is_err()
        {
            return Ok(());
        }
    }
}

async fn stage_task(
    mut stage: Box<dyn Stage>,
    mut input: Rx,
    out: Option<Tx>,
    counters: Option<Arc<Counters>>,
    stop: StopSignal,
    progress: Option<(Progress, usize)>,
) -> Result<(), PipelineError> {
    while let Some(envelope) = input.recv().await {
        if stop.is_raised() {
            // Stopping (a signal or a failure): dropped unconfirmed, so it is
            // not acknowledged and is read again next time.
            return Ok(());
        }
        let kind = stage.kind();
        let started = Instant::now();
        metrics::records_in(kind, envelope.batch.num_rows());
        let (back, result) = blocking(kind, stage, move |stage| {
            let Envelope {
                batch,
                ack,
                deletes,
            } = envelope;
            stage.process(batch, ack.position()).map(|batch| Envelope {
                batch,
                ack,
                deletes,
            })
        })
        .await?;
        stage = back;
        let envelope = match result {
            Ok(envelope) => envelope,
            Err(e) => {
                stop.fail();
                return Err(PipelineError::run(e));
            }
        };
        metrics::batch_time(kind, started.elapsed());
        metrics::records_out(kind, envelope.batch.num_rows());
        if stop.is_raised() {
            // Stopped while this batch was processed: only the batches being
            // written are finished.
            return Ok(());
        }
        if let Some(counters) = &counters {
            counters
                .rows_out
                .fetch_add(envelope.batch.num_rows() as u64, Ordering::Relaxed);
        }
        if let Some((progress, index)) = &progress {
            progress.stage_rows(*index, envelope.batch.num_rows() as u64);
        }
        if let Some(out) = &out
            && out.send(envelope).await.is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// The acks of batches a sink holds but has not yet made durable, oldest first.
#[derive(Default)]
struct PendingAcks(VecDeque<Ack>);

impl PendingAcks {
    fn confirm_all(&mut self) {
        for ack in self.0.drain(..) {
            ack.confirm();
        }
    }

    /// Applies a sink's answer for the batch whose ack is `ack`.
    fn settle(&mut self, ack: Ack, durable: Durable) {
        match durable {
            Durable::All => {
                self.confirm_all();
                ack.confirm();
            }
            Durable::BeforeThis => {
                self.confirm_all();
                self.0.push_back(ack);
            }
            Durable::Nothing => self.0.push_back(ack),
        }
    }
}

async fn sink_task(
    mut sink: Box<dyn Sink>,
    mut input: Rx,
    stop: StopSignal,
    (progress, index): (Progress, usize),
) -> Result<(), PipelineError> {
    let kind = sink.kind();
    let mut pending = PendingAcks::default();
    let mut prepared = false;
    sink.show_status(progress.sink_status(index));
    while let Some(envelope) = input.recv().await {
        // Stopping: the batch being written was finished; the rest are
        // dropped unconfirmed (read again next time).
        if stop.is_raised() {
            break;
        }
        if !prepared {
            let schema = envelope.batch.schema();
            let (back, result) = blocking(kind, sink, move |sink| sink.prepare(&schema)).await?;
            sink = back;
            if let Err(e) = result {
                stop.fail();
                return Err(PipelineError::setup(e));
            }
            prepared = true;
        }
        let (rows, started) = (envelope.batch.num_rows(), Instant::now());
        let (back, (envelope, result)) = blocking(kind, sink, move |sink| {
            let result = sink.write(&envelope);
            (envelope, result)
        })
        .await?;
        sink = back;
        metrics::batch_time(kind, started.elapsed());
        metrics::records_in(kind, rows);
        match result {
            Ok(durable) => {
                progress.written(index, envelope.ack.records() as u64);
                pending.settle(envelope.ack, durable);
            }
            Err(e) => {
                stop.fail();
                sink.abort();
                return Err(PipelineError::run(e));
            }
        }
    }
    // A failure anywhere must not publish partial output; what the sink
    // still held is dropped unconfirmed.
    if stop.has_failed() {
        sink.abort();
        return Ok(());
    }
    let (mut sink, result) = blocking(kind, sink, |sink| sink.finish()).await?;
    if let Err(e) = result {
        stop.fail();
        sink.abort();
        return Err(PipelineError::run(e));
    }
    pending.confirm_all();
    Ok(())
}
