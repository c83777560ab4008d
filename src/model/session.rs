//! A tokenizer and an ONNX session run together: tokenise (truncate at
//! `max_length`), sort by length so each batch pads little, run the model,
//! and hand each batch's first output to the caller — results in input order.
//! Dense embedding and SPLADE share it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayViewD};
use ort::environment::Environment;
use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, ValueType};
use tokenizers::{EncodeInput, Encoding, Tokenizer, TruncationParams};

use super::{ModelError, ModelFiles, ensure_onnxruntime};

/// ONNX Runtime intra-op threads: the configured number, else the machine's cores.
pub(crate) fn threads_or_cores(configured: Option<crate::config::PositiveInt>) -> usize {
    configured
        .map(|t| t.get())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Each row of a `[batch, n]` output through `f`; `what` names the output in errors.
pub(super) fn map_rows<T>(
    output: ArrayViewD<'_, f32>,
    what: &str,
    f: impl FnMut(ndarray::ArrayView1<'_, f32>) -> T,
) -> Result<Vec<T>, ModelError> {
    let rows = output
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|source| ModelError::OutputShape {
            expected: format!("[batch, {what}]"),
            source,
        })?;
    Ok(rows.axis_iter(ndarray::Axis(0)).map(f).collect())
}

/// Settings for loading a transformer.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Texts per inference call, at most.
    pub batch_size: usize,
    /// Padded tokens (rows × longest) per inference call, at most; a text
    /// longer than this runs alone. Small calls keep the attention
    /// buffers in cache: see [`crate::model::default_batch_tokens`].
    pub batch_tokens: usize,
    pub max_length: usize,
    pub threads: usize,
    /// Path to libonnxruntime when not found elsewhere.
    pub onnxruntime: Option<PathBuf>,
}

pub(super) struct TransformerSession {
    tokenizer: Tokenizer,
    session: Session,
    output: String,
    /// The declared shape of the first output (`-1` where dynamic).
    pub output_shape: Vec<i64>,
    takes_type_ids: bool,
    pad_id: i64,
    batch_size: usize,
    batch_tokens: usize,
}

/// Graph rewrites ONNX Runtime would otherwise apply at load time that make
/// these models slower on CPU. `SkipLayerNormFusion` turns a residual `Add`
/// and its `LayerNormalization` into one `SkipLayerNormalization`, whose CPU
/// kernel took 14 % of the int8 model's time against 2 % for the two nodes
/// it replaces (ONNX Runtime 1.31's profiler, 640 texts of ~50 tokens); the
/// fp32 graph is not fused there, so it is unchanged.
const DISABLED_OPTIMIZERS: &str = "SkipLayerNormFusion";

/// A fn returning `ort::Result`, because the builder's own error type is not Send.
fn open_session(environment: &Environment, path: &Path, threads: usize) -> ort::Result<Session> {
    let mut builder = Session::builder(environment)?
        .with_intra_threads(threads)?
        .with_disabled_optimizers(DISABLED_OPTIMIZERS)?;
    builder.commit_from_file(path)
}

/// The tokenizer, set to pad per batch and truncate at `max_length`, and its pad id.
fn load_tokenizer(path: &Path, max_length: usize) -> Result<(Tokenizer, i64), ModelError> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|source| ModelError::Tokenizer {
        path: path.to_path_buf(),
        source,
    })?;
    // The padding id the tokenizer names; else its `[PAD]` (BERT) or `<pad>`
    // (XLM-R, whose tokenizer.json often has no padding set) token.
    let pad_id = tokenizer
        .get_padding()
        .map(|p| p.pad_id)
        .or_else(|| tokenizer.token_to_id("[PAD]"))
        .or_else(|| tokenizer.token_to_id("<pad>"))
        .unwrap_or(0) as i64;
    // Padding is done per batch (to the longest in the batch).
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..Default::default()
        }))
        .map_err(|source| ModelError::Tokenizer {
            path: path.to_path_buf(),
            source,
        })?;
    Ok((tokenizer, pad_id))
}

/// Splits texts sorted by token count (`lengths`, ascending) into
/// consecutive batches of at most `rows` texts and `tokens` padded tokens
/// (rows × the batch's longest); a text longer than `tokens` goes alone.
fn batch_spans(lengths: &[usize], rows: usize, tokens: usize) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    while start < lengths.len() {
        let mut end = start + 1;
        while end < lengths.len()
            && end - start < rows
            && (end - start + 1) * lengths[end] <= tokens
        {
            end += 1;
        }
        spans.push(start..end);
        start = end;
    }
    spans
}

