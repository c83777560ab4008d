//! The pipeline schema. Each component is one config struct; the tagged
//! enums (`type: ...`) are dispatched by the loader, which keeps every error
//! pointing at its line and column.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// A whole pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub name: String,
    pub source: SourceConfig,
    pub stages: Vec<StageConfig>,
    pub sinks: Vec<SinkConfig>,
    pub dead_letter: Option<DeadLetterConfig>,
}

impl PipelineConfig {
    /// How many stages a sink's input has passed through: all of them, or up
    /// to the stage its `inputs` names (`None` when no stage has that id).
    pub fn sink_depth(&self, sink: &SinkConfig) -> Option<usize> {
        match sink.inputs().first() {
            None => Some(self.stages.len()),
            Some(id) => self
                .stages
                .iter()
                .position(|s| s.id() == Some(id.as_str()))
                .map(|index| index + 1),
        }
    }
}

/// `source:` — where records come from.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Jsonl(FileSourceConfig),
    Parquet(FileSourceConfig),
    Kafka(KafkaSourceConfig),
}

impl SourceConfig {
    pub const KINDS: &'static [&'static str] = &["jsonl", "parquet", "kafka"];

    /// The id field, the text field and the metadata fields, whatever the source.
    pub fn record_keys(&self) -> (Option<&str>, &str, &[String]) {
        match self {
            SourceConfig::Jsonl(c) | SourceConfig::Parquet(c) => {
                (c.id_field.as_deref(), &c.text_field, &c.metadata)
            }
            SourceConfig::Kafka(c) => (c.id_field.as_deref(), &c.text_field, &c.metadata),
        }
    }

    /// False for sources that never end by themselves (Kafka).
    pub fn is_bounded(&self) -> bool {
        !matches!(self, SourceConfig::Kafka(_))
    }
}

/// `{ type: kafka, brokers, topics, group_id, format: json|text, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port…]`
    pub brokers: String,
    pub topics: Vec<String>,
    pub group_id: String,
    #[serde(default)]
    pub format: KafkaFormat,
    /// JSON field holding the id; without it (and without `key_as_id`), a hash of the text.
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default = "default_text_field")]
    pub text_field: String,
    #[serde(default)]
    pub metadata: Vec<String>,
    /// Use the message key as the document id.
    #[serde(default)]
    pub key_as_id: bool,
    /// Any librdkafka setting (`security.protocol`, `sasl.*`, `session.timeout.ms`, …).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_batch_rows")]
    pub batch_rows: PositiveInt,
    /// Longest wait to fill a batch once its first record arrived.
    #[serde(default = "default_max_latency_ms")]
    pub max_latency_ms: PositiveInt,
    #[serde(default = "default_max_text_bytes")]
    pub max_text_bytes: PositiveInt,
}

fn default_max_latency_ms() -> PositiveInt {
    PositiveInt(200)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormat {
    /// A JSON object per message.
    #[default]
    Json,
    /// The payload is the text; the key (or topic/partition@offset) is the id.
    Text,
}

/// Settings of a file source (`jsonl` or `parquet`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A file, a directory (every file in it with the format's extension) or a glob.
    pub path: String,
    /// Column holding the document id; absent = a stable hash of the text.
    #[serde(default)]
    pub id_field: Option<String>,
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// Extra columns carried through to the sinks.
    #[serde(default)]
    pub metadata: Vec<String>,
    /// Records per batch leaving the source.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: PositiveInt,
    /// Longer texts are dead-lettered.
    #[serde(default = "default_max_text_bytes")]
    pub max_text_bytes: PositiveInt,
}

impl FileSourceConfig {
    /// A file, directory or glob with the text in `text_field`, every other key at its default.
    pub fn for_path(path: &str, text_field: &str) -> Self {
        FileSourceConfig {
            path: path.to_string(),
            id_field: None,
            text_field: text_field.to_string(),
            metadata: Vec::new(),
            batch_rows: default_batch_rows(),
            max_text_bytes: default_max_text_bytes(),
        }
    }
}

fn default_text_field() -> String {
    "text".to_string()
}
fn default_batch_rows() -> PositiveInt {
    PositiveInt(1024)
}
fn default_max_text_bytes() -> PositiveInt {
    PositiveInt(1 << 20)
}

/// How token embeddings become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the tokens the attention mask keeps (sentence-transformers' default).
    Mean,
    /// The first token (`[CLS]`).
    Cls,
}

/// One entry of `stages:`.
#[derive(Debug, Clone)]
pub enum StageConfig {
    Chunk(ChunkStageConfig),
    Dense(DenseStageConfig),
    Bm25(Bm25StageConfig),
    Splade(SpladeStageConfig),
    Rerank(RerankStageConfig),
}

