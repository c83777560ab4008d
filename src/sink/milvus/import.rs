//! `mode: import`: a bounded run's rows reach Milvus through bulk import
//! instead of upserts. They are written as Parquet files in the collection's
//! exact layout (its field names; `int64`, `double`, `bool`, `utf8`;
//! `list<float32>` vectors; ARRAY fields as lists; JSON fields as JSON text;
//! fields the server computes left out) where the server reads them (under
//! `import_dir`, or uploaded to its bucket: `import_place.rs`); each full
//! file becomes one import job (gRPC `Import`, which Milvus 2.3 has), polled
//! until it completed and its rows are counted, its stage shown beside the
//! run's bar.
//!
//! Import appends. So that a file imported twice (a run killed after its job
//! completed but before the backfill state recorded it, then resumed) leaves
//! no duplicates, and an updated document leaves no old chunks, the
//! documents of a file are deleted just before its job starts — the same
//! replace-by-document an upsert run does.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use milvus::proto::common::{ImportState, KeyValuePair};
use milvus::proto::milvus::milvus_service_client::MilvusServiceClient;
use milvus::proto::milvus::{GetImportStateRequest, ImportRequest};
use parquet::arrow::ArrowWriter;
use tokio::runtime::Handle;

use super::config::MilvusSinkConfig;
use super::import_place::ImportPlace;
use super::schema::{CollectionPlan, FieldKind};
use super::{MilvusError, poll};
use crate::batch::columns;
use crate::progress::SinkStatus;

/// Bytes of a row group before it is closed (pymilvus' BulkWriter uses ~32 MB).
const ROW_GROUP_BYTES: usize = 32 << 20;
/// The generated gRPC client, on a channel of its own.
type ImportClient = MilvusServiceClient<tonic::transport::Channel>;

/// How often a job's state is asked.
const POLL: Duration = Duration::from_millis(500);
/// How long imported rows may take to be counted after the job completed
/// (Milvus 2.3 loads the new segments some seconds later).
const VISIBLE_WITHIN: Duration = Duration::from_secs(300);

/// The open import file and the jobs' client.
pub(super) struct Importer {
    place: ImportPlace,
    file_bytes: usize,
    file_rows: usize,
    keep_files: bool,
    collection: String,
    db: String,
    uri: String,
    token: Option<String>,
    /// With an `https://` uri: the sink's `tls` settings for the job's channel.
    tls: Option<tonic::transport::ClientTlsConfig>,
    runtime: Handle,
    /// The layout every file has.
    schema: SchemaRef,
    open: Option<OpenFile>,
    /// Files written by this run, for their names.
    files: usize,
    /// A name unique to this run, so two runs never share a file.
    run: String,
    /// Where a job's progress is shown, in a run.
    status: Option<SinkStatus>,
}

struct OpenFile {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
    /// The documents it holds (deleted before its job starts).
    documents: Vec<String>,
    /// Its place among the run's files, from 1.
    number: usize,
}

