//! Text → learned sparse vector (SPLADE): the model's graph outputs, per
//! text, max over tokens of log(1 + relu(MLM logits)) — one weight per
//! vocabulary term; we keep the positive ones (optionally the top k).

use super::session::{SessionOptions, TransformerSession, map_rows};
use super::{ModelError, ModelFiles};

pub(crate) struct SpladeEncoder {
    session: TransformerSession,
    top_k: Option<usize>,
}

impl SpladeEncoder {
    pub(crate) fn load(
        files: &ModelFiles,
        options: &SessionOptions,
        top_k: Option<usize>,
    ) -> Result<Self, ModelError> {
        let session = TransformerSession::load(files, options)?;
        session.expect_output_rank(
            files,
            2,
            "a SPLADE model outputs [batch, vocabulary] term weights \
             (convert a BertForMaskedLM with scripts/convert_bert_onnx.py --head splade)",
        )?;
        Ok(SpladeEncoder { session, top_k })
    }

    /// One sparse vector per text: (term index, weight) sorted by index.
    pub(crate) fn encode(&mut self, texts: &[&str]) -> Result<Vec<Vec<(u32, f32)>>, ModelError> {
        let top_k = self.top_k;
        self.session.run_sorted(texts, |output, _mask| {
            map_rows(output, "vocabulary", |row| {
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
        })
    }
}
