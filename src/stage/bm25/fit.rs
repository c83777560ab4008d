//! Fitting BM25 corpus statistics one text at a time (memory grows with the
//! vocabulary, not the corpus).

use rustc_hash::{FxHashMap, FxHashSet};

use super::AnalyzerConfig;
use super::params::vocabulary_id;
use super::{Analyzer, Bm25Error, Bm25Params};

pub const DEFAULT_K1: f64 = 1.5;
pub const DEFAULT_B: f64 = 0.75;
pub const DEFAULT_EPSILON: f64 = 0.25;

pub struct Bm25Fitter {
    analyzer: Analyzer,
    analyzer_config: AnalyzerConfig,
    /// term → (order of first appearance, document frequency)
    terms: FxHashMap<String, (usize, u64)>,
    total_terms: u64,
    documents: u64,
    /// The vocabulary id of the params resumed from.
    vocabulary_id: Option<String>,
}

impl Bm25Fitter {
    /// Continues from fitted params, so that more text can be folded in: its
    /// terms keep their indexes and new ones are appended. Document
    /// frequencies come from the file's `doc_freq`; a file without it
    /// (pymilvus.model's, or an older one) has them recovered from the idfs,
    /// and a term whose idf was floored (in over half of the documents) is
    /// taken to be in all of them. The second value says which it was.
    pub fn resume(params: &Bm25Params) -> Result<(Self, bool), Bm25Error> {
        let analyzer_config = params.analyzer.clone().unwrap_or_default();
        let mut fitter = Bm25Fitter::new(&analyzer_config)?;
        let n = params.corpus_size;
        let doc_freq: Vec<u64> = match &params.doc_freq {
            Some(exact) => exact.clone(),
            None => recovered_doc_freq(params),
        };
        fitter.terms = params
            .idf_word
            .iter()
            .zip(doc_freq)
            .enumerate()
            .map(|(order, (term, df))| (term.clone(), (order, df)))
            .collect();
        fitter.documents = n;
        fitter.total_terms = (params.avgdl * n as f64).round() as u64;
        fitter.vocabulary_id = Some(
            params
                .vocabulary_id
                .clone()
                .unwrap_or_else(|| vocabulary_id(&params.idf_word)),
        );
        Ok((fitter, params.doc_freq.is_some()))
    }

    pub fn new(analyzer_config: &AnalyzerConfig) -> Result<Self, Bm25Error> {
        Ok(Bm25Fitter {
            analyzer: Analyzer::new(analyzer_config)?,
            analyzer_config: analyzer_config.clone(),
            terms: FxHashMap::default(),
            total_terms: 0,
            documents: 0,
            vocabulary_id: None,
        })
    }

    pub fn add(&mut self, text: &str) {
        self.documents += 1;
        // The first-appearance order of the terms seen in this text.
        let mut seen = FxHashSet::default();
        let (terms, total_terms) = (&mut self.terms, &mut self.total_terms);
        self.analyzer.for_each_term(text, |term| {
            *total_terms += 1;
            let next = terms.len();
            let entry = match terms.get_mut(term) {
                Some(entry) => entry,
                None => terms.entry(term.to_string()).or_insert((next, 0)),
            };
            if seen.insert(entry.0) {
                entry.1 += 1;
            }
        });
    }

    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// The params, computed as pymilvus.model does, term order included
    /// (first appearance in the corpus), so both produce the same file.
    pub fn finish(self, k1: f64, b: f64, epsilon: f64) -> Result<Bm25Params, Bm25Error> {
        if self.documents == 0 || self.terms.is_empty() {
            return Err(Bm25Error::EmptyCorpus);
        }
        let n = self.documents;
        let mut terms: Vec<(String, (usize, u64))> = self.terms.into_iter().collect();
        terms.sort_unstable_by_key(|(_, (order, _))| *order);
        let doc_freq: Vec<u64> = terms.iter().map(|(_, (_, df))| *df).collect();
        let mut idf_sum = 0.0;
        let mut idf_value = Vec::with_capacity(terms.len());
        for (_, (_, df)) in &terms {
            let idf = ((n - df) as f64 + 0.5).ln() - (*df as f64 + 0.5).ln();
            idf_sum += idf;
            idf_value.push(idf);
        }
        let eps = epsilon * (idf_sum / terms.len() as f64);
        for idf in &mut idf_value {
            if *idf < 0.0 {
                *idf = eps;
            }
        }
        let words: Vec<String> = terms.into_iter().map(|(term, _)| term).collect();
        Ok(Bm25Params {
            vocabulary_id: Some(self.vocabulary_id.unwrap_or_else(|| vocabulary_id(&words))),
            version: "v1".to_string(),
            corpus_size: n,
            avgdl: self.total_terms as f64 / n as f64,
            idf_word: words,
            idf_value,
            k1,
            b,
            epsilon,
            analyzer: Some(self.analyzer_config),
            doc_freq: Some(doc_freq),
        })
    }
}

