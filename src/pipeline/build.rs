//! From config to nodes: open the source, load the stages' files, create
//! the sinks, and decide where in the stage chain each sink reads.

use tokio::sync::mpsc;

use super::{NodeError, PipelineError, StopSignal};
use crate::batch::AckOutcome;
use crate::dead_letter::DeadLetters;
use crate::registry::{PipelineConfig, stage_context};
use crate::sink::Sink;
use crate::source::backfill::Backfill;
use crate::source::{RecordSource, SourceContext, open_source};
use crate::stage::Stage;

pub(super) struct BuiltPipeline {
    pub source: Box<dyn RecordSource>,
    pub stages: Vec<Box<dyn Stage>>,
    /// Each sink with the number of stages its input has passed through.
    pub sinks: Vec<(Box<dyn Sink>, usize)>,
    pub dead_letters: DeadLetters,
}

/// Everything built here is set-up: its errors exit with code 2.
pub(super) fn build(
    cfg: &PipelineConfig,
    acks: mpsc::UnboundedSender<AckOutcome>,
    stop: StopSignal,
    backfill: Backfill,
) -> Result<BuiltPipeline, PipelineError> {
    let dead_letters = DeadLetters::open(cfg.dead_letter.as_ref()).map_err(PipelineError::setup)?;
    // Where each sink reads: after how many stages.
    let mut depths = Vec::new();
    for sink in &cfg.sinks {
        depths.push(cfg.sink_depth(sink).ok_or_else(|| {
            PipelineError::Setup(NodeError::Usage(format!(
                "no stage has id `{}`",
                sink.inputs.join(", ")
            )))
        })?);
    }
    // Stages past the last one a sink reads would feed nobody: they are not run.
    let used = depths.iter().copied().max().unwrap_or(0);
    let context = stage_context(cfg.stage_configs(), &dead_letters);
    let stages = cfg
        .stage_configs()
        .take(used)
        .map(|stage| stage.component().build(&context))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PipelineError::setup)?;
    let source = open_source(
        cfg.source.component(),
        SourceContext {
            acks,
            dead_letters: dead_letters.clone(),
            stop,
            backfill,
        },
    )
    .map_err(PipelineError::setup)?;
    let mut sinks = Vec::new();
    for (sink, depth) in cfg.sinks.iter().zip(depths) {
        sinks.push((
            sink.config
                .component()
                .build(&dead_letters)
                .map_err(PipelineError::setup)?,
            depth,
        ));
    }
    Ok(BuiltPipeline {
        source,
        stages,
        sinks,
        dead_letters,
    })
}
