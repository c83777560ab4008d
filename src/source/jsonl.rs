//! JSON Lines: one JSON object per line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use serde::Deserialize;

use super::files::FileSourceConfig;
use super::records::{RecordFields, Rows};
use super::{RecordSource, SourceComponent, SourceContext, SourceError, resolve_files};
use crate::batch::{Ack, Envelope, Position};
use crate::dead_letter::DeadLetters;

/// `{ type: jsonl, path, id_field, text_field, metadata, ... }`: one JSON
/// object per line.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct JsonlSourceConfig(pub FileSourceConfig);

impl SourceComponent for JsonlSourceConfig {
    fn kind() -> &'static str {
        "jsonl"
    }

    fn fields(&self) -> RecordFields {
        self.0.fields()
    }

    fn open(&self, ctx: SourceContext) -> Result<Box<dyn RecordSource>, SourceError> {
        Ok(Box::new(JsonlSource::open(&self.0, ctx)?))
    }

    fn origin_key(&self) -> &'static str {
        "path"
    }

    /// Opens the files, then reads the first batch: when every record of it
    /// fails for one reason (a `text_field` no record has), says so.
    fn check(&self, _dead_letters: &DeadLetters) -> Result<SchemaRef, SourceError> {
        let sample = DeadLetters::discarding();
        let mut source = JsonlSource::open(&self.0, SourceContext::detached(sample.clone()))?;
        let schema = source.schema();
        if let Some(batch) = source.next_batch()?
            && batch.batch.num_rows() == 0
            && let Some(reason) = sample.sole_reason()
        {
            return Err(SourceError::SampleRefused {
                records: batch.ack.records() as u64,
                reason,
            });
        }
        Ok(schema)
    }
}

/// JSON overhead allowed on top of `max_text_bytes` before a line is too long to parse.
const LINE_SLACK_BYTES: usize = 64 * 1024;

pub(crate) struct JsonlSource {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<OpenFile>,
    cfg: FileSourceConfig,
    fields: RecordFields,
    schema: SchemaRef,
    ctx: SourceContext,
    line_buf: Vec<u8>,
}

struct OpenFile {
    path: Arc<PathBuf>,
    reader: BufReader<File>,
    /// 1-based number of the last line read.
    line: usize,
}

impl JsonlSource {
    pub(crate) fn open(cfg: &FileSourceConfig, ctx: SourceContext) -> Result<Self, SourceError> {
        let files = resolve_files(&cfg.path, "jsonl")?;
        let fields = cfg.fields();
        Ok(JsonlSource {
            files,
            next_file: 0,
            current: None,
            cfg: cfg.clone(),
            schema: fields.schema(),
            fields,
            ctx,
            line_buf: Vec::new(),
        })
    }

    fn open_next_file(&mut self) -> Result<bool, SourceError> {
        let Some(path) = self.files.get(self.next_file) else {
            return Ok(false);
        };
        self.next_file += 1;
        let file = File::open(path).map_err(|source| SourceError::Io {
            path: path.clone(),
            source,
        })?;
        self.current = Some(OpenFile {
            path: Arc::new(path.clone()),
            reader: BufReader::with_capacity(1 << 16, file),
            line: 0,
        });
        Ok(true)
    }
}

impl RecordSource for JsonlSource {
    fn next_batch(&mut self) -> Result<Option<Envelope>, SourceError> {
        let limit = self
            .cfg
            .max_text_bytes
            .get()
            .saturating_mul(4)
            .saturating_add(LINE_SLACK_BYTES);
        let mut rows = Rows::new(&self.fields);
        let mut records = 0;
        let mut first_line = None;
        let mut row_lines = Vec::new();
        let mut line_buf = std::mem::take(&mut self.line_buf);
        while rows.len < self.cfg.batch_rows.get() {
            if self.current.is_none() && !self.open_next_file()? {
                break;
            }
            let current = self.current.as_mut().expect("opened above");
            let read =
                read_capped_line(&mut current.reader, &mut line_buf, limit).map_err(|source| {
                    SourceError::Io {
                        path: current.path.to_path_buf(),
                        source,
                    }
                })?;
            let Some(line_len) = read else {
                // A batch never spans two files, so its position names one file.
                self.current = None;
                if records > 0 {
                    break;
                }
                continue;
            };
            current.line += 1;
            let path = current.path.clone();
            let line_no = current.line;
            if line_buf.iter().all(u8::is_ascii_whitespace) && line_len == line_buf.len() {
                continue;
            }
            let first = first_line.get_or_insert((path.clone(), line_no)).1;
            records += 1;
            let position = Position::Jsonl {
                file: path,
                line: line_no,
            };
            let outcome = if line_len > line_buf.len() {
                Err(format!(
                    "line is {line_len} bytes, over the line limit ({limit} bytes)"
                ))
            } else {
                self.fields.decode_json(&line_buf, None, &mut rows)
            };
            match outcome {
                Ok(()) => row_lines.push(line_no - first),
                Err(reason) => self.ctx.dead_letters.send(position, &reason, &line_buf)?,
            }
        }
        self.line_buf = line_buf;
        let Some((file, line)) = first_line else {
            return Ok(None);
        };
        let batch = rows.finish(self.schema.clone());
        let ack = Ack::new(
            Position::Jsonl { file, line },
            records,
            self.ctx.acks.clone(),
        )
        .with_row_offsets(&batch, row_lines);
        Ok(Some(Envelope::new(batch, ack)))
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn total_records(&self) -> Option<u64> {
        None
    }
}

/// Reads one line without its newline, keeping at most `limit` bytes in
/// `buf` (the rest is skipped). Returns the full line length, `None` at EOF.
fn read_capped_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0;
    let mut saw_any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(saw_any.then_some(total));
        }
        saw_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len();
        let consumed = done.unwrap_or(chunk.len());
        reader.consume(consumed);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
                total -= 1;
            }
            return Ok(Some(total));
        }
    }
}

impl crate::config::RelativePaths for JsonlSourceConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::RelativePaths::rebase(&mut self.0, base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_keeps_the_limit_and_reports_the_full_length() {
        let data = b"short\r\n0123456789\nlast";
        let mut reader = std::io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_capped_line(&mut reader, &mut buf, 6).unwrap(), Some(5));
        assert_eq!(buf, b"short");
        assert_eq!(
            read_capped_line(&mut reader, &mut buf, 6).unwrap(),
            Some(10)
        );
        assert_eq!(buf, b"012345");
        assert_eq!(read_capped_line(&mut reader, &mut buf, 6).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        assert_eq!(read_capped_line(&mut reader, &mut buf, 6).unwrap(), None);
    }
}