impl StageConfig {
    pub const KINDS: &'static [&'static str] = &["chunk", "dense", "bm25", "splade", "rerank"];

    /// The optional `id:` a sink can name in `inputs:`.
    pub fn id(&self) -> Option<&str> {
        match self {
            StageConfig::Chunk(c) => c.id.as_deref(),
            StageConfig::Dense(c) => c.id.as_deref(),
            StageConfig::Bm25(c) => c.id.as_deref(),
            StageConfig::Splade(c) => c.id.as_deref(),
            StageConfig::Rerank(c) => c.id.as_deref(),
        }
    }

    /// The column the stage adds, if it adds one.
    pub fn output_field(&self) -> Option<&str> {
        match self {
            StageConfig::Chunk(_) => None,
            StageConfig::Dense(c) => Some(&c.field),
            StageConfig::Bm25(c) => Some(&c.field),
            StageConfig::Splade(c) => Some(&c.field),
            StageConfig::Rerank(c) => Some(&c.field),
        }
    }
}

/// `{ type: rerank, model: DIR, query: "text" | query_field: q, min_score: S }`:
/// scores each row against a query with a cross-encoder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RerankStageConfig {
    #[serde(default)]
    pub id: Option<String>,
    /// A sequence-classification model: a directory with `model.onnx` and `tokenizer.json`,
    /// or a Hugging Face repo id such as `cross-encoder/ms-marco-MiniLM-L-6-v2`.
    pub model: String,
    /// A fixed query every row is scored against…
    #[serde(default)]
    pub query: Option<String>,
    /// …or the metadata column holding each row's query.
    #[serde(default)]
    pub query_field: Option<String>,
    /// The metadata column holding each record's candidates (a JSON list of
    /// texts): they are reranked against the record's query instead of its text.
    #[serde(default)]
    pub candidates_field: Option<String>,
    /// With `candidates_field`: keep the k best candidates.
    #[serde(default)]
    pub top_k: Option<PositiveInt>,
    /// Rows (or candidates) scoring below this are dropped (e.g. to keep only relevant chunks).
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Squash logits into 0..1.
    #[serde(default)]
    pub sigmoid: bool,
    #[serde(default = "default_score_field")]
    pub field: String,
    #[serde(default = "default_splade_batch")]
    pub batch_size: PositiveInt,
    #[serde(default = "default_rerank_max_length")]
    pub max_length: PositiveInt,
    #[serde(default)]
    pub threads: Option<PositiveInt>,
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// `local` (ONNX Runtime) or `http` (a rerank service).
    #[serde(default)]
    pub provider: RerankProvider,
    /// Remote provider: the service's base URL (e.g. `https://api.openai.com/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Remote provider: the API key; keep it in the environment (`${OPENAI_API_KEY}`).
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: PositiveInt,
    /// Remote provider: retries on 429, 5xx and transport errors.
    #[serde(default = "default_remote_retries")]
    pub max_retries: usize,
}

fn default_score_field() -> String {
    "score".to_string()
}
fn default_rerank_max_length() -> PositiveInt {
    PositiveInt(512)
}

/// `{ type: splade, model: splade-tiny, top_k: 200, field: sparse }`: learned sparse vectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpladeStageConfig {
    #[serde(default)]
    pub id: Option<String>,
    /// A directory with a SPLADE `model.onnx` (see scripts/convert_bert_onnx.py --head splade)
    /// and `tokenizer.json`, or a name under the models directory.
    #[serde(default = "default_splade_model")]
    pub model: String,
    #[serde(default = "default_splade_batch")]
    pub batch_size: PositiveInt,
    #[serde(default = "default_max_length")]
    pub max_length: PositiveInt,
    #[serde(default)]
    pub threads: Option<PositiveInt>,
    /// Keep only the k heaviest terms of each text.
    #[serde(default)]
    pub top_k: Option<PositiveInt>,
    #[serde(default = "default_sparse_field")]
    pub field: String,
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
}

fn default_splade_model() -> String {
    "splade-tiny".to_string()
}
fn default_splade_batch() -> PositiveInt {
    PositiveInt(32)
}

/// `{ type: chunk, max_chars | max_tokens + tokenizer, overlap }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkStageConfig {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub max_chars: Option<PositiveInt>,
    #[serde(default)]
    pub max_tokens: Option<PositiveInt>,
    /// With `max_tokens`: a `tokenizer.json`, or a model (as in `dense`) whose
    /// tokenizer to use; default: the model of a later `dense` stage.
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub overlap: usize,
}

