//! Retrieval metrics with trec_eval's definitions: documents ranked by score
//! (ties broken by document id, descending), graded gains for nDCG, and a
//! document relevant when its grade is at least 1.

use std::collections::{HashMap, HashSet};

/// One query's judgements: document id → grade (0 or less: not relevant).
pub type Judgements = HashMap<String, i64>;

/// One query's figures at the cut-offs asked for.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueryMetrics {
    pub ndcg: f64,
    pub recall: f64,
    pub recall_deep: f64,
    pub mrr: f64,
}

/// The cut-offs: nDCG, MRR and the first recall at `k`, a second recall at `deep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub k: usize,
    pub deep: usize,
}

/// Documents best first, as trec_eval ranks them: a document seen again (a
/// later chunk of it) keeps its first, best score, and documents with equal
/// scores are ordered by id, descending. `scored` must be best first.
pub fn rank_documents<'a>(scored: impl IntoIterator<Item = (&'a str, f32)>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    let unique: Vec<(&str, f32)> = scored
        .into_iter()
        .filter(|(doc, _)| seen.insert(*doc))
        .collect();
    let mut ranked = Vec::with_capacity(unique.len());
    for tie in unique.chunk_by(|a, b| a.1 == b.1) {
        let mut tie: Vec<&str> = tie.iter().map(|(doc, _)| *doc).collect();
        tie.sort_unstable_by(|a, b| b.cmp(a));
        ranked.extend(tie);
    }
    ranked
}

/// The figures of one ranking against its judgements; `None` when the query
/// has no relevant document (it would score 0 whatever the ranking, so it is
/// left out of the mean; BEIR's qrels have no such query).
pub fn score_query(ranked: &[&str], judged: &Judgements, cut: Cutoffs) -> Option<QueryMetrics> {
    let grade = |doc: &str| judged.get(doc).copied().unwrap_or(0).max(0);
    let relevant = judged.values().filter(|g| **g >= 1).count();
    if relevant == 0 {
        return None;
    }
    let found = |depth: usize| ranked.iter().take(depth).filter(|d| grade(d) >= 1).count();
    let discounted = |gains: &mut dyn Iterator<Item = i64>| -> f64 {
        gains
            .take(cut.k)
            .enumerate()
            .map(|(i, gain)| gain as f64 / (i as f64 + 2.0).log2())
            .sum()
    };
    let dcg = discounted(&mut ranked.iter().map(|d| grade(d)));
    let mut ideal: Vec<i64> = judged.values().map(|g| (*g).max(0)).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg = discounted(&mut ideal.into_iter());
    let first = ranked.iter().take(cut.k).position(|d| grade(d) >= 1);
    Some(QueryMetrics {
        ndcg: dcg / idcg,
        recall: found(cut.k) as f64 / relevant as f64,
        recall_deep: found(cut.deep) as f64 / relevant as f64,
        mrr: first.map_or(0.0, |rank| 1.0 / (rank as f64 + 1.0)),
    })
}

/// The mean of each figure over the queries scored.
pub fn mean(scores: &[QueryMetrics]) -> QueryMetrics {
    if scores.is_empty() {
        return QueryMetrics::default();
    }
    let n = scores.len() as f64;
    let sum = |f: fn(&QueryMetrics) -> f64| scores.iter().map(f).sum::<f64>() / n;
    QueryMetrics {
        ndcg: sum(|m| m.ndcg),
        recall: sum(|m| m.recall),
        recall_deep: sum(|m| m.recall_deep),
        mrr: sum(|m| m.mrr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(pairs: &[(&str, i64)]) -> Judgements {
        pairs.iter().map(|(d, g)| (d.to_string(), *g)).collect()
    }

    const CUT: Cutoffs = Cutoffs { k: 3, deep: 5 };

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn binary_relevance_by_hand() {
        // Relevant: a (rank 2) and c (rank 4); b, d and e are not judged.
        let ranked = ["b", "a", "d", "c", "e"];
        let m = score_query(&ranked, &judged(&[("a", 1), ("c", 1), ("x", 0)]), CUT).unwrap();
        // DCG@3 = 1/log2(3); IDCG@3 = 1 + 1/log2(3).
        let dcg = 1.0 / 3f64.log2();
        close(m.ndcg, dcg / (1.0 + dcg));
        close(m.recall, 0.5);
        close(m.recall_deep, 1.0);
        close(m.mrr, 0.5);
    }

    #[test]
    fn graded_relevance_uses_the_grade_as_gain() {
        // a is grade 1 at rank 1, b grade 2 at rank 2; the ideal puts b first.
        let m = score_query(&["a", "b"], &judged(&[("a", 1), ("b", 2)]), CUT).unwrap();
        let dcg = 1.0 + 2.0 / 3f64.log2();
        let idcg = 2.0 + 1.0 / 3f64.log2();
        close(m.ndcg, dcg / idcg);
        close(m.recall, 1.0);
        close(m.mrr, 1.0);
    }

    #[test]
    fn nothing_relevant_found_scores_zero_and_no_relevant_document_is_no_score() {
        let m = score_query(&["p", "q", "r", "s"], &judged(&[("z", 2)]), CUT).unwrap();
        assert_eq!(m, QueryMetrics::default());
        assert_eq!(score_query(&["p"], &judged(&[("p", 0)]), CUT), None);
        // A negative grade is not relevant and adds no gain.
        let m = score_query(&["n", "a"], &judged(&[("n", -1), ("a", 1)]), CUT).unwrap();
        close(m.ndcg, (1.0 / 3f64.log2()) / 1.0);
    }

    #[test]
    fn a_relevant_document_below_k_counts_only_in_the_deep_recall() {
        let m = score_query(&["p", "q", "r", "a"], &judged(&[("a", 1)]), CUT).unwrap();
        assert_eq!(
            (m.ndcg, m.recall, m.mrr, m.recall_deep),
            (0.0, 0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn ties_are_broken_by_document_id_descending_and_chunks_keep_the_first_score() {
        let scored = [
            ("d1", 0.9),
            ("a", 0.5),
            ("c", 0.5),
            ("b", 0.5),
            ("d1", 0.5),
            ("e", 0.1),
        ];
        assert_eq!(rank_documents(scored), ["d1", "c", "b", "a", "e"]);
        // So a relevant `a` tied with two others ranks fourth, not second.
        let ranked = rank_documents(scored);
        let m = score_query(&ranked, &judged(&[("a", 1)]), CUT).unwrap();
        close(m.mrr, 0.0);
        close(m.recall_deep, 1.0);
    }

    #[test]
    fn the_mean_is_over_the_queries_scored() {
        let a = QueryMetrics {
            ndcg: 1.0,
            recall: 1.0,
            recall_deep: 1.0,
            mrr: 1.0,
        };
        let b = QueryMetrics {
            ndcg: 0.0,
            recall: 0.5,
            recall_deep: 1.0,
            mrr: 0.5,
        };
        assert_eq!(
            mean(&[a, b]),
            QueryMetrics {
                ndcg: 0.5,
                recall: 0.75,
                recall_deep: 1.0,
                mrr: 0.75
            }
        );
        assert_eq!(mean(&[]), QueryMetrics::default());
    }
}
