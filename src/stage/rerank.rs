//! `rerank`: score each row against a query with a cross-encoder, add the
//! score column, and drop rows under `min_score`.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BooleanArray, Float32Array, Float32Builder, ListBuilder, StringBuilder,
    StructBuilder, UInt32Builder,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;

use super::{Stage, StageError, append_column, arrow_error, text_column};
use crate::batch::Position;
use crate::config::{RerankProvider, RerankStageConfig};
use crate::model::http::{HttpClient, HttpOptions, rerank_scores};
use crate::model::{CrossEncoder, ModelError, SessionOptions, resolve_model};

/// (query, passage) → score, wherever the model runs.
pub enum Reranker {
    Local(Box<CrossEncoder>),
    Remote {
        client: HttpClient,
        model: String,
        sigmoid: bool,
    },
}

impl Reranker {
    pub fn from_config(cfg: &RerankStageConfig) -> Result<Self, ModelError> {
        match cfg.provider {
            RerankProvider::Local => {
                let options = SessionOptions {
                    batch_size: cfg.batch_size.get(),
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
    pub fn score_pairs(&mut self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, ModelError> {
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

pub struct RerankStage {
    encoder: Reranker,
    cfg: RerankStageConfig,
}

impl RerankStage {
    pub fn new(cfg: &RerankStageConfig) -> Result<Self, ModelError> {
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
