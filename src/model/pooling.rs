//! Sentence pooling over token embeddings.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// How token embeddings become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps (sentence-transformers' default).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
}

/// Pools one sequence's hidden states (`[tokens, dim]`) with its attention mask,
/// then L2-normalises when asked.
pub(crate) fn pool(
    hidden: ArrayView2<'_, f32>,
    mask: &[i64],
    mode: Pooling,
    normalize: bool,
) -> Vec<f32> {
    let dim = hidden.ncols();
    let mut out = vec![0f32; dim];
    match mode {
        Pooling::Cls => out.copy_from_slice(&hidden.row(0).to_vec()),
        Pooling::Mean => {
            let mut kept = 0f32;
            for (row, &m) in hidden.rows().into_iter().zip(mask) {
                if m != 0 {
                    kept += 1.0;
                    for (o, v) in out.iter_mut().zip(row) {
                        *o += v;
                    }
                }
            }
            let kept = kept.max(1e-9);
            out.iter_mut().for_each(|o| *o /= kept);
        }
    }
    if normalize {
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        out.iter_mut().for_each(|o| *o /= norm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn mean_ignores_masked_tokens_and_normalises() {
        let hidden = array![[1.0f32, 0.0], [3.0, 4.0], [100.0, 100.0]];
        let v = pool(hidden.view(), &[1, 1, 0], Pooling::Mean, false);
        assert_eq!(v, vec![2.0, 2.0]);
        let n = pool(hidden.view(), &[1, 1, 0], Pooling::Mean, true);
        assert!((n[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn cls_takes_the_first_token() {
        let hidden = array![[3.0f32, 4.0], [1.0, 1.0]];
        assert_eq!(
            pool(hidden.view(), &[1, 1], Pooling::Cls, true),
            vec![0.6, 0.8]
        );
    }
}
