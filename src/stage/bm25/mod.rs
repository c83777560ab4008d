//! `bm25`: client-side BM25 sparse vectors with the maths and the parameter
//! file of pymilvus.model's `BM25EmbeddingFunction`.

mod analyzer;
mod cjk;
mod fit;
pub mod japanese;
mod language;
mod nltk_words;
mod params;

use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use rayon::prelude::*;

pub use analyzer::{Analyzer, AnalyzerConfig, STEMMER_LANGUAGES, StopWords, TokenizerKind};
pub use fit::{Bm25Fitter, DEFAULT_B, DEFAULT_EPSILON, DEFAULT_K1};
pub use language::Language;
pub use params::{Bm25Encoder, Bm25Params};

use serde::Deserialize;

use super::{Stage, StageComponent, StageContext, StageError, StageShape, append_sparse, texts};
use crate::batch::Position;
use crate::config::{Invalid, Surroundings};

#[derive(Debug, thiserror::Error)]
pub enum Bm25Error {
    #[error(
        "BM25 params {} do not exist yet: fit them on the corpus first (`vecpipe bm25 fit --pipeline` with this pipeline file)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("BM25 params {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("BM25 params {}: not a BM25 params file: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("BM25 params {}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    #[error(
        "BM25 params {}: fitted with analyzer {stored} but the stage sets {configured}; \
         refit with `vecpipe bm25 fit` or drop the stage's `analyzer:`",
        path.display()
    )]
    AnalyzerMismatch {
        path: PathBuf,
        stored: String,
        configured: String,
    },
    #[error(
        "no Japanese dictionary (looked in {}); {}",
        crate::model::list(.looked), japanese::prepare_hint()
    )]
    NoJapaneseDictionary { looked: Vec<PathBuf> },
    #[error(
        "{}: no mecab-ipadic sources there (matrix.def, *.csv); install Debian's mecab-ipadic \
         package or pass --from with the directory of its CSV and .def files",
        from.display()
    )]
    JapaneseSources { from: PathBuf },
    #[error("building the Japanese dictionary from {}: {problem}", from.display())]
    JapaneseBuild { from: PathBuf, problem: String },
    #[error("unknown stemmer language `{0}`")]
    Stemmer(String),
    #[error("cannot fit BM25 on an empty corpus (no usable records)")]
    EmptyCorpus,
    #[error("cannot write BM25 params {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `{ type: bm25, params: FILE, analyzer: {...}, field: sparse }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bm25StageConfig {
    /// A params file from `vecpipe bm25 fit` or pymilvus.model's `save`.
    pub params: PathBuf,
    /// Must match the analyzer stored in the params file, when it has one.
    #[serde(default)]
    pub analyzer: Option<AnalyzerConfig>,
    #[serde(default = "crate::batch::sparse::default_field")]
    pub field: String,
}

impl Bm25StageConfig {
    /// The encoder of its params file, with the analyzer stored there (or the
    /// configured one, which must agree).
    pub(crate) fn encoder(&self) -> Result<Bm25Encoder, Bm25Error> {
        let params = Bm25Params::load(&self.params)?;
        let analyzer = resolve_analyzer(
            &self.params,
            params.analyzer.as_ref(),
            self.analyzer.as_ref(),
        )?;
        Ok(Bm25Encoder::new(params, Analyzer::new(&analyzer)?))
    }
}

impl StageComponent for Bm25StageConfig {
    fn kind() -> &'static str {
        "bm25"
    }

    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        match &self.analyzer {
            Some(analyzer) => analyzer.validate().map_err(|e| e.within("analyzer")),
            None => Ok(()),
        }
    }

    fn output_field(&self) -> Option<&str> {
        Some(&self.field)
    }

    /// The analyzer, the constants and the vocabulary's lineage: a params
    /// file grown by `bm25 fit --update` keeps every row's fingerprint. A
    /// file without a lineage (pymilvus.model's) counts by its contents.
    fn shape(&self) -> Result<StageShape, StageError> {
        let params = Bm25Params::load(&self.params)?;
        let mut settings = serde_json::json!({
            "analyzer": self.analyzer,
            "field": self.field,
            "k1": params.k1,
            "b": params.b,
            "epsilon": params.epsilon,
        });
        // Params with a vocabulary id stand for their terms; others by their file.
        Ok(match &params.vocabulary_id {
            Some(id) => {
                settings["vocabulary_id"] = serde_json::json!(id);
                StageShape::settings(settings)
            }
            None => StageShape {
                files: vec![self.params.clone()],
                ..StageShape::settings(settings)
            },
        })
    }

    fn build(&self, _ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
        Ok(Box::new(Bm25Stage::new(self)?))
    }
}

pub(crate) struct Bm25Stage {
    encoder: Bm25Encoder,
    field: String,
}

impl Bm25Stage {
    pub(crate) fn new(cfg: &Bm25StageConfig) -> Result<Self, Bm25Error> {
        Ok(Bm25Stage {
            encoder: cfg.encoder()?,
            field: cfg.field.clone(),
        })
    }
}

/// The analyzer stored with the params wins; a different configured one is an error.
pub fn resolve_analyzer(
    path: &std::path::Path,
    stored: Option<&AnalyzerConfig>,
    configured: Option<&AnalyzerConfig>,
) -> Result<AnalyzerConfig, Bm25Error> {
    let show = |a: &AnalyzerConfig| serde_json::to_string(a).expect("analyzer serializes");
    match (stored, configured) {
        (Some(s), Some(c)) if s != c => Err(Bm25Error::AnalyzerMismatch {
            path: path.to_path_buf(),
            stored: show(s),
            configured: show(c),
        }),
        (Some(s), _) => Ok(s.clone()),
        (None, Some(c)) => Ok(c.clone()),
        (None, None) => {
            tracing::warn!(
                params = %path.display(),
                "BM25 params file names no analyzer (saved by pymilvus?); using the default analyzer"
            );
            Ok(AnalyzerConfig::default())
        }
    }
}

impl Stage for Bm25Stage {
    fn kind(&self) -> &'static str {
        "bm25"
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        // Texts are independent: encoded on every core (rayon's pool).
        let encoder = &self.encoder;
        let rows: Vec<Vec<(u32, f32)>> = texts(&batch, position)?
            .par_iter()
            .map(|text| encoder.encode_document(text))
            .collect();
        append_sparse(&batch, &self.field, rows, position)
    }
}

impl crate::config::RelativePaths for Bm25StageConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::rebase_path(base, &mut self.params);
    }
}
