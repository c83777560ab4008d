//! Turning `path:` (a file, a directory or a glob) into a sorted file list.

use std::path::{Path, PathBuf};

use super::SourceError;

/// Files named by `pattern`: the file itself, a directory's files ending in
/// `.{extension}`, or a glob's matches; sorted, so runs are repeatable.
pub fn resolve_files(pattern: &str, extension: &'static str) -> Result<Vec<PathBuf>, SourceError> {
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
