//! `vecpipe search`: encode a query with the pipeline's own models and run a
//! dense, sparse or hybrid search on its Milvus collection.

use std::collections::BTreeMap;

use milvus::v2::prelude::{
    HybridSearchRequest, LoadCollectionRequest, RRFRerank, SearchRequest, SearchResponse,
    SearchVectors, SubSearchRequest, WeightedRerank,
};
use serde::Serialize;
use tokio::runtime::Handle;

use crate::batch::columns;
use crate::error::Phased;
use crate::model::{CrossEncoder, ModelError, SessionOptions, SpladeEncoder, resolve_model};
use crate::registry::{PipelineConfig, SinkConfig, StageConfig};
use crate::sink::milvus::{Bm25Mode, MilvusConnection, MilvusError, MilvusSinkConfig};
use crate::stage::bm25::{Bm25Encoder, Bm25Error};
use crate::stage::{DenseEncoder, Reranker};

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
}

/// A search error and its phase: loading the encoders or connecting is set-up (exit 2).
pub type PhasedSearchError = Phased<SearchError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Dense,
    Sparse,
    Hybrid,
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
}

/// The hits as a table (rank, scores, id, the text's first 90 characters),
/// or as one JSON object per line.
pub fn format_hits(hits: &[Hit], json: bool) -> String {
    let mut out = String::new();
    if json {
        for hit in hits {
            out.push_str(&serde_json::to_string(hit).expect("hits serialize"));
            out.push('\n');
        }
        return out;
    }
    let reranked = hits.iter().any(|h| h.rerank_score.is_some());
    out.push_str(&if reranked {
        format!(
            "{:>4}  {:>8}  {:>8}  {:<16}  text\n",
            "rank", "rerank", "score", "id"
        )
    } else {
        format!("{:>4}  {:>8}  {:<16}  text\n", "rank", "score", "id")
    });
    for hit in hits {
        let text: String = hit.text.chars().take(90).collect();
        let more = if hit.text.chars().count() > 90 {
            "…"
        } else {
            ""
        };
        out.push_str(&match hit.rerank_score {
            Some(rerank) => format!(
                "{:>4}  {:>8.4}  {:>8.4}  {:<16}  {text}{more}\n",
                hit.rank, rerank, hit.score, hit.id
            ),
            None => format!(
                "{:>4}  {:>8.4}  {:<16}  {text}{more}\n",
                hit.rank, hit.score, hit.id
            ),
        });
    }
    out
}

/// How the pipeline encodes a query for each kind of field.
struct QueryEncoders {
    dense: Option<(String, DenseEncoder)>,
    sparse: Option<(String, SparseQuery)>,
}

enum SparseQuery {
    Client(Bm25Encoder),
    Splade(Box<SpladeEncoder>),
    /// Milvus' BM25 function encodes the raw text.
    Server,
}

fn encoders(cfg: &PipelineConfig, sink: &MilvusSinkConfig) -> Result<QueryEncoders, SearchError> {
    let mut dense = None;
    let mut sparse = None;
    for stage in cfg.stage_configs() {
        match stage {
            StageConfig::Dense(d) if dense.is_none() => {
                dense = Some((d.field.clone(), DenseEncoder::from_config(d)?));
            }
            StageConfig::Bm25(b) if sparse.is_none() && sink.bm25 == Bm25Mode::Client => {
                sparse = Some((b.field.clone(), SparseQuery::Client(b.encoder()?)));
            }
            StageConfig::Splade(s) if sparse.is_none() && sink.bm25 == Bm25Mode::Client => {
                let encoder = s.encoder(1, s.threads.map_or(1, |t| t.get()))?;
                sparse = Some((s.field.clone(), SparseQuery::Splade(Box::new(encoder))));
            }
            _ => {}
        }
    }
    if sink.bm25 == Bm25Mode::Server {
        sparse = Some((sink.sparse_field.clone(), SparseQuery::Server));
    }
    Ok(QueryEncoders { dense, sparse })
}

