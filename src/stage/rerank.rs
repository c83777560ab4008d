//! `rerank`: score each row against a query with a cross-encoder, add the
//! score column, and drop rows under `min_score`.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float32Builder, ListBuilder, StringBuilder,
    StructBuilder, UInt32Builder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field};
use std::path::PathBuf;

use arrow::record_batch::RecordBatch;
use serde::Deserialize;

use super::{
    Stage, StageComponent, StageContext, StageError, StageShape, append_column, arrow_error,
    text_column,
};
use crate::batch::Position;
use crate::config::{Invalid, PositiveInt, Surroundings};
use crate::model::http::{HttpClient, HttpOptions, rerank_scores};
use crate::model::{CrossEncoder, ModelError, SessionOptions, resolve_model};

/// `{ type: rerank, model: DIR, query: "text" | query_field: q, min_score: S }`:
/// scores each row against a query with a cross-encoder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RerankStageConfig {
    /// A sequence-classification model: a directory with `model.onnx` and `tokenizer.json`,
    /// or a Hugging Face repo id such as `cross-encoder/ms-marco-MiniLM-L-6-v2`.
    pub model: String,
    /// A fixed query every row is scored against…
    #[serde(default)]
    pub query: Option<String>,
    /// …or the metadata column holding each row's query.
    #[serde(default)]
    pub query_field: Option<String>,
    /// The metadata column holding each record's candidates (a JSON list of
    /// texts): they are reranked against the record's query instead of its text.
    #[serde(default)]
    pub candidates_field: Option<String>,
    /// With `candidates_field`: keep the k best candidates.
    #[serde(default)]
    pub top_k: Option<PositiveInt>,
    /// Rows (or candidates) scoring below this are dropped (e.g. to keep only relevant chunks).
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Squash logits into 0..1.
    #[serde(default)]
    pub sigmoid: bool,
    #[serde(default = "default_score_field")]
    pub field: String,
    #[serde(default = "default_rerank_batch")]
    pub batch_size: PositiveInt,
    /// Padded tokens per inference call, at most (rows × the longest pair).
    #[serde(default = "crate::model::default_batch_tokens")]
    pub batch_tokens: PositiveInt,
    #[serde(default = "default_rerank_max_length")]
    pub max_length: PositiveInt,
    #[serde(default)]
    pub threads: Option<PositiveInt>,
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// `local` (ONNX Runtime) or `http` (a rerank service).
    #[serde(default)]
    pub provider: RerankProvider,
    /// Remote provider: the service's base URL (e.g. `https://api.openai.com/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Remote provider: the API key; keep it in the environment (`${OPENAI_API_KEY}`).
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "crate::model::http::default_timeout_secs")]
    pub timeout_secs: PositiveInt,
    /// Remote provider: retries on 429, 5xx and transport errors.
    #[serde(default = "crate::model::http::default_retries")]
    pub max_retries: usize,
}

fn default_score_field() -> String {
    "score".to_string()
}
fn default_rerank_max_length() -> PositiveInt {
    PositiveInt(512)
}

