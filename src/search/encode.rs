//! Encoding queries with the pipeline's own models: its first `dense` stage,
//! and its `bm25` or `splade` stage (or the raw text for Milvus' BM25 function).

use milvus::v2::prelude::SearchVectors;

use super::{SearchError, SearchMode};
use crate::registry::{PipelineConfig, StageConfig};
use crate::sink::milvus::{Bm25Mode, MilvusSinkConfig};
use crate::stage::DenseEncoder;
use crate::stage::bm25::{Bm25Encoder, Bm25StageConfig};
use crate::stage::dense::DenseStageConfig;
use crate::stage::splade::SpladeStageConfig;

/// How the pipeline encodes a query for each kind of field. A model is
/// loaded when a search first needs it: a sparse search loads no dense model.
pub(super) struct QueryEncoders {
    dense: Option<Side<DenseStageConfig, DenseEncoder>>,
    sparse: Option<Side<SparseSource, SparseQuery>>,
}

/// One kind of field: its name, what encodes it, and that encoder once loaded.
struct Side<C, E> {
    field: String,
    config: C,
    encoder: Option<E>,
}

impl<C, E> Side<C, E> {
    fn new(field: &str, config: C) -> Self {
        Side {
            field: field.to_string(),
            config,
            encoder: None,
        }
    }
}

/// Where a sparse query vector comes from.
enum SparseSource {
    Bm25(Bm25StageConfig),
    Splade(SpladeStageConfig),
    /// Milvus' BM25 function encodes the raw text.
    Server,
}

enum SparseQuery {
    Client(Bm25Encoder),
    Splade(Box<crate::model::SpladeEncoder>),
    Server,
}

/// One query's sparse side: weighted terms, or the text for the server to encode.
#[derive(Clone)]
pub(super) enum Sparse {
    Terms(std::collections::BTreeMap<u32, f32>),
    Text(String),
}

/// One query's vectors; a sparse vector with no term is `None` (nothing to match).
#[derive(Clone)]
pub(super) struct QueryVectors {
    pub dense: Option<Vec<f32>>,
    pub sparse: Option<Sparse>,
}

impl QueryEncoders {
    pub(super) fn new(cfg: &PipelineConfig, sink: &MilvusSinkConfig) -> Self {
        let mut dense = None;
        let mut sparse = None;
        for stage in cfg.stage_configs() {
            match stage {
                StageConfig::Dense(d) if dense.is_none() => {
                    dense = Some(Side::new(&d.field, d.clone()))
                }
                StageConfig::Bm25(b) if sparse.is_none() && sink.bm25 == Bm25Mode::Client => {
                    sparse = Some(Side::new(&b.field, SparseSource::Bm25(b.clone())));
                }
                StageConfig::Splade(s) if sparse.is_none() && sink.bm25 == Bm25Mode::Client => {
                    sparse = Some(Side::new(&s.field, SparseSource::Splade(s.clone())));
                }
                _ => {}
            }
        }
        if sink.bm25 == Bm25Mode::Server {
            sparse = Some(Side::new(&sink.sparse_field, SparseSource::Server));
        }
        QueryEncoders { dense, sparse }
    }

    /// Loads the models `mode` needs and has not loaded yet.
    pub(super) fn prepare(&mut self, mode: SearchMode) -> Result<(), SearchError> {
        if let (true, Some(side)) = (mode != SearchMode::Sparse, self.dense.as_mut())
            && side.encoder.is_none()
        {
            side.encoder = Some(DenseEncoder::from_config(&side.config)?);
        }
        if let (true, Some(side)) = (mode != SearchMode::Dense, self.sparse.as_mut())
            && side.encoder.is_none()
        {
            side.encoder = Some(match &side.config {
                SparseSource::Bm25(b) => SparseQuery::Client(b.encoder()?),
                SparseSource::Splade(s) => {
                    SparseQuery::Splade(Box::new(s.encoder(32, s.threads.map_or(1, |t| t.get()))?))
                }
                SparseSource::Server => SparseQuery::Server,
            });
        }
        Ok(())
    }

