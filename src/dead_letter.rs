//! The dead-letter output: records that cannot be processed, with the reason.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How much of a bad record is kept in `raw`.
pub const RAW_LIMIT_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("dead-letter file {path}: {source}")]
pub struct DeadLetterError {
    path: PathBuf,
    source: std::io::Error,
}

/// Where dead letters go; cheap to clone and shared by all nodes.
#[derive(Clone, Default)]
pub struct DeadLetters {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    file: Option<(PathBuf, Mutex<BufWriter<File>>)>,
    count: AtomicU64,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    position: String,
    reason: &'a str,
    raw: String,
}

impl DeadLetters {
    /// Appends to a JSONL file (created with its directory when missing).
    pub fn to_file(path: &Path) -> Result<Self, DeadLetterError> {
        let err = |source| DeadLetterError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(DeadLetters {
            inner: Arc::new(Inner {
                file: Some((path.to_path_buf(), Mutex::new(BufWriter::new(file)))),
                count: AtomicU64::new(0),
            }),
        })
    }

    /// Without a dead-letter file, bad records are logged as warnings and counted.
    pub fn to_log() -> Self {
        DeadLetters::default()
    }

    /// Records one bad record. `raw` is kept up to [`RAW_LIMIT_BYTES`], lossily decoded.
    pub fn send(
        &self,
        position: impl ToString,
        reason: &str,
        raw: &[u8],
    ) -> Result<(), DeadLetterError> {
        self.inner.count.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            position: position.to_string(),
            reason,
            raw: truncated(raw),
        };
        match &self.inner.file {
            None => {
                tracing::warn!(position = %letter.position, reason, "dead letter (no dead_letter file configured)");
                Ok(())
            }
            Some((path, file)) => {
                let mut line = serde_json::to_vec(&letter).expect("a struct of strings serializes");
                line.push(b'\n');
                let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                file.write_all(&line).map_err(|source| DeadLetterError {
                    path: path.clone(),
                    source,
                })
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// Flushes and syncs the file so nothing written is lost on a crash.
    pub fn flush(&self) -> Result<(), DeadLetterError> {
        if let Some((path, file)) = &self.inner.file {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let err = |source| DeadLetterError {
                path: path.clone(),
                source,
            };
            file.flush().map_err(err)?;
            file.get_ref().sync_all().map_err(err)?;
        }
        Ok(())
    }
}

fn truncated(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(RAW_LIMIT_BYTES)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if raw.len() > RAW_LIMIT_BYTES {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_json_lines_with_truncated_raw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dl.jsonl");
        let dl = DeadLetters::to_file(&path).unwrap();
        dl.send("a.jsonl:1", "empty text", b"{}").unwrap();
        dl.send("a.jsonl:2", "too big", &vec![b'x'; 5000]).unwrap();
        dl.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["position"], "a.jsonl:1");
        assert_eq!(lines[0]["reason"], "empty text");
        assert_eq!(
            lines[1]["raw"].as_str().unwrap().chars().count(),
            RAW_LIMIT_BYTES + 1
        );
        assert_eq!(dl.count(), 2);
    }
}
