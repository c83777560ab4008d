//! Sinks write batches durably and only then release their acks.

mod arrow_file;
pub mod milvus;

use std::path::PathBuf;

use crate::batch::Envelope;
use crate::config::SinkConfig;
use crate::dead_letter::DeadLetters;

pub use arrow_file::{ArrowFileSink, ArrowFormat};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("{}: {source}", path.display())]
    Arrow {
        path: PathBuf,
        source: arrow::error::ArrowError,
    },
    #[error(transparent)]
    Milvus(milvus::MilvusError),
}

impl SinkError {
    /// Errors that mean the pipeline file is at fault (exit code 2).
    pub fn is_config(&self) -> bool {
        matches!(self, SinkError::Milvus(e) if e.is_config())
    }
}

/// A destination; runs on a blocking thread.
pub trait Sink: Send {
    /// The `type:` of the sink, for logs.
    fn kind(&self) -> &'static str;
    /// Writes a batch; its ack is held until the data is durable.
    fn write(&mut self, envelope: Envelope) -> Result<(), SinkError>;
    /// Makes everything written durable, then releases the held acks.
    fn finish(&mut self) -> Result<(), SinkError>;
    /// Throws away output that was not finished (after a failure elsewhere).
    fn abort(&mut self);
}

pub fn build_sink(
    cfg: &SinkConfig,
    dead_letters: &DeadLetters,
) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match cfg {
        SinkConfig::Arrow(c) => Box::new(ArrowFileSink::new(c)),
        SinkConfig::Milvus(c) => Box::new(milvus::MilvusSink::new(c, dead_letters.clone())?),
    })
}
