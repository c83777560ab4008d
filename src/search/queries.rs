//! A query file in BEIR's format: one JSON object per line with `_id` and `text`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A line-oriented input file (queries, judgements) that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LineFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: no {what}")]
    Empty { path: PathBuf, what: &'static str },
}

/// One query of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// What `parse` makes of each non-blank line of `path` (given its 0-based
/// index; `None` skips it), or the first line it rejects, located; an error
/// naming `what` when nothing is left.
pub fn parse_lines<T>(
    path: &Path,
    what: &'static str,
    mut parse: impl FnMut(usize, &str) -> Result<Option<T>, String>,
) -> Result<Vec<T>, LineFileError> {
    let contents = std::fs::read_to_string(path).map_err(|source| LineFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut items = Vec::new();
    for (index, line) in contents.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = parse(index, line).map_err(|message| LineFileError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            message,
        })?;
        items.extend(item);
    }
    if items.is_empty() {
        return Err(LineFileError::Empty {
            path: path.to_path_buf(),
            what,
        });
    }
    Ok(items)
}

/// The queries of `path`, in file order; blank lines are skipped. `_id` (or
/// `id`) may be a string or a number; `text` must be a non-empty string.
pub fn read_queries(path: &Path) -> Result<Vec<Query>, LineFileError> {
    parse_lines(path, "queries", |_, line| parse_query(line).map(Some))
}

fn parse_query(line: &str) -> Result<Query, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    let id = match object.get("_id").or_else(|| object.get("id")) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => return Err("missing `_id`".into()),
        Some(_) => return Err("`_id` is not a non-empty string or a number".into()),
    };
    match object.get("text") {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(Query {
            id,
            text: text.clone(),
        }),
        None | Some(Value::Null) => Err(format!("query `{id}` has no `text`")),
        Some(_) => Err(format!("query `{id}`: `text` is not a non-empty string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_beir_queries_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.jsonl");
        std::fs::write(
            &path,
            "{\"_id\": \"q1\", \"text\": \"who\", \"metadata\": {}}\n\n{\"_id\": 7, \"text\": \"what\"}\n",
        )
        .unwrap();
        assert_eq!(
            read_queries(&path).unwrap(),
            [
                Query {
                    id: "q1".into(),
                    text: "who".into()
                },
                Query {
                    id: "7".into(),
                    text: "what".into()
                }
            ]
        );
        std::fs::write(
            &path,
            "{\"_id\": \"q1\", \"text\": \"who\"}\n{\"_id\": \"q2\"}\n",
        )
        .unwrap();
        assert_eq!(
            read_queries(&path).unwrap_err().to_string(),
            format!("{}:2: query `q2` has no `text`", path.display())
        );
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            read_queries(&path).unwrap_err().to_string(),
            format!("{}: no queries", path.display())
        );
    }
}
