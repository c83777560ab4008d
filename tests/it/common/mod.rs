//! Test harness: runs the real `vecpipe` binary in a temporary directory and
//! reads what it wrote with the arrow / parquet readers.

mod model_service;
pub mod registry_proxy;
pub mod s3_server;
pub mod secured_kafka;
mod tls;

pub use registry_proxy::RegistryProxy;
pub use s3_server::S3Server;
pub use secured_kafka::SecuredKafka;
pub use tls::certificates;

/// Asserts that a whole output equals what is expected; on a mismatch prints
/// both sides line by line, marking the first line that differs.
macro_rules! assert_output_eq {
    ($actual:expr, $expected:expr $(,)?) => {
        $crate::common::compare_outputs(&$actual, &$expected, file!(), line!())
    };
}

pub fn compare_outputs(actual: &str, expected: &str, file: &str, line: u32) {
    if actual == expected {
        return;
    }
    let (a, e): (Vec<&str>, Vec<&str>) = (actual.lines().collect(), expected.lines().collect());
    let first = (0..a.len().max(e.len()))
        .find(|&i| a.get(i) != e.get(i))
        .unwrap_or(a.len().min(e.len()));
    let show = |lines: &[&str]| {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("{} {l}\n", if i == first { ">" } else { " " }))
            .collect::<String>()
    };
    panic!(
        "{file}:{line}: output differs at line {} (trailing newline: actual {}, expected {})\n--- actual\n{}--- expected\n{}",
        first + 1,
        actual.ends_with('\n'),
        expected.ends_with('\n'),
        show(&a),
        show(&e)
    );
}
pub use model_service::{FakeService, embeddings};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

/// A port nothing listens on right now, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary working directory for one test.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A command for the binary, run inside the workspace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vecpipe"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("VECPIPE_OUT");
        cmd
    }

    /// A command for the binary run from the repository root (for the
    /// example pipelines), outputs under the workspace (`VECPIPE_OUT`).
    pub fn command_at_root(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.command(args);
        cmd.current_dir(repo_root())
            .env("VECPIPE_OUT", self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn vecpipe(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("vecpipe runs"))
    }
}

/// The outcome of one run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    /// The log lines on stderr without their timestamps.
    pub fn log_lines(&self) -> Vec<String> {
        self.stderr()
            .lines()
            .map(|line| {
                line.split_once(' ')
                    .map_or(line, |(_, rest)| rest)
                    .to_string()
            })
            .collect()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// The number before `word` in the summary line, e.g. `records` or `chunks`.
    pub fn summary_number(&self, word: &str) -> u64 {
        let out = self.stdout();
        let words: Vec<&str> = out.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| w.trim_end_matches(',') == word)
            .unwrap_or_else(|| panic!("no `{word}` in the summary: {out}"));
        words[i - 1].parse().unwrap()
    }

    /// A run stopped by a signal: the records it read but did not write
    /// (dropped in flight; the next run reads them again). Panics unless the
    /// summary says the run stopped early.
    pub fn unwritten_after_stop(&self) -> u64 {
        let out = self.stdout();
        let (_, note) = out
            .split_once("(stopped early by signal")
            .unwrap_or_else(|| panic!("not stopped early: {out}"));
        match note.strip_prefix("; ") {
            None => 0,
            Some(rest) => rest
                .split_once(' ')
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("no count of unwritten records: {out}")),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "panic: {}",
            self.stderr()
        );
        self
    }
}