impl TransformerSession {
    pub(super) fn load(files: &ModelFiles, options: &SessionOptions) -> Result<Self, ModelError> {
        let environment = ensure_onnxruntime(options.onnxruntime.as_deref())?;
        // The tokenizer is read while the runtime builds the session (~50 ms saved).
        let (tokenizer, session) = std::thread::scope(|scope| {
            let tokenizer = scope.spawn(|| load_tokenizer(&files.tokenizer, options.max_length));
            let session = open_session(environment, &files.onnx, options.threads).map_err(|e| {
                ModelError::Session {
                    path: files.onnx.clone(),
                    source: Box::new(e),
                }
            });
            let tokenizer = tokenizer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (tokenizer, session)
        });
        let (tokenizer, pad_id) = tokenizer?;
        let session = session?;
        let takes_type_ids = session
            .inputs()
            .iter()
            .any(|i| i.name() == "token_type_ids");
        let Some(output) = session.outputs().first() else {
            return Err(ModelError::Unfit {
                path: files.onnx.clone(),
                problem: "the model has no outputs".into(),
            });
        };
        let output_shape = match output.dtype() {
            ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
            _ => Vec::new(),
        };
        Ok(TransformerSession {
            output: output.name().to_string(),
            output_shape,
            tokenizer,
            session,
            takes_type_ids,
            pad_id,
            batch_size: options.batch_size.max(1),
            batch_tokens: options.batch_tokens.max(1),
        })
    }

    /// Fails unless the model's first output has `rank` dimensions; `expected`
    /// says what the caller needs (shown with the actual shape).
    pub(super) fn expect_output_rank(
        &self,
        files: &ModelFiles,
        rank: usize,
        expected: &str,
    ) -> Result<(), ModelError> {
        if self.output_shape.len() == rank {
            return Ok(());
        }
        Err(ModelError::Unfit {
            path: files.onnx.clone(),
            problem: format!("{expected}; this one outputs shape {:?}", self.output_shape),
        })
    }

    /// Runs `texts` in length-sorted batches; `per_batch` turns a batch's
    /// output and attention mask into one result per row. Results come back
    /// in input order.
    pub(super) fn run_sorted<T: Default + Clone>(
        &mut self,
        texts: &[&str],
        per_batch: impl FnMut(ArrayViewD<'_, f32>, &Array2<i64>) -> Result<Vec<T>, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        let inputs = texts
            .iter()
            .map(|t| EncodeInput::Single((*t).into()))
            .collect();
        self.run_inputs(inputs, per_batch)
    }

    /// As [`Self::run_sorted`], for (first, second) text pairs, e.g. (query, passage).
    pub(super) fn run_sorted_pairs<T: Default + Clone>(
        &mut self,
        pairs: &[(&str, &str)],
        per_batch: impl FnMut(ArrayViewD<'_, f32>, &Array2<i64>) -> Result<Vec<T>, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        let inputs = pairs
            .iter()
            .map(|(a, b)| EncodeInput::Dual((*a).into(), (*b).into()))
            .collect();
        self.run_inputs(inputs, per_batch)
    }

    fn run_inputs<T: Default + Clone>(
        &mut self,
        inputs: Vec<EncodeInput<'_>>,
        mut per_batch: impl FnMut(ArrayViewD<'_, f32>, &Array2<i64>) -> Result<Vec<T>, ModelError>,
    ) -> Result<Vec<T>, ModelError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let count = inputs.len();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(ModelError::Tokenize)?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let lengths: Vec<usize> = order.iter().map(|&i| encodings[i].len()).collect();
        let mut results: Vec<T> = vec![T::default(); count];
        for span in batch_spans(&lengths, self.batch_size, self.batch_tokens) {
            let group = &order[span];
            let batch: Vec<&Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            crate::metrics::embedding_tokens(batch.iter().map(|e| e.len()).sum());
            let (inputs, mask) = self.inputs(&batch)?;
            let failed = |e: ort::Error| ModelError::Inference(Box::new(e));
            let outputs = self.session.run(inputs).map_err(failed)?;
            let output = outputs[self.output.as_str()]
                .try_extract_array::<f32>()
                .map_err(failed)?;
            let rows = per_batch(output, &mask)?;
            for (&i, row) in group.iter().zip(rows) {
                results[i] = row;
            }
        }
        Ok(results)
    }

    /// The padded input tensors of a batch, and its attention mask.
    #[allow(clippy::type_complexity)]
    fn inputs(
        &self,
        batch: &[&Encoding],
    ) -> Result<
        (
            Vec<(Cow<'static, str>, SessionInputValue<'static>)>,
            Array2<i64>,
        ),
        ModelError,
    > {
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
        let failed = |e: ort::Error| ModelError::Inference(Box::new(e));
        let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = vec![
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
        Ok((inputs, mask))
    }
}

#[cfg(test)]
mod tests {
    use super::batch_spans;

    #[test]
    fn batches_hold_at_most_rows_texts_and_tokens_padded_tokens() {
        // Four short texts fill a batch of 4 rows; then two rows padded to
        // 10 tokens make 20, the budget; 30 tokens is over it and goes alone.
        let lengths = [2, 2, 3, 3, 3, 10, 10, 10, 30];
        assert_eq!(batch_spans(&lengths, 4, 20), vec![0..4, 4..6, 6..8, 8..9]);
        assert_eq!(batch_spans(&lengths, 64, usize::MAX), vec![0..9]);
        assert_eq!(
            batch_spans(&[], 4, 20),
            Vec::<std::ops::Range<usize>>::new()
        );
    }
}
