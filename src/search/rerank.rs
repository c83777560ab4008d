//! Reranking the first hits of each query with a cross-encoder.

use super::{Hit, PhasedSearchError, RerankOptions, SearchError};
use crate::error::Phased;
use crate::model::{CrossEncoder, ModelError, SessionOptions, resolve_model};
use crate::registry::{PipelineConfig, StageConfig};
use crate::stage::Reranker;

/// The cross-encoder named by `--rerank-model`, or the pipeline's `rerank` stage's.
pub(super) fn load(
    cfg: &PipelineConfig,
    rerank: &RerankOptions,
) -> Result<Reranker, PhasedSearchError> {
    let stage = cfg.stage_configs().find_map(|s| match s {
        StageConfig::Rerank(r) => Some(r),
        _ => None,
    });
    match (&rerank.model, stage) {
        (Some(model), _) => {
            let options = SessionOptions {
                batch_size: 16,
                batch_tokens: stage.map_or(crate::model::default_batch_tokens().get(), |s| {
                    s.batch_tokens.get()
                }),
                max_length: stage.map_or(512, |s| s.max_length.get()),
                threads: crate::model::threads_or_cores(None),
                onnxruntime: stage.and_then(|s| s.onnxruntime.clone()),
            };
            let sigmoid = stage.is_some_and(|s| s.sigmoid);
            let files = resolve_model(model).map_err(Phased::setup)?;
            Ok(Reranker::Local(Box::new(
                CrossEncoder::load(&files, &options, sigmoid).map_err(Phased::setup)?,
            )))
        }
        (None, Some(stage)) => Reranker::from_config(stage).map_err(Phased::setup),
        (None, None) => Err(Phased::Setup(SearchError::Usage(
            "--rerank needs --rerank-model or a rerank stage in the pipeline".into(),
        ))),
    }
}

/// Scores each query's first `top` hits in one pass and sorts them by that
/// score; the hits below `top` keep their order after them.
pub(super) fn rerank_hits(
    reranker: &mut Reranker,
    queries: &[&str],
    top: usize,
    hits: &mut [Vec<Hit>],
) -> Result<(), ModelError> {
    let pairs: Vec<(&str, &str)> = queries
        .iter()
        .zip(hits.iter())
        .flat_map(|(query, list)| list.iter().take(top).map(|h| (*query, h.text.as_str())))
        .collect();
    let mut scores = reranker.score_pairs(&pairs)?.into_iter();
    for list in hits.iter_mut() {
        let head = top.min(list.len());
        for hit in &mut list[..head] {
            hit.rerank_score = scores.next();
        }
        list[..head].sort_by(|a, b| {
            b.rerank_score
                .unwrap_or_default()
                .total_cmp(&a.rerank_score.unwrap_or_default())
        });
        for (i, hit) in list.iter_mut().enumerate() {
            hit.rank = i + 1;
        }
    }
    Ok(())
}