fn default_rerank_batch() -> PositiveInt {
    PositiveInt(32)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RerankProvider {
    #[default]
    Local,
    /// The common rerank API (TEI `/rerank`, Cohere/Jina-style `{query, documents, top_n}`).
    Http,
}

impl StageComponent for RerankStageConfig {
    fn kind() -> &'static str {
        "rerank"
    }

    fn validate(&self, around: &Surroundings) -> Result<(), Invalid> {
        if self.provider == RerankProvider::Http && self.base_url.is_none() {
            return Err(Invalid::at("", "`provider: http` needs `base_url`"));
        }
        if self
            .candidates_field
            .as_ref()
            .is_some_and(|f| !around.metadata.contains(f))
        {
            return Err(Invalid::at(
                "candidates_field",
                "must be one of source.metadata",
            ));
        }
        match (&self.query, &self.query_field) {
            (Some(_), None) => Ok(()),
            (None, Some(q)) if around.metadata.contains(q) => Ok(()),
            (None, Some(q)) => Err(Invalid::at(
                "query_field",
                format!("`{q}` must be one of source.metadata"),
            )),
            _ => Err(Invalid::at("", "set either `query` or `query_field`")),
        }
    }

    fn output_field(&self) -> Option<&str> {
        Some(&self.field)
    }

    fn reshapes_rows(&self) -> bool {
        // `min_score` drops rows.
        self.min_score.is_some()
    }

    fn shape(&self) -> Result<StageShape, StageError> {
        let local = self.provider == RerankProvider::Local;
        let settings = serde_json::json!({
            "model": if local { crate::model::model_name(&self.model) } else { Some(self.model.as_str()) },
            "query": self.query,
            "query_field": self.query_field,
            "candidates_field": self.candidates_field,
            "top_k": self.top_k,
            "min_score": self.min_score,
            "sigmoid": self.sigmoid,
            "field": self.field,
            "max_length": self.max_length,
            "provider": self.provider,
            "base_url": self.base_url,
        });
        StageShape::with_model(settings, local.then_some(self.model.as_str()))
    }

    fn build(&self, _ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
        Ok(Box::new(RerankStage::new(self)?))
    }
}

/// (query, passage) → score, wherever the model runs.
pub(crate) enum Reranker {
    Local(Box<CrossEncoder>),
    Remote {
        client: HttpClient,
        model: String,
        sigmoid: bool,
    },
}

impl Reranker {
    pub(crate) fn from_config(cfg: &RerankStageConfig) -> Result<Self, ModelError> {
        match cfg.provider {
            RerankProvider::Local => {
                let options = SessionOptions {
                    batch_size: cfg.batch_size.get(),
                    batch_tokens: cfg.batch_tokens.get(),
                    max_length: cfg.max_length.get(),
                    threads: crate::model::threads_or_cores(cfg.threads),
                    onnxruntime: cfg.onnxruntime.clone(),
                };
                Ok(Reranker::Local(Box::new(CrossEncoder::load(
                    &resolve_model(&cfg.model)?,
                    &options,
                    cfg.sigmoid,
                )?)))
            }
            RerankProvider::Http => Ok(Reranker::Remote {
                client: HttpClient::new(HttpOptions::new(
                    &cfg.base_url,
                    &cfg.api_key,
                    cfg.timeout_secs,
                    cfg.max_retries,
                )),
                model: cfg.model.clone(),
                sigmoid: cfg.sigmoid,
            }),
        }
    }

    /// Scores each pair, in input order.
    pub(crate) fn score_pairs(&mut self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, ModelError> {
        match self {
            Reranker::Local(encoder) => encoder.score_pairs(pairs),
            Reranker::Remote {
                client,
                model,
                sigmoid,
            } => {
                // One request per distinct query, scores put back in pair order.
                let mut scores = vec![0.0; pairs.len()];
                let mut queries: Vec<&str> = pairs.iter().map(|p| p.0).collect();
                queries.sort_unstable();
                queries.dedup();
                for query in queries {
                    let rows: Vec<usize> =
                        (0..pairs.len()).filter(|&i| pairs[i].0 == query).collect();
                    let documents: Vec<&str> = rows.iter().map(|&i| pairs[i].1).collect();
                    for (row, score) in rows
                        .into_iter()
                        .zip(rerank_scores(client, model, query, &documents)?)
                    {
                        scores[row] = if *sigmoid {
                            1.0 / (1.0 + (-score).exp())
                        } else {
                            score
                        };
                    }
                }
                Ok(scores)
            }
        }
    }
}

pub(crate) struct RerankStage {
    encoder: Reranker,
    cfg: RerankStageConfig,
}

impl RerankStage {
    pub(crate) fn new(cfg: &RerankStageConfig) -> Result<Self, ModelError> {
        Ok(RerankStage {
            encoder: Reranker::from_config(cfg)?,
            cfg: cfg.clone(),
        })
    }
}

impl Stage for RerankStage {
    fn kind(&self) -> &'static str {
        "rerank"
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let texts = text_column(&batch, position)?;
        let queries = match &self.cfg.query_field {
            Some(name) => Some(
                batch
                    .column_by_name(name)
                    .and_then(|c| c.as_string_opt::<i32>())
                    .ok_or_else(|| StageError::Column {
                        position: position.to_string(),
                        column: name.clone(),
                        expected: "a string column",
                    })?,
            ),
            None => None,
        };
        let fixed = self.cfg.query.clone().unwrap_or_default();
        if let Some(name) = self.cfg.candidates_field.clone() {
            return self.rerank_candidates(&batch, &name, queries, &fixed, position);
        }
        let pairs: Vec<(&str, &str)> = (0..batch.num_rows())
            .map(|row| {
                let query = queries.map_or(fixed.as_str(), |q| q.value(row));
                (query, texts.value(row))
            })
            .collect();
        let scores = self.encoder.score_pairs(&pairs)?;
        let keep: Option<BooleanArray> = self
            .cfg
            .min_score
            .map(|min| scores.iter().map(|s| Some(*s >= min)).collect());
        let scored = append_column(
            &batch,
            &self.cfg.field,
            Arc::new(Float32Array::from(scores)),
            position,
        )?;
        match keep {
            Some(keep) => filter_record_batch(&scored, &keep).map_err(arrow_error(position)),
            None => Ok(scored),
        }
    }
}

