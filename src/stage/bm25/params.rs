//! The BM25 parameter file (pymilvus.model's JSON, plus the analyzer) and
//! the document / query encodings computed from it.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::AnalyzerConfig;
use super::{Analyzer, Bm25Error};

/// pymilvus.model `BM25EmbeddingFunction.save()` format, version `v1`.
/// `analyzer` is ours; pymilvus ignores it when loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bm25Params {
    pub version: String,
    pub corpus_size: u64,
    pub avgdl: f64,
    pub idf_word: Vec<String>,
    pub idf_value: Vec<f64>,
    pub k1: f64,
    pub b: f64,
    pub epsilon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzer: Option<AnalyzerConfig>,
    /// How many documents hold each term (vecpipe's addition, which
    /// pymilvus.model ignores): `bm25 fit --update` adds to these exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_freq: Option<Vec<u64>>,
    /// Names the vocabulary's lineage (vecpipe's addition): a hash of the
    /// terms of the first fit, kept by `--update`, which only appends. Row
    /// fingerprints use it, so an update does not count as a new model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary_id: Option<String>,
}

/// A vocabulary's id: a hash of its terms in order.
pub(super) fn vocabulary_id(terms: &[String]) -> String {
    let mut hash = xxhash_rust::xxh3::Xxh3::new();
    for term in terms {
        hash.update(term.as_bytes());
        hash.update(&[0]);
    }
    format!("{:032x}", hash.digest128())
}

impl Bm25Params {
    pub fn load(path: &Path) -> Result<Self, Bm25Error> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Bm25Error::Missing {
                path: path.to_path_buf(),
            },
            _ => Bm25Error::Read {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let params: Bm25Params =
            serde_json::from_slice(&bytes).map_err(|source| Bm25Error::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let invalid = |problem: String| Bm25Error::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        if params.version != "v1" {
            return Err(invalid(format!(
                "version `{}` is not supported (expected v1)",
                params.version
            )));
        }
        if params.idf_word.len() != params.idf_value.len() {
            return Err(invalid(format!(
                "idf_word has {} entries but idf_value has {}",
                params.idf_word.len(),
                params.idf_value.len()
            )));
        }
        if let Some(doc_freq) = &params.doc_freq
            && doc_freq.len() != params.idf_word.len()
        {
            return Err(invalid(format!(
                "idf_word has {} entries but doc_freq has {}",
                params.idf_word.len(),
                doc_freq.len()
            )));
        }
        if params.avgdl.is_nan() || params.avgdl <= 0.0 {
            return Err(invalid(format!(
                "avgdl must be positive, found {}",
                params.avgdl
            )));
        }
        Ok(params)
    }

    /// Writes to a temporary name and renames, so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> Result<(), Bm25Error> {
        let err = |source| Bm25Error::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(err)?;
        serde_json::to_writer(&mut file, self).map_err(|e| err(e.into()))?;
        file.flush().map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

/// Encodes texts with fitted params: documents get the TF part, queries the IDF part.
pub struct Bm25Encoder {
    /// term → (index in `idf_word`, idf)
    vocab: FxHashMap<String, (u32, f64)>,
    k1: f64,
    b: f64,
    avgdl: f64,
    analyzer: Analyzer,
}

impl Bm25Encoder {
    pub fn new(params: Bm25Params, analyzer: Analyzer) -> Self {
        let vocab = params
            .idf_word
            .into_iter()
            .zip(params.idf_value)
            .enumerate()
            .map(|(i, (word, idf))| (word, (i as u32, idf)))
            .collect();
        Bm25Encoder {
            vocab,
            k1: params.k1,
            b: params.b,
            avgdl: params.avgdl,
            analyzer,
        }
    }

    /// `tf·(k1+1) / (tf + k1·(1−b+b·dl/avgdl))` per known term, sorted by index.
    pub fn encode_document(&self, text: &str) -> Vec<(u32, f32)> {
        // Known terms' indexes, in order; unknown terms count in the length only.
        let mut doc_len = 0usize;
        let mut known: Vec<u32> = Vec::new();
        self.analyzer.for_each_term(text, |term| {
            doc_len += 1;
            if let Some(&(index, _)) = self.vocab.get(term) {
                known.push(index);
            }
        });
        known.sort_unstable();
        let doc_len = doc_len as f64;
        let weight = |tf: usize| {
            let tf = tf as f64;
            let value = tf * (self.k1 + 1.0)
                / (tf + self.k1 * (1.0 - self.b + self.b * doc_len / self.avgdl));
            value as f32
        };
        known
            .chunk_by(|a, b| a == b)
            .map(|run| (run[0], weight(run.len())))
            .collect()
    }

    /// The idf of each known query term; a repeated term adds up.
    pub fn encode_query(&self, text: &str) -> Vec<(u32, f32)> {
        let mut sums: BTreeMap<u32, f64> = BTreeMap::new();
        for term in self.analyzer.analyze(text) {
            if let Some(&(index, idf)) = self.vocab.get(&term) {
                *sums.entry(index).or_default() += idf;
            }
        }
        sums.into_iter()
            .map(|(index, value)| (index, value as f32))
            .collect()
    }
}