pub fn read_parquet(path: &Path) -> RecordBatch {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

pub fn read_ipc(path: &Path) -> RecordBatch {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = arrow::ipc::reader::FileReader::try_new(file, None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

pub fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let array = arrow::compute::cast(array, &DataType::Utf8).unwrap();
    let array = array.as_string::<i32>();
    (0..array.len())
        .map(|i| (!array.is_null(i)).then(|| array.value(i).to_string()))
        .collect()
}

pub fn strs(batch: &RecordBatch, column: &str) -> Vec<String> {
    strings(batch, column)
        .into_iter()
        .map(|s| s.expect("not null"))
        .collect()
}

/// A `List<Struct<index, value>>` column as (index, value) pairs per row.
pub fn sparse_rows(batch: &RecordBatch, column: &str) -> Vec<Vec<(u32, f32)>> {
    let list = batch.column_by_name(column).unwrap().as_list::<i32>();
    (0..list.len())
        .map(|row| {
            let entries = list.value(row);
            let entries = entries.as_struct();
            let index = entries
                .column(0)
                .as_primitive::<arrow::datatypes::UInt32Type>();
            let value = entries
                .column(1)
                .as_primitive::<arrow::datatypes::Float32Type>();
            (0..entries.len())
                .map(|i| (index.value(i), value.value(i)))
                .collect()
        })
        .collect()
}

/// Writes `columns` (name, array) to a Parquet file with the given row-group size.
pub fn write_parquet(path: &Path, columns: Vec<(&str, Arc<dyn Array>)>, row_group_rows: usize) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// The dead-letter file as JSON values.
pub fn dead_letters(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs `scripts/setup.sh [component]` once per test binary; fails loudly.
pub fn setup(component: Option<&str>) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let key = component.unwrap_or("").to_string();
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if done.contains(&key) {
        return;
    }
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/setup.sh"));
    cmd.args(component);
    let status = cmd.status().expect("bash runs scripts/setup.sh");
    assert!(status.success(), "scripts/setup.sh {key} failed");
    done.push(key);
}

/// Which Milvus a test runs against.
///
/// - `Lite`: Milvus Lite 3.2.2 (PyPI `milvus-lite`), a pure-Python
///   re-implementation of Milvus' gRPC API: sparse vectors, hybrid search,
///   server-side BM25, nullable fields; no auth, no TLS, no bulk import.
///   Stopped with SIGTERM; its data survives a restart.
/// - `Real`: the real Milvus 2.3.5 standalone server (PyPI `milvus==2.3.5`:
///   Go + C++ segcore/knowhere, embedded etcd, local storage), started by
///   `scripts/milvus_server.py` with every port free. Ready ~3 s after start
///   (the port opens earlier: readiness is its /healthz), ~220 MB RSS idle.
///   Dense vectors, upsert, delete by expression, dynamic fields, TLS
///   (one-way, mutual) and auth (user `root`, password `Milvus`); no sparse
///   vectors (a collection with one aborts the server at every load), no
///   hybrid search, no nullable fields, no BM25 function; HNSW needs `M` and
///   `efConstruction`, IVF `nlist`; two rows with one id in one upsert are
///   both kept; search results leave the primary-key field name empty; the
///   Rust SDK cannot decode its ARRAY results (read them with pymilvus).
///   Reports its version as `v2.3.5-lite`. Stopped with SIGINT (graceful),
///   which sometimes hangs ("find no available rootcoord"): killed after 15 s;
///   what it acknowledged survives a kill -9. It dies with the test process
///   (parent-death signal), so an aborted test leaves no server behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilvusKind {
    Lite,
    Real,
}

/// How a real Milvus server is reached: TLS files and authorization.
#[derive(Debug, Clone, Default)]
pub struct RealOptions {
    /// 1: one-way TLS, 2: mutual TLS; with `server.pem`, `server.key`, `ca.pem` in `tls_dir`.
    pub tls_mode: u8,
    pub tls_dir: Option<PathBuf>,
    pub auth: bool,
    /// The largest file the server imports (`common.ImportMaxFileSize`).
    pub import_max_file_size: Option<u64>,
    /// The S3-protocol server (`host:port`) the server keeps its data in,
    /// in `s3_server::BUCKET`, as a cluster does; default: its local disk.
    pub s3: Option<String>,
}

/// A Milvus server on a free 127.0.0.1 port with its own data directory,
/// started for one test and stopped when dropped.
pub struct MilvusServer {
    child: std::process::Child,
    pub kind: MilvusKind,
    pub uri: String,
    pub data: tempfile::TempDir,
    port: u16,
    options: RealOptions,
}

impl MilvusServer {
    /// Milvus Lite.
    pub fn start() -> Self {
        Self::start_kind(MilvusKind::Lite)
    }

    pub fn start_kind(kind: MilvusKind) -> Self {
        Self::start_real_with(kind, RealOptions::default())
    }

    /// A real server with TLS or authorization.
    pub fn start_real(options: RealOptions) -> Self {
        Self::start_real_with(MilvusKind::Real, options)
    }

    fn start_real_with(kind: MilvusKind, options: RealOptions) -> Self {
        setup(if kind == MilvusKind::Real {
            Some("test")
        } else {
            None
        });
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(kind, &data, port, &options);
        let scheme = if options.tls_mode > 0 {
            "https"
        } else {
            "http"
        };
        MilvusServer {
            child,
            kind,
            uri: format!("{scheme}://127.0.0.1:{port}"),
            data,
            port,
            options,
        }
    }

    /// Stops the server gracefully (killed after 15 s: the real server's
    /// stop can hang once its root coordinator is gone), keeping its data
    /// directory and port for `restart`.
    pub fn stop(&mut self) {
        let signal = match self.kind {
            MilvusKind::Lite => "-TERM",
            MilvusKind::Real => "-INT",
        };
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill();
    }

    /// Stops the server at once: SIGKILL (the real server's graceful stop
    /// takes seconds, long enough for a test's callback to time out).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.child = Self::spawn(self.kind, &self.data, self.port, &self.options);
    }

    fn spawn(
        kind: MilvusKind,
        data: &tempfile::TempDir,
        port: u16,
        options: &RealOptions,
    ) -> std::process::Child {
        let log_path = data.path().join("server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut command = match kind {
            MilvusKind::Lite => {
                let program = repo_root().join(".venv/bin/milvus-lite");
                assert!(
                    program.is_file(),
                    "{} is missing after setup",
                    program.display()
                );
                let mut c = Command::new(&program);
                c.args(["server", "--data-dir"])
                    .arg(data.path().join("milvus"))
                    .args(["--host", "127.0.0.1", "--port", &port.to_string()]);
                c
            }
            MilvusKind::Real => {
                let root = repo_root().join(".tools/milvus");
                assert!(
                    root.join("bin/milvus").is_file(),
                    "{} is missing after setup",
                    root.display()
                );
                let mut c = Command::new(repo_root().join(".venv/bin/python"));
                c.arg(repo_root().join("scripts/milvus_server.py"))
                    .arg("--root")
                    .arg(&root)
                    .arg("--data")
                    .arg(data.path().join("milvus"))
                    .args(["--port", &port.to_string()]);
                if options.tls_mode > 0 {
                    let dir = options.tls_dir.as_ref().expect("TLS needs its files");
                    c.args(["--tls-mode", &options.tls_mode.to_string()])
                        .arg("--server-pem")
                        .arg(dir.join("server.pem"))
                        .arg("--server-key")
                        .arg(dir.join("server.key"))
                        .arg("--ca-pem")
                        .arg(dir.join("ca.pem"));
                }
                if options.auth {
                    c.arg("--auth");
                }
                if let Some(bytes) = options.import_max_file_size {
                    c.args(["--import-max-file-size", &bytes.to_string()]);
                }
                if let Some(address) = &options.s3 {
                    c.args(["--s3", address, "--s3-bucket", s3_server::BUCKET])
                        .env("MILVUS_S3_ACCESS_KEY", s3_server::ACCESS_KEY)
                        .env("MILVUS_S3_SECRET_KEY", s3_server::SECRET_KEY);
                }
                c
            }
        };
        let mut child = command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the Milvus server starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        let ready = || match kind {
            MilvusKind::Lite => {
                let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                std::net::TcpStream::connect_timeout(
                    &address,
                    std::time::Duration::from_millis(200),
                )
                .is_ok()
            }
            MilvusKind::Real => real_server_healthy(&data.path().join("milvus")),
        };
        while !ready() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(
                child.try_wait().unwrap().is_none(),
                "{kind:?} Milvus exited:\n{log}"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{kind:?} Milvus was not ready within 90 s:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        child
    }
}

/// Whether the real server in `data` answers OK on its /healthz (the
/// metrics port `scripts/milvus_server.py` chose, in `ports.json`).
fn real_server_healthy(data: &Path) -> bool {
    use std::io::{Read, Write};
    let Some(port) = std::fs::read_to_string(data.join("ports.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|ports| ports["metrics"].as_u64())
    else {
        return false;
    };
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port as u16));
    let Ok(mut stream) =
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(200))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut response = String::new();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
        && response.contains("OK")
}