/// Searches the collection of the pipeline's (first) Milvus sink.
pub fn search(
    cfg: &PipelineConfig,
    query: &str,
    options: &SearchOptions,
    runtime: &Handle,
) -> Result<Vec<Hit>, PhasedSearchError> {
    let sink = milvus_sink(cfg).map_err(Phased::Setup)?;
    let mut encoders = encoders(cfg, sink).map_err(Phased::Setup)?;
    let mode = pick_mode(options.mode, &encoders).map_err(Phased::Setup)?;
    let dense = match mode {
        SearchMode::Sparse => None,
        _ => encoders.dense_vector(query).map_err(Phased::Run)?,
    };
    let sparse = match mode {
        SearchMode::Dense => None,
        _ => encoders.sparse_vector(query).map_err(Phased::Run)?,
    };
    let connection = MilvusConnection::open(sink, runtime).map_err(Phased::setup)?;
    let target = Target {
        connection: &connection,
        runtime,
        collection: &sink.collection,
        output: output_fields(cfg),
    };
    target.load().map_err(Phased::Run)?;
    let limit = options
        .rerank
        .as_ref()
        .map_or(options.limit, |r| r.top.max(options.limit)) as i64;
    let Some(response) = target
        .query(mode, dense, sparse, options, limit)
        .map_err(Phased::Run)?
    else {
        tracing::warn!("no query term is in the BM25 vocabulary; nothing to search");
        return Ok(Vec::new());
    };
    let mut hits = target.hits(&response).map_err(Phased::Run)?;
    if let Some(rerank) = &options.rerank {
        rerank_hits(cfg, query, rerank, &mut hits)?;
    }
    hits.truncate(options.limit);
    Ok(hits)
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

/// The mode asked for, or hybrid when both fields exist; an error when the
/// pipeline does not write the field the mode needs.
fn pick_mode(
    asked: Option<SearchMode>,
    encoders: &QueryEncoders,
) -> Result<SearchMode, SearchError> {
    match (asked, &encoders.dense, &encoders.sparse) {
        (None | Some(SearchMode::Hybrid), Some(_), Some(_)) => Ok(SearchMode::Hybrid),
        (None, Some(_), None) | (Some(SearchMode::Dense), Some(_), _) => Ok(SearchMode::Dense),
        (None, None, Some(_)) | (Some(SearchMode::Sparse), _, Some(_)) => Ok(SearchMode::Sparse),
        (None, None, None) => Err(SearchError::Usage(
            "the pipeline writes no dense or sparse field".into(),
        )),
        (Some(mode), _, _) => Err(SearchError::Usage(format!(
            "--mode {mode:?} needs a {} field, which this pipeline does not write",
            if mode == SearchMode::Dense {
                "dense"
            } else {
                "sparse"
            }
        ))),
    }
}

/// `id`, `text`, and `doc_id` when the pipeline chunks.
fn output_fields(cfg: &PipelineConfig) -> Vec<&'static str> {
    let chunks = cfg
        .stage_configs()
        .any(|s| matches!(s, StageConfig::Chunk(_)));
    [columns::ID, columns::DOC_ID, columns::TEXT]
        .into_iter()
        .filter(|f| chunks || *f != columns::DOC_ID)
        .collect()
}

impl QueryEncoders {
    fn dense_vector(
        &mut self,
        query: &str,
    ) -> Result<Option<(String, SearchVectors)>, SearchError> {
        let Some((field, embedder)) = self.dense.as_mut() else {
            return Ok(None);
        };
        let vector = embedder.embed(&[query])?;
        Ok(Some((field.clone(), SearchVectors::Float(vec![vector]))))
    }

    /// `None` also when no query term is in the vocabulary: nothing to match.
    fn sparse_vector(
        &mut self,
        query: &str,
    ) -> Result<Option<(String, SearchVectors)>, SearchError> {
        let Some((field, encoder)) = self.sparse.as_mut() else {
            return Ok(None);
        };
        let terms = match encoder {
            SparseQuery::Server => {
                return Ok(Some((
                    field.clone(),
                    SearchVectors::EmbeddedText(vec![query.to_string()]),
                )));
            }
            SparseQuery::Client(bm25) => bm25.encode_query(query),
            SparseQuery::Splade(splade) => splade.encode(&[query])?.pop().unwrap_or_default(),
        };
        let vector: BTreeMap<u32, f32> = terms.into_iter().collect();
        if vector.is_empty() {
            return Ok(None);
        }
        Ok(Some((
            field.clone(),
            SearchVectors::SparseFloat(vec![vector]),
        )))
    }
}

/// The collection searched, and how.
struct Target<'a> {
    connection: &'a MilvusConnection,
    runtime: &'a Handle,
    collection: &'a str,
    output: Vec<&'static str>,
}

