//! `milvus` sink: idempotent upserts of chunks (dense + sparse fields) into a
//! Milvus collection created from the pipeline's schema; stale chunks of
//! re-ingested documents are deleted; embedded Milvus Lite when `uri` is a path.

mod config;
mod held;
mod import;
mod import_place;
mod latest;
mod lite;
mod rows;
mod schema;
mod server;
mod tls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::UInt32Type;
use arrow::record_batch::RecordBatch;
use milvus::v2::prelude::{
    ClientV2, CollectionSchema, ConnectConfig, ConsistencyLevel, CreateCollectionRequest,
    CreateIndexRequest, DeleteRequest, DescribeCollectionRequest, DropCollectionRequest,
    Error as SdkError, FlushRequest, GetServerVersionRequest, HasCollectionRequest, InsertRequest,
    LoadCollectionRequest, QueryRequest, RefreshLoadRequest, RetryConfig, UpsertRequest,
};
use tokio::runtime::Handle;

pub(crate) use lite::{MilvusLite, is_local_path};
pub(crate) use schema::CollectionPlan;
pub(crate) use schema::param_text;
pub(crate) use server::{Feature, ServerVersion};

use super::{Durable, Sink, SinkError};
use crate::batch::{Ack, Envelope, columns};
use crate::dead_letter::DeadLetters;
use crate::progress::SinkStatus;
pub(crate) use config::{
    Bm25Mode, CreateMode, IndexConfig, IndexSpec, MilvusSinkConfig, VectorKind, WriteMode,
};

#[derive(Debug, thiserror::Error)]
pub enum MilvusError {
    #[error(
        "Milvus Lite is not installed (looked at: {looked}); install it with \
         `pip install milvus-lite==3.2.2 pymilvus==3.0.2`, run scripts/setup.sh, or set the sink's `milvus_lite:`"
    )]
    LiteNotInstalled { looked: String },
    #[error("Milvus Lite on {}: {message}", data_dir.display())]
    LiteFailed { data_dir: PathBuf, message: String },
    #[error(
        "Milvus Lite data directory {} is in use by another process (a running `vecpipe run` or `daemon`, or a Python client): wait until it ends, or write to a Milvus server both can share",
        data_dir.display()
    )]
    LiteLocked { data_dir: PathBuf },
    #[error(
        "`uri: {}` is a file, but Milvus Lite keeps a data directory: name a new directory (a `.db` file of pymilvus' older Milvus Lite cannot be read)",
        path.display()
    )]
    LiteUriIsFile { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to Milvus at {uri}: TLS: {problem}")]
    Tls { uri: String, problem: String },
    #[error("cannot connect to Milvus at {uri}")]
    Connect {
        uri: String,
        #[source]
        source: Box<SdkError>,
    },
    #[error(
        "collection `{collection}` does not fit this pipeline: {problems}.\n  Milvus:   {milvus}\n  pipeline: {pipeline}"
    )]
    SchemaMismatch {
        collection: String,
        problems: String,
        milvus: String,
        pipeline: String,
    },
    #[error("collection `{0}` does not exist and the sink has `create: never`")]
    Missing(String),
    #[error(
        "collection `{collection}` would have no vector field: add a dense or bm25 stage, or `bm25: server`"
    )]
    NoVectors { collection: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    DeadLetter(#[from] crate::dead_letter::DeadLetterError),
    #[error(
        "listing `{collection}` found {listed} rows but the server counts {counted}; nothing was deleted (is another writer running?)"
    )]
    IncompleteListing {
        collection: String,
        listed: usize,
        counted: usize,
    },
    #[error(
        "Milvus {version} at {uri} cannot serve {}: that needs Milvus ≥ {}.{}; change the pipeline or use a newer server",
        feature.describe(), feature.since().0, feature.since().1
    )]
    Unsupported {
        uri: String,
        version: ServerVersion,
        feature: Feature,
    },
    #[error(
        "the server refused the collection's index (the collection this run created was dropped)"
    )]
    IndexRefused(#[source] Box<MilvusError>),
    #[error("keeping each document's last version of a batch")]
    Versions(#[source] arrow::error::ArrowError),
    #[error("cannot write the import file {}", path.display())]
    ImportFile {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("cannot put a batch in the collection's import layout")]
    ImportLayout(#[source] arrow::error::ArrowError),
    #[error("`{uri}` is not a uri an import can be sent to")]
    ImportUri {
        uri: String,
        #[source]
        source: tonic::codegen::http::uri::InvalidUri,
    },
    #[error("cannot connect to Milvus at {uri} for an import")]
    ImportConnect {
        uri: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("Milvus {operation} on `{collection}` failed")]
    ImportRpc {
        operation: &'static str,
        collection: String,
        #[source]
        source: Box<tonic::Status>,
    },
    #[error("Milvus refused the import into `{collection}` (code {code}): {reason}")]
    ImportRefused {
        collection: String,
        code: i32,
        reason: String,
    },
    #[error(
        "the import job of {file} into `{collection}` failed: {reason}; nothing of it was recorded (`--resume` writes and imports it again)"
    )]
    ImportFailed {
        collection: String,
        file: String,
        reason: String,
    },
    #[error(
        "`import_s3` (bucket `{bucket}`) needs ${var} in the environment: the bucket's keys come from there, never from the pipeline file"
    )]
    ImportKeyMissing { bucket: String, var: &'static str },
    #[error("cannot reach the import bucket `{bucket}`")]
    ImportStore {
        bucket: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("cannot upload the import file {file}")]
    ImportUpload {
        file: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error(
        "import job {task} into `{collection}` completed, but the collection counts {seen} rows, not {expected}, after 5 minutes"
    )]
    ImportNotVisible {
        collection: String,
        task: i64,
        expected: usize,
        seen: usize,
    },
    #[error("Milvus {operation} on `{collection}` failed")]
    Request {
        operation: &'static str,
        collection: String,
        #[source]
        source: Box<SdkError>,
    },
}

