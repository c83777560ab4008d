//! Transformer models on ONNX Runtime: finding the model files and the
//! runtime library, tokenising, running the session, pooling — separate
//! steps, each testable on its own.

mod cross_encoder;
mod embedder;
pub(crate) mod http;
mod pooling;
pub mod prepare;
mod resolve;
mod runtime;
mod session;
mod splade;

use std::path::PathBuf;

pub(crate) use cross_encoder::CrossEncoder;
pub use embedder::{EmbedderOptions, TextEmbedder};
pub(crate) use pooling::{Pooling, pool};
pub(crate) use resolve::{ModelFiles, models_dirs};
pub(crate) use resolve::{is_written_as_path, model_name};
pub use resolve::{resolve_model, user_models_dir};
pub(crate) use runtime::ensure_onnxruntime;
pub use session::SessionOptions;
pub(crate) use session::threads_or_cores;
pub(crate) use splade::SpladeEncoder;

/// The default of a model stage's `batch_tokens`: padded tokens per
/// inference call. Measured on 2 AVX2 cores with all-MiniLM-L6-v2 (README,
/// *Performance*): calls of ~1,000 tokens run 10–20 % faster than 64 rows
/// of 256 tokens, whose attention buffers spill the cache, and need a
/// quarter of the memory.
pub(crate) fn default_batch_tokens() -> crate::config::PositiveInt {
    crate::config::PositiveInt(1024)
}

/// The default of a model stage's `max_length`: tokens kept per text.
pub(crate) fn default_max_length() -> crate::config::PositiveInt {
    crate::config::PositiveInt(256)
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found; looked at: {}. Set ORT_DYLIB_PATH or the stage's \
         `onnxruntime:` to a libonnxruntime.so 1.31 (e.g. from `pip install onnxruntime==1.31.1`: \
         onnxruntime/capi/libonnxruntime.so.1.31.1), or run scripts/setup.sh",
        list(.looked)
    )]
    RuntimeNotFound { looked: Vec<PathBuf> },
    #[error("cannot load ONNX Runtime from {}", path.display())]
    RuntimeLoad {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("model `{spec}` not found; looked in: {}. {hint}", list(.looked))]
    NotFound {
        spec: String,
        looked: Vec<PathBuf>,
        hint: String,
    },
    #[error("model `{spec}`: {}: {problem}", path.display())]
    Incomplete {
        spec: String,
        path: PathBuf,
        problem: String,
    },
    #[error("cannot download `{repo}` from the Hugging Face hub: {source}; {hint}")]
    Download {
        repo: String,
        hint: String,
        #[source]
        source: Box<hf_hub::api::sync::ApiError>,
    },
    #[error("cannot write the model to {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load tokenizer {}", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    #[error("cannot load ONNX model {}", path.display())]
    Session {
        path: PathBuf,
        #[source]
        source: Box<ort::Error>,
    },
    #[error("ONNX model {}: {problem}", path.display())]
    Unfit { path: PathBuf, problem: String },
    #[error("inference failed")]
    Inference(#[source] Box<ort::Error>),
    #[error("tokenizing failed")]
    Tokenize(#[source] tokenizers::Error),
    #[error("the model's output is not {expected}")]
    OutputShape {
        expected: String,
        #[source]
        source: ndarray::ShapeError,
    },
    #[error("model service {url}: {message}")]
    Remote { url: String, message: String },
}

pub(crate) fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
