//! Relative paths in a pipeline file name places next to the file, as docker
//! compose reads its files: `path: in/docs.jsonl` in `app/pipeline.yaml` is
//! `app/in/docs.jsonl` wherever vecpipe is started. Each component says which
//! of its settings are paths ([`RelativePaths`]); the loader rebases them once,
//! right after reading, so nothing later depends on the working directory.

use std::path::{Path, PathBuf};

/// A component's settings that name files or directories.
pub(crate) trait RelativePaths {
    /// Joins each relative path among the settings to `base`, the pipeline file's directory.
    fn rebase(&mut self, base: &Path);
}

/// `path` joined to `base` when it is relative (and not empty).
pub(crate) fn rebase_path(base: &Path, path: &mut PathBuf) {
    if path.is_relative() && !path.as_os_str().is_empty() {
        *path = base.join(&*path);
    }
}

pub(crate) fn rebase_optional(base: &Path, path: &mut Option<PathBuf>) {
    if let Some(path) = path {
        rebase_path(base, path);
    }
}

/// A path (or glob pattern) kept as text.
pub(crate) fn rebase_text(base: &Path, text: &mut String) {
    if !text.is_empty() && Path::new(text.as_str()).is_relative() {
        *text = base.join(text.as_str()).to_string_lossy().into_owned();
    }
}

/// A model (or tokenizer) setting: a path when it is written as one (`./m`,
/// `../m`) or names something next to the file; else a name, left as it is.
pub(crate) fn rebase_model(base: &Path, spec: &mut String) {
    if crate::model::is_written_as_path(spec) || base.join(spec.as_str()).exists() {
        rebase_text(base, spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_files_directory_and_others_stay() {
        let base = Path::new("app");
        let mut relative = PathBuf::from("in/docs.jsonl");
        let mut absolute = PathBuf::from("/data/docs.jsonl");
        rebase_path(base, &mut relative);
        rebase_path(base, &mut absolute);
        assert_eq!(relative, Path::new("app/in/docs.jsonl"));
        assert_eq!(absolute, Path::new("/data/docs.jsonl"));

        let mut glob = "in/*.parquet".to_string();
        rebase_text(base, &mut glob);
        assert_eq!(glob, "app/in/*.parquet");

        let (mut dir, mut name) = ("./models/m".to_string(), "all-MiniLM-L6-v2".to_string());
        rebase_model(base, &mut dir);
        rebase_model(base, &mut name);
        assert_eq!(
            (dir.as_str(), name.as_str()),
            ("app/./models/m", "all-MiniLM-L6-v2")
        );

        // A file in the working directory has an empty directory: nothing changes.
        let mut here = PathBuf::from("out.jsonl");
        rebase_path(Path::new(""), &mut here);
        assert_eq!(here, Path::new("out.jsonl"));
    }
}
