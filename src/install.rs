//! Where this binary is installed, for the lookups that search beside it:
//! its directory (a venv's `bin/`, where pip puts `vecpipe`, `python3` and
//! `milvus-lite`), its prefix (the venv, whose `lib/python3.*/site-packages`
//! holds the onnxruntime package), and the checkout it was built in
//! (`target/{debug,release}/vecpipe`, for `models/` and `.venv/`).

use std::path::PathBuf;

/// The directory holding the executable.
pub(crate) fn bin_dir() -> Option<PathBuf> {
    Some(std::env::current_exe().ok()?.parent()?.to_path_buf())
}

/// The directory above [`bin_dir`].
pub(crate) fn prefix() -> Option<PathBuf> {
    Some(bin_dir()?.parent()?.to_path_buf())
}

/// The repository root, when the executable is a cargo build inside one.
pub(crate) fn checkout() -> Option<PathBuf> {
    prefix()?
        .parent()
        .filter(|root| root.join("Cargo.toml").is_file())
        .map(PathBuf::from)
}