    /// The modes this pipeline's fields allow, in the order dense, sparse, hybrid.
    pub(super) fn modes(&self) -> Vec<SearchMode> {
        let mut modes = Vec::new();
        if self.dense.is_some() {
            modes.push(SearchMode::Dense);
        }
        if self.sparse.is_some() {
            modes.push(SearchMode::Sparse);
        }
        if modes.len() == 2 {
            modes.push(SearchMode::Hybrid);
        }
        modes
    }

    /// The mode asked for, or hybrid when both fields exist; an error when the
    /// pipeline does not write the field the mode needs.
    pub(super) fn pick_mode(&self, asked: Option<SearchMode>) -> Result<SearchMode, SearchError> {
        let modes = self.modes();
        match asked {
            Some(mode) if modes.contains(&mode) => Ok(mode),
            None => modes.last().copied().ok_or_else(|| {
                SearchError::Usage("the pipeline writes no dense or sparse field".into())
            }),
            Some(mode) => Err(SearchError::Usage(format!(
                "--mode {} needs {}, which this pipeline does not write",
                mode.name(),
                match mode {
                    SearchMode::Dense => "a dense field",
                    SearchMode::Sparse => "a sparse field",
                    SearchMode::Hybrid => "a dense and a sparse field",
                }
            ))),
        }
    }

    /// Each query's vectors for `mode`, encoded in one pass per model
    /// (after [`prepare`](Self::prepare) for that mode).
    pub(super) fn encode(
        &mut self,
        queries: &[&str],
        mode: SearchMode,
    ) -> Result<Vec<QueryVectors>, SearchError> {
        let mut dense: Vec<Option<Vec<f32>>> = vec![None; queries.len()];
        let embedder = self.dense.as_mut().and_then(|s| s.encoder.as_mut());
        if let (true, Some(embedder)) = (mode != SearchMode::Sparse, embedder) {
            let flat = embedder.embed(queries)?;
            let dim = flat.len() / queries.len().max(1);
            for (slot, vector) in dense.iter_mut().zip(flat.chunks_exact(dim.max(1))) {
                *slot = Some(vector.to_vec());
            }
        }
        let encoder = self.sparse.as_mut().and_then(|s| s.encoder.as_mut());
        let sparse = match (mode != SearchMode::Dense, encoder) {
            (true, Some(encoder)) => encoder.encode(queries)?,
            _ => queries.iter().map(|_| None).collect(),
        };
        Ok(dense
            .into_iter()
            .zip(sparse)
            .map(|(dense, sparse)| QueryVectors { dense, sparse })
            .collect())
    }

    pub(super) fn dense_field(&self) -> &str {
        self.dense.as_ref().map_or("", |side| &side.field)
    }

    pub(super) fn sparse_field(&self) -> &str {
        self.sparse.as_ref().map_or("", |side| &side.field)
    }
}

impl SparseQuery {
    fn encode(&mut self, queries: &[&str]) -> Result<Vec<Option<Sparse>>, SearchError> {
        let terms: Vec<Vec<(u32, f32)>> = match self {
            SparseQuery::Server => {
                return Ok(queries
                    .iter()
                    .map(|q| Some(Sparse::Text(q.to_string())))
                    .collect());
            }
            SparseQuery::Client(bm25) => queries.iter().map(|q| bm25.encode_query(q)).collect(),
            SparseQuery::Splade(splade) => splade.encode(queries)?,
        };
        Ok(terms
            .into_iter()
            .map(|terms| (!terms.is_empty()).then(|| Sparse::Terms(terms.into_iter().collect())))
            .collect())
    }
}

/// The sparse sides of several queries as one request's vectors.
pub(super) fn sparse_vectors(sparse: Vec<Sparse>) -> SearchVectors {
    if matches!(sparse.first(), Some(Sparse::Text(_))) {
        SearchVectors::EmbeddedText(
            sparse
                .into_iter()
                .filter_map(|s| match s {
                    Sparse::Text(text) => Some(text),
                    Sparse::Terms(_) => None,
                })
                .collect(),
        )
    } else {
        SearchVectors::SparseFloat(
            sparse
                .into_iter()
                .filter_map(|s| match s {
                    Sparse::Terms(terms) => Some(terms),
                    Sparse::Text(_) => None,
                })
                .collect(),
        )
    }
}