/// The row-count query's one output field.
const COUNT: &str = "count(*)";

/// How long the SDK retries one call before our own retries take over.
const SDK_RETRY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a failed create waits for another writer's collection to show.
const CREATE_RACE_WAIT: Duration = Duration::from_secs(5);

/// How long the end of a run waits for the server to seal what it wrote.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Milvus' code for a collection that is not loaded: a restarted server
/// brings its collections back released (both servers answer it so).
const COLLECTION_NOT_LOADED: i32 = 101;

/// Milvus' code for a channel that is not available: Milvus 2.3 answers it
/// to a delete that meets the collection while it is being released
/// ("delegator closed during wait tsafe"); a moment later the collection is
/// released (101, loaded again) or served.
const CHANNEL_NOT_AVAILABLE: i32 = 503;

/// Milvus' code for a collection without an index: one a sink has just
/// created answers it to a load until the sink's `create_index` is through.
const INDEX_NOT_FOUND: i32 = 700;

/// How long a lookup waits for a collection created meanwhile (by this
/// run's own sink, which creates it, then its index) to have its index.
const INDEX_WAIT: Duration = Duration::from_secs(30);

/// How often a wait for another writer (its collection, its index) asks.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Calls `call` every `every` while `again` says its answer is worth
/// asking for once more and `wait` has not passed; the last answer.
pub(super) fn poll<T>(
    wait: Duration,
    every: Duration,
    mut call: impl FnMut() -> T,
    again: impl Fn(&T) -> bool,
) -> T {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let answer = call();
        if !again(&answer) || std::time::Instant::now() >= deadline {
            return answer;
        }
        std::thread::sleep(every);
    }
}

fn is_index_missing(e: &SdkError) -> bool {
    matches!(e, SdkError::Server(status) if status.code() == INDEX_NOT_FOUND)
}

fn is_not_loaded(e: &SdkError) -> bool {
    matches!(e, SdkError::Server(status) if status.code() == COLLECTION_NOT_LOADED)
}

/// Transport trouble is worth retrying, and so is a channel caught between
/// release and load; any other verdict of the server on a request is not.
fn is_transient(e: &SdkError) -> bool {
    matches!(
        e,
        SdkError::Grpc(_)
            | SdkError::Timeout(_)
            | SdkError::RetryExhausted { .. }
            | SdkError::Cancelled(_)
    ) || matches!(e, SdkError::Server(status) if status.code() == CHANNEL_NOT_AVAILABLE)
}

/// Whether the sink's last call to Milvus went through, shared by its
/// writes and its lookups; reported as `vecpipe_sink_healthy` and `/health`.
#[derive(Clone)]
pub(super) struct Health(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Default for Health {
    fn default() -> Self {
        Health(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            true,
        )))
    }
}

impl Health {
    pub(super) fn set(&self, healthy: bool) {
        let was = self.0.swap(healthy, std::sync::atomic::Ordering::Relaxed);
        crate::metrics::set_sink_healthy("milvus", healthy, was);
    }
}

