//! Text → dense vector: a transformer's token embeddings, pooled (mean over
//! the attention mask, or CLS) and L2-normalised.

use ndarray::{Axis, Ix3};

use super::session::{SessionOptions, TransformerSession};
use super::{ModelError, ModelFiles, Pooling, pool};

#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    pub session: SessionOptions,
    /// `None`: the model's sentence-transformers config, else mean.
    pub pooling: Option<Pooling>,
    pub normalize: bool,
}

pub struct TextEmbedder {
    session: TransformerSession,
    pooling: Pooling,
    normalize: bool,
    dim: usize,
}

impl TextEmbedder {
    pub fn load(files: &ModelFiles, options: &EmbedderOptions) -> Result<Self, ModelError> {
        let session = TransformerSession::load(files, &options.session)?;
        let declared_dim = match session.output_shape.as_slice() {
            [_, _, dim] if *dim > 0 => *dim as usize,
            _ => 0,
        };
        let mut embedder = TextEmbedder {
            session,
            pooling: options.pooling.or(files.pooling).unwrap_or(Pooling::Mean),
            normalize: options.normalize,
            dim: declared_dim,
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
        let (pooling, normalize) = (self.pooling, self.normalize);
        let vectors = self.session.run_sorted(texts, |output, mask| {
            let hidden =
                output
                    .into_dimensionality::<Ix3>()
                    .map_err(|source| ModelError::OutputShape {
                        expected: "[batch, tokens, dim] token embeddings".to_string(),
                        source,
                    })?;
            Ok(hidden
                .axis_iter(Axis(0))
                .zip(mask.rows())
                .map(|(tokens, mask)| {
                    pool(
                        tokens,
                        mask.as_slice().expect("standard layout"),
                        pooling,
                        normalize,
                    )
                })
                .collect())
        })?;
        Ok(vectors.concat())
    }
}