impl Drop for MilvusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs each named `fn(MilvusKind)` as two tests: `lite::NAME` and `real::NAME`.
macro_rules! on_every_milvus {
    ($($name:ident),* $(,)?) => {
        mod lite {
            $(#[test]
            fn $name() {
                super::$name($crate::common::MilvusKind::Lite)
            })*
        }
        mod real {
            $(#[test]
            fn $name() {
                super::$name($crate::common::MilvusKind::Real)
            })*
        }
    };
}

/// Which Kafka-protocol broker a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// Tansu, memory storage (its high watermarks are wrong).
    Tansu,
    /// noida-db, a second, independent implementation (correct watermarks).
    Noida,
}

/// A Kafka-protocol broker on a free 127.0.0.1 port, stopped when dropped.
pub struct KafkaBroker {
    child: std::process::Child,
    pub brokers: String,
    _dir: tempfile::TempDir,
}

impl KafkaBroker {
    /// Tansu, the default broker of the tests.
    pub fn start() -> Self {
        Self::start_kind(BrokerKind::Tansu)
    }

    pub fn start_kind(kind: BrokerKind) -> Self {
        setup(Some("test"));
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log_path = dir.path().join("broker.log");
        let out = File::create(&log_path).unwrap();
        let mut command = match kind {
            BrokerKind::Tansu => {
                let url = format!("tcp://127.0.0.1:{port}");
                let mut c = Command::new(repo_root().join(".tools/tansu"));
                c.args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "memory://tansu/", "--silent"]);
                c
            }
            BrokerKind::Noida => {
                // The binary itself, not the console script (which wraps it in a subprocess).
                let mut c = Command::new(repo_root().join(".tools/noida/noida_db/noida-db"));
                c.args([
                    "start",
                    "--only",
                    "kafka",
                    "--kafka-port",
                    &port.to_string(),
                ])
                .args(["--host", "127.0.0.1", "--data-dir"])
                .arg(dir.path().join("data"));
                c
            }
        };
        let program = command.get_program().to_owned();
        assert!(
            Path::new(&program).is_file(),
            "{} is missing after setup",
            Path::new(&program).display()
        );
        let mut child = command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the broker starts");
        wait_until_listening(&mut child, port, &log_path, &format!("{kind:?}"));
        KafkaBroker {
            child,
            brokers: format!("127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

/// Waits until `child` listens on the loopback `port`; fails with its log
/// when it exits first or takes over 30 s.
pub fn wait_until_listening(
    child: &mut std::process::Child,
    port: u16,
    log_path: &Path,
    what: &str,
) {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(200))
        .is_err()
    {
        let text = std::fs::read_to_string(log_path).unwrap_or_default();
        assert!(
            child.try_wait().unwrap().is_none(),
            "{what} exited:\n{text}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen within 30 s:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates topics and produces on a broker, with the client settings it needs.
pub trait KafkaClient {
    /// `bootstrap.servers` and whatever else this broker asks of a client.
    fn client(&self) -> rdkafka::ClientConfig;

    fn create_topic(&self, topic: &str, partitions: i32) {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            self.client().create().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for result in runtime
            .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
            .unwrap()
        {
            result.unwrap();
        }
    }

    /// Produces each line of a JSONL file with its `id` as the key.
    fn produce_jsonl(&self, topic: &str, path: &Path) {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = self.client().create().unwrap();
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = value["id"].as_str().unwrap().to_string();
            producer
                .send(BaseRecord::to(topic).key(&key).payload(line))
                .unwrap();
        }
        producer.flush(std::time::Duration::from_secs(30)).unwrap();
    }
}

impl KafkaClient for KafkaBroker {
    fn client(&self) -> rdkafka::ClientConfig {
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", &self.brokers);
        client
    }
}

/// Waits for `child` to exit, draining its output meanwhile; kills it and
/// fails when it runs longer than `limit`.
pub fn wait_for_exit(child: std::process::Child, limit: std::time::Duration, what: &str) -> Run {
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => Run(output.unwrap()),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} did not exit within {limit:?}");
        }
    }
}