/// What the sink's collection holds of documents, through `connection`
/// (for readers such as `eval`, outside a run: no health to report).
pub(crate) fn documents_of(
    connection: std::sync::Arc<MilvusConnection>,
    runtime: Handle,
    cfg: &MilvusSinkConfig,
) -> Box<dyn crate::sink::DocumentStore> {
    Box::new(held::MilvusDocuments::new(
        connection,
        runtime,
        cfg,
        Health::default(),
    ))
}

/// `field in [...]` filters, `per_filter` values each.
pub(super) fn in_filters<S: AsRef<str>>(
    field: &str,
    values: &[S],
    per_filter: usize,
) -> Vec<String> {
    values
        .chunks(per_filter.max(1))
        .map(|group| {
            let quoted: Vec<String> = group
                .iter()
                .map(|v| serde_json::to_string(v.as_ref()).expect("a string serializes"))
                .collect();
            format!("{field} in [{}]", quoted.join(", "))
        })
        .collect()
}

impl crate::retry::Transient for Box<SdkError> {
    fn is_transient(&self) -> bool {
        is_transient(self)
    }
}

/// Runs `call` under the one retry policy (`crate::retry`): transient
/// failures are retried `max_retries` times (`None`: no limit), backing off
/// from 0.5 s to 30 s with jitter; `on_retry` hears of each and the wait.
pub(super) fn with_retries<T>(
    max_retries: Option<usize>,
    on_retry: impl FnMut(&Box<SdkError>, Duration),
    call: impl FnMut() -> Result<T, Box<SdkError>>,
) -> Result<T, Box<SdkError>> {
    crate::retry::RetryPolicy::milvus(max_retries).run(on_retry, call)
}

/// A client, and the embedded server behind it when `uri` is a path.
pub(crate) struct MilvusConnection {
    pub client: ClientV2,
    /// What the server answered when asked its version.
    pub version: ServerVersion,
    /// Dropped last: stops the embedded server.
    _lite: Option<MilvusLite>,
}

/// The calls every user of a connection makes on a collection (the sink,
/// its document store, search); each caller maps errors and retries its way.
impl MilvusConnection {
    pub(crate) async fn exists(&self, collection: &str) -> Result<bool, SdkError> {
        let request = HasCollectionRequest::builder()
            .collection_name(collection)
            .build()?;
        Ok(self.client.has_collection(request).await?.exists())
    }

    pub(crate) async fn schema(&self, collection: &str) -> Result<CollectionSchema, SdkError> {
        let request = DescribeCollectionRequest::builder()
            .collection_name(collection)
            .build()?;
        let described = self.client.describe_collection(request).await?;
        Ok(described.description().get_schema().clone())
    }

    /// The collection's row count (`count(*)`, strongly consistent); an
    /// answer without a count is a malformed response.
    pub(crate) async fn count(&self, collection: &str) -> Result<usize, SdkError> {
        let request = QueryRequest::builder()
            .collection_name(collection)
            .output_fields([COUNT])
            .consistency_level(ConsistencyLevel::Strong)
            .build()?;
        let response = self.client.query(request).await?;
        let mut rows = response.results().rows()?;
        let counted = match rows.next() {
            Some(row) => row
                .to_entity_row()?
                .get(COUNT)
                .and_then(serde_json::Value::as_u64),
            None => None,
        };
        counted.map(|n| n as usize).ok_or_else(|| {
            SdkError::MalformedResponse(format!("`{COUNT}` on `{collection}` without a count"))
        })
    }

    /// Loads the collection; a restarted server comes back with it released.
    pub(crate) async fn load(&self, collection: &str) -> Result<(), SdkError> {
        let request = LoadCollectionRequest::builder()
            .collection_name(collection)
            .build()?;
        self.client.load_collection(request).await
    }

    /// Asks the server to load the collection's new segments now, without
    /// waiting for them: Milvus 2.3 otherwise notices imported segments at
    /// its next target update, ~10–20 s after the job completed (pymilvus'
    /// `load(_refresh=True)`).
    pub(crate) async fn refresh_load(&self, collection: &str) -> Result<(), SdkError> {
        let request = RefreshLoadRequest::builder()
            .collection_name(collection)
            .sync(false)
            .build()?;
        self.client.refresh_load(request).await
    }

    /// Runs `call`; when the server answers that the collection is not
    /// loaded (it restarted), loads it and runs `call` once more.
    pub(crate) async fn on_loaded<T, F: std::future::Future<Output = Result<T, SdkError>>>(
        &self,
        collection: &str,
        call: impl Fn() -> F,
    ) -> Result<T, SdkError> {
        match call().await {
            Err(e) if is_not_loaded(&e) => {
                tracing::info!(
                    collection,
                    "the collection was released (a server restart?): loading it"
                );
                self.load(collection).await?;
                call().await
            }
            outcome => outcome,
        }
    }

