//! The README's configuration reference and the config schema agree.

use std::collections::BTreeSet;

use crate::common::repo_root;

/// Every key a pipeline file can have, from the component registry and the
/// other settings (`type` included: every component has it).
fn schema_keys() -> BTreeSet<String> {
    let components = vecpipe::catalog().into_iter().flat_map(|c| c.keys);
    let settings = vecpipe::setting_keys()
        .into_iter()
        .flat_map(|(_, keys)| keys.iter().copied());
    components
        .chain(settings)
        .chain(["type"])
        .map(str::to_string)
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
    // Component types, and the dead letter's `type: file | kafka`.
    let types: BTreeSet<&str> = vecpipe::catalog()
        .into_iter()
        .map(|c| c.kind)
        .chain(["file", "kafka"])
        .collect();
    for key in documented_keys(&reference()) {
        assert!(
            schema.contains(&key) || types.contains(key.as_str()),
            "the README documents `{key}`, which the schema does not have"
        );
    }
}

/// The subcommands of `vecpipe HELP_PATH --help` (without `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let help = cli_help(path);
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

fn cli_help(path: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vecpipe"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{path:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_default_the_help_shows_parses_when_given_as_shown() {
    let mut commands: Vec<Vec<String>> = Vec::new();
    for name in subcommands(&[]) {
        let nested = subcommands(&[name.as_str()]);
        if nested.is_empty() {
            commands.push(vec![name]);
        } else {
            commands.extend(nested.into_iter().map(|sub| vec![name.clone(), sub]));
        }
    }
    let mut checked = 0;
    for command in &commands {
        let path: Vec<&str> = command.iter().map(String::as_str).collect();
        let mut option = None;
        for line in cli_help(&path).lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(long) = words.iter().find(|w| w.starts_with("--"))
                && line.trim_start().starts_with('-')
            {
                option = Some(long.trim_end_matches(',').to_string());
            }
            let (Some(name), Some(start)) = (&option, line.find("[default: ")) else {
                continue;
            };
            let value = &line[start + "[default: ".len()..line[start..].find(']').unwrap() + start];
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_vecpipe"))
                .args(&path)
                .args([name.as_str(), value, "--help"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "vecpipe {} shows `{name}` [default: {value}], which does not parse: {}",
                path.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} defaults found in {commands:?}"
    );
}

/// The README renders: every line that looks like a table row is in a table
/// (a blank line inside one ends it, and the rest turns into a paragraph of
/// pipes), and no code span is cut short by a backtick inside it.
#[test]
fn the_readme_renders_its_tables_and_code_spans_whole() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut tables = Vec::new();
    let mut start = None;
    let mut broken_spans = Vec::new();
    for (event, range) in Parser::new_ext(&readme, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::Table(_)) => start = Some(range.start),
            Event::End(TagEnd::Table) => tables.push(start.take().unwrap()..range.end),
            // `a `b`` renders as the span "a " then text: a span ending in a
            // space it does not start with was cut by an inner backtick.
            Event::Code(code) if code.ends_with(' ') && !code.starts_with(' ') => {
                let line = readme[..range.start].lines().count();
                broken_spans.push(format!("README.md:{line}: `{code}`"));
            }
            _ => {}
        }
    }
    let mut offset = 0;
    let mut stray_rows = Vec::new();
    let mut in_fence = false;
    for (number, line) in readme.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && line.starts_with('|') && !tables.iter().any(|t| t.contains(&offset)) {
            stray_rows.push(format!("README.md:{}: {}", number + 1, line.trim_end()));
        }
        offset += line.len();
    }
    assert!(tables.len() > 15, "{} tables", tables.len());
    assert_eq!(
        stray_rows,
        Vec::<String>::new(),
        "table rows outside a table"
    );
    assert_eq!(broken_spans, Vec::<String>::new(), "code spans cut short");
}

/// Each component's keys are documented in its own rows of the reference
/// (a source's table, or the rows under its `type` in the stage and sink
/// tables, or the family's "every …" row), so a new component cannot lean
/// on another one's documentation.
#[test]
fn each_component_documents_its_own_keys_in_its_own_rows() {
    use std::collections::BTreeMap;
    let reference = reference();
    let mut documented: BTreeMap<(&str, String), BTreeSet<String>> = BTreeMap::new();
    let (mut family, mut kinds): (Option<&str>, Vec<&str>) = (None, Vec::new());
    let (mut header, mut current): (Option<Vec<String>>, Option<String>) = (None, None);
    for line in reference.lines() {
        if line.starts_with("`source` with `type: kafka`") {
            (family, kinds) = (Some("source"), vec!["kafka"]);
        } else if line.starts_with("`source` —") {
            (family, kinds) = (Some("source"), vec!["jsonl", "parquet"]);
        } else if line.starts_with("`stages[]`") {
            family = Some("stage");
        } else if line.starts_with("`sinks[]`") {
            family = Some("sink");
        } else if line.starts_with("`dead_letter`") || line.starts_with("`analyzer`") {
            family = None;
        }
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        let Some(columns) = &header else {
            header = Some(cells);
            current = None;
            continue;
        };
        if cells.iter().all(|c| c.starts_with("---")) {
            continue;
        }
        let Some(family) = family else { continue };
        let cell = |name: &str| {
            columns
                .iter()
                .position(|c| c == name)
                .map(|i| cells[i].clone())
        };
        let keys: BTreeSet<String> = cell("key")
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2)
            .flat_map(|part| {
                part.split([',', ' ', '+'])
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        let owners: Vec<String> = match cell("type") {
            Some(kind) if kind.starts_with("every ") => vec!["*".to_string()],
            Some(kind) if !kind.is_empty() => {
                current = Some(kind.trim_matches('`').to_string());
                vec![current.clone().unwrap()]
            }
            Some(_) => current.clone().into_iter().collect(),
            None => kinds.iter().map(|k| k.to_string()).collect(),
        };
        for owner in owners {
            documented
                .entry((family, owner))
                .or_default()
                .extend(keys.iter().cloned());
        }
    }
    let mut missing = Vec::new();
    for component in vecpipe::catalog() {
        let own = documented.get(&(component.family, component.kind.to_string()));
        let shared = documented.get(&(component.family, "*".to_string()));
        for key in component.keys.iter().filter(|k| **k != "type") {
            let found = [own, shared]
                .iter()
                .flatten()
                .any(|keys| keys.contains(*key));
            if !found {
                missing.push(format!(
                    "{} `{}`: `{key}`",
                    component.family, component.kind
                ));
            }
        }
    }
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "keys not in their component's own rows"
    );
}
