//! `vecpipe search`: encode queries with the pipeline's own models and run
//! dense, sparse or hybrid searches on its Milvus collection — one query, or
//! many through one connection and one request per batch.

mod encode;
mod format;
mod queries;
mod rerank;

use std::collections::{BTreeMap, HashMap};

use milvus::v2::prelude::{
    DataType, Error as SdkError, HybridSearchRequest, RRFRerank, SearchRequest, SearchResponse,
    SearchVectors, SingleResult, SubSearchRequest, WeightedRerank,
};
use serde::Serialize;
use tokio::runtime::Handle;

use crate::batch::columns;
use crate::error::Phased;
use crate::model::ModelError;
use crate::registry::{PipelineConfig, SinkConfig, StageConfig};
use crate::sink::milvus::{
    IndexConfig, MilvusConnection, MilvusError, MilvusSinkConfig, VectorKind, documents_of,
};
use crate::stage::Reranker;
use crate::stage::bm25::Bm25Error;
use encode::{QueryEncoders, QueryVectors, Sparse, sparse_vectors};
pub use format::{QueryHit, format_hits, json_lines};
pub use queries::{LineFileError, Query, parse_lines, read_queries};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Bm25(#[from] Bm25Error),
    #[error(transparent)]
    Milvus(#[from] MilvusError),
    #[error("search on `{collection}` failed: {message}")]
    Search { collection: String, message: String },
    #[error("cannot look up the documents of `{collection}`: {source}")]
    Held {
        collection: String,
        source: Box<crate::sink::SinkError>,
    },
    #[error(
        "collection `{collection}` does not exist at {uri}; run the pipeline first (`vecpipe run FILE`) to fill it"
    )]
    NoCollection { collection: String, uri: String },
}

/// A search error and its phase: loading the encoders or connecting is set-up (exit 2).
pub type PhasedSearchError = Phased<SearchError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    Dense,
    Sparse,
    Hybrid,
}

impl SearchMode {
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Dense => "dense",
            SearchMode::Sparse => "sparse",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ranker {
    Rrf { k: i64 },
    Weighted { weights: Vec<f32> },
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// `None`: hybrid when the collection has both fields.
    pub mode: Option<SearchMode>,
    pub ranker: Ranker,
    pub limit: usize,
    pub filter: Option<String>,
    /// Rerank the first `top` hits with a cross-encoder.
    pub rerank: Option<RerankOptions>,
}

#[derive(Debug, Clone)]
pub struct RerankOptions {
    /// The cross-encoder; default: the model of the pipeline's `rerank` stage.
    pub model: Option<String>,
    pub top: usize,
}

/// One result, best first.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub rank: usize,
    pub id: String,
    pub doc_id: Option<String>,
    pub score: f32,
    /// The cross-encoder's score, when reranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_score: Option<f32>,
    pub text: String,
    /// The pipeline's metadata columns, as the collection holds them.
    #[serde(flatten)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Hit {
    /// The document the hit belongs to: its `doc_id` when the pipeline chunks.
    pub fn document(&self) -> &str {
        self.doc_id.as_deref().unwrap_or(&self.id)
    }
}

/// Searches the collection of the pipeline's (first) Milvus sink with one query.
pub fn search(
    cfg: &PipelineConfig,
    query: &str,
    options: &SearchOptions,
    runtime: &Handle,
) -> Result<Vec<Hit>, PhasedSearchError> {
    let mut searcher = Searcher::open(cfg, options.rerank.as_ref(), runtime)?;
    Ok(searcher
        .search(&[query], options)?
        .pop()
        .unwrap_or_default())
}

/// The encoders, the connection and the loaded collection, kept for many queries.
pub struct Searcher {
    encoders: QueryEncoders,
    reranker: Option<Reranker>,
    connection: std::sync::Arc<MilvusConnection>,
    /// What the collection holds of documents (for `eval`'s check of its judgements).
    documents: Box<dyn crate::sink::DocumentStore>,
    runtime: Handle,
    collection: String,
    output: Vec<String>,
    /// The metadata columns among `output`.
    metadata: Vec<String>,
    /// The metadata columns the collection holds as ARRAY: the Milvus Rust SDK
    /// cannot decode them in Milvus 2.3's search results.
    array_metadata: Vec<String>,
    index: IndexConfig,
}