    /// Starts Milvus Lite if needed and connects; blocks (call off the async threads).
    pub(crate) fn open(cfg: &MilvusSinkConfig, runtime: &Handle) -> Result<Self, MilvusError> {
        let lite = if is_local_path(&cfg.uri) {
            Some(MilvusLite::start(
                Path::new(&cfg.uri),
                cfg.milvus_lite.as_deref(),
            )?)
        } else {
            None
        };
        let uri = lite
            .as_ref()
            .map_or(cfg.uri.clone(), |l| l.uri().to_string());
        if let Some(problem) = tls::handshake_problem(&uri, &cfg.tls) {
            return Err(MilvusError::Tls {
                uri: cfg.uri.clone(),
                problem,
            });
        }
        let mut config = ConnectConfig::new().uri(uri).database(cfg.db.clone());
        if let Some(token) = cfg.token() {
            config = config.token(token);
        }
        let tls = &cfg.tls;
        if let Some(ca) = &tls.ca_file {
            config = config.ca_certificate(ca.display().to_string());
        }
        if let Some(name) = &tls.server_name {
            config = config.tls_server_name(name.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert_file, &tls.client_key_file) {
            config = config
                .client_certificate(cert.display().to_string())
                .client_key(key.display().to_string());
        }
        let client =
            runtime
                .block_on(ClientV2::new(&config))
                .map_err(|source| MilvusError::Connect {
                    uri: cfg.uri.clone(),
                    source: Box::new(source),
                })?;
        // The SDK retries idempotent calls for minutes on its own; callers
        // retry longer themselves, and report the outage meanwhile.
        client.set_retry_param(RetryConfig::new().max_retry_timeout(SDK_RETRY_TIMEOUT));
        let connect_failed = |source| MilvusError::Connect {
            uri: cfg.uri.clone(),
            source: Box::new(source),
        };
        let request = GetServerVersionRequest::builder()
            .build()
            .map_err(connect_failed)?;
        let version = runtime
            .block_on(client.server_version(request))
            .map_err(connect_failed)?;
        let version = ServerVersion::parse(version.version());
        tracing::debug!(uri = %cfg.uri, %version, "connected to Milvus");
        Ok(MilvusConnection {
            client,
            version,
            _lite: lite,
        })
    }
}

pub(crate) struct MilvusSink {
    cfg: MilvusSinkConfig,
    runtime: Handle,
    connection: std::sync::Arc<MilvusConnection>,
    plan: Option<CollectionPlan>,
    dead_letters: DeadLetters,
    health: Health,
    /// Set once the server rejected an empty sparse vector (Milvus Lite).
    empty_sparse_marked: std::sync::atomic::AtomicBool,
    /// Rows or deletes were sent since the last flush.
    unflushed: bool,
    /// `mode: import`: the open import file and the jobs.
    importer: Option<import::Importer>,
    /// Where an import job's progress is shown.
    status: Option<SinkStatus>,
}

impl MilvusSink {
    /// Connects (starting Milvus Lite for a path `uri`); the collection is
    /// checked or created when the first batch shows its schema.
    pub(crate) fn new(
        cfg: &MilvusSinkConfig,
        dead_letters: DeadLetters,
    ) -> Result<Self, MilvusError> {
        let runtime = Handle::try_current().map_err(|e| {
            MilvusError::Config(format!("the Milvus sink needs the async runtime: {e}"))
        })?;
        let connection = std::sync::Arc::new(tokio::task::block_in_place(|| {
            MilvusConnection::open(cfg, &runtime)
        })?);
        Ok(MilvusSink {
            cfg: cfg.clone(),
            runtime,
            connection,
            plan: None,
            dead_letters,
            health: Health::default(),
            empty_sparse_marked: std::sync::atomic::AtomicBool::new(false),
            unflushed: false,
            importer: None,
            status: None,
        })
    }

    /// Runs one Milvus call to completion; `operation` names it in errors.
    fn call<T>(
        &self,
        operation: &'static str,
        request: impl std::future::Future<Output = Result<T, SdkError>>,
    ) -> Result<T, MilvusError> {
        self.runtime
            .block_on(request)
            .map_err(|e| self.request_error(operation, e))
    }

    fn flush(&self) -> Result<(), MilvusError> {
        let request = FlushRequest::builder()
            .collection_names([self.cfg.collection.as_str()])
            .wait_flushed_ms(FLUSH_WAIT.as_millis() as i64)
            .build()
            .map_err(|e| self.request_error("flush", e))?;
        self.call("flush", self.connection.client.flush(request))?;
        Ok(())
    }

