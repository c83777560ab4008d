//! vecpipe: a streaming connector that turns text into searchable vectors.
//!
//! Sources decode records into Arrow batches, stages transform them in
//! order, sinks write them durably; see `docs/architecture.md`.

pub mod batch;
pub mod config;
pub mod dead_letter;
pub mod error;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod search;
pub mod sink;
pub mod source;
pub mod stage;
pub mod stop;