/// Which request a query goes into: what vectors it has for the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Request {
    Hybrid,
    Dense,
    Sparse,
}

impl Searcher {
    /// Loads the query encoders (and the cross-encoder when `rerank` is
    /// given), connects, and loads the collection.
    pub fn open(
        cfg: &PipelineConfig,
        rerank: Option<&RerankOptions>,
        runtime: &Handle,
    ) -> Result<Self, PhasedSearchError> {
        let sink = milvus_sink(cfg).map_err(Phased::Setup)?;
        let encoders = QueryEncoders::new(cfg, sink);
        let reranker = rerank.map(|r| rerank::load(cfg, r)).transpose()?;
        let connection =
            std::sync::Arc::new(MilvusConnection::open(sink, runtime).map_err(Phased::setup)?);
        let documents = documents_of(connection.clone(), runtime.clone(), sink);
        let mut searcher = Searcher {
            encoders,
            reranker,
            connection,
            documents,
            runtime: runtime.clone(),
            collection: sink.collection.clone(),
            output: Vec::new(),
            metadata: Vec::new(),
            array_metadata: Vec::new(),
            index: sink.index.clone(),
        };
        let exists = runtime
            .block_on(searcher.connection.exists(&searcher.collection))
            .map_err(|e| Phased::Run(searcher.failed(&e)))?;
        if !exists {
            return Err(Phased::Setup(SearchError::NoCollection {
                collection: searcher.collection.clone(),
                uri: sink.uri.clone(),
            }));
        }
        searcher.load().map_err(Phased::Run)?;
        searcher.choose_output(cfg).map_err(Phased::Run)?;
        Ok(searcher)
    }

    /// The fields each hit carries: `id`, `text`, `doc_id` when the pipeline
    /// chunks, and the source's metadata columns the collection has (one
    /// made before a column was added has not).
    fn choose_output(&mut self, cfg: &PipelineConfig) -> Result<(), SearchError> {
        let schema = self
            .runtime
            .block_on(self.connection.schema(&self.collection))
            .map_err(|e| self.failed(&e))?;
        let kind = |name: &str| {
            schema
                .get_fields()
                .iter()
                .find(|f| f.get_name() == name)
                .map(|f| f.get_data_type())
        };
        let chunks = cfg
            .stage_configs()
            .any(|s| matches!(s, StageConfig::Chunk(_)));
        self.output = [columns::ID, columns::DOC_ID, columns::TEXT]
            .into_iter()
            .filter(|f| chunks || *f != columns::DOC_ID)
            .map(str::to_string)
            .collect();
        for column in cfg.source.component().fields().metadata_columns() {
            match kind(column) {
                None => continue,
                Some(DataType::Array) => self.array_metadata.push(column.to_string()),
                Some(_) => {}
            }
            self.metadata.push(column.to_string());
            self.output.push(column.to_string());
        }
        Ok(())
    }

    /// Leaves the ARRAY metadata out of the hits from now on, saying so once.
    fn without_array_metadata(&mut self) {
        tracing::warn!(
            fields = self.array_metadata.join(", "),
            "this server's search results for ARRAY fields cannot be decoded by the Milvus Rust SDK \
             (Milvus 2.3); the hits leave them out"
        );
        let arrays = std::mem::take(&mut self.array_metadata);
        self.output.retain(|f| !arrays.contains(f));
        self.metadata.retain(|f| !arrays.contains(f));
    }

    /// Which of `documents` the collection does not hold.
    pub fn missing_documents(&self, documents: &[&str]) -> Result<Vec<String>, SearchError> {
        let present = self
            .documents
            .present(documents)
            .map_err(|e| SearchError::Held {
                collection: self.collection.clone(),
                source: Box::new(e),
            })?;
        Ok(documents
            .iter()
            .filter(|d| !present.contains(**d))
            .map(|d| d.to_string())
            .collect())
    }