    fn collection_exists(&self) -> Result<bool, MilvusError> {
        self.call(
            "has_collection",
            self.connection.exists(&self.cfg.collection),
        )
    }

    fn request_error(&self, operation: &'static str, source: SdkError) -> MilvusError {
        MilvusError::Request {
            operation,
            collection: self.cfg.collection.clone(),
            source: Box::new(source),
        }
    }

    /// Refuses a plan that needs what the server does not have, before
    /// anything is created (Milvus 2.3 aborts on loading a collection with a
    /// sparse field, and at every restart after).
    fn refuse_unsupported(&self, plan: &mut CollectionPlan) -> Result<(), MilvusError> {
        let version = &self.connection.version;
        if let Some(feature) = plan.needs().into_iter().find(|f| !version.has(*f)) {
            return Err(MilvusError::Unsupported {
                uri: self.cfg.uri.clone(),
                version: version.clone(),
                feature,
            });
        }
        if !version.has(Feature::NullableFields) {
            let optional = plan.without_nullable();
            if !optional.is_empty() {
                tracing::info!(
                    collection = %self.cfg.collection,
                    "Milvus {version} has no nullable fields (2.5 has): a missing value of {} is stored as its type's empty value (\"\", 0, false, JSON null)",
                    optional.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Creates the collection when missing, or checks that it fits; then loads it.
    fn prepare_collection(&mut self, mut plan: CollectionPlan) -> Result<(), MilvusError> {
        self.refuse_unsupported(&mut plan)?;
        if !self.existing_fits(&mut plan)? {
            match self.create_collection(&plan) {
                Ok(()) => {
                    tracing::info!(collection = %self.cfg.collection, "created collection");
                }
                Err(e @ MilvusError::IndexRefused(_)) => return Err(e),
                // Another writer (a second daemon of the group) created it
                // meanwhile, or is creating it: Milvus Lite refuses a second
                // create before the first one shows.
                Err(e) => {
                    if !self.collection_appears(CREATE_RACE_WAIT)? {
                        return Err(e);
                    }
                    self.check_existing(&mut plan)?;
                }
            }
        }
        self.call(
            "load_collection",
            self.connection.load(&self.cfg.collection),
        )?;
        self.plan = Some(plan);
        Ok(())
    }

    /// Whether the collection exists, or comes to within `wait`.
    fn collection_appears(&self, wait: Duration) -> Result<bool, MilvusError> {
        poll(
            wait,
            POLL_EVERY,
            || self.collection_exists(),
            |exists| matches!(exists, Ok(false)),
        )
    }

    /// True when the collection exists and fits `plan`; false when it is
    /// missing and the sink may create it; otherwise the error.
    fn existing_fits(&self, plan: &mut CollectionPlan) -> Result<bool, MilvusError> {
        if self.collection_exists()? {
            self.check_existing(plan)?;
            Ok(true)
        } else if self.cfg.create == CreateMode::Never {
            Err(MilvusError::Missing(self.cfg.collection.clone()))
        } else {
            Ok(false)
        }
    }

    /// An error naming both schemas when the existing collection does not fit.
    fn check_existing(&self, plan: &mut CollectionPlan) -> Result<(), MilvusError> {
        let existing = self.call(
            "describe_collection",
            self.connection.schema(&self.cfg.collection),
        )?;
        plan.fit_to(&existing);
        plan.check(&self.cfg.collection, &existing)
    }

    fn create_collection(&self, plan: &CollectionPlan) -> Result<(), MilvusError> {
        let index_params = plan.index_params(&self.cfg)?;
        let request = CreateCollectionRequest::builder()
            .collection_name(&self.cfg.collection)
            .schema(plan.collection_schema())
            .build()
            .map_err(|e| self.request_error("create_collection", e))?;
        self.call(
            "create_collection",
            self.connection.client.create_collection(request),
        )?;
        // The collection is this run's now: an index the server refuses
        // (parameters out of range) takes it away again, so no collection
        // without an index is left behind.
        let index = CreateIndexRequest::builder()
            .collection_name(&self.cfg.collection)
            .index_params(index_params)
            .sync(false) // Milvus Lite lacks the RPC a synchronous create waits with
            .build()
            .map_err(|e| self.request_error("create_index", e))
            .and_then(|request| {
                self.call("create_index", self.connection.client.create_index(request))
            });
        if let Err(e) = index {
            let drop = DropCollectionRequest::builder()
                .collection_name(&self.cfg.collection)
                .build()
                .map_err(|e| self.request_error("drop_collection", e))
                .and_then(|request| {
                    self.call(
                        "drop_collection",
                        self.connection.client.drop_collection(request),
                    )
                });
            if let Err(dropped) = drop {
                tracing::warn!(collection = %self.cfg.collection, "{}", crate::error::report(&dropped));
            }
            return Err(MilvusError::IndexRefused(Box::new(e)));
        }
        Ok(())
    }

    /// Upserts a group of rows as field columns, with retries (each try
    /// converts the group anew: the SDK consumes what it sends); when the
    /// server rejects the group, its rows are tried one by one and the ones
    /// it rejects go to the dead letter with its message.
    fn upsert(
        &self,
        plan: &CollectionPlan,
        group: &RecordBatch,
        empty_sparse: rows::EmptySparse,
        ack: &Ack,
    ) -> Result<(), MilvusError> {
        let outcome = with_retries(
            self.cfg.max_retries,
            |e, delay| self.retrying("upsert", e, delay),
            || self.try_upsert(plan, group, empty_sparse),
        );
        match outcome {
            Ok(()) => {
                self.health.set(true);
                Ok(())
            }
            Err(e) if is_transient(&e) => Err(self.request_error("upsert", *e)),
            Err(e) => {
                tracing::warn!(collection = %self.cfg.collection, error = %e, "Milvus rejected rows; writing them one by one");
                for row in 0..group.num_rows() {
                    self.upsert_one(plan, &group.slice(row, 1), empty_sparse, ack)?;
                }
                Ok(())
            }
        }
    }

    /// One row the server rejected in a group: retried alone; a row whose
    /// only fault is an empty sparse vector is retried with the marker (and
    /// later rows get it up front); any other rejection is a dead letter.
    fn upsert_one(
        &self,
        plan: &CollectionPlan,
        row: &RecordBatch,
        empty_sparse: rows::EmptySparse,
        ack: &Ack,
    ) -> Result<(), MilvusError> {
        let rejection = match self.try_upsert(plan, row, empty_sparse) {
            Ok(()) => return Ok(()),
            Err(e) if is_transient(&e) => return Err(self.request_error("upsert", *e)),
            Err(e) => e,
        };
        if empty_sparse == rows::EmptySparse::AsEmpty && rows::has_empty_sparse(plan, row) {
            match self.try_upsert(plan, row, rows::EmptySparse::AsMarker) {
                Ok(()) => {
                    if !self.empty_sparse_marked.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            collection = %self.cfg.collection,
                            "the server rejects empty sparse vectors; writing them as one marker weight at dimension {}",
                            rows::EMPTY_SPARSE_DIMENSION
                        );
                    }
                    return Ok(());
                }
                Err(e) if is_transient(&e) => return Err(self.request_error("upsert", *e)),
                Err(_) => {}
            }
        }
        self.dead_letter(row, ack, &rejection)
    }

    /// One upsert request of `rows` as field columns.
    fn try_upsert(
        &self,
        plan: &CollectionPlan,
        rows: &RecordBatch,
        empty_sparse: rows::EmptySparse,
    ) -> Result<(), Box<SdkError>> {
        let upsert = || async {
            let insert = InsertRequest::builder()
                .collection_name(&self.cfg.collection)
                .columns(rows::field_columns(plan, rows, empty_sparse).map_err(|e| *e)?)
                .build()?;
            let request = UpsertRequest::builder().insert(insert).build()?;
            self.connection.client.upsert(request).await
        };
        self.runtime
            .block_on(self.connection.on_loaded(&self.cfg.collection, upsert))?;
        Ok(())
    }

    /// A rejected row (a one-row batch) to the dead letter: its record's
    /// position, its id and text.
    fn dead_letter(&self, row: &RecordBatch, ack: &Ack, e: &SdkError) -> Result<(), MilvusError> {
        let value = |name: &str| {
            row.column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .filter(|c| c.is_valid(0))
                .map_or("", |c| c.value(0))
        };
        let document = match value(columns::DOC_ID) {
            "" => value(columns::ID),
            doc_id => doc_id,
        };
        self.dead_letters.send(
            format!("{} (id {})", ack.position_of(document), value(columns::ID)),
            &format!("rejected by Milvus: {e}"),
            value(columns::TEXT).as_bytes(),
        )?;
        Ok(())
    }

    /// Deletes the rows `filter` matches, retried like upserts while the
    /// server is away (a brief outage between an upsert and its stale-chunk
    /// delete no longer stops a daemon).
    fn delete_where(&self, filter: String) -> Result<(), MilvusError> {
        let request = DeleteRequest::builder()
            .collection_name(&self.cfg.collection)
            .filter(filter)
            .build()
            .map_err(|e| self.request_error("delete", e))?;
        let outcome = with_retries(
            self.cfg.max_retries,
            |e, delay| self.retrying("delete", e, delay),
            || {
                self.runtime
                    .block_on(self.connection.on_loaded(&self.cfg.collection, || {
                        self.connection.client.delete(request.clone())
                    }))
                    .map_err(Box::new)
            },
        );
        match outcome {
            Ok(_) => {
                self.health.set(true);
                Ok(())
            }
            Err(e) => Err(self.request_error("delete", *e)),
        }
    }

    /// A transient failure of `operation`, to be retried after `delay`.
    fn retrying(&self, operation: &str, e: &SdkError, delay: Duration) {
        self.health.set(false);
        crate::metrics::sink_retry("milvus");
        tracing::warn!(collection = %self.cfg.collection, error = %e, retry_in = ?delay, "Milvus {operation} failed; retrying");
    }

    /// Deletes whole documents (all their chunks), e.g. for Kafka tombstones.
    fn delete_documents(&self, ids: &[String]) -> Result<(), MilvusError> {
        if ids.is_empty() {
            return Ok(());
        }
        // The runner prepares the sink (and so the plan) before any write.
        let field = match &self.plan {
            Some(plan) if !plan.has_chunks => columns::ID,
            _ => columns::DOC_ID,
        };
        for filter in in_filters(field, ids, 500) {
            self.delete_where(filter)?;
        }
        tracing::debug!(documents = ids.len(), "deleted documents");
        Ok(())
    }

    /// Deletes chunks of the batch's documents past their new last chunk, so
    /// a document re-ingested with fewer chunks leaves no orphans.
    fn delete_stale(&self, batch: &arrow::record_batch::RecordBatch) -> Result<(), MilvusError> {
        let (Some(doc_ids), Some(indexes)) = (
            batch.column_by_name(columns::DOC_ID),
            batch.column_by_name(columns::CHUNK_INDEX),
        ) else {
            return Ok(());
        };
        let (Some(doc_ids), Some(indexes)) = (
            doc_ids.as_string_opt::<i32>(),
            indexes.as_primitive_opt::<UInt32Type>(),
        ) else {
            return Ok(());
        };
        let mut chunks: BTreeMap<&str, u32> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let count = chunks.entry(doc_ids.value(row)).or_default();
            *count = (*count).max(indexes.value(row) + 1);
        }
        let mut by_count: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (doc, count) in chunks {
            by_count
                .entry(count)
                .or_default()
                .push(serde_json::to_string(doc).expect("a string serializes"));
        }
        for (count, docs) in by_count {
            for group in docs.chunks(500) {
                // A literal filter: Milvus Lite rejects the SDK's templated id filters.
                self.delete_where(format!(
                    "{} in [{}] and {} >= {count}",
                    columns::DOC_ID,
                    group.join(", "),
                    columns::CHUNK_INDEX
                ))?;
            }
        }
        Ok(())
    }
}

/// `mode: import` (see `import.rs`).
impl MilvusSink {
    /// Appends the batch to the open import file; when the file is full, its
    /// job runs now and every batch in it is durable.
    fn write_for_import(&mut self, envelope: &Envelope) -> Result<Durable, MilvusError> {
        let batch = &envelope.batch;
        let mut full = false;
        if batch.num_rows() > 0 {
            let latest = latest::last_versions(batch).map_err(MilvusError::Versions)?;
            let batch = latest.as_ref().unwrap_or(batch);
            let (Some(plan), Some(importer)) = (self.plan.as_ref(), self.importer.as_mut()) else {
                return Err(MilvusError::Config(
                    "the sink was not prepared before its first write".into(),
                ));
            };
            full = importer.append(plan, batch)?;
        }
        self.delete_documents(&envelope.deletes)?;
        if !full {
            return Ok(Durable::Nothing);
        }
        self.import_open_file()?;
        Ok(Durable::All)
    }

