//! `jsonl` sink: one JSON object per output row, appended to a file and
//! synced after every batch — for piping into other tools (`jq`, loaders of
//! other stores).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::json::writer::{LineDelimited, WriterBuilder};
use serde::Deserialize;

use super::{Durable, Sink, SinkComponent, SinkError};
use crate::batch::Envelope;
use crate::config::{Invalid, Surroundings};
use crate::dead_letter::DeadLetters;

/// `{ type: jsonl, path: out/rows.jsonl }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonlSinkConfig {
    /// The file rows are appended to; created when missing.
    pub path: PathBuf,
}

impl SinkComponent for JsonlSinkConfig {
    fn kind() -> &'static str {
        "jsonl"
    }

    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        if self.path.file_name().is_none() {
            return Err(Invalid::at("path", "must name a file"));
        }
        Ok(())
    }

    fn output_file(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn destination_key(&self) -> &'static str {
        "path"
    }

    fn build(&self, _dead_letters: &DeadLetters) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(JsonlSink {
            path: self.path.clone(),
            file: None,
        }))
    }
}

struct JsonlSink {
    path: PathBuf,
    /// Opened by `prepare`.
    file: Option<File>,
}

impl JsonlSink {
    fn io_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The rows as JSON lines (every column, nulls included), then one line
    /// `{"doc_id": …, "deleted": true}` per deleted document.
    fn lines(&self, envelope: &Envelope) -> Result<Vec<u8>, SinkError> {
        let mut buffer = Vec::new();
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(&mut buffer);
        let arrow_error = |source| SinkError::Arrow {
            path: self.path.clone(),
            source,
        };
        writer.write(&envelope.batch).map_err(arrow_error)?;
        writer.finish().map_err(arrow_error)?;
        for doc_id in &envelope.deletes {
            let line = serde_json::json!({ "doc_id": doc_id, "deleted": true });
            buffer.extend_from_slice(line.to_string().as_bytes());
            buffer.push(b'\n');
        }
        Ok(buffer)
    }
}

impl Sink for JsonlSink {
    fn kind(&self) -> &'static str {
        "jsonl"
    }

    /// Opens the file for appending (creating its directory) and drops a last line left unfinished
    /// by a crash (its batch was never confirmed, so it comes again).
    fn prepare(&mut self, _schema: &SchemaRef) -> Result<(), SinkError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io_error(e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| self.io_error(e))?;
        trim_unfinished_line(&mut file).map_err(|e| self.io_error(e))?;
        self.file = Some(file);
        Ok(())
    }

    /// The file can be appended to, or created (with its directories).
    fn check(&mut self, _schema: &SchemaRef) -> Result<(), SinkError> {
        match OpenOptions::new().append(true).open(&self.path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // The nearest existing ancestor must be a directory we can write to.
                let dir = self
                    .path
                    .ancestors()
                    .skip(1)
                    .map(|dir| {
                        if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir
                        }
                    })
                    .find(|dir| dir.exists())
                    .unwrap_or(Path::new("."));
                match std::fs::metadata(dir) {
                    Ok(meta) if meta.is_dir() && !meta.permissions().readonly() => Ok(()),
                    Ok(_) => Err(SinkError::Io {
                        path: dir.to_path_buf(),
                        source: std::io::Error::new(
                            ErrorKind::PermissionDenied,
                            "not a writable directory",
                        ),
                    }),
                    Err(source) => Err(SinkError::Io {
                        path: dir.to_path_buf(),
                        source,
                    }),
                }
            }
            Err(e) => Err(self.io_error(e)),
        }
    }

    fn write(&mut self, envelope: &Envelope) -> Result<Durable, SinkError> {
        let lines = self.lines(envelope)?;
        let file = self.file.as_mut().ok_or_else(|| SinkError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("written before it was prepared"),
        })?;
        let written = file.write_all(&lines).and_then(|()| file.sync_data());
        written.map_err(|e| self.io_error(e))?;
        Ok(Durable::All)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        // Every write was synced.
        Ok(())
    }

    fn abort(&mut self) {
        self.file = None;
    }
}

/// Cuts the file after its last newline, when it does not end with one.
fn trim_unfinished_line(file: &mut File) -> std::io::Result<()> {
    const STEP: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(STEP);
        chunk.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        if let Some(newline) = chunk.iter().rposition(|&b| b == b'\n') {
            let keep = start + newline as u64 + 1;
            if keep < len {
                tracing::warn!(bytes = len - keep, "dropping an unfinished last line");
                file.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    if len > 0 {
        file.set_len(0)?;
    }
    Ok(())
}

impl crate::config::RelativePaths for JsonlSinkConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::rebase_path(base, &mut self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::trim_unfinished_line;

    fn trimmed(content: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.jsonl");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        trim_unfinished_line(&mut file).unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn an_unfinished_last_line_is_cut_and_whole_lines_are_kept() {
        assert_eq!(
            trimmed(b"{\"a\":1}\n{\"a\":2}\n{\"a\""),
            b"{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(trimmed(b"{\"a\":1}\n"), b"{\"a\":1}\n");
        assert_eq!(trimmed(b"{\"a\""), b"");
        assert_eq!(trimmed(b""), b"");
        let long = [vec![b'x'; 200_000], b"\n".to_vec(), vec![b'y'; 100_000]].concat();
        assert_eq!(
            trimmed(&long),
            [vec![b'x'; 200_000], b"\n".to_vec()].concat()
        );
    }
}
