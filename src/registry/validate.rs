//! The rules of a whole pipeline: each component's own (through its
//! family's trait), then the ones between components — column names, stage
//! ids, sink inputs, files written twice.

use std::path::Path;

use super::PipelineConfig;
use crate::config::{Invalid, Surroundings};

/// Columns every batch has, whatever the pipeline.
const RESERVED_COLUMNS: [&str; 5] = ["id", "doc_id", "chunk_index", "text", "fingerprint"];

/// Rules serde cannot express; the error names the schema path.
pub(super) fn pipeline(cfg: &PipelineConfig) -> Result<(), Invalid> {
    if cfg.name.trim().is_empty() {
        return Err(Invalid::at("name", "must not be empty"));
    }
    let fields = cfg.source.component().fields();
    let columns: Vec<String> = fields.metadata_columns().map(str::to_string).collect();
    metadata(
        fields.id_field.as_deref(),
        &fields.text_field,
        &fields.metadata,
        &columns,
    )?;
    let around = Surroundings {
        metadata: &columns,
        source_bounded: cfg.source.component().is_bounded(),
        ..Surroundings::default()
    };
    cfg.source
        .component()
        .validate(&around)
        .map_err(|e| e.within("source"))?;
    let (ids, stage_fields) = stages(cfg, &columns)?;
    if let Some(dead_letter) = &cfg.dead_letter {
        dead_letter
            .validate()
            .map_err(|e| e.within("dead_letter"))?;
    }
    let around = Surroundings {
        stage_fields: &stage_fields,
        ..around
    };
    sinks(cfg, &ids, &around)
}

/// Metadata fields are paths (`after.title`); their columns are the paths'
/// last segments, which must be new and distinct.
fn metadata(
    id_field: Option<&str>,
    text_field: &str,
    paths: &[String],
    columns: &[String],
) -> Result<(), Invalid> {
    for (i, (path, column)) in paths.iter().zip(columns).enumerate() {
        let at = format!("source.metadata[{i}]");
        let named = if path == column {
            format!("`{path}`")
        } else {
            format!("`{path}` (column `{column}`)")
        };
        if RESERVED_COLUMNS.contains(&column.as_str())
            || Some(column.as_str()) == id_field
            || column == text_field
        {
            return Err(Invalid::at(
                &at,
                format!("{named} is already an output column (id, doc_id, chunk_index, text)"),
            ));
        }
        if columns[..i].contains(column) {
            return Err(Invalid::at(
                &at,
                format!("{named} is listed twice (a metadata column is its path's last segment)"),
            ));
        }
    }
    Ok(())
}

/// Checks every stage; returns the stage ids and the columns they add.
fn stages<'a>(
    cfg: &'a PipelineConfig,
    metadata: &[String],
) -> Result<(Vec<&'a str>, Vec<&'a str>), Invalid> {
    let mut ids: Vec<&str> = Vec::new();
    let mut added: Vec<&str> = Vec::new();
    for (i, stage) in cfg.stages.iter().enumerate() {
        let path = format!("stages[{i}]");
        let component = stage.config.component();
        if let Some(field) = component.output_field() {
            if RESERVED_COLUMNS.contains(&field)
                || metadata.iter().any(|m| m == field)
                || added.contains(&field)
            {
                return Err(Invalid::at(
                    &format!("{path}.field"),
                    format!("`{field}` is already a column"),
                ));
            }
            added.push(field);
        }
        if let Some(id) = stage.id.as_deref() {
            if ids.contains(&id) {
                return Err(Invalid::at(
                    &format!("{path}.id"),
                    format!("stage id `{id}` is used twice"),
                ));
            }
            ids.push(id);
        }
        let around = Surroundings {
            metadata,
            stage_fields: &added,
            later_model: cfg.stages[i + 1..]
                .iter()
                .find_map(|s| s.config.component().tokenizer_model()),
            source_bounded: cfg.source.component().is_bounded(),
        };
        component.validate(&around).map_err(|e| e.within(&path))?;
    }
    Ok((ids, added))
}

fn sinks(cfg: &PipelineConfig, ids: &[&str], around: &Surroundings) -> Result<(), Invalid> {
    if cfg.sinks.is_empty() {
        return Err(Invalid::at("sinks", "at least one sink is required"));
    }
    let mut files: Vec<&Path> = Vec::new();
    for (i, sink) in cfg.sinks.iter().enumerate() {
        let path = format!("sinks[{i}]");
        match sink.inputs.as_slice() {
            [] => {}
            [one] if ids.contains(&one.as_str()) => {}
            [one] => {
                return Err(Invalid::at(
                    &format!("{path}.inputs[0]"),
                    format!("no stage has `id: {one}` (stage ids: {})", ids.join(", ")),
                ));
            }
            _ => {
                return Err(Invalid::at(
                    &format!("{path}.inputs"),
                    "a sink takes exactly one input",
                ));
            }
        }
        let component = sink.config.component();
        component.validate(around).map_err(|e| e.within(&path))?;
        if let Some(file) = component.output_file() {
            if files.contains(&file) {
                return Err(Invalid::at(
                    &format!("{path}.{}", component.destination_key()),
                    "two sinks write the same file",
                ));
            }
            files.push(file);
        }
    }
    Ok(())
}