    /// Closes the open import file, replaces its documents: deletes them
    /// (unless the collection is empty), imports the file, and waits until
    /// the collection counts its rows.
    fn import_open_file(&mut self) -> Result<(), MilvusError> {
        let Some(file) = self
            .importer
            .as_mut()
            .map(|i| i.close())
            .transpose()?
            .flatten()
        else {
            return Ok(());
        };
        // An empty collection (a first backfill) has nothing to replace.
        let mut held = self.count()?;
        if held > 0 {
            self.delete_documents(&file.documents)?;
            held = self.count()?;
        }
        let expected = held + file.rows;
        let importer = self.importer.as_ref().expect("checked above");
        let collection = self.cfg.collection.as_str();
        importer.import(
            &file,
            || self.call("refresh_load", self.connection.refresh_load(collection)),
            || self.count(),
            expected,
        )
    }

    /// The collection's row count, strongly consistent.
    fn count(&self) -> Result<usize, MilvusError> {
        let collection = self.cfg.collection.as_str();
        self.runtime
            .block_on(
                self.connection
                    .on_loaded(collection, || self.connection.count(collection)),
            )
            .map_err(|e| self.request_error("count", e))
    }
}

impl Sink for MilvusSink {
    fn kind(&self) -> &'static str {
        "milvus"
    }

