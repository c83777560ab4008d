//! `vecpipe bm25 fit`: stream a source (through the stages before `bm25`,
//! e.g. chunking) into the BM25 fitter and save the params file.

use std::path::{Path, PathBuf};

use arrow::array::AsArray;

use super::{NodeError, PipelineError};
use crate::batch::columns;
use crate::dead_letter::DeadLetters;
use crate::registry::{PipelineConfig, SourceConfig, StageConfig, stage_context};
use crate::source::files::FileSourceConfig;
use crate::source::jsonl::JsonlSourceConfig;
use crate::source::parquet::ParquetSourceConfig;
use crate::source::{SourceContext, open_source};
use crate::stage::StageError;
use crate::stage::bm25::{AnalyzerConfig, Bm25Error, Bm25Fitter, Bm25Params};

/// What to fit on and how.
pub struct FitInput {
    source: SourceConfig,
    /// Applied to every batch before fitting (the stages before `bm25`).
    stages: Vec<StageConfig>,
    pub analyzer: AnalyzerConfig,
    /// The analyzer was chosen (a pipeline's stage, or flags), not defaulted:
    /// with `update`, it must be the file's.
    pub analyzer_chosen: bool,
    pub k1: f64,
    pub b: f64,
    pub epsilon: f64,
    pub out: PathBuf,
    /// Fold the text into these params instead of fitting anew (their
    /// analyzer and constants are kept; existing terms keep their indexes).
    pub update: Option<PathBuf>,
}

/// The format of files to fit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Jsonl,
    Parquet,
}

impl FileFormat {
    /// From the extension of a file or directory path (`.jsonl`, `.parquet`).
    pub fn of_path(path: &str) -> Option<Self> {
        match Path::new(path.trim_end_matches('/'))
            .extension()?
            .to_str()?
        {
            "jsonl" => Some(FileFormat::Jsonl),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

impl FitInput {
    /// The pipeline's source through the stages before its `bm25` stage, with
    /// that stage's analyzer; written to `out`, or to the stage's `params`.
    pub fn from_pipeline(
        cfg: &PipelineConfig,
        out: Option<PathBuf>,
    ) -> Result<Self, PipelineError> {
        let stages: Vec<StageConfig> = cfg.stage_configs().cloned().collect();
        let bm25 = stages.iter().enumerate().find_map(|(i, s)| match s {
            StageConfig::Bm25(c) => Some((i, c)),
            _ => None,
        });
        let (before, stage) = match bm25 {
            Some((i, c)) => (&stages[..i], Some(c)),
            None => (&stages[..], None),
        };
        let out = out
            .or_else(|| stage.map(|c| c.params.clone()))
            .ok_or_else(|| {
                PipelineError::Setup(NodeError::Usage(format!(
                    "pipeline `{}` has no bm25 stage: pass --out",
                    cfg.name
                )))
            })?;
        let mut input = FitInput::new(
            cfg.source.clone(),
            before.to_vec(),
            stage.and_then(|c| c.analyzer.clone()).unwrap_or_default(),
            out,
        );
        input.analyzer_chosen = stage.is_some();
        Ok(input)
    }

    /// Files (a file, directory or glob) with the text in `text_field`.
    pub fn from_files(
        path: &str,
        format: Option<FileFormat>,
        text_field: &str,
        out: PathBuf,
    ) -> Result<Self, PipelineError> {
        let files = FileSourceConfig::for_path(path, text_field);
        let source = match format.or_else(|| FileFormat::of_path(path)) {
            Some(FileFormat::Jsonl) => SourceConfig::Jsonl(JsonlSourceConfig(files)),
            Some(FileFormat::Parquet) => SourceConfig::Parquet(ParquetSourceConfig(files)),
            None => {
                return Err(PipelineError::Setup(NodeError::Usage(format!(
                    "cannot tell the format of `{path}`: pass --format"
                ))));
            }
        };
        Ok(FitInput::new(
            source,
            Vec::new(),
            AnalyzerConfig::default(),
            out,
        ))
    }

    fn new(
        source: SourceConfig,
        stages: Vec<StageConfig>,
        analyzer: AnalyzerConfig,
        out: PathBuf,
    ) -> Self {
        FitInput {
            source,
            stages,
            analyzer,
            analyzer_chosen: false,
            k1: crate::stage::bm25::DEFAULT_K1,
            b: crate::stage::bm25::DEFAULT_B,
            epsilon: crate::stage::bm25::DEFAULT_EPSILON,
            out,
            update: None,
        }
    }
}

#[derive(Debug)]
pub struct FitSummary {
    /// Documents (texts after the stages) in the params.
    pub documents: u64,
    pub terms: usize,
    pub skipped: u64,
    pub out: PathBuf,
    /// With `update`: the documents and terms before, and whether the
    /// document frequencies were in the file (else recovered from idfs).
    pub updated_from: Option<(u64, usize, bool)>,
}

pub fn fit_bm25(input: &FitInput) -> Result<FitSummary, PipelineError> {
    if !input.source.component().is_bounded() {
        return Err(PipelineError::Setup(NodeError::Usage(
            "bm25 fit needs a bounded source (jsonl or parquet); fit on an export with --input"
                .into(),
        )));
    }
    let dead_letters = DeadLetters::to_log();
    let mut source = open_source(
        input.source.component(),
        SourceContext::detached(dead_letters.clone()),
    )
    .map_err(PipelineError::setup)?;
    // Only stages that change the rows or their text matter to the statistics;
    // the others (dense, bm25) just add columns and would only cost time.
    let context = stage_context(&input.stages, &dead_letters);
    let mut stages = input
        .stages
        .iter()
        .map(StageConfig::component)
        .filter(|s| s.reshapes_rows())
        .map(|s| s.build(&context))
        .collect::<Result<Vec<_>, _>>()
        .map_err(PipelineError::setup)?;
    let setup = |e: Bm25Error| PipelineError::setup(StageError::from(e));
    let (mut fitter, constants, updated_from) = match &input.update {
        None => (
            Bm25Fitter::new(&input.analyzer).map_err(setup)?,
            (input.k1, input.b, input.epsilon),
            None,
        ),
        Some(path) => {
            let params = Bm25Params::load(path).map_err(setup)?;
            let kept = params.analyzer.clone().unwrap_or_default();
            if input.analyzer_chosen && kept != input.analyzer {
                return Err(PipelineError::Setup(NodeError::Usage(format!(
                    "{} was fitted with another analyzer ({kept:?}) than this input's ({:?}); --update keeps the file's",
                    path.display(),
                    input.analyzer
                ))));
            }
            let (fitter, exact) = Bm25Fitter::resume(&params).map_err(setup)?;
            let before = (params.corpus_size, params.idf_word.len(), exact);
            (fitter, (params.k1, params.b, params.epsilon), Some(before))
        }
    };
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
    let (k1, b, epsilon) = constants;
    let params = fitter.finish(k1, b, epsilon).map_err(setup)?;
    params
        .save(&input.out)
        .map_err(|e| PipelineError::run(StageError::from(e)))?;
    Ok(FitSummary {
        documents,
        terms: params.idf_word.len(),
        skipped: dead_letters.count(),
        out: input.out.clone(),
        updated_from,
    })
}
