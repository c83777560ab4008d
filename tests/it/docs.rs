//! The README's configuration reference and the config schema agree.

use std::collections::BTreeSet;

use crate::common::repo_root;

/// Field names of the config structs (`kind` is spelled `type` in YAML).
fn schema_keys() -> BTreeSet<String> {
    let types = std::fs::read_to_string(repo_root().join("src/config/types.rs")).unwrap();
    types
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub "))
        .filter_map(|rest| rest.split_once(':').map(|(name, _)| name.trim()))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !name.is_empty())
        .map(|name| {
            if name == "kind" {
                "type".to_string()
            } else {
                name.to_string()
            }
        })
        .collect()
}

/// The README's configuration reference section.
fn reference() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("### Reference").expect("a reference section");
    let end = readme[start..]
        .find("### Output columns")
        .expect("output columns follow")
        + start;
    readme[start..end].to_string()
}

/// Keys in the `key` and `type` columns of the reference tables.
fn documented_keys(reference: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut key_columns: Vec<usize> = Vec::new();
    for line in reference.lines() {
        if !line.starts_with('|') {
            key_columns.clear();
            continue;
        }
        let cells: Vec<&str> = line.split('|').skip(1).collect();
        if key_columns.is_empty() {
            // The header row names the columns.
            key_columns = (0..cells.len())
                .filter(|&i| ["key", "type"].contains(&cells[i].trim()))
                .collect();
            continue;
        }
        for cell in key_columns.iter().filter_map(|&i| cells.get(i)) {
            for part in cell.split('`').skip(1).step_by(2) {
                for key in part.split([',', ' ', '+']).map(str::trim) {
                    if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        keys.insert(key.to_string());
                    }
                }
            }
        }
    }
    keys
}

#[test]
fn every_schema_key_is_documented_in_the_reference() {
    let reference = reference();
    let missing: Vec<String> = schema_keys()
        .into_iter()
        .filter(|key| !reference.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the README reference: {missing:?}"
    );
}

#[test]
fn every_documented_key_exists_in_the_schema() {
    let schema = schema_keys();
    let component_types = [
        "chunk", "dense", "bm25", "splade", "rerank", "arrow", "milvus", "jsonl", "parquet",
        "kafka", "file",
    ];
    for key in documented_keys(&reference()) {
        assert!(
            schema.contains(&key) || component_types.contains(&key.as_str()),
            "the README documents `{key}`, which the schema does not have"
        );
    }
}
