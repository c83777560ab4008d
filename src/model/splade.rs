//! Text → learned sparse vector (SPLADE): the model's graph outputs, per
//! text, max over tokens of log(1 + relu(MLM logits)) — one weight per
//! vocabulary term; we keep the positive ones (optionally the top k).

use ndarray::{Axis, Ix2};

use super::session::{SessionOptions, TransformerSession};
use super::{ModelError, ModelFiles};

pub struct SpladeEncoder {
    session: TransformerSession,
    top_k: Option<usize>,
}

impl SpladeEncoder {
    pub fn load(
        files: &ModelFiles,
        options: &SessionOptions,
        top_k: Option<usize>,
    ) -> Result<Self, ModelError> {
        let session = TransformerSession::load(files, options)?;
        if session.output_shape.len() != 2 {
            return Err(ModelError::Session {
                path: files.onnx.clone(),
                message: format!(
                    "a SPLADE model outputs [batch, vocabulary] term weights; this one outputs shape {:?} \
                     (convert a BertForMaskedLM with scripts/convert_bert_onnx.py --head splade)",
                    session.output_shape
                ),
            });
        }
        Ok(SpladeEncoder { session, top_k })
    }

    /// One sparse vector per text: (term index, weight) sorted by index.
    pub fn encode(&mut self, texts: &[&str]) -> Result<Vec<Vec<(u32, f32)>>, ModelError> {
        let top_k = self.top_k;
        self.session.run_sorted(texts, |output, _mask| {
            let weights = output.into_dimensionality::<Ix2>().map_err(|e| {
                ModelError::Inference(format!("expected [batch, vocabulary] weights: {e}"))
            })?;
            Ok(weights
                .axis_iter(Axis(0))
                .map(|row| {
                    let mut terms: Vec<(u32, f32)> = row
                        .iter()
                        .enumerate()
                        .filter(|(_, w)| **w > 0.0)
                        .map(|(i, w)| (i as u32, *w))
                        .collect();
                    if let Some(k) = top_k.filter(|k| terms.len() > *k) {
                        terms.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
                        terms.truncate(k);
                    }
                    terms.sort_unstable_by_key(|(i, _)| *i);
                    terms
                })
                .collect())
        })
    }
}