    fn prepare(&mut self, schema: &arrow::datatypes::SchemaRef) -> Result<(), SinkError> {
        let plan = CollectionPlan::from_batch_schema(schema, &self.cfg)?;
        if self.cfg.mode == WriteMode::Import {
            self.importer = Some(import::Importer::new(
                &self.cfg,
                &plan,
                self.runtime.clone(),
                self.status.clone(),
            )?);
        }
        Ok(self.prepare_collection(plan)?)
    }

    fn check(&mut self, schema: &arrow::datatypes::SchemaRef) -> Result<(), SinkError> {
        let mut plan = CollectionPlan::from_batch_schema(schema, &self.cfg)?;
        self.refuse_unsupported(&mut plan)?;
        self.existing_fits(&mut plan)?;
        if self.cfg.mode == WriteMode::Import {
            import_place::check_bucket(&self.cfg, &self.runtime)?;
        }
        Ok(())
    }

    fn show_status(&mut self, status: SinkStatus) {
        self.status = Some(status);
    }

    fn write(&mut self, envelope: &Envelope) -> Result<Durable, SinkError> {
        if self.importer.is_some() {
            return Ok(self.write_for_import(envelope)?);
        }
        let Envelope {
            batch,
            ack,
            deletes,
        } = envelope;
        if batch.num_rows() > 0 {
            let latest = latest::last_versions(batch).map_err(MilvusError::Versions)?;
            let batch = latest.as_ref().unwrap_or(batch);
            let plan = self.plan.as_ref().ok_or_else(|| {
                MilvusError::Config("the sink was not prepared before its first write".into())
            })?;
            let empty_sparse = if self.empty_sparse_marked.load(Ordering::Relaxed) {
                rows::EmptySparse::AsMarker
            } else {
                rows::EmptySparse::AsEmpty
            };
            let (rows, step) = (batch.num_rows(), self.cfg.batch_rows.get());
            let started = std::time::Instant::now();
            for start in (0..rows).step_by(step) {
                let group = batch.slice(start, step.min(rows - start));
                self.upsert(plan, &group, empty_sparse, ack)?;
            }
            let upserted = started.elapsed();
            self.delete_stale(batch)?;
            tracing::debug!(rows, ?upserted, stale_deleted = ?(started.elapsed() - upserted), "wrote a batch");
        }
        self.delete_documents(deletes)?;
        self.unflushed |= batch.num_rows() > 0 || !deletes.is_empty();
        // Dead letters of rejected rows are made durable by the runner before any commit.
        Ok(Durable::All)
    }

