//! Turning `path:` (a file, a directory or a glob) into a sorted file list.

use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use serde::Deserialize;

use super::records::RecordFields;
use super::{RecordSource, SourceContext, SourceError};
use crate::config::PositiveInt;
use crate::dead_letter::DeadLetters;

/// Settings of a file source (`jsonl` or `parquet`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSourceConfig {
    /// A file, a directory (every file in it with the format's extension) or a glob.
    pub path: String,
    /// Column holding the document id; absent = a stable hash of the text.
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default = "super::records::default_text_field")]
    pub text_field: String,
    /// Extra columns carried through to the sinks.
    #[serde(default)]
    pub metadata: Vec<String>,
    /// Records per batch leaving the source.
    #[serde(default = "super::records::default_batch_rows")]
    pub batch_rows: PositiveInt,
    /// Longer texts are dead-lettered.
    #[serde(default = "super::records::default_max_text_bytes")]
    pub max_text_bytes: PositiveInt,
}

impl FileSourceConfig {
    /// A file, directory or glob with the text in `text_field`, every other key at its default.
    pub(crate) fn for_path(path: &str, text_field: &str) -> Self {
        FileSourceConfig {
            path: path.to_string(),
            id_field: None,
            text_field: text_field.to_string(),
            metadata: Vec::new(),
            batch_rows: super::records::default_batch_rows(),
            max_text_bytes: super::records::default_max_text_bytes(),
        }
    }
}

impl FileSourceConfig {
    pub(crate) fn fields(&self) -> RecordFields {
        RecordFields::new(
            &self.id_field,
            &self.text_field,
            &self.metadata,
            self.max_text_bytes,
        )
    }

    /// `validate`'s look at a file source: open it (files match, footers and
    /// columns are read) and take its schema.
    pub(crate) fn check<S: RecordSource>(
        &self,
        open: impl FnOnce(&Self, SourceContext) -> Result<S, SourceError>,
        dead_letters: &DeadLetters,
    ) -> Result<SchemaRef, SourceError> {
        open(self, SourceContext::detached(dead_letters.clone())).map(|source| source.schema())
    }
}

/// Files named by `pattern`: the file itself, a directory's files ending in
/// `.{extension}`, or a glob's matches; sorted, so runs are repeatable.
pub(crate) fn resolve_files(
    pattern: &str,
    extension: &'static str,
) -> Result<Vec<PathBuf>, SourceError> {
    let path = Path::new(pattern);
    let mut files = if path.is_file() {
        vec![path.to_path_buf()]
    } else if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let file = entry.path();
            if file.is_file() && file.extension().is_some_and(|e| e == extension) {
                files.push(file);
            }
        }
        files
    } else {
        let matches = glob::glob(pattern).map_err(|source| SourceError::BadGlob {
            pattern: pattern.to_string(),
            source,
        })?;
        matches
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect()
    };
    files.sort();
    if files.is_empty() {
        return Err(SourceError::NoFiles {
            pattern: pattern.to_string(),
            extension,
        });
    }
    Ok(files)
}

impl crate::config::RelativePaths for FileSourceConfig {
    fn rebase(&mut self, base: &Path) {
        crate::config::rebase_text(base, &mut self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_glob_and_file_resolve_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.jsonl", "a.jsonl", "c.txt"] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let d = dir.path().display().to_string();
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(resolve_files(&d, "jsonl").unwrap()),
            ["a.jsonl", "b.jsonl"]
        );
        assert_eq!(
            names(resolve_files(&format!("{d}/*.txt"), "jsonl").unwrap()),
            ["c.txt"]
        );
        assert_eq!(
            names(resolve_files(&format!("{d}/b.jsonl"), "jsonl").unwrap()),
            ["b.jsonl"]
        );
    }

    #[test]
    fn nothing_matched_is_an_error_naming_the_pattern() {
        let err = resolve_files("/no/such/dir/*.parquet", "parquet").unwrap_err();
        assert_eq!(
            err.to_string(),
            "source path `/no/such/dir/*.parquet` matches no parquet files"
        );
    }
}
