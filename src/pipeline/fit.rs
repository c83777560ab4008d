//! `vecpipe bm25 fit`: stream a source (through the stages before `bm25`,
//! e.g. chunking) into the BM25 fitter and save the params file.

use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use tokio::sync::mpsc;

use super::{NodeError, PipelineError};
use crate::batch::columns;
use crate::config::{AnalyzerConfig, SourceConfig, StageConfig};
use crate::dead_letter::DeadLetters;
use crate::source::{SourceContext, open_source};
use crate::stage::bm25::Bm25Fitter;
use crate::stage::{StageContext, StageError, build_stage};

/// What to fit on and how.
pub struct FitInput<'a> {
    pub source: &'a SourceConfig,
    /// Applied to every batch before fitting (the stages before `bm25`).
    pub stages: &'a [StageConfig],
    pub analyzer: AnalyzerConfig,
    pub k1: f64,
    pub b: f64,
    pub epsilon: f64,
    pub out: &'a Path,
}

#[derive(Debug)]
pub struct FitSummary {
    pub documents: u64,
    pub terms: usize,
    pub skipped: u64,
    pub out: PathBuf,
}

pub fn fit_bm25(input: &FitInput<'_>) -> Result<FitSummary, PipelineError> {
    if !input.source.is_bounded() {
        return Err(PipelineError::Setup(NodeError::Usage(
            "bm25 fit needs a bounded source (jsonl or parquet); fit on an export with --input"
                .into(),
        )));
    }
    let dead_letters = DeadLetters::to_log();
    let (acks, _) = mpsc::unbounded_channel();
    let mut source = open_source(
        input.source,
        SourceContext {
            acks,
            dead_letters: dead_letters.clone(),
            stop: crate::pipeline::StopSignal::default(),
            backfill: Default::default(),
        },
    )
    .map_err(PipelineError::setup)?;
    // Only stages that change the rows or their text matter to the statistics;
    // the others (dense, bm25) just add columns and would only cost time.
    let context = StageContext::for_stages(input.stages, &dead_letters);
    let mut stages = input
        .stages
        .iter()
        .filter(|s| matches!(s, StageConfig::Chunk(_)))
        .map(|s| build_stage(s, &context))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PipelineError::setup)?;
    let mut fitter =
        Bm25Fitter::new(&input.analyzer).map_err(|e| PipelineError::setup(StageError::from(e)))?;
    while let Some(envelope) = source.next_batch().map_err(PipelineError::run)? {
        let mut batch = envelope.batch;
        for stage in &mut stages {
            batch = stage
                .process(batch, envelope.ack.position())
                .map_err(PipelineError::run)?;
        }
        let texts = batch
            .column_by_name(columns::TEXT)
            .and_then(|c| c.as_string_opt::<i32>())
            .expect("sources and stages always produce a string text column");
        for text in texts.iter().flatten() {
            fitter.add(text);
        }
    }
    let documents = fitter.documents();
    // An empty corpus means the source pointed at nothing usable: set-up.
    let params = fitter
        .finish(input.k1, input.b, input.epsilon)
        .map_err(|e| PipelineError::setup(StageError::from(e)))?;
    params
        .save(input.out)
        .map_err(|e| PipelineError::run(StageError::from(e)))?;
    Ok(FitSummary {
        documents,
        terms: params.idf_word.len(),
        skipped: dead_letters.count(),
        out: input.out.to_path_buf(),
    })
}