/// `{ type: dense, model: all-MiniLM-L6-v2, batch_size: 64, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseStageConfig {
    #[serde(default)]
    pub id: Option<String>,
    /// A short name, a Hugging Face repo id, or a directory with `model.onnx` + `tokenizer.json`.
    #[serde(default = "default_dense_model")]
    pub model: String,
    /// Texts per inference call.
    #[serde(default = "default_dense_batch")]
    pub batch_size: PositiveInt,
    /// Tokens kept per text; longer texts are truncated.
    #[serde(default = "default_max_length")]
    pub max_length: PositiveInt,
    /// ONNX Runtime intra-op threads; default: the machine's cores.
    #[serde(default)]
    pub threads: Option<PositiveInt>,
    /// `mean` or `cls`; default: the model's sentence-transformers config, else `mean`.
    #[serde(default)]
    pub pooling: Option<Pooling>,
    #[serde(default = "default_true")]
    pub normalize: bool,
    #[serde(default = "default_dense_field")]
    pub field: String,
    /// libonnxruntime.so, when neither ORT_DYLIB_PATH nor the setup location has it.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// `local` (ONNX Runtime) or `openai` (an OpenAI-compatible `/embeddings` service).
    #[serde(default)]
    pub provider: DenseProvider,
    /// Remote provider: the service's base URL (e.g. `https://api.openai.com/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Remote provider: the API key; keep it in the environment (`${OPENAI_API_KEY}`).
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: PositiveInt,
    /// Remote provider: retries on 429, 5xx and transport errors.
    #[serde(default = "default_remote_retries")]
    pub max_retries: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenseProvider {
    #[default]
    Local,
    Openai,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RerankProvider {
    #[default]
    Local,
    /// The common rerank API (TEI `/rerank`, Cohere/Jina-style `{query, documents, top_n}`).
    Http,
}

fn default_timeout_secs() -> PositiveInt {
    PositiveInt(30)
}
fn default_remote_retries() -> usize {
    3
}

pub const DEFAULT_DENSE_MODEL: &str = "all-MiniLM-L6-v2";

fn default_dense_model() -> String {
    DEFAULT_DENSE_MODEL.to_string()
}
fn default_dense_batch() -> PositiveInt {
    PositiveInt(64)
}
fn default_max_length() -> PositiveInt {
    PositiveInt(256)
}
fn default_dense_field() -> String {
    "dense".to_string()
}

/// `{ type: bm25, params: FILE, analyzer: {...}, field: sparse }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25StageConfig {
    #[serde(default)]
    pub id: Option<String>,
    /// A params file from `vecpipe bm25 fit` or pymilvus.model's `save`.
    pub params: PathBuf,
    /// Must match the analyzer stored in the params file, when it has one.
    #[serde(default)]
    pub analyzer: Option<AnalyzerConfig>,
    #[serde(default = "default_sparse_field")]
    pub field: String,
}

fn default_sparse_field() -> String {
    "sparse".to_string()
}

/// Text analysis for BM25, in the shape of Milvus analyzers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzerConfig {
    #[serde(default)]
    pub tokenizer: TokenizerKind,
    #[serde(default = "default_true")]
    pub lowercase: bool,
    #[serde(default)]
    pub stop_words: StopWords,
    /// A Snowball language (`english`, `french`, ...) or `none`.
    #[serde(default = "default_stemmer")]
    pub stemmer: String,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            tokenizer: TokenizerKind::default(),
            lowercase: true,
            stop_words: StopWords::default(),
            stemmer: default_stemmer(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_stemmer() -> String {
    "english".to_string()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// Unicode word boundaries (UAX #29), like Milvus' `standard` tokenizer.
    #[default]
    Standard,
    /// Split on white space only.
    Whitespace,
}

/// `stop_words: english | none | [list]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StopWords {
    #[default]
    English,
    None,
    List(Vec<String>),
}

impl Serialize for StopWords {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StopWords::English => s.serialize_str("english"),
            StopWords::None => s.serialize_str("none"),
            StopWords::List(words) => words.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StopWords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StopWordsVisitor;
        impl<'de> Visitor<'de> for StopWordsVisitor {
            type Value = StopWords;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`english`, `none` or a list of words")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StopWords, E> {
                match v {
                    "english" => Ok(StopWords::English),
                    "none" => Ok(StopWords::None),
                    other => Err(E::custom(format!(
                        "expected `english`, `none` or a list of words, found `{other}`"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StopWords, A::Error> {
                let mut words = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    words.push(word);
                }
                Ok(StopWords::List(words))
            }
        }
        d.deserialize_any(StopWordsVisitor)
    }
}

/// One entry of `sinks:`.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    Arrow(ArrowSinkConfig),
    Milvus(Box<MilvusSinkConfig>),
}

impl SinkConfig {
    pub const KINDS: &'static [&'static str] = &["arrow", "milvus"];

