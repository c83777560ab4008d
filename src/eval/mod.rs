//! `vecpipe eval`: run a labelled query set through the pipeline's own
//! search and report nDCG, recall and MRR per search mode.

pub mod metrics;
mod qrels;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::error::Phased;
use crate::progress::Progress;
use crate::registry::{PipelineConfig, StageConfig};
use crate::search::{
    Hit, LineFileError, Query, Ranker, RerankOptions, SearchError, SearchMode, SearchOptions,
    Searcher, read_queries,
};
use metrics::{Cutoffs, QueryMetrics, mean, rank_documents, score_query};
pub use qrels::{Qrels, read_qrels};
pub use report::{EvalReport, RunReport};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Input(#[from] LineFileError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("no query of {queries} has a relevant document in {qrels}")]
    NothingToScore { queries: PathBuf, qrels: PathBuf },
}

/// What to evaluate, and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub queries: PathBuf,
    pub qrels: PathBuf,
    /// `None`: every mode the pipeline's fields allow.
    pub modes: Option<Vec<SearchMode>>,
    pub ranker: Ranker,
    /// Also score each mode with its first `top` hits reranked.
    pub rerank: Option<RerankOptions>,
    pub cutoffs: Cutoffs,
    /// Queries encoded and sent to Milvus together.
    pub batch: usize,
}

/// Chunks fetched per document asked for, when the pipeline chunks: several
/// chunks of one document may rank high, and metrics count documents.
const CHUNKS_PER_DOCUMENT: usize = 4;
/// Milvus' largest `limit`.
const MAX_LIMIT: usize = 16_384;

/// Scores the pipeline's collection on the judged queries, one run per mode
/// (and per mode reranked), through one connection.
pub fn evaluate(
    cfg: &PipelineConfig,
    options: &EvalOptions,
    runtime: &Handle,
) -> Result<EvalReport, Phased<EvalError>> {
    let queries = read_queries(&options.queries).map_err(Phased::setup)?;
    let qrels = read_qrels(&options.qrels).map_err(Phased::setup)?;
    let judged: Vec<&Query> = queries
        .iter()
        .filter(|q| {
            qrels
                .get(&q.id)
                .is_some_and(|j| j.values().any(|g| *g >= 1))
        })
        .collect();
    if judged.is_empty() {
        return Err(Phased::Setup(EvalError::NothingToScore {
            queries: options.queries.clone(),
            qrels: options.qrels.clone(),
        }));
    }
    let mut searcher =
        Searcher::open(cfg, options.rerank.as_ref(), runtime).map_err(Phased::convert)?;
    let missing = missing_relevant(&searcher, &judged, &qrels).map_err(Phased::run)?;
    let modes = options.modes.clone().unwrap_or_else(|| searcher.modes());
    let runs: Vec<(SearchMode, Option<&RerankOptions>)> = modes
        .iter()
        .flat_map(|mode| {
            std::iter::once((*mode, None)).chain(options.rerank.as_ref().map(|r| (*mode, Some(r))))
        })
        .collect();
    let progress = Progress::new(Some((judged.len() * runs.len()) as u64), "queries");
    let chunked = cfg
        .stage_configs()
        .any(|s| matches!(s, StageConfig::Chunk(_)));
    let fetch = (options.cutoffs.deep.max(options.cutoffs.k)
        * if chunked { CHUNKS_PER_DOCUMENT } else { 1 })
    .min(MAX_LIMIT);
    let mut reports = Vec::new();
    for (mode, rerank) in runs {
        let search = SearchOptions {
            mode: Some(mode),
            ranker: options.ranker.clone(),
            limit: fetch,
            filter: None,
            rerank: rerank.cloned(),
        };
        let started = Instant::now();
        let mut scores = Vec::with_capacity(judged.len());
        for batch in judged.chunks(options.batch.max(1)) {
            let texts: Vec<&str> = batch.iter().map(|q| q.text.as_str()).collect();
            let hits = searcher.search(&texts, &search).map_err(Phased::convert)?;
            for (query, hits) in batch.iter().zip(&hits) {
                scores.extend(score_hits(hits, &qrels[&query.id], options.cutoffs));
            }
            progress.advance(batch.len() as u64);
        }
        reports.push(RunReport::new(
            mode,
            rerank.is_some(),
            mean(&scores),
            options.cutoffs,
            judged.len(),
            started.elapsed(),
        ));
    }
    progress.finish();
    Ok(EvalReport {
        pipeline: cfg.name().to_string(),
        queries: judged.len(),
        skipped: queries.len() - judged.len(),
        missing_relevant: missing,
        runs: reports,
    })
}

/// The documents the qrels judge relevant to a scored query that the
/// collection does not hold, sorted; a warning names them. Such a document
/// can never be found, so a typo in the qrels (or a corpus not fully
/// ingested) would lower every figure without a word.
fn missing_relevant(
    searcher: &Searcher,
    judged: &[&Query],
    qrels: &Qrels,
) -> Result<Vec<String>, SearchError> {
    let relevant: std::collections::BTreeSet<&str> = judged
        .iter()
        .flat_map(|q| qrels[&q.id].iter())
        .filter(|(_, grade)| **grade >= 1)
        .map(|(document, _)| document.as_str())
        .collect();
    let relevant: Vec<&str> = relevant.into_iter().collect();
    let mut missing = searcher.missing_documents(&relevant)?;
    missing.sort();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        tracing::warn!(
            "{} of the {} documents the qrels judge relevant are not in the collection ({}{}): they cannot be found, so every figure is lower than the search deserves; check the qrels' document ids against the corpus' ids",
            missing.len(),
            relevant.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    Ok(missing)
}

/// One query's figures: its hits ranked as documents, against its judgements.
fn score_hits(
    hits: &[Hit],
    judged: &metrics::Judgements,
    cutoffs: Cutoffs,
) -> Option<QueryMetrics> {
    let ranked = rank_documents(
        hits.iter()
            .map(|h| (h.document(), h.rerank_score.unwrap_or(h.score))),
    );
    score_query(&ranked, judged, cutoffs)
}
