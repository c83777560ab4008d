//! The evaluation's results: a table for people, JSON for CI.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::metrics::{Cutoffs, QueryMetrics};
use crate::search::SearchMode;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub pipeline: String,
    /// Queries scored: those with at least one relevant judgement.
    pub queries: usize,
    /// Queries of the file left out: no relevant judgement.
    pub skipped: usize,
    /// Documents judged relevant that the collection does not hold, sorted.
    pub missing_relevant: Vec<String>,
    pub runs: Vec<RunReport>,
}

/// One mode's figures over every scored query.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub mode: SearchMode,
    pub reranked: bool,
    /// `ndcg@K`, `recall@K`, `recall@DEEP`, `mrr@K`: means over the queries.
    pub metrics: BTreeMap<String, f64>,
    /// Encoding, searching (and reranking) every query, wall time.
    pub seconds: f64,
    pub ms_per_query: f64,
    pub queries_per_second: f64,
}

impl RunReport {
    pub(super) fn new(
        mode: SearchMode,
        reranked: bool,
        mean: QueryMetrics,
        cut: Cutoffs,
        queries: usize,
        took: Duration,
    ) -> Self {
        let seconds = took.as_secs_f64();
        let metrics = BTreeMap::from([
            (format!("ndcg@{}", cut.k), mean.ndcg),
            (format!("recall@{}", cut.k), mean.recall),
            (format!("recall@{}", cut.deep), mean.recall_deep),
            (format!("mrr@{}", cut.k), mean.mrr),
        ]);
        RunReport {
            mode,
            reranked,
            metrics,
            seconds,
            ms_per_query: seconds * 1000.0 / queries.max(1) as f64,
            queries_per_second: queries as f64 / seconds.max(f64::EPSILON),
        }
    }

    /// `dense`, or `dense+rerank`.
    pub fn label(&self) -> String {
        let mode = self.mode.name();
        if self.reranked {
            format!("{mode}+rerank")
        } else {
            mode.to_string()
        }
    }
}

impl EvalReport {
    /// The table: one row per run, the metrics in the order nDCG, recall, deep recall, MRR.
    pub fn table(&self, cut: Cutoffs) -> String {
        let names = [
            format!("ndcg@{}", cut.k),
            format!("recall@{}", cut.k),
            format!("recall@{}", cut.deep),
            format!("mrr@{}", cut.k),
        ];
        let mut out = format!(
            "{}: {} queries scored, {} skipped (no relevant document judged)",
            self.pipeline, self.queries, self.skipped
        );
        if !self.missing_relevant.is_empty() {
            out.push_str(&format!(
                "; {} relevant documents not in the collection",
                self.missing_relevant.len()
            ));
        }
        out.push('\n');
        out.push_str(&format!("{:<14}", "mode"));
        for name in &names {
            out.push_str(&format!("  {name:>10}"));
        }
        out.push_str(&format!("  {:>9}\n", "ms/query"));
        for run in &self.runs {
            out.push_str(&format!("{:<14}", run.label()));
            for name in &names {
                out.push_str(&format!("  {:>10.4}", run.metrics[name]));
            }
            out.push_str(&format!("  {:>9.1}\n", run.ms_per_query));
        }
        out
    }
}
