//! From config to nodes: open the source, load the stages' files, create
//! the sinks, and decide where in the stage chain each sink reads.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::sync::SyncPlan;
use super::{NodeError, PipelineError, RunOptions, StopSignal, incremental};
use crate::batch::AckOutcome;
use crate::dead_letter::DeadLetters;
use crate::registry::{PipelineConfig, StageConfig, stage_context};
use crate::sink::Sink;
use crate::source::{RecordSource, SourceContext, open_source};
use crate::stage::Stage;

pub(super) struct BuiltPipeline {
    pub source: Box<dyn RecordSource>,
    pub stages: Vec<Box<dyn Stage>>,
    /// Each sink with the number of stages its input has passed through.
    pub sinks: Vec<(Box<dyn Sink>, usize)>,
    pub dead_letters: DeadLetters,
    /// The source ends by itself (files, not Kafka).
    pub bounded: bool,
    /// Why a run with a Milvus sink is not incremental: the sink kind that
    /// cannot say what it holds.
    pub not_incremental: Option<&'static str>,
    /// Documents skipped as unchanged, when the run is incremental.
    pub unchanged: Option<Arc<AtomicU64>>,
    /// What `--sync` needs after the run.
    pub sync: Option<SyncPlan>,
}

/// Everything built here is set-up: its errors exit with code 2.
pub(super) fn build(
    cfg: &PipelineConfig,
    acks: mpsc::UnboundedSender<AckOutcome>,
    stop: StopSignal,
    options: RunOptions,
) -> Result<BuiltPipeline, PipelineError> {
    let backfill = options.backfill.clone();
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
        bounded: cfg.source.component().is_bounded(),
        not_incremental: None,
        unchanged: None,
        sync: None,
    };
    make_incremental(&mut built, cfg, &options)?;
    Ok(built)
}

/// When every sink can say what it holds, fingerprints documents first and
/// skips unchanged ones before the first stage that is not `chunk`
/// (`force`: fingerprints are written, nothing is skipped). Sinks read after
/// the inserted stages as they did after the configured ones.
fn make_incremental(
    built: &mut BuiltPipeline,
    cfg: &PipelineConfig,
    options: &RunOptions,
) -> Result<(), PipelineError> {
    let held = |built: &BuiltPipeline| -> Option<Vec<_>> {
        built
            .sinks
            .iter()
            .map(|(s, _)| s.held_documents())
            .collect()
    };
    let per_sink: Vec<_> = built
        .sinks
        .iter()
        .map(|(s, _)| s.held_documents())
        .collect();
    // The kind of the first sink that cannot say what it holds.
    let lacking = cfg
        .sinks
        .iter()
        .zip(&per_sink)
        .find(|(_, held)| held.is_none())
        .map(|(sink, _)| sink.config.kind());
    let holders = per_sink.iter().any(Option::is_some);
    let Some(stores) = per_sink.into_iter().collect::<Option<Vec<_>>>() else {
        // Said in the summary when some sink could have skipped documents.
        if holders && !options.force {
            built.not_incremental = lacking;
        }
        return match options.sync {
            Some(_) => Err(usage("--sync needs every sink to be a milvus sink")),
            None => Ok(()),
        };
    };
    let seen = match options.sync {
        Some(max_delete) => {
            if !cfg.source.component().is_bounded() {
                return Err(usage(
                    "--sync needs a source with an end (files), not Kafka",
                ));
            }
            if options.backfill.shard.is_some() || options.backfill.resume {
                return Err(usage(
                    "--sync deletes what a whole source lacks: not with --shard or --resume",
                ));
            }
            let seen = Arc::new(Mutex::new(HashSet::new()));
            built.sync = Some(SyncPlan {
                seen: seen.clone(),
                stores: held(built).unwrap_or_default(),
                max_delete,
                force: options.force,
            });
            Some(seen)
        }
        None => None,
    };
    let shape = incremental::pipeline_shape(cfg).map_err(PipelineError::setup)?;
    let skip_at = cfg
        .stage_configs()
        .take(built.stages.len())
        .take_while(|s| matches!(s, StageConfig::Chunk(_)))
        .count();
    let skip = !options.force;
    if skip {
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
        .insert(0, Box::new(incremental::Fingerprinter { shape, seen }));
    for (_, depth) in &mut built.sinks {
        *depth += 1 + usize::from(skip && *depth >= skip_at);
    }
    Ok(())
}

fn usage(message: &str) -> PipelineError {
    PipelineError::Setup(NodeError::Usage(message.to_string()))
}