/// Document frequencies from idfs: `idf = ln(n − df + ½) − ln(df + ½)`
/// solved for `df`; a floored idf (the smallest value shared by terms whose
/// raw idf was negative) stands for a term in every document.
fn recovered_doc_freq(params: &Bm25Params) -> Vec<u64> {
    let n = params.corpus_size as f64;
    let raw = |df: f64| (n - df + 0.5).ln() - (df + 0.5).ln();
    params
        .idf_value
        .iter()
        .map(|&idf| {
            let x = idf.exp();
            let df = ((n + 0.5 - 0.5 * x) / (1.0 + x)).round().clamp(1.0, n);
            if (raw(df) - idf).abs() > 1e-6 {
                n as u64 // floored: over half of the documents
            } else {
                df as u64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::bm25::Bm25Encoder;
    use crate::stage::bm25::{StopWords, TokenizerKind};

    fn plain() -> AnalyzerConfig {
        AnalyzerConfig {
            language: None,
            tokenizer: TokenizerKind::Whitespace,
            lowercase: true,
            stop_words: StopWords::None,
            stemmer: "none".into(),
        }
    }

    fn fitted() -> Bm25Params {
        let mut fitter = Bm25Fitter::new(&plain()).unwrap();
        for text in ["a b c", "a b", "a d d"] {
            fitter.add(text);
        }
        fitter
            .finish(DEFAULT_K1, DEFAULT_B, DEFAULT_EPSILON)
            .unwrap()
    }

    #[test]
    fn terms_keep_first_appearance_order_and_textbook_idf() {
        let params = fitted();
        assert_eq!(params.idf_word, ["a", "b", "c", "d"]);
        assert_eq!(params.corpus_size, 3);
        assert!((params.avgdl - 8.0 / 3.0).abs() < 1e-12);
        // c appears in one of three documents.
        let idf_c = (2.5f64).ln() - (1.5f64).ln();
        assert!((params.idf_value[2] - idf_c).abs() < 1e-12);
        // a is in every document: negative idf becomes epsilon × mean idf.
        let raw: Vec<f64> = [3u64, 2, 1, 1]
            .iter()
            .map(|&df| ((3 - df) as f64 + 0.5).ln() - (df as f64 + 0.5).ln())
            .collect();
        let eps = 0.25 * raw.iter().sum::<f64>() / 4.0;
        assert!((params.idf_value[0] - eps).abs() < 1e-12);
    }

    #[test]
    fn documents_get_tf_part_and_queries_sum_idf_of_repeats() {
        let params = fitted();
        let (idf_d, avgdl) = (params.idf_value[3], params.avgdl);
        let encoder = Bm25Encoder::new(params, Analyzer::new(&plain()).unwrap());
        let doc = encoder.encode_document("d D unknown");
        let expected = 2.0 * 2.5 / (2.0 + 1.5 * (0.25 + 0.75 * 3.0 / avgdl));
        assert_eq!(doc.len(), 1);
        assert_eq!(doc[0].0, 3);
        assert!((doc[0].1 as f64 - expected).abs() < 1e-6);
        let query = encoder.encode_query("d d zzz");
        assert_eq!(query, vec![(3, (2.0 * idf_d) as f32)]);
    }

    #[test]
    fn an_update_appends_new_terms_and_equals_a_fit_on_both_corpora() {
        let mut both = Bm25Fitter::new(&plain()).unwrap();
        let mut first = Bm25Fitter::new(&plain()).unwrap();
        for text in ["a b c", "a b", "a d d"] {
            both.add(text);
            first.add(text);
        }
        let first = first
            .finish(DEFAULT_K1, DEFAULT_B, DEFAULT_EPSILON)
            .unwrap();
        for text in ["e a", "f f b"] {
            both.add(text);
        }
        let both = both.finish(DEFAULT_K1, DEFAULT_B, DEFAULT_EPSILON).unwrap();
        let update = |params: &Bm25Params| {
            let (mut update, exact) = Bm25Fitter::resume(params).unwrap();
            for text in ["e a", "f f b"] {
                update.add(text);
            }
            let updated = update.finish(DEFAULT_K1, DEFAULT_B, DEFAULT_EPSILON);
            (updated.unwrap(), exact)
        };
        let (updated, exact) = update(&first);
        assert!(exact);
        assert_eq!(updated.idf_word, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(updated.idf_word[..4], first.idf_word[..]);
        assert_eq!(
            updated.vocabulary_id, first.vocabulary_id,
            "an update keeps the lineage"
        );
        assert_ne!(
            both.vocabulary_id, first.vocabulary_id,
            "a new fit starts one"
        );
        assert_eq!(
            Bm25Params {
                vocabulary_id: None,
                ..updated
            },
            Bm25Params {
                vocabulary_id: None,
                ..both.clone()
            }
        );

        // Without doc_freq: exact for terms in at most half of the documents
        // (c, d); `b` (2 of 3, floored) is taken to be in all 3.
        let mut pymilvus_like = first.clone();
        pymilvus_like.doc_freq = None;
        let (recovered, exact) = update(&pymilvus_like);
        assert!(!exact);
        assert_eq!(
            recovered.doc_freq,
            Some(vec![4, 4, 1, 1, 1, 1]),
            "a: 3 + 1, b: 3 (recovered) + 1"
        );
        assert_eq!((recovered.corpus_size, recovered.avgdl), (5, both.avgdl));
        assert_eq!(recovered.idf_word, both.idf_word);
    }

    #[test]
    fn empty_corpus_is_an_error() {
        let fitter = Bm25Fitter::new(&plain()).unwrap();
        assert!(matches!(
            fitter.finish(1.5, 0.75, 0.25),
            Err(Bm25Error::EmptyCorpus)
        ));
    }

    #[test]
    fn saved_params_load_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bm25.json");
        let params = fitted();
        params.save(&path).unwrap();
        assert_eq!(Bm25Params::load(&path).unwrap(), params);
    }
}
