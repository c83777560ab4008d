//! Loading the ONNX Runtime shared library (`ort` with `load-dynamic`): from
//! `ORT_DYLIB_PATH`, the stage config, or the project's setup location.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use super::{ModelError, models_dirs};

/// File name the setup script installs under `models/onnxruntime/`.
const SETUP_LIBRARY: &str = "onnxruntime/libonnxruntime.so";

/// The process-wide environment; sessions hold only a weak reference to it.
static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static LOADED_FROM: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Where the library is looked for, in order: `ORT_DYLIB_PATH`, the stage's
/// `onnxruntime:`, the setup location, then the `onnxruntime` Python package
/// installed beside the executable (a wheel install: `bin/vecpipe` and
/// `lib/python3.X/site-packages/onnxruntime/` under one prefix).
pub(super) fn onnxruntime_candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    candidates.extend(configured.map(Path::to_path_buf));
    candidates.extend(models_dirs().into_iter().map(|dir| dir.join(SETUP_LIBRARY)));
    if let Some(prefix) = crate::install::prefix() {
        candidates.extend(python_package_library(&prefix));
    }
    candidates
}

/// `libonnxruntime.so.*` of the onnxruntime package under `prefix`, newest
/// Python first.
fn python_package_library(prefix: &Path) -> Vec<PathBuf> {
    let pattern = prefix.join("lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*");
    let mut found: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy())
        .map(|paths| paths.flatten().collect())
        .unwrap_or_default();
    found.sort();
    found.reverse();
    found
}

/// Loads ONNX Runtime once per process and returns its environment.
pub(crate) fn ensure_onnxruntime(
    configured: Option<&Path>,
) -> Result<&'static Environment, ModelError> {
    let mut loaded = LOADED_FROM.lock().unwrap_or_else(|p| p.into_inner());
    if let (Some(_), Some(environment)) = (loaded.as_ref(), ENVIRONMENT.get()) {
        return Ok(environment);
    }
    let candidates = onnxruntime_candidates(configured);
    let Some(path) = candidates.iter().find(|p| p.is_file()).cloned() else {
        return Err(ModelError::RuntimeNotFound { looked: candidates });
    };
    let load_error = |source: Box<dyn std::error::Error + Send + Sync>| ModelError::RuntimeLoad {
        path: path.clone(),
        source,
    };
    let environment = ort::init_from(&path)
        .map_err(|e| load_error(Box::new(e)))?
        .with_name("vecpipe")
        .build()
        .map_err(|e| load_error(Box::new(e)))?;
    tracing::info!(library = %path.display(), "loaded ONNX Runtime");
    *loaded = Some(path);
    Ok(ENVIRONMENT.get_or_init(|| environment))
}
