//! Loading pipeline files: every error located, every rule applied.

use std::path::PathBuf;

use super::*;
use crate::config::PositiveInt;
use crate::source::jsonl::JsonlSourceConfig;
use crate::stage::bm25::{StopWords, TokenizerKind};

fn load(text: &str) -> Result<PipelineConfig, ConfigError> {
    load_pipeline_str("p.yaml", text, &|name| {
        (name == "OUT").then(|| "out/x.parquet".to_string())
    })
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

const GOOD: &str = "\
name: t
source: { type: jsonl, path: data/*.jsonl, id_field: id, metadata: [title] }
stages:
  - { type: chunk, max_chars: 100, overlap: 10 }
  - type: bm25
    params: models/bm25.json
    analyzer: { tokenizer: whitespace, stop_words: none, stemmer: none }
sinks:
  - { type: arrow, path: '${OUT}' }
dead_letter: { path: out/dl.jsonl }
";

#[test]
fn a_full_pipeline_loads_with_env_expanded() {
    let cfg = load(GOOD).unwrap();
    assert_eq!(cfg.name, "t");
    let SourceConfig::Jsonl(JsonlSourceConfig(source)) = &cfg.source else {
        panic!("the source is jsonl")
    };
    assert_eq!(source.metadata, vec!["title"]);
    assert_eq!(source.batch_rows.get(), 1024);
    assert!(
        matches!(&cfg.stages[0].config, StageConfig::Chunk(c) if c.max_chars == Some(PositiveInt(100)) && c.overlap == 10)
    );
    let StageConfig::Bm25(bm25) = &cfg.stages[1].config else {
        panic!("second stage is bm25")
    };
    let analyzer = bm25.analyzer.as_ref().unwrap();
    assert_eq!(analyzer.tokenizer, TokenizerKind::Whitespace);
    assert_eq!(analyzer.stop_words, StopWords::None);
    assert!(analyzer.lowercase);
    let SinkConfig::Arrow(sink) = &cfg.sinks[0].config else {
        panic!("the sink is arrow")
    };
    assert_eq!(sink.path, PathBuf::from("out/x.parquet"));
}

#[test]
fn typo_in_a_stage_key_names_line_column_and_path() {
    let text = GOOD.replace("overlap: 10", "overlpa: 10");
    let msg = error(&text);
    assert!(msg.starts_with("p.yaml:4:"), "{msg}");
    assert!(msg.contains("stages[0]"), "{msg}");
    assert!(msg.contains("overlpa"), "{msg}");
}

#[test]
fn zero_batch_size_is_not_a_positive_integer() {
    let text = GOOD.replace("metadata: [title]", "metadata: [title], batch_rows: 0");
    let msg = error(&text);
    assert!(msg.starts_with("p.yaml:2:"), "{msg}");
    assert!(
        msg.contains("source.batch_rows: expected a positive integer, found 0"),
        "{msg}"
    );
}

#[test]
fn unknown_stage_type_lists_the_known_ones() {
    let msg = error(&GOOD.replace("type: chunk", "type: chunky"));
    assert!(msg.contains("p.yaml:4:"), "{msg}");
    assert!(
        msg.contains("unknown type `chunky`, expected one of: chunk, dense, bm25, splade, rerank"),
        "{msg}"
    );
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let msg = error(&format!("{GOOD}sink: []\n"));
    assert!(
        msg.starts_with("p.yaml:11:1: sink: Unknown field `sink`"),
        "{msg}"
    );
    assert!(msg.contains("sink"), "{msg}");
}

#[test]
fn unset_variable_is_located() {
    let msg = error(&GOOD.replace("${OUT}", "${NOT_SET_ANYWHERE}"));
    assert!(msg.starts_with("p.yaml:9:"), "{msg}");
    assert!(msg.contains("NOT_SET_ANYWHERE"), "{msg}");
}

#[test]
fn overlap_not_smaller_than_size_points_at_overlap() {
    let msg = error(&GOOD.replace("overlap: 10", "overlap: 100"));
    assert!(msg.contains("stages[0].overlap: must be smaller"), "{msg}");
    assert!(msg.starts_with("p.yaml:4:"), "{msg}");
}

#[test]
fn sink_input_must_name_a_stage() {
    let msg = error(&GOOD.replace("path: '${OUT}'", "path: a.arrow, inputs: [nope]"));
    assert!(
        msg.contains("sinks[0].inputs[0]: no stage has `id: nope`"),
        "{msg}"
    );
}

#[test]
fn broken_yaml_is_located() {
    let msg = error("name: [unclosed\nsource: x\n");
    assert!(msg.starts_with("p.yaml:"), "{msg}");
    assert!(msg.contains("invalid YAML"), "{msg}");
}

#[test]
fn duplicate_keys_are_errors() {
    let msg = error(&format!("name: a\n{GOOD}"));
    assert!(msg.contains("duplicate key `name`"), "{msg}");
}

#[test]
fn shared_keys_are_read_beside_the_component() {
    let text = GOOD
        .replace("type: chunk,", "type: chunk, id: chunks,")
        .replace("path: '${OUT}'", "path: '${OUT}', inputs: [chunks]");
    let cfg = load(&text).unwrap();
    assert_eq!(cfg.stages[0].id.as_deref(), Some("chunks"));
    assert_eq!(cfg.stages[1].id, None);
    assert_eq!(cfg.sinks[0].inputs, vec!["chunks"]);
    assert_eq!(cfg.sink_depth(&cfg.sinks[0]), Some(1));
}

#[test]
fn a_bad_shared_key_is_located_like_any_other() {
    let msg = error(&GOOD.replace("type: chunk,", "type: chunk, id: [a, b],"));
    assert!(msg.starts_with("p.yaml:4:"), "{msg}");
    assert!(msg.contains("stages[0].id"), "{msg}");
    let msg = error(&GOOD.replace("path: '${OUT}'", "path: '${OUT}', inputs: chunks"));
    assert!(msg.starts_with("p.yaml:9:"), "{msg}");
    assert!(msg.contains("sinks[0].inputs"), "{msg}");
}

#[test]
fn a_shared_key_of_another_family_is_unknown() {
    let msg = error(&GOOD.replace("type: chunk,", "type: chunk, inputs: [x],"));
    assert!(msg.starts_with("p.yaml:4:"), "{msg}");
    assert!(msg.contains("stages[0]"), "{msg}");
    assert!(msg.contains("Unknown field `inputs`"), "{msg}");
}

#[test]
fn the_catalog_lists_every_component_with_its_keys() {
    let catalog = catalog();
    for family in ["source", "stage", "sink"] {
        let kinds: Vec<&str> = catalog
            .iter()
            .filter(|c| c.family == family)
            .map(|c| c.kind)
            .collect();
        let mut unique = kinds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), kinds.len(), "{family}: {kinds:?}");
    }
    let keys = |kind: &str| {
        catalog
            .iter()
            .find(|c| c.kind == kind && c.family != "source")
            .map(|c| c.keys.clone())
            .unwrap()
    };
    assert_eq!(
        keys("chunk"),
        ["id", "max_chars", "max_tokens", "tokenizer", "overlap"]
    );
    assert_eq!(keys("arrow"), ["inputs", "path", "rotate_rows"]);
}
