//! `arrow` sink: Parquet or Arrow IPC files, written under a temporary name
//! and renamed when complete, optionally rotated every N rows.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use serde::Deserialize;

use super::{Durable, Sink, SinkComponent, SinkError};
use crate::batch::Envelope;
use crate::config::{Invalid, PositiveInt, Surroundings};
use crate::dead_letter::DeadLetters;

/// The file format an `arrow` sink writes, from its path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrowFormat {
    Parquet,
    Ipc,
}

impl ArrowFormat {
    /// `.parquet` → Parquet; `.arrow`, `.ipc`, `.feather` → Arrow IPC file.
    pub(crate) fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "parquet" => Some(ArrowFormat::Parquet),
            "arrow" | "ipc" | "feather" => Some(ArrowFormat::Ipc),
            _ => None,
        }
    }
}

/// `{ type: arrow, path: out/x.parquet | out/x.arrow, rotate_rows: N }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArrowSinkConfig {
    /// `.parquet` writes Parquet, `.arrow` writes an Arrow IPC file.
    pub path: PathBuf,
    /// Start a new numbered file after this many rows.
    #[serde(default)]
    pub rotate_rows: Option<PositiveInt>,
}

impl SinkComponent for ArrowSinkConfig {
    fn kind() -> &'static str {
        "arrow"
    }

    fn validate(&self, _around: &Surroundings) -> Result<(), Invalid> {
        if ArrowFormat::from_path(&self.path).is_none() {
            return Err(Invalid::at(
                "path",
                format!("`{}` must end in .parquet or .arrow", self.path.display()),
            ));
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
        Ok(Box::new(ArrowFileSink::new(self)?))
    }
}

/// Rows per Parquet row group; also bounds the writer's memory.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Flush a row group early once this much is buffered.
const ROW_GROUP_BYTES: usize = 64 << 20;

pub(crate) struct ArrowFileSink {
    path: PathBuf,
    format: ArrowFormat,
    rotate_rows: Option<usize>,
    part: usize,
    current: Option<OpenFile>,
}

struct OpenFile {
    writer: Writer,
    tmp: PathBuf,
    target: PathBuf,
    rows: usize,
}

enum Writer {
    Parquet(ArrowWriter<File>),
    Ipc(FileWriter<File>),
}

impl ArrowFileSink {
    /// With rotation, numbering starts after the parts already there.
    pub(crate) fn new(cfg: &ArrowSinkConfig) -> Result<Self, SinkError> {
        let rotate_rows = cfg.rotate_rows.map(|n| n.get());
        Ok(ArrowFileSink {
            format: ArrowFormat::from_path(&cfg.path).unwrap_or(ArrowFormat::Parquet),
            path: cfg.path.clone(),
            rotate_rows,
            part: match rotate_rows {
                Some(_) => next_free_part(&cfg.path)?,
                None => 0,
            },
            current: None,
        })
    }

    /// `out/x.parquet`, or `out/x-00003.parquet` when rotating.
    fn target(&self) -> PathBuf {
        match self.rotate_rows {
            None => self.path.clone(),
            Some(_) => {
                let stem = self.path.file_stem().unwrap_or_default().to_string_lossy();
                let ext = self.path.extension().unwrap_or_default().to_string_lossy();
                self.path
                    .with_file_name(format!("{stem}-{:05}.{ext}", self.part))
            }
        }
    }

