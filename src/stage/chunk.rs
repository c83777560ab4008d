//! `chunk`: split each text into overlapping chunks with `text-splitter`,
//! by characters or by tokens, with deterministic ids `{doc_id}#{index}`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder, UInt32Builder};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use text_splitter::{ChunkConfig, ChunkSizer, TextSplitter};

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    Stage, StageComponent, StageContext, StageError, StageShape, arrow_error, text_column,
};
use crate::batch::{Position, columns};
use crate::config::{Invalid, PositiveInt, Surroundings};
use crate::dead_letter::DeadLetters;

/// `{ type: chunk, max_chars | max_tokens + tokenizer, overlap }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChunkStageConfig {
    #[serde(default)]
    pub max_chars: Option<PositiveInt>,
    #[serde(default)]
    pub max_tokens: Option<PositiveInt>,
    /// With `max_tokens`: a `tokenizer.json`, or a model (as in `dense`) whose
    /// tokenizer to use; default: the model of a later `dense` stage.
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub overlap: usize,
}

impl StageComponent for ChunkStageConfig {
    fn kind() -> &'static str {
        "chunk"
    }

    fn validate(&self, around: &Surroundings) -> Result<(), Invalid> {
        let size = match (self.max_chars, self.max_tokens) {
            (Some(_), Some(_)) => {
                return Err(Invalid::at(
                    "",
                    "set either `max_chars` or `max_tokens`, not both",
                ));
            }
            (None, None) => return Err(Invalid::at("", "set `max_chars` or `max_tokens`")),
            (Some(n), None) => n.get(),
            (None, Some(_)) if self.tokenizer.is_none() && around.later_model.is_none() => {
                return Err(Invalid::at(
                    "",
                    "`max_tokens` needs `tokenizer:` (a tokenizer.json or a model) or a later dense stage",
                ));
            }
            (None, Some(n)) => n.get(),
        };
        if self.overlap >= size {
            return Err(Invalid::at(
                "overlap",
                format!("must be smaller than the chunk size ({size})"),
            ));
        }
        Ok(())
    }

    fn reshapes_rows(&self) -> bool {
        true
    }

    fn shape(&self) -> Result<StageShape, StageError> {
        let tokenizer = self.tokenizer.as_deref();
        let mut shape = StageShape::settings(serde_json::json!({
            "max_chars": self.max_chars,
            "max_tokens": self.max_tokens,
            "tokenizer": tokenizer.and_then(crate::model::model_name),
            "overlap": self.overlap,
        }));
        // A tokenizer given by path stands for its file's content.
        if let Some(source) = tokenizer.filter(|t| crate::model::model_name(t).is_none()) {
            shape.files = vec![tokenizer_file(source)?];
        }
        Ok(shape)
    }

    fn build(&self, ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
        chunk_stage(self, ctx)
    }
}

pub(crate) struct ChunkStage<S: ChunkSizer> {
    splitter: TextSplitter<S>,
    dead_letters: DeadLetters,
}

/// A `tokenizer.json` file, or the tokenizer of the model `source` names.
fn tokenizer_file(source: &str) -> Result<PathBuf, StageError> {
    Ok(if Path::new(source).is_file() {
        PathBuf::from(source)
    } else {
        crate::model::resolve_model(source)?.tokenizer
    })
}

fn chunk_stage(cfg: &ChunkStageConfig, ctx: &StageContext) -> Result<Box<dyn Stage>, StageError> {
    let bad = |e: text_splitter::ChunkConfigError| StageError::ChunkConfig(e.to_string());
    let dead_letters = ctx.dead_letters.clone();
    let tokenizer_source = cfg.tokenizer.as_ref().or(ctx.tokenizer_model.as_ref());
    match (cfg.max_chars, cfg.max_tokens, tokenizer_source) {
        (_, Some(max_tokens), Some(source)) => {
            let path = tokenizer_file(source)?;
            let mut tokenizer = tokenizers::Tokenizer::from_file(&path).map_err(|source| {
                StageError::Tokenizer {
                    path: path.clone(),
                    source,
                }
            })?;
            // Count real tokens: a tokenizer.json may pad or truncate to a fixed length.
            tokenizer.with_padding(None);
            tokenizer
                .with_truncation(None)
                .map_err(|source| StageError::Tokenizer {
                    path: path.clone(),
                    source,
                })?;
            let config = ChunkConfig::new(max_tokens.get())
                .with_sizer(tokenizer)
                .with_overlap(cfg.overlap)
                .map_err(bad)?;
            Ok(Box::new(ChunkStage::new(config, dead_letters)))
        }
        (Some(max_chars), _, _) => {
            let config = ChunkConfig::new(max_chars.get())
                .with_overlap(cfg.overlap)
                .map_err(bad)?;
            Ok(Box::new(ChunkStage::new(config, dead_letters)))
        }
        _ => Err(StageError::ChunkConfig(
            "set `max_chars`, or `max_tokens` with `tokenizer` (or a dense stage)".into(),
        )),
    }
}

impl<S: ChunkSizer> ChunkStage<S> {
    pub(crate) fn new(config: ChunkConfig<S>, dead_letters: DeadLetters) -> Self {
        ChunkStage {
            splitter: TextSplitter::new(config),
            dead_letters,
        }
    }
}