impl Importer {
    pub(super) fn new(
        cfg: &MilvusSinkConfig,
        plan: &CollectionPlan,
        runtime: Handle,
        status: Option<SinkStatus>,
    ) -> Result<Self, MilvusError> {
        Ok(Importer {
            place: ImportPlace::new(cfg, runtime.clone())?,
            file_bytes: cfg.import_file_mib.get() << 20,
            file_rows: cfg.import_file_rows.map_or(usize::MAX, |r| r.get()),
            keep_files: cfg.keep_import_files,
            collection: cfg.collection.clone(),
            db: cfg.db.clone(),
            uri: cfg.uri.clone(),
            token: cfg.token().map(str::to_string),
            tls: import_tls(cfg)?,
            runtime,
            schema: import_schema(plan)?,
            open: None,
            files: 0,
            run: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            ),
            status,
        })
    }

    /// Appends `batch` to the open file; true when the file is full and its
    /// job should run now.
    pub(super) fn append(
        &mut self,
        plan: &CollectionPlan,
        batch: &RecordBatch,
    ) -> Result<bool, MilvusError> {
        let rows = import_rows(plan, batch, &self.schema)?;
        if self.open.is_none() {
            self.files += 1;
            let path = self.place.local_path(&format!(
                "{}-{}-{:05}.parquet",
                self.collection, self.run, self.files
            ));
            let file = File::create(&path).map_err(|source| MilvusError::Io {
                path: path.clone(),
                source,
            })?;
            let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(writer_properties()))
                .map_err(|source| MilvusError::ImportFile {
                    path: path.clone(),
                    source,
                })?;
            self.open = Some(OpenFile {
                path,
                writer,
                rows: 0,
                documents: Vec::new(),
                number: self.files,
            });
        }
        let open = self.open.as_mut().expect("opened above");
        let failed = |source| MilvusError::ImportFile {
            path: open.path.clone(),
            source,
        };
        open.writer.write(&rows).map_err(failed)?;
        if open.writer.in_progress_size() >= ROW_GROUP_BYTES {
            open.writer
                .flush()
                .map_err(|source| MilvusError::ImportFile {
                    path: open.path.clone(),
                    source,
                })?;
        }
        open.rows += rows.num_rows();
        open.documents.extend(documents_of(batch));
        Ok(open.rows >= self.file_rows
            || open.writer.bytes_written() + open.writer.in_progress_size() >= self.file_bytes)
    }

    /// Removes the open file: its batches were never confirmed.
    pub(super) fn discard(&mut self) {
        if let Some(open) = self.open.take() {
            drop(open.writer);
            let _ = std::fs::remove_file(&open.path);
        }
    }

    /// Closes the open file (if any) and returns what its job must replace.
    pub(super) fn close(&mut self) -> Result<Option<ClosedFile>, MilvusError> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        let path = open.path;
        open.writer
            .close()
            .map_err(|source| MilvusError::ImportFile {
                path: path.clone(),
                source,
            })?;
        let mut documents = open.documents;
        documents.sort();
        documents.dedup();
        let server_path = self.place.publish(&path)?;
        Ok(Some(ClosedFile {
            server_path,
            rows: open.rows,
            documents,
            number: open.number,
        }))
    }

    /// Runs the import job of `file` to completion, has the server load
    /// the new segments (`load_new_segments`), waits until `counted` (the
    /// collection's row count) reaches `expected`, and removes the file
    /// (unless kept).
    pub(super) fn import(
        &self,
        file: &ClosedFile,
        load_new_segments: impl Fn() -> Result<(), MilvusError>,
        counted: impl Fn() -> Result<usize, MilvusError>,
        expected: usize,
    ) -> Result<(), MilvusError> {
        let started = Instant::now();
        // One channel for the job: its start and every poll.
        let mut client = self.runtime.block_on(self.client())?;
        let task = self
            .runtime
            .block_on(self.start(&mut client, &file.server_path))?;
        tracing::info!(collection = %self.collection, task, rows = file.rows, file = %self.place.shown(&file.server_path), "import job started");
        if let Err(e) = self.runtime.block_on(self.wait(&mut client, task, file)) {
            self.remove(file);
            return Err(e);
        }
        let job = started.elapsed();
        load_new_segments()?;
        let short = |counted: &Result<usize, MilvusError>| match counted {
            Ok(seen) if *seen < expected => {
                self.show(file, format_args!("completed; waiting until its rows are searchable ({seen} of {expected} counted)"));
                true
            }
            _ => false,
        };
        let seen = poll(VISIBLE_WITHIN, POLL, counted, short)?;
        if seen < expected {
            return Err(MilvusError::ImportNotVisible {
                collection: self.collection.clone(),
                task,
                expected,
                seen,
            });
        }
        tracing::info!(collection = %self.collection, task, rows = file.rows, ?job, visible = ?started.elapsed(), "import job completed");
        if let Some(status) = &self.status {
            status.clear();
        }
        self.remove(file);
        Ok(())
    }

    /// Shows where the job of `file` stands beside the run's bar.
    fn show(&self, file: &ClosedFile, now: std::fmt::Arguments) {
        if let Some(status) = &self.status {
            status.set(format!(
                "milvus: import job {} ({} rows into {}) {now}",
                file.number,
                indicatif::HumanCount(file.rows as u64),
                self.collection
            ));
        }
    }

    /// Removes a file whose job ended, unless asked to keep it.
    fn remove(&self, file: &ClosedFile) {
        if !self.keep_files {
            self.place.remove(&file.server_path);
        }
    }

    async fn client(&self) -> Result<ImportClient, MilvusError> {
        let failed = |source| MilvusError::ImportConnect {
            uri: self.uri.clone(),
            source,
        };
        let mut endpoint =
            tonic::transport::Channel::from_shared(self.uri.clone()).map_err(|source| {
                MilvusError::ImportUri {
                    uri: self.uri.clone(),
                    source,
                }
            })?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone()).map_err(failed)?;
        }
        let channel = endpoint.connect().await.map_err(failed)?;
        Ok(MilvusServiceClient::new(channel))
    }

    /// A request carrying the token and database the SDK would send.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            use base64::Engine;
            let value = base64::engine::general_purpose::STANDARD.encode(token);
            if let Ok(value) = value.parse() {
                request.metadata_mut().insert("authorization", value);
            }
        }
        if let Ok(db) = self.db.parse() {
            request.metadata_mut().insert("dbname", db);
        }
        request
    }

    async fn start(&self, client: &mut ImportClient, path: &str) -> Result<i64, MilvusError> {
        let response = client
            .import(self.request(ImportRequest {
                collection_name: self.collection.clone(),
                files: vec![path.to_string()],
                db_name: self.db.clone(),
                ..Default::default()
            }))
            .await
            .map_err(|source| self.rpc_failed("import", source))?
            .into_inner();
        refused(&self.collection, response.status.as_ref())?;
        response
            .tasks
            .first()
            .copied()
            .ok_or_else(|| MilvusError::ImportFailed {
                collection: self.collection.clone(),
                file: self.place.shown(path),
                reason: "the server started no import task".into(),
            })
    }

    async fn wait(
        &self,
        client: &mut ImportClient,
        task: i64,
        file: &ClosedFile,
    ) -> Result<(), MilvusError> {
        let mut last = None;
        self.show(file, format_args!("started"));
        loop {
            let state = client
                .get_import_state(self.request(GetImportStateRequest { task }))
                .await
                .map_err(|source| self.rpc_failed("get_import_state", source))?
                .into_inner();
            refused(&self.collection, state.status.as_ref())?;
            let info = |key: &str| {
                state
                    .infos
                    .iter()
                    .find(|KeyValuePair { key: k, .. }| k == key)
                    .map(|kv| kv.value.clone())
            };
            match ImportState::try_from(state.state) {
                Ok(ImportState::ImportCompleted) => return Ok(()),
                Ok(ImportState::ImportFailed | ImportState::ImportFailedAndCleaned) => {
                    return Err(MilvusError::ImportFailed {
                        collection: self.collection.clone(),
                        file: self.place.shown(&file.server_path),
                        reason: info("failed_reason").unwrap_or_else(|| "no reason given".into()),
                    });
                }
                now => {
                    let percent = info("progress_percent").unwrap_or_else(|| "0".into());
                    let stage = match now {
                        Ok(ImportState::ImportPending) => "waiting for a data node",
                        Ok(ImportState::ImportStarted) => "reading the file",
                        _ => "persisting",
                    };
                    self.show(file, format_args!("{stage}, {percent}%"));
                    if last != Some(state.state) {
                        tracing::info!(task, state = ?now, progress = percent, "import job");
                        last = Some(state.state);
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn rpc_failed(&self, operation: &'static str, source: tonic::Status) -> MilvusError {
        MilvusError::ImportRpc {
            operation,
            collection: self.collection.clone(),
            source: Box::new(source),
        }
    }
}

/// A written import file, where the server reads it: its rows and documents.
pub(super) struct ClosedFile {
    /// The path the server is given (in its bucket, a key).
    pub server_path: String,
    pub rows: usize,
    pub documents: Vec<String>,
    /// Its place among the run's files, from 1.
    pub number: usize,
}

/// The job channel's TLS, from the sink's `tls` settings (as the SDK's
/// connection has them), when the uri is `https://`.
fn import_tls(
    cfg: &MilvusSinkConfig,
) -> Result<Option<tonic::transport::ClientTlsConfig>, MilvusError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    if !cfg.uri.starts_with("https://") {
        return Ok(None);
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| MilvusError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let tls = &cfg.tls;
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca_file {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
        None => config.with_native_roots(),
    };
    if let Some(name) = &tls.server_name {
        config = config.domain_name(name.clone());
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert_file, &tls.client_key_file) {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(Some(config))
}

/// Import files are read once, by the server, next to where they are
/// written: no dictionaries or statistics (which cost most of the writing
/// of vector columns) and no compression.
fn writer_properties() -> parquet::file::properties::WriterProperties {
    parquet::file::properties::WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .set_compression(parquet::basic::Compression::UNCOMPRESSED)
        .build()
}

/// A status other than success as the failure it reports.
fn refused(
    collection: &str,
    status: Option<&milvus::proto::common::Status>,
) -> Result<(), MilvusError> {
    // Milvus 2.3 reports a failure in the deprecated `error_code`; later
    // servers in `code`.
    #[allow(deprecated)]
    let failed =
        |status: &milvus::proto::common::Status| status.error_code != 0 || status.code != 0;
    match status {
        Some(status) if failed(status) => Err(MilvusError::ImportRefused {
            collection: collection.to_string(),
            code: status.code,
            reason: status.reason.clone(),
        }),
        _ => Ok(()),
    }
}

/// The documents of a batch's rows: `doc_id` when chunked, else `id`.
fn documents_of(batch: &RecordBatch) -> Vec<String> {
    let column = batch
        .column_by_name(columns::DOC_ID)
        .or_else(|| batch.column_by_name(columns::ID));
    column
        .and_then(|c| c.as_string_opt::<i32>())
        .map(|ids| ids.iter().flatten().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The Arrow type of a planned field in an import file.
fn import_type(kind: &FieldKind) -> Result<DataType, MilvusError> {
    Ok(match kind {
        FieldKind::PrimaryKey | FieldKind::VarChar(_) | FieldKind::Json => DataType::Utf8,
        FieldKind::Int64 => DataType::Int64,
        FieldKind::Double => DataType::Float64,
        FieldKind::Bool => DataType::Boolean,
        FieldKind::Array(element) => {
            DataType::List(Arc::new(Field::new("item", element.arrow_type(), true)))
        }
        FieldKind::FloatVector(_) => {
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true)))
        }
        FieldKind::SparseVector => {
            return Err(MilvusError::Config(
                "`mode: import` does not write sparse vectors yet; use `mode: upsert` for a pipeline with a sparse field".into(),
            ));
        }
    })
}

/// The import files' schema: every field the pipeline writes, by its
/// collection name and import type.
fn import_schema(plan: &CollectionPlan) -> Result<SchemaRef, MilvusError> {
    let fields = plan
        .fields
        .iter()
        .filter(|f| f.column.is_some())
        .map(|f| Ok(Field::new(&f.name, import_type(&f.kind)?, false)))
        .collect::<Result<Vec<_>, MilvusError>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// `batch` in the import layout: each planned field cast to its import
/// type, JSON fields as JSON text, and nulls (which Milvus 2.3 fields cannot
/// hold) as the type's empty value, as the upsert path writes them.
fn import_rows(
    plan: &CollectionPlan,
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, MilvusError> {
    let arrow = |e: arrow::error::ArrowError| MilvusError::ImportLayout(e);
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for field in plan.fields.iter().filter(|f| f.column.is_some()) {
        let array = batch.column(field.column.expect("filtered"));
        let target = import_type(&field.kind)?;
        let converted: ArrayRef = match &field.kind {
            FieldKind::Json => {
                let values = super::rows::json_values(array).map_err(arrow)?;
                Arc::new(StringArray::from_iter_values(
                    values.iter().map(|v| v.to_string()),
                ))
            }
            _ => arrow::compute::cast(array, &target).map_err(arrow)?,
        };
        arrays.push(without_nulls(converted).map_err(arrow)?);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(arrow)
}

/// `array` with each null replaced by its type's empty value (`""`, 0,
/// false, an empty list).
fn without_nulls(array: ArrayRef) -> Result<ArrayRef, arrow::error::ArrowError> {
    if array.null_count() == 0 {
        return Ok(array);
    }
    let empty: ArrayRef = match array.data_type() {
        DataType::List(item) => Arc::new(ListArray::new(
            item.clone(),
            OffsetBuffer::from_lengths([0]),
            arrow::array::new_empty_array(item.data_type()),
            None,
        )),
        DataType::Utf8 => Arc::new(StringArray::from(vec![""])),
        DataType::Int64 => Arc::new(arrow::array::Int64Array::from(vec![0])),
        DataType::Float64 => Arc::new(arrow::array::Float64Array::from(vec![0.0])),
        DataType::Boolean => Arc::new(arrow::array::BooleanArray::from(vec![false])),
        _ => return Ok(array),
    };
    let valid = arrow::compute::is_not_null(&array)?;
    let filled =
        arrow::compute::kernels::zip::zip(&valid, &array, &arrow::array::Scalar::new(empty))?;
    // `zip` keeps the validity of the chosen side; the result has none.
    let data = filled.to_data().into_builder().nulls(None).build()?;
    Ok(arrow::array::make_array(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{FixedSizeListArray, Float32Array, Int32Array};

    #[test]
    fn nulls_become_empty_values_and_vectors_become_lists() {
        let texts: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
        let filled = without_nulls(texts).unwrap();
        assert_eq!(filled.null_count(), 0);
        assert_eq!(filled.as_string::<i32>().value(1), "");

        let numbers: ArrayRef = Arc::new(Int32Array::from(vec![None, Some(3)]));
        let numbers = arrow::compute::cast(&numbers, &DataType::Int64).unwrap();
        let filled = without_nulls(numbers).unwrap();
        let filled = filled.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!((filled.value(0), filled.value(1)), (0, 3));

        let vectors = FixedSizeListArray::new(
            Arc::new(Field::new("item", DataType::Float32, true)),
            2,
            Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0])),
            None,
        );
        let target = import_type(&FieldKind::FloatVector(2)).unwrap();
        let lists = arrow::compute::cast(&vectors, &target).unwrap();
        assert_eq!(lists.as_list::<i32>().value(1).len(), 2);
    }
}
