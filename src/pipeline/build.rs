//! From config to nodes: open the source, load the stages' files, create
//! the sinks, and decide where in the stage chain each sink reads.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::mpsc;

use super::{NodeError, PipelineError, StopSignal, incremental};
use crate::batch::AckOutcome;
use crate::dead_letter::DeadLetters;
use crate::registry::{PipelineConfig, StageConfig, stage_context};
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
    /// Documents skipped as unchanged, when the run is incremental.
    pub unchanged: Option<Arc<AtomicU64>>,
}

/// Everything built here is set-up: its errors exit with code 2.
pub(super) fn build(
    cfg: &PipelineConfig,
    acks: mpsc::UnboundedSender<AckOutcome>,
    stop: StopSignal,
    backfill: Backfill,
    force: bool,
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
    let mut built = BuiltPipeline {
        source,
        stages,
        sinks,
        dead_letters,
        unchanged: None,
    };
    make_incremental(&mut built, cfg, force)?;
    Ok(built)
}

/// When every sink can say what it holds, fingerprints documents first and
/// skips unchanged ones before the first stage that is not `chunk`
/// (`force`: fingerprints are written, nothing is skipped). Sinks read after
/// the inserted stages as they did after the configured ones.
fn make_incremental(
    built: &mut BuiltPipeline,
    cfg: &PipelineConfig,
    force: bool,
) -> Result<(), PipelineError> {
    let stores: Option<Vec<_>> = built.sinks.iter().map(|(s, _)| s.fingerprints()).collect();
    let Some(stores) = stores else {
        return Ok(());
    };
    let shape = incremental::pipeline_shape(cfg).map_err(PipelineError::setup)?;
    let skip_at = cfg
        .stage_configs()
        .take(built.stages.len())
        .take_while(|s| matches!(s, StageConfig::Chunk(_)))
        .count();
    if !force {
        let unchanged = Arc::new(AtomicU64::new(0));
        built.stages.insert(
            skip_at,
            Box::new(incremental::SkipUnchanged {
                stores,
                unchanged: unchanged.clone(),
            }),
        );
        built.unchanged = Some(unchanged);
    }
    built
        .stages
        .insert(0, Box::new(incremental::Fingerprinter { shape }));
    for (_, depth) in &mut built.sinks {
        *depth += 1 + usize::from(!force && *depth >= skip_at);
    }
    Ok(())
}