impl Target<'_> {
    fn failed(&self, e: &dyn std::fmt::Display) -> SearchError {
        SearchError::Search {
            collection: self.collection.to_string(),
            message: e.to_string(),
        }
    }

    /// Loads the collection (a restarted server comes back with it released).
    fn load(&self) -> Result<(), SearchError> {
        let load = LoadCollectionRequest::builder()
            .collection_name(self.collection)
            .build()
            .map_err(|e| self.failed(&e))?;
        self.runtime
            .block_on(self.connection.client.load_collection(load))
            .map_err(|e| self.failed(&e))
    }

    /// One search (hybrid when both vectors are given); `None` without vectors.
    fn query(
        &self,
        mode: SearchMode,
        dense: Option<(String, SearchVectors)>,
        sparse: Option<(String, SearchVectors)>,
        options: &SearchOptions,
        limit: i64,
    ) -> Result<Option<SearchResponse>, SearchError> {
        let client = &self.connection.client;
        let response = match (dense, sparse) {
            (Some(d), Some(s)) if mode == SearchMode::Hybrid => {
                let sub = |(field, vectors): (String, SearchVectors)| {
                    let mut request = SubSearchRequest::builder()
                        .vector_field(field)
                        .vectors(vectors)
                        .limit(limit);
                    if let Some(filter) = &options.filter {
                        request = request.filter(filter.clone());
                    }
                    request.build().map_err(|e| self.failed(&e))
                };
                let request = HybridSearchRequest::builder()
                    .collection_name(self.collection)
                    .sub_requests(vec![sub(d)?, sub(s)?])
                    .output_fields(self.output.clone())
                    .limit(limit);
                let request = match &options.ranker {
                    Ranker::Rrf { k } => request.rerank(RRFRerank::new().k(*k)),
                    Ranker::Weighted { weights } => {
                        request.rerank(WeightedRerank::new().weights(weights.clone()))
                    }
                };
                let request = request.build().map_err(|e| self.failed(&e))?;
                self.runtime.block_on(client.hybrid_search(request))
            }
            (Some((field, vectors)), _) | (None, Some((field, vectors))) => {
                let mut request = SearchRequest::builder()
                    .collection_name(self.collection)
                    .vector_field(field)
                    .vectors(vectors)
                    .output_fields(self.output.clone())
                    .limit(limit);
                if let Some(filter) = &options.filter {
                    request = request.filter(filter.clone());
                }
                let request = request.build().map_err(|e| self.failed(&e))?;
                self.runtime.block_on(client.search(request))
            }
            (None, None) => return Ok(None),
        };
        response.map(Some).map_err(|e| self.failed(&e))
    }

    /// The response's rows as hits, best first.
    fn hits(&self, response: &SearchResponse) -> Result<Vec<Hit>, SearchError> {
        let mut hits = Vec::new();
        for result in response.results() {
            let scores = result.get_scores();
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
                });
            }
        }
        Ok(hits)
    }
}

/// Scores the hits with a cross-encoder and sorts them by that score.
fn rerank_hits(
    cfg: &PipelineConfig,
    query: &str,
    rerank: &RerankOptions,
    hits: &mut Vec<Hit>,
) -> Result<(), PhasedSearchError> {
    let stage = cfg.stage_configs().find_map(|s| match s {
        StageConfig::Rerank(r) => Some(r),
        _ => None,
    });
    let mut reranker = match (&rerank.model, stage) {
        (Some(model), _) => {
            let options = SessionOptions {
                batch_size: 16,
                max_length: stage.map_or(512, |s| s.max_length.get()),
                threads: crate::model::threads_or_cores(None),
                onnxruntime: stage.and_then(|s| s.onnxruntime.clone()),
            };
            let sigmoid = stage.is_some_and(|s| s.sigmoid);
            let files = resolve_model(model).map_err(Phased::setup)?;
            Reranker::Local(Box::new(
                CrossEncoder::load(&files, &options, sigmoid).map_err(Phased::setup)?,
            ))
        }
        (None, Some(stage)) => Reranker::from_config(stage).map_err(Phased::setup)?,
        (None, None) => {
            return Err(Phased::Setup(SearchError::Usage(
                "--rerank needs --rerank-model or a rerank stage in the pipeline".into(),
            )));
        }
    };
    hits.truncate(rerank.top);
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    let pairs: Vec<(&str, &str)> = texts.iter().map(|t| (query, *t)).collect();
    let scores = reranker.score_pairs(&pairs).map_err(Phased::run)?;
    for (hit, score) in hits.iter_mut().zip(scores) {
        hit.rerank_score = Some(score);
    }
    hits.sort_by(|a, b| {
        b.rerank_score
            .unwrap_or_default()
            .total_cmp(&a.rerank_score.unwrap_or_default())
    });
    for (i, hit) in hits.iter_mut().enumerate() {
        hit.rank = i + 1;
    }
    Ok(())
}