    /// Seals what the run wrote. The rows are already durable; sealed, they
    /// are indexed and searched fast (Milvus Lite searches unsealed rows 5–10×
    /// slower), so a failed flush is a warning, not a failed run.
    fn finish(&mut self) -> Result<(), SinkError> {
        if self.importer.is_some() {
            return Ok(self.import_open_file()?);
        }
        let started = std::time::Instant::now();
        if std::mem::take(&mut self.unflushed)
            && let Err(e) = self.flush()
        {
            tracing::warn!(collection = %self.cfg.collection, "{}", crate::error::report(&e));
        }
        tracing::debug!(flushed = ?started.elapsed(), "finished");
        Ok(())
    }

    /// An import file not yet imported is removed: its batches were not
    /// confirmed, so they are written again.
    fn abort(&mut self) {
        if let Some(importer) = &mut self.importer {
            importer.discard();
        }
    }

    fn held_documents(&self) -> Option<Box<dyn crate::sink::DocumentStore>> {
        Some(Box::new(held::MilvusDocuments::new(
            self.connection.clone(),
            self.runtime.clone(),
            &self.cfg,
            self.health.clone(),
        )))
    }
}

impl From<MilvusError> for SinkError {
    fn from(e: MilvusError) -> Self {
        SinkError::Milvus(e)
    }
}