impl RerankStage {
    /// Each record's candidates, scored against its query and sorted best
    /// first: a `List<Struct<index, score, text>>` column, like pymilvus' rerank results.
    fn rerank_candidates(
        &mut self,
        batch: &RecordBatch,
        name: &str,
        queries: Option<&arrow::array::StringArray>,
        fixed: &str,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let column = batch
            .column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| StageError::Column {
                position: position.to_string(),
                column: name.to_string(),
                expected: "a string column holding a JSON list of texts",
            })?;
        let fields = arrow::datatypes::Fields::from(vec![
            Field::new("index", DataType::UInt32, false),
            Field::new("score", DataType::Float32, false),
            Field::new("text", DataType::Utf8, false),
        ]);
        let mut results = ListBuilder::new(StructBuilder::from_fields(fields.clone(), 0))
            .with_field(Field::new("item", DataType::Struct(fields), false));
        for row in 0..batch.num_rows() {
            let candidates: Vec<String> = if column.is_null(row) {
                Vec::new()
            } else {
                serde_json::from_str(column.value(row)).map_err(|e| StageError::Column {
                    position: format!("{} ({e})", position.record(row)),
                    column: name.to_string(),
                    expected: "a JSON list of texts",
                })?
            };
            let query = queries.map_or(fixed, |q| q.value(row));
            let pairs: Vec<(&str, &str)> = candidates.iter().map(|c| (query, c.as_str())).collect();
            let scores = self.encoder.score_pairs(&pairs)?;
            let mut ranked: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.retain(|(_, s)| self.cfg.min_score.is_none_or(|min| *s >= min));
            ranked.truncate(self.cfg.top_k.map_or(usize::MAX, |k| k.get()));
            let entries = results.values();
            for (index, score) in ranked {
                entries
                    .field_builder::<UInt32Builder>(0)
                    .expect("index")
                    .append_value(index as u32);
                entries
                    .field_builder::<Float32Builder>(1)
                    .expect("score")
                    .append_value(score);
                entries
                    .field_builder::<StringBuilder>(2)
                    .expect("text")
                    .append_value(&candidates[index]);
                entries.append(true);
            }
            results.append(true);
        }
        append_column(batch, &self.cfg.field, Arc::new(results.finish()), position)
    }
}

impl crate::config::RelativePaths for RerankStageConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        if self.provider == RerankProvider::Local {
            crate::config::rebase_model(base, &mut self.model);
        }
        crate::config::rebase_optional(base, &mut self.onnxruntime);
    }
}