    /// The modes this pipeline's fields allow: dense, sparse, then hybrid.
    pub fn modes(&self) -> Vec<SearchMode> {
        self.encoders.modes()
    }

    /// The hits of each query, best first, at most `options.limit` each.
    pub fn search(
        &mut self,
        queries: &[&str],
        options: &SearchOptions,
    ) -> Result<Vec<Vec<Hit>>, PhasedSearchError> {
        let mode = self
            .encoders
            .pick_mode(options.mode)
            .map_err(Phased::Setup)?;
        self.encoders.prepare(mode).map_err(Phased::Setup)?;
        let fetch = options
            .rerank
            .as_ref()
            .map_or(options.limit, |r| r.top.max(options.limit));
        let vectors = self.encoders.encode(queries, mode).map_err(Phased::Run)?;
        let mut hits = vec![Vec::new(); queries.len()];
        let mut requests: BTreeMap<Request, Vec<(usize, QueryVectors)>> = BTreeMap::new();
        for (i, v) in vectors.into_iter().enumerate() {
            let request = match (&v.dense, &v.sparse) {
                (Some(_), Some(_)) if mode == SearchMode::Hybrid => Request::Hybrid,
                (Some(_), _) => Request::Dense,
                (None, Some(_)) => Request::Sparse,
                (None, None) => {
                    tracing::warn!(
                        query = queries[i],
                        "no query term is in the BM25 vocabulary; nothing to search"
                    );
                    continue;
                }
            };
            requests.entry(request).or_default().push((i, v));
        }
        for (request, members) in requests {
            let (indices, vectors): (Vec<usize>, Vec<QueryVectors>) = members.into_iter().unzip();
            let response = match self.query(request, vectors.clone(), options, fetch as i64) {
                Err(e)
                    if matches!(*e, SdkError::MalformedResponse(_))
                        && !self.array_metadata.is_empty() =>
                {
                    self.without_array_metadata();
                    self.query(request, vectors, options, fetch as i64)
                }
                response => response,
            }
            .map_err(|e| Phased::Run(self.failed(&e)))?;
            for (i, found) in indices
                .into_iter()
                .zip(self.hits(&response).map_err(Phased::Run)?)
            {
                hits[i] = found;
            }
        }
        if let (Some(reranker), Some(rerank)) = (self.reranker.as_mut(), &options.rerank) {
            rerank::rerank_hits(reranker, queries, rerank.top, &mut hits).map_err(Phased::run)?;
        }
        for list in &mut hits {
            list.truncate(options.limit);
        }
        Ok(hits)
    }

    fn failed(&self, e: &dyn std::fmt::Display) -> SearchError {
        SearchError::Search {
            collection: self.collection.clone(),
            message: e.to_string(),
        }
    }

    /// Loads the collection (a restarted server comes back with it released).
    fn load(&self) -> Result<(), SearchError> {
        self.runtime
            .block_on(self.connection.load(&self.collection))
            .map_err(|e| self.failed(&e))
    }

