//! vecpipe: a streaming connector that turns text into searchable vectors.
//!
//! Sources decode records into Arrow batches, stages transform them in
//! order, sinks write them durably; see `docs/architecture.md`.

//! What the binary and the tests use is public; the rest is crate-private,
//! so the compiler reports what nothing uses (`unreachable_pub` keeps it so).
#![warn(unreachable_pub)]

pub mod config;
pub mod error;
pub mod eval;
#[doc(hidden)]
pub mod fuzzing;
pub mod metrics;
pub mod pipeline;
pub mod search;

pub(crate) mod batch;
pub(crate) mod dead_letter;
pub(crate) mod install;
pub(crate) mod kafka_client;
pub(crate) mod model;
pub(crate) mod progress;
pub(crate) mod registry;
pub(crate) mod retry;
pub(crate) mod sink;
pub(crate) mod source;
pub(crate) mod stage;
pub(crate) mod stop;
pub(crate) mod tls;

/// `vecpipe model prepare`: models made for wheel installs.
pub use model::prepare;
pub use model::{EmbedderOptions, SessionOptions, TextEmbedder, resolve_model, user_models_dir};
pub use registry::{
    ComponentInfo, PipelineConfig, catalog, load_pipeline_file, load_pipeline_str, setting_keys,
};
pub use source::backfill::{Backfill, Shard};
pub use source::text_id;
/// BM25 as pymilvus.model computes it: params, analyzer, encoder, fitter.
pub use stage::bm25;