/// `vecpipe daemon daemon.yaml` in the workspace, its output piped.
pub fn start_daemon(ws: &Workspace, metrics_port: u16) -> std::process::Child {
    ws.command(&[
        "daemon",
        "daemon.yaml",
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap()
}

/// Sends a signal (`-TERM`, `-KILL`, …) to a child process.
pub fn signal(child: &std::process::Child, name: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// A plain HTTP GET on 127.0.0.1: (status, whole response).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response)
}

/// Runs `tests/python/SCRIPT` with the test venv's Python; panics with its
/// stderr unless it succeeds; returns its stdout.
pub fn python_script(script: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    setup(Some("test"));
    let output = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// JSON lines of `{"id", "text"}` records, one per pair.
pub fn id_text_lines<I: AsRef<str>, T: AsRef<str>>(
    records: impl IntoIterator<Item = (I, T)>,
) -> String {
    records
        .into_iter()
        .map(|(id, text)| {
            serde_json::json!({"id": id.as_ref(), "text": text.as_ref()}).to_string() + "\n"
        })
        .collect()
}

/// Copies the shipped sample corpus into the workspace as `corpus.jsonl`.
pub fn sample_corpus(ws: &Workspace) -> PathBuf {
    let path = ws.path("corpus.jsonl");
    std::fs::copy(repo_root().join("pipelines/data/sample.jsonl"), &path).unwrap();
    path
}

/// Every id in `collection` (empty when it does not exist), via the Rust SDK.
pub fn milvus_ids_in(uri: &str, collection: &str) -> Vec<String> {
    try_milvus_ids_in(uri, collection)
        .unwrap_or_else(|e| panic!("reading {collection} from {uri}: {e}"))
}

/// Every id in the `docs` collection.
pub fn milvus_ids(uri: &str) -> Vec<String> {
    milvus_ids_in(uri, "docs")
}

/// `fields` (comma-separated) of every row of `collection`.
pub fn milvus_rows(uri: &str, collection: &str, fields: &str) -> Vec<serde_json::Value> {
    milvus_rows_where(uri, collection, fields, "id != \"\"")
}

/// `fields` of the rows of `collection` that match `filter` (at most 16,384:
/// Milvus' limit for one query).
pub fn milvus_rows_where(
    uri: &str,
    collection: &str,
    fields: &str,
    filter: &str,
) -> Vec<serde_json::Value> {
    try_milvus_rows_where(uri, collection, fields, filter)
        .unwrap_or_else(|e| panic!("reading {collection} from {uri}: {e}"))
}

/// Every id in the `docs` collection, or why it could not be read — for polls that run
/// while a sink is still creating the collection and its index (a real server refuses to
/// load a collection without an index until the sink has made one).
pub fn try_milvus_ids(uri: &str) -> Result<Vec<String>, String> {
    try_milvus_ids_in(uri, "docs")
}

fn try_milvus_ids_in(uri: &str, collection: &str) -> Result<Vec<String>, String> {
    Ok(try_milvus_rows_where(uri, collection, "id", "id != \"\"")?
        .into_iter()
        .map(|row| row["id"].as_str().unwrap().to_string())
        .collect())
}

fn try_milvus_rows_where(
    uri: &str,
    collection: &str,
    fields: &str,
    filter: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use milvus::v2::prelude::{
            ClientV2, ConnectConfig, ConsistencyLevel, HasCollectionRequest, LoadCollectionRequest,
            QueryRequest,
        };
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let client = ClientV2::new(&ConnectConfig::new().uri(uri))
            .await
            .map_err(|e| text(&e))?;
        let has = client
            .has_collection(
                HasCollectionRequest::builder()
                    .collection_name(collection)
                    .build()
                    .unwrap(),
            )
            .await
            .map_err(|e| text(&e))?;
        if !has.exists() {
            return Ok(Vec::new());
        }
        // A restarted server comes back with the collection released.
        let load = LoadCollectionRequest::builder()
            .collection_name(collection)
            .build()
            .unwrap();
        client.load_collection(load).await.map_err(|e| text(&e))?;
        let request = QueryRequest::builder()
            .collection_name(collection)
            .filter(filter)
            .output_fields(fields.split(',').map(str::trim).collect::<Vec<_>>())
            .limit(16384)
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .unwrap();
        let response = client.query(request).await.map_err(|e| text(&e))?;
        Ok(response
            .results()
            .rows()
            .unwrap()
            .map(|row| serde_json::Value::Object(row.to_entity_row().unwrap()))
            .collect())
    })
}

/// Waits until `docs` holds exactly `expected`, no duplicates (panics with the difference after `limit`).
pub fn wait_for_ids(
    uri: &str,
    expected: &std::collections::BTreeSet<String>,
    limit: std::time::Duration,
) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        // A read refused while the sink is still creating the collection's index is retried.
        let ids = match try_milvus_ids(uri) {
            Ok(ids) => ids,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("reading docs from {uri}: {e}")
            }
            Err(_) => {
                std::thread::sleep(std::time::Duration::from_millis(500));
                continue;
            }
        };
        let set: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(ids.len(), set.len(), "duplicate ids in Milvus");
        if &set == expected {
            return;
        }
        if std::time::Instant::now() > deadline {
            let missing: Vec<_> = expected.difference(&set).take(5).collect();
            let extra: Vec<_> = set.difference(expected).take(5).collect();
            panic!(
                "Milvus has {} of {} ids; missing e.g. {missing:?}, unexpected {extra:?}",
                set.len(),
                expected.len()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// The row groups a backfill's state file lists as finished, in order.
pub fn recorded_row_groups(state: &Path) -> Vec<usize> {
    std::fs::read_to_string(state)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            entry["row_group"].as_u64().unwrap() as usize
        })
        .collect()
}