    /// One search request for several queries (hybrid when both vectors are given).
    fn query(
        &self,
        request: Request,
        vectors: Vec<QueryVectors>,
        options: &SearchOptions,
        limit: i64,
    ) -> Result<SearchResponse, Box<SdkError>> {
        let (dense, sparse): (Vec<Option<Vec<f32>>>, Vec<Option<Sparse>>) =
            vectors.into_iter().map(|v| (v.dense, v.sparse)).unzip();
        let dense = || {
            (
                self.encoders.dense_field().to_string(),
                SearchVectors::Float(dense.iter().flatten().cloned().collect()),
                self.search_params(VectorKind::Dense, limit),
            )
        };
        let sparse = || {
            (
                self.encoders.sparse_field().to_string(),
                sparse_vectors(sparse.into_iter().flatten().collect()),
                self.search_params(VectorKind::Sparse, limit),
            )
        };
        let client = &self.connection.client;
        if request == Request::Hybrid {
            let sub = |(field, vectors, params): (String, SearchVectors, _)| {
                let mut request = SubSearchRequest::builder()
                    .vector_field(field)
                    .vectors(vectors)
                    .extra_params(params)
                    .limit(limit);
                if let Some(filter) = &options.filter {
                    request = request.filter(filter.clone());
                }
                request.build().map_err(Box::new)
            };
            let request = HybridSearchRequest::builder()
                .collection_name(&self.collection)
                .sub_requests(vec![sub(dense())?, sub(sparse())?])
                .output_fields(self.output.clone())
                .limit(limit);
            let request = match &options.ranker {
                Ranker::Rrf { k } => request.rerank(RRFRerank::new().k(*k)),
                Ranker::Weighted { weights } => {
                    request.rerank(WeightedRerank::new().weights(weights.clone()))
                }
            };
            let request = request.build().map_err(Box::new)?;
            Ok(self.runtime.block_on(client.hybrid_search(request))?)
        } else {
            let (field, vectors, params) = if request == Request::Dense {
                dense()
            } else {
                sparse()
            };
            let mut request = SearchRequest::builder()
                .collection_name(&self.collection)
                .vector_field(field)
                .vectors(vectors)
                .extra_params(params)
                .output_fields(self.output.clone())
                .limit(limit);
            if let Some(filter) = &options.filter {
                request = request.filter(filter.clone());
            }
            let request = request.build().map_err(Box::new)?;
            Ok(self.runtime.block_on(client.search(request))?)
        }
    }

    /// The index's search parameters (HNSW `ef`, IVF `nprobe`) for `limit` hits.
    fn search_params(&self, vectors: VectorKind, limit: i64) -> HashMap<String, String> {
        self.index
            .spec(vectors)
            .search_params(vectors, limit.max(0) as usize)
            .into_iter()
            .map(|(key, value)| (key, crate::sink::milvus::param_text(&value)))
            .collect()
    }

    /// The response's rows as hits, one list per query, best first.
    fn hits(&self, response: &SearchResponse) -> Result<Vec<Vec<Hit>>, SearchError> {
        let mut lists = Vec::new();
        for result in response.results() {
            let result = named_result(result);
            let scores = result.get_scores();
            let mut hits = Vec::new();
            for (i, row) in result.rows().map_err(|e| self.failed(&e))?.enumerate() {
                let entity = row.to_entity_row().map_err(|e| self.failed(&e))?;
                let text_of = |name: &str| {
                    entity
                        .get(name)
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                hits.push(Hit {
                    rank: i + 1,
                    id: text_of(columns::ID).unwrap_or_default(),
                    doc_id: text_of(columns::DOC_ID),
                    score: scores.get(i).copied().unwrap_or_default(),
                    rerank_score: None,
                    text: text_of(columns::TEXT).unwrap_or_default(),
                    metadata: self
                        .metadata
                        .iter()
                        .filter_map(|name| Some((name.clone(), entity.get(name)?.clone())))
                        .collect(),
                });
            }
            lists.push(hits);
        }
        Ok(lists)
    }
}

/// One query's result with its key and score fields named: Milvus 2.3
/// leaves both names empty, and the SDK refuses rows without them; the
/// collection's primary key is always `id`.
fn named_result(result: &SingleResult) -> std::borrow::Cow<'_, SingleResult> {
    if !result.get_primary_field_name().is_empty() && !result.get_score_field_name().is_empty() {
        return std::borrow::Cow::Borrowed(result);
    }
    let mut named = result.clone();
    if named.get_primary_field_name().is_empty() {
        named.set_primary_field_name(columns::ID);
    }
    if named.get_score_field_name().is_empty() {
        named.set_score_field_name("score");
    }
    std::borrow::Cow::Owned(named)
}

/// The pipeline's first Milvus sink.
fn milvus_sink(cfg: &PipelineConfig) -> Result<&MilvusSinkConfig, SearchError> {
    cfg.sinks
        .iter()
        .find_map(|s| match &s.config {
            SinkConfig::Milvus(m) => Some(m),
            _ => None,
        })
        .ok_or_else(|| {
            SearchError::Usage(format!(
                "pipeline `{}` has no milvus sink to search",
                cfg.name
            ))
        })
}