    /// The stage ids this sink reads from; empty = the end of the stage chain.
    pub fn inputs(&self) -> &[String] {
        match self {
            SinkConfig::Arrow(c) => &c.inputs,
            SinkConfig::Milvus(c) => &c.inputs,
        }
    }
}

/// `{ type: milvus, uri: http://host:19530 | ./data/x.db, collection: NAME, ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilvusSinkConfig {
    /// A server (`http://host:19530`) or a directory: embedded Milvus Lite, started for the run.
    pub uri: String,
    /// `user:password` or an API key; keep it in the environment: `token: ${MILVUS_TOKEN:-}`.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default = "default_db")]
    pub db: String,
    pub collection: String,
    /// Rows per upsert request.
    #[serde(default = "default_milvus_batch_rows")]
    pub batch_rows: PositiveInt,
    #[serde(default)]
    pub create: CreateMode,
    /// `client`: write the pipeline's sparse vectors; `server`: Milvus' BM25 function on `text`.
    #[serde(default)]
    pub bm25: Bm25Mode,
    /// The sparse field (the output of Milvus' BM25 function with `bm25: server`).
    #[serde(default = "default_sparse_field")]
    pub sparse_field: String,
    /// VARCHAR length of `text` (at most 65535).
    #[serde(default = "default_text_max_length")]
    pub text_max_length: PositiveInt,
    #[serde(default)]
    pub index: IndexConfig,
    #[serde(default)]
    pub inputs: Vec<String>,
    /// The `milvus-lite` executable, when not on PATH or in the project's .venv.
    #[serde(default)]
    pub milvus_lite: Option<PathBuf>,
    /// Retries of a write that fails in transport (backoff 0.5 s doubling to
    /// 30 s); default: until it succeeds or the process is stopped.
    #[serde(default)]
    pub max_retries: Option<usize>,
}

impl MilvusSinkConfig {
    /// The token, when one is set and not empty.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }
}

fn default_db() -> String {
    "default".to_string()
}
fn default_milvus_batch_rows() -> PositiveInt {
    PositiveInt(1000)
}
fn default_text_max_length() -> PositiveInt {
    PositiveInt(65_535)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateMode {
    /// Create the collection (and its indexes) when it does not exist.
    #[default]
    IfMissing,
    /// The collection must exist.
    Never,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bm25Mode {
    #[default]
    Client,
    Server,
}

/// `index: { dense: {type, metric}, sparse: {type, metric} }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    #[serde(default = "default_dense_index")]
    pub dense: IndexSpec,
    #[serde(default = "default_sparse_index")]
    pub sparse: IndexSpec,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            dense: default_dense_index(),
            sparse: default_sparse_index(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub metric: String,
}

fn default_dense_index() -> IndexSpec {
    IndexSpec {
        kind: "AUTOINDEX".into(),
        metric: "COSINE".into(),
    }
}
fn default_sparse_index() -> IndexSpec {
    IndexSpec {
        kind: "SPARSE_INVERTED_INDEX".into(),
        metric: "IP".into(),
    }
}

/// The file format an `arrow` sink writes, from its path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrowFormat {
    Parquet,
    Ipc,
}

impl ArrowFormat {
    /// `.parquet` → Parquet; `.arrow`, `.ipc`, `.feather` → Arrow IPC file.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
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
pub struct ArrowSinkConfig {
    /// `.parquet` writes Parquet, `.arrow` writes an Arrow IPC file.
    pub path: PathBuf,
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Start a new numbered file after this many rows.
    #[serde(default)]
    pub rotate_rows: Option<PositiveInt>,
}

/// `dead_letter: { type: file, path: out/dead-letter.jsonl }` or
/// `{ type: kafka, topic: ..., brokers: ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    #[serde(rename = "type", default)]
    pub kind: DeadLetterKind,
    /// `file`: the JSONL file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `kafka`: the topic, brokers and any librdkafka producer settings.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub brokers: Option<String>,
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    #[default]
    File,
    Kafka,
}

/// An integer greater than zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PositiveInt(pub usize);

impl PositiveInt {
    pub fn get(self) -> usize {
        self.0
    }
}

impl<'de> Deserialize<'de> for PositiveInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PositiveVisitor;
        impl Visitor<'_> for PositiveVisitor {
            type Value = PositiveInt;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PositiveInt, E> {
                match usize::try_from(v) {
                    Ok(n) if n > 0 => Ok(PositiveInt(n)),
                    _ => Err(E::custom(format!("expected a positive integer, found {v}"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PositiveInt, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("expected a positive integer, found {v}"))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PositiveInt, E> {
                match v.trim().replace('_', "").parse::<i64>() {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::custom(format!(
                        "expected a positive integer, found `{v}`"
                    ))),
                }
            }
        }
        d.deserialize_any(PositiveVisitor)
    }
}