/// Runs `call` with a client of the server at `uri`, to its end.
fn with_client<T, F: std::future::Future<Output = T>>(
    uri: &str,
    call: impl FnOnce(milvus::v2::prelude::ClientV2) -> F,
) -> T {
    use milvus::v2::prelude::{ClientV2, ConnectConfig};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        call(ClientV2::new(&ConnectConfig::new().uri(uri)).await.unwrap()).await
    })
}

/// Whether `collection` exists on the server at `uri`.
pub fn has_collection(uri: &str, collection: &str) -> bool {
    use milvus::v2::prelude::HasCollectionRequest;
    let request = HasCollectionRequest::builder()
        .collection_name(collection)
        .build()
        .unwrap();
    with_client(uri, |client| async move {
        client.has_collection(request).await.unwrap().exists()
    })
}

/// Releases `collection` on the server at `uri`, as a restarted server
/// brings it back.
pub fn release_collection(uri: &str, collection: &str) {
    use milvus::v2::prelude::ReleaseCollectionRequest;
    let request = ReleaseCollectionRequest::builder()
        .collection_name(collection)
        .build()
        .unwrap();
    with_client(uri, |client| async move {
        client.release_collection(request).await.unwrap()
    })
}

/// Drops `collection` from the server at `uri`.
pub fn drop_collection(uri: &str, collection: &str) {
    use milvus::v2::prelude::DropCollectionRequest;
    let request = DropCollectionRequest::builder()
        .collection_name(collection)
        .build()
        .unwrap();
    with_client(uri, |client| async move {
        client.drop_collection(request).await.unwrap()
    })
}

/// A real Confluent-compatible Schema Registry: rivven-schema 0.0.22 (built
/// from crates.io by `scripts/setup.sh test`), on a free loopback port.
/// Its limits (see `../shared/RECIPES.md`): in-memory storage, so a restart
/// forgets every schema (and numbers them from 1 again); no auth on its
/// command line; Confluent's ProtobufSerializer is refused. Avro and JSON
/// Schema work with confluent-kafka's serializers.
pub struct SchemaRegistry {
    pub url: String,
    port: u16,
    child: Option<std::process::Child>,
}

impl SchemaRegistry {
    pub fn start() -> Self {
        setup(Some("test"));
        let mut registry = SchemaRegistry {
            url: String::new(),
            port: free_port(),
            child: None,
        };
        registry.url = format!("http://127.0.0.1:{}", registry.port);
        registry.restart();
        registry
    }

    /// Starts it (again, on the same port, with no schemas) and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(repo_root().join(".tools/rivven-schema/bin/rivven-schema"))
            .args([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
            ])
            .args(["--log-level", "warn"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the Schema Registry starts");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || http_get(self.port, "/").0 != 200
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the Schema Registry did not answer within 30 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SchemaRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