impl<S: ChunkSizer + Send> Stage for ChunkStage<S> {
    fn kind(&self) -> &'static str {
        "chunk"
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        position: &Position,
    ) -> Result<RecordBatch, StageError> {
        let arrow_err = arrow_error(position);
        let texts = text_column(&batch, position)?;
        let ids = batch
            .column_by_name(columns::ID)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| StageError::Column {
                position: position.to_string(),
                column: columns::ID.to_string(),
                expected: "a string column",
            })?;

        let mut source_rows = UInt32Builder::new();
        let mut chunk_ids = StringBuilder::new();
        let mut chunk_texts = StringBuilder::new();
        let mut chunk_indexes = UInt32Builder::new();
        for row in 0..batch.num_rows() {
            let doc_id = ids.value(row);
            let mut count = 0u32;
            for chunk in self.splitter.chunks(texts.value(row)) {
                chunk_ids.append_value(format!("{doc_id}#{count}"));
                chunk_texts.append_value(chunk);
                chunk_indexes.append_value(count);
                source_rows.append_value(row as u32);
                count += 1;
            }
            if count == 0 {
                self.dead_letters.send(
                    format!("{position} (id {doc_id})"),
                    "text has no chunks",
                    texts.value(row).as_bytes(),
                )?;
            }
        }
        let source_rows = source_rows.finish();

        let mut fields = vec![
            Field::new(columns::ID, DataType::Utf8, false),
            Field::new(columns::DOC_ID, DataType::Utf8, false),
            Field::new(columns::CHUNK_INDEX, DataType::UInt32, false),
            Field::new(columns::TEXT, DataType::Utf8, false),
        ];
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(chunk_ids.finish()),
            take(ids, &source_rows, None).map_err(arrow_err)?,
            Arc::new(chunk_indexes.finish()),
            Arc::new(chunk_texts.finish()),
        ];
        // Every other column (metadata) is repeated for each chunk of its row.
        let schema = batch.schema();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            if [
                columns::ID,
                columns::TEXT,
                columns::DOC_ID,
                columns::CHUNK_INDEX,
            ]
            .contains(&field.name().as_str())
            {
                continue;
            }
            fields.push(field.as_ref().clone());
            arrays.push(take(column.as_ref(), &source_rows, None).map_err(arrow_err)?);
        }
        debug_assert!(arrays.iter().all(|a| a.len() == source_rows.len()));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(arrow_err)
    }
}

impl crate::config::RelativePaths for ChunkStageConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        if let Some(tokenizer) = &mut self.tokenizer {
            crate::config::rebase_model(base, tokenizer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn batch(rows: &[(&str, &str, Option<&str>)]) -> RecordBatch {
        let ids: arrow::array::StringArray = rows.iter().map(|r| Some(r.0)).collect();
        let texts: arrow::array::StringArray = rows.iter().map(|r| Some(r.1)).collect();
        let titles: arrow::array::StringArray = rows.iter().map(|r| r.2).collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("text", DataType::Utf8, false),
                Field::new("title", DataType::Utf8, true),
            ])),
            vec![Arc::new(ids), Arc::new(texts), Arc::new(titles)],
        )
        .unwrap()
    }

    fn position() -> Position {
        Position::Jsonl {
            file: Arc::new(PathBuf::from("x.jsonl")),
            line: 1,
        }
    }

    #[test]
    fn long_texts_split_with_ids_indexes_and_repeated_metadata() {
        let stage_cfg = ChunkConfig::new(20).with_overlap(5).unwrap();
        let mut stage = ChunkStage::new(stage_cfg, DeadLetters::to_log());
        let long = "The first sentence is here. The second one follows. And a third.";
        let out = stage
            .process(
                batch(&[("a", long, Some("A")), ("b", "short", None)]),
                &position(),
            )
            .unwrap();
        let ids = out.column_by_name("id").unwrap().as_string::<i32>();
        let doc_ids = out.column_by_name("doc_id").unwrap().as_string::<i32>();
        let texts = out.column_by_name("text").unwrap().as_string::<i32>();
        let titles = out.column_by_name("title").unwrap().as_string::<i32>();
        let n = out.num_rows();
        assert!(n >= 4, "the long text gives several chunks, got {n}");
        assert_eq!(ids.value(0), "a#0");
        assert_eq!(ids.value(n - 2), format!("a#{}", n - 2));
        assert_eq!(ids.value(n - 1), "b#0");
        assert_eq!(doc_ids.value(n - 1), "b");
        for row in 0..n - 1 {
            assert!(texts.value(row).chars().count() <= 20);
            assert_eq!(titles.value(row), "A");
        }
        assert!(titles.is_null(n - 1));
    }

    #[test]
    fn the_same_input_gives_the_same_chunks() {
        let mut stage = ChunkStage::new(ChunkConfig::new(10), DeadLetters::to_log());
        let input = batch(&[("x", "alpha beta gamma delta epsilon", None)]);
        let a = stage.process(input.clone(), &position()).unwrap();
        let b = stage.process(input, &position()).unwrap();
        assert_eq!(a, b);
    }
}
