//! Text → vector: tokenise (truncate at `max_length`), sort by length so each
//! batch pads little, run the ONNX session, pool, normalise — output in the
//! input order.

use std::borrow::Cow;
use std::path::Path;

use ndarray::{Array2, Axis, Ix3};
use ort::environment::Environment;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, ValueType};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::{ModelError, ModelFiles, Pooling, ensure_onnxruntime, pool};

#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    pub batch_size: usize,
    pub max_length: usize,
    pub threads: usize,
    /// `None`: the model's sentence-transformers config, else mean.
    pub pooling: Option<Pooling>,
    pub normalize: bool,
    /// Path to libonnxruntime when not found elsewhere.
    pub onnxruntime: Option<std::path::PathBuf>,
}

pub struct TextEmbedder {
    tokenizer: Tokenizer,
    session: Session,
    output: String,
    takes_type_ids: bool,
    pad_id: i64,
    pooling: Pooling,
    normalize: bool,
    batch_size: usize,
    dim: usize,
}

/// A fn returning `ort::Result`, because the builder's own error type is not Send.
fn open_session(environment: &Environment, path: &Path, threads: usize) -> ort::Result<Session> {
    let mut builder = Session::builder(environment)?.with_intra_threads(threads)?;
    builder.commit_from_file(path)
}

impl TextEmbedder {
    pub fn load(files: &ModelFiles, options: &EmbedderOptions) -> Result<Self, ModelError> {
        let environment = ensure_onnxruntime(options.onnxruntime.as_deref())?;
        let tokenizer_error = |message: String| ModelError::Tokenizer {
            path: files.tokenizer.clone(),
            message,
        };
        let mut tokenizer =
            Tokenizer::from_file(&files.tokenizer).map_err(|e| tokenizer_error(e.to_string()))?;
        let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id) as i64;
        // Padding is done per batch below (to the longest in the batch).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: options.max_length,
                ..Default::default()
            }))
            .map_err(|e| tokenizer_error(e.to_string()))?;

        let session = open_session(environment, &files.onnx, options.threads).map_err(|e| {
            ModelError::Session {
                path: files.onnx.clone(),
                message: e.to_string(),
            }
        })?;
        let takes_type_ids = session
            .inputs()
            .iter()
            .any(|i| i.name() == "token_type_ids");
        let Some(output) = session.outputs().first() else {
            return Err(ModelError::Session {
                path: files.onnx.clone(),
                message: "the model has no outputs".into(),
            });
        };
        let declared_dim = match output.dtype() {
            ValueType::Tensor { shape, .. } if shape.len() == 3 && shape[2] > 0 => {
                Some(shape[2] as usize)
            }
            _ => None,
        };
        let mut embedder = TextEmbedder {
            output: output.name().to_string(),
            tokenizer,
            session,
            takes_type_ids,
            pad_id,
            pooling: options.pooling.or(files.pooling).unwrap_or(Pooling::Mean),
            normalize: options.normalize,
            batch_size: options.batch_size.max(1),
            dim: declared_dim.unwrap_or(0),
        };
        if embedder.dim == 0 {
            // The graph does not declare it: ask the model.
            embedder.dim = embedder.embed(&["dimension probe"])?.len();
        }
        Ok(embedder)
    }

    /// The length of every vector this model produces.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds `texts`; returns `texts.len() × dim` values, row-major, in input order.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<f32>, ModelError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for group in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in group.iter().zip(self.run(&batch)?) {
                vectors[i] = vector;
            }
        }
        Ok(vectors.concat())
    }

    fn run(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, ModelError> {
        let rows = batch.len();
        let width = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Array2::<i64>::from_elem((rows, width), self.pad_id);
        let mut mask = Array2::<i64>::zeros((rows, width));
        let mut types = Array2::<i64>::zeros((rows, width));
        for (row, encoding) in batch.iter().enumerate() {
            for (col, ((&id, &m), &t)) in encoding
                .get_ids()
                .iter()
                .zip(encoding.get_attention_mask())
                .zip(encoding.get_type_ids())
                .enumerate()
            {
                ids[[row, col]] = id as i64;
                mask[[row, col]] = m as i64;
                types[[row, col]] = t as i64;
            }
        }
        crate::metrics::embedding_tokens(batch.iter().map(|e| e.len()).sum());
        let failed = |e: ort::Error| ModelError::Inference(e.to_string());
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array(ids).map_err(failed)?.into(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_array(mask.clone()).map_err(failed)?.into(),
            ),
        ];
        if self.takes_type_ids {
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array(types).map_err(failed)?.into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(failed)?;
        let hidden = outputs[self.output.as_str()]
            .try_extract_array::<f32>()
            .map_err(failed)?
            .into_dimensionality::<Ix3>()
            .map_err(|e| ModelError::Inference(format!("output `{}`: {e}", self.output)))?;
        Ok(hidden
            .axis_iter(Axis(0))
            .zip(mask.rows())
            .map(|(tokens, mask)| {
                pool(
                    tokens,
                    mask.as_slice().expect("standard layout"),
                    self.pooling,
                    self.normalize,
                )
            })
            .collect())
    }
}
