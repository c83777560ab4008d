//! Cross-encoder reranking: a sequence-classification model scores each
//! (query, passage) pair; the first logit is the score (optionally squashed
//! with a sigmoid).

use super::session::{SessionOptions, TransformerSession, map_rows};
use super::{ModelError, ModelFiles};

pub(crate) struct CrossEncoder {
    session: TransformerSession,
    sigmoid: bool,
}

impl CrossEncoder {
    pub(crate) fn load(
        files: &ModelFiles,
        options: &SessionOptions,
        sigmoid: bool,
    ) -> Result<Self, ModelError> {
        let session = TransformerSession::load(files, options)?;
        session.expect_output_rank(files, 2, "a cross-encoder outputs [batch, labels] logits")?;
        Ok(CrossEncoder { session, sigmoid })
    }

    /// The score of each (query, passage) pair, in input order.
    pub(crate) fn score_pairs(&mut self, pairs: &[(&str, &str)]) -> Result<Vec<f32>, ModelError> {
        let sigmoid = self.sigmoid;
        self.session.run_sorted_pairs(pairs, |output, _mask| {
            map_rows(output, "labels", |row| {
                let logit = row.first().copied().unwrap_or_default();
                if sigmoid {
                    1.0 / (1.0 + (-logit).exp())
                } else {
                    logit
                }
            })
        })
    }
}
