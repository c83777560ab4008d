//! The integration tests, in one binary (one link of the heavy
//! dependencies instead of one per file). Each module runs the real
//! `vecpipe` binary against real servers started on 127.0.0.1.

#[macro_use]
mod common;

mod bad_input;
mod bm25_pymilvus;
mod bulk_import;
mod compose;
mod delivery;
mod dense;
mod docs;
mod eval;
mod field_paths;
mod http_providers;
mod incremental;
mod jsonl_sink;
mod kafka_daemon;
mod kafka_security;
mod languages;
mod milvus_sink;
mod milvus_tls;
mod parquet_and_sinks;
mod pipelines;
mod progress;
mod relative_paths;
mod rerank;
mod shutdown;
mod splade;
mod validate;
