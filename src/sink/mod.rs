//! Sinks write batches durably and say so; the runner then confirms the
//! batches' acks. Each sink module owns its config struct and implements
//! [`SinkComponent`]; `crate::registry` lists them.

pub(crate) mod arrow_file;
pub(crate) mod jsonl;
pub(crate) mod milvus;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;

use crate::batch::Envelope;
use crate::config::{Invalid, Surroundings};
use crate::dead_letter::DeadLetters;

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

/// A document's rows as a destination holds them: (row id, fingerprint).
pub(crate) type StoredRows = Vec<(String, String)>;

/// What a destination holds of documents, for incremental runs: their rows'
/// fingerprints, every document held, and deleting documents (`--sync`).
pub(crate) trait DocumentStore: Send {
    /// For each of `documents` the destination has, its rows; `None` when
    /// the destination keeps no fingerprints (then nothing can be skipped).
    /// `chunked`: documents are found by `doc_id`, else by `id`.
    fn stored(
        &self,
        documents: &[&str],
        chunked: bool,
    ) -> Result<Option<HashMap<String, StoredRows>>, SinkError>;
    /// The id of every document the destination holds.
    fn documents(&self) -> Result<HashSet<String>, SinkError>;
    /// Which of `documents` the destination holds.
    fn present(&self, documents: &[&str]) -> Result<HashSet<String>, SinkError>;
    /// Deletes these documents: every row of each.
    fn delete(&self, documents: &[String]) -> Result<(), SinkError>;
}

/// How much of what a sink was given is durable after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durable {
    /// Nothing more than before (e.g. the batch went into an open file).
    Nothing,
    /// Every batch before this one; this one is still partly buffered
    /// (a rotated file was completed in the middle of it).
    BeforeThis,
    /// Every batch so far, this one included.
    All,
}

/// A destination; runs on a blocking thread. Sinks never touch acks: they
/// say what is durable and the runner confirms the acks of those batches.
pub(crate) trait Sink: Send {
    /// The `type:` of the sink, for logs.
    fn kind(&self) -> &'static str;
    /// Checks or creates the destination for batches of this schema; called
    /// once, before the first write. Its errors are the pipeline's set-up
    /// errors (exit code 2).
    fn prepare(&mut self, _schema: &SchemaRef) -> Result<(), SinkError> {
        Ok(())
    }
    /// Checks, without changing anything, that batches of this schema could
    /// be written (for `vecpipe validate`).
    fn check(&mut self, _schema: &SchemaRef) -> Result<(), SinkError> {
        Ok(())
    }
    /// Where the sink may say what a long write waits on (shown beside the
    /// run's bar); called once, before `prepare`.
    fn show_status(&mut self, _status: crate::progress::SinkStatus) {}
    /// Writes a batch (its rows, then its `deletes`).
    fn write(&mut self, envelope: &Envelope) -> Result<Durable, SinkError>;
    /// Makes everything written durable.
    fn finish(&mut self) -> Result<(), SinkError>;
    /// Throws away output that was not finished (after a failure anywhere).
    fn abort(&mut self);
    /// What the destination holds of documents, when it can say: a sink
    /// that rewrites its output each run (files) cannot, and then no
    /// document is skipped as unchanged.
    fn held_documents(&self) -> Option<Box<dyn DocumentStore>> {
        None
    }
}

/// A sink's config: its `type:` name, its rules and how it is built. One
/// per sink module; `crate::registry` lists them.
///
/// `validate`'s environment check for a sink is [`build`](Self::build)
/// (the destination answers) followed by [`Sink::check`] against the schema
/// the stages produce.
pub(crate) trait SinkComponent {
    /// The `type:` that selects this sink.
    fn kind() -> &'static str
    where
        Self: Sized;
    /// Rules serde cannot express; paths are relative to the sink.
    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        Ok(())
    }
    /// The file it writes, if it writes one: no two sinks may share it.
    fn output_file(&self) -> Option<&Path> {
        None
    }
    /// The key naming its destination (`path`, `uri`), blamed when the
    /// destination cannot be opened.
    fn destination_key(&self) -> &'static str;
    /// False when the first run makes the destination (a Milvus Lite data
    /// directory not there yet): `validate` then has nothing to open, and
    /// opening it would create it.
    fn destination_exists(&self) -> bool {
        true
    }
    /// Opens the destination (nothing is written before `prepare`).
    fn build(&self, dead_letters: &DeadLetters) -> Result<Box<dyn Sink>, SinkError>;
}
