//! `vecpipe validate`'s look at the world: everything the pipeline points at
//! is opened, loaded or asked, with the same code a run sets up with — the
//! source (files match, Parquet footers and columns; Kafka brokers answer and
//! topics exist), every stage (models, tokenizers, BM25 params, model
//! services), and every sink against the exact schema the stages produce
//! (Milvus answers; an existing collection fits). Nothing is written or
//! created: a Milvus Lite data directory the first run would make is not opened.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::batch::Position;
use crate::dead_letter::DeadLetters;
use crate::error::report;
use crate::registry::{PipelineConfig, stage_context};

/// One thing in the environment that would stop a run, at a schema path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentProblem {
    /// e.g. `source.path`, `stages[1]`, `sinks[0].uri`.
    pub path: String,
    pub message: String,
}

fn problem(
    path: impl Into<String>,
    error: &(dyn std::error::Error + 'static),
) -> EnvironmentProblem {
    EnvironmentProblem {
        path: path.into(),
        message: report(error),
    }
}

/// Every problem found; empty when the pipeline can start. The checks block,
/// so they run on the blocking pool, as a run's set-up and sinks do.
pub async fn check_environment(cfg: &PipelineConfig) -> Vec<EnvironmentProblem> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || check_blocking(&cfg))
        .await
        .unwrap_or_else(|e| {
            vec![EnvironmentProblem {
                path: String::new(),
                message: format!("the environment check stopped unexpectedly: {e}"),
            }]
        })
}

fn check_blocking(cfg: &PipelineConfig) -> Vec<EnvironmentProblem> {
    let mut problems = Vec::new();
    let dead_letters = DeadLetters::to_log();
    let source = cfg.source.component();
    let source_schema = match source.check(&dead_letters) {
        Ok(schema) => Some(schema),
        Err(e) => {
            problems.push(problem(format!("source.{}", source.origin_key()), &e));
            None
        }
    };

    // The schema after each stage, while every stage so far could be built.
    let mut schemas = Vec::new();
    let mut batch = source_schema.map(RecordBatch::new_empty);
    schemas.push(batch.as_ref().map(RecordBatch::schema));
    let context = stage_context(cfg.stage_configs(), &dead_letters);
    let position = Position::Jsonl {
        file: Arc::new(PathBuf::from(&cfg.name)),
        line: 0,
    };
    for (index, stage_cfg) in cfg.stage_configs().enumerate() {
        match stage_cfg.component().build(&context) {
            Ok(mut stage) => {
                batch = batch.and_then(|b| match stage.process(b, &position) {
                    Ok(out) => Some(out),
                    Err(e) => {
                        problems.push(problem(format!("stages[{index}]"), &e));
                        None
                    }
                });
            }
            Err(e) => {
                problems.push(problem(format!("stages[{index}]"), &e));
                batch = None;
            }
        }
        schemas.push(batch.as_ref().map(RecordBatch::schema));
    }

    for (index, sink_cfg) in cfg.sinks.iter().enumerate() {
        let path = format!("sinks[{index}]");
        let component = sink_cfg.config.component();
        if !component.destination_exists() {
            continue;
        }
        let mut sink = match component.build(&dead_letters) {
            Ok(sink) => sink,
            Err(e) => {
                problems.push(problem(
                    format!("{path}.{}", component.destination_key()),
                    &e,
                ));
                continue;
            }
        };
        // Without the schema (an earlier problem), the sink is only opened.
        if let Some(Some(schema)) = cfg.sink_depth(sink_cfg).and_then(|d| schemas.get(d))
            && let Err(e) = sink.check(schema)
        {
            problems.push(problem(path, &e));
        }
    }
    problems
}