    fn open(&mut self, schema: &SchemaRef) -> Result<&mut OpenFile, SinkError> {
        if self.current.is_none() {
            let target = self.target();
            let name = target.file_name().unwrap_or_default().to_string_lossy();
            let tmp = target.with_file_name(format!(".{name}.tmp"));
            let io_err = |source| SinkError::Io {
                path: tmp.clone(),
                source,
            };
            if let Some(dir) = tmp.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io_err)?;
            }
            let file = File::create(&tmp).map_err(io_err)?;
            let writer = match self.format {
                ArrowFormat::Parquet => {
                    let props = WriterProperties::builder()
                        .set_compression(Compression::ZSTD(
                            ZstdLevel::try_new(1).expect("level 1 is valid"),
                        ))
                        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                        .build();
                    Writer::Parquet(
                        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(
                            |source| SinkError::Parquet {
                                path: tmp.clone(),
                                source,
                            },
                        )?,
                    )
                }
                ArrowFormat::Ipc => {
                    Writer::Ipc(FileWriter::try_new(file, schema).map_err(|source| {
                        SinkError::Arrow {
                            path: tmp.clone(),
                            source,
                        }
                    })?)
                }
            };
            self.current = Some(OpenFile {
                writer,
                tmp,
                target,
                rows: 0,
            });
        }
        Ok(self.current.as_mut().expect("opened above"))
    }

    fn write_slice(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        let open = self.open(&batch.schema())?;
        let tmp = open.tmp.clone();
        match &mut open.writer {
            Writer::Parquet(w) => {
                w.write(batch)
                    .map_err(|source| parquet_error(&tmp, source))?;
                if w.in_progress_size() > ROW_GROUP_BYTES {
                    w.flush().map_err(|source| parquet_error(&tmp, source))?;
                }
            }
            Writer::Ipc(w) => w
                .write(batch)
                .map_err(|source| SinkError::Arrow { path: tmp, source })?,
        }
        open.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the current file, syncs it and renames it into place.
    fn close_current(&mut self) -> Result<(), SinkError> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        let tmp = open.tmp.clone();
        Self::complete(open).inspect_err(|_| {
            // Not published: nothing of it may stay behind.
            let _ = std::fs::remove_file(&tmp);
        })?;
        self.part += 1;
        Ok(())
    }

    /// Finishes, syncs and renames a file into place.
    fn complete(open: OpenFile) -> Result<(), SinkError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SinkError::Io { path, source }
        };
        let file = match open.writer {
            Writer::Parquet(w) => w
                .into_inner()
                .map_err(|source| parquet_error(&open.tmp, source))?,
            Writer::Ipc(mut w) => {
                w.finish().map_err(|source| SinkError::Arrow {
                    path: open.tmp.clone(),
                    source,
                })?;
                w.into_inner().map_err(|source| SinkError::Arrow {
                    path: open.tmp.clone(),
                    source,
                })?
            }
        };
        file.sync_all().map_err(io_err(&open.tmp))?;
        drop(file);
        std::fs::rename(&open.tmp, &open.target).map_err(io_err(&open.target))?;
        if let Some(dir) = open.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(dir))?;
        }
        tracing::info!(file = %open.target.display(), rows = open.rows, "wrote file");
        Ok(())
    }
}

impl Sink for ArrowFileSink {
    fn kind(&self) -> &'static str {
        "arrow"
    }

    /// The output's nearest existing ancestor must be a directory.
    fn check(&mut self, _schema: &SchemaRef) -> Result<(), SinkError> {
        let mut dir = self.path.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if d.exists() {
                if d.is_dir() {
                    return Ok(());
                }
                return Err(SinkError::Io {
                    path: d.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "exists and is not a directory",
                    ),
                });
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn write(&mut self, envelope: &Envelope) -> Result<Durable, SinkError> {
        let batch = &envelope.batch;
        let Some(limit) = self.rotate_rows else {
            self.write_slice(batch)?;
            return Ok(Durable::Nothing);
        };
        let (mut offset, mut durable) = (0, Durable::Nothing);
        loop {
            let room = limit - self.current.as_ref().map_or(0, |f| f.rows);
            let len = room.min(batch.num_rows() - offset);
            self.write_slice(&batch.slice(offset, len))?;
            offset += len;
            let completed = len == room;
            if completed {
                self.close_current()?;
            }
            if offset >= batch.num_rows() {
                return Ok(match (completed, durable) {
                    (true, _) => Durable::All,
                    (false, d) => d,
                });
            }
            if completed {
                durable = Durable::BeforeThis;
            }
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.close_current()
    }

    fn abort(&mut self) {
        if let Some(open) = self.current.take() {
            drop(open.writer);
            let _ = std::fs::remove_file(&open.tmp);
        }
    }
}

/// A Parquet error, or the I/O error inside it (a full disk, a size limit).
fn parquet_error(path: &Path, source: parquet::errors::ParquetError) -> SinkError {
    match source {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => SinkError::Io {
                    path: path.to_path_buf(),
                    source: *io,
                },
                Err(inner) => SinkError::Parquet {
                    path: path.to_path_buf(),
                    source: parquet::errors::ParquetError::External(inner),
                },
            }
        }
        source => SinkError::Parquet {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The first rotation part number after every `{stem}-NNNNN.{ext}` already in
/// the directory: a completed part is never overwritten (a resumed backfill
/// adds its parts after the first run's).
fn next_free_part(path: &Path) -> Result<usize, SinkError> {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = path.extension().unwrap_or_default().to_string_lossy();
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(SinkError::Io { path: dir, source }),
    };
    let prefix = format!("{stem}-");
    let suffix = format!(".{ext}");
    let mut next = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(&suffix))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        next = next.max(number + 1);
    }
    Ok(next)
}

impl crate::config::RelativePaths for ArrowSinkConfig {
    fn rebase(&mut self, base: &std::path::Path) {
        crate::config::rebase_path(base, &mut self.path);
    }
}
