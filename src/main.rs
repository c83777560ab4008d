//! The `vecpipe` command: parses arguments and calls the library.
//! Exit codes: 0 done, 1 runtime failure, 2 bad config or usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use vecpipe::config::{
    AnalyzerConfig, FileSourceConfig, PipelineConfig, PositiveInt, SourceConfig, StageConfig,
    StopWords, TokenizerKind, load_pipeline_file,
};
use vecpipe::error::Phased;
use vecpipe::pipeline::{FitInput, StopSignal, fit_bm25, run_pipeline};
use vecpipe::search::{Ranker, RerankOptions, SearchMode, SearchOptions};
use vecpipe::source::backfill::{Backfill, Shard};
use vecpipe::stage::bm25;

#[derive(Parser)]
#[command(
    name = "vecpipe",
    version,
    about = "Turn text into searchable vectors: sources → stages → sinks"
)]
struct Cli {
    /// Log lines on stderr as text or JSON (level: VECPIPE_LOG, default warn; info for daemon).
    #[arg(long, value_enum, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check a pipeline file; report errors as FILE:LINE:COL.
    Validate {
        /// The pipeline YAML.
        file: PathBuf,
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
    /// Search the pipeline's Milvus collection, encoding the query with its own models.
    Search(SearchArgs),
}

#[derive(Args)]
struct SearchArgs {
    /// The pipeline YAML (its milvus sink, dense and bm25 stages).
    file: PathBuf,
    /// The query text.
    query: String,
    /// dense, sparse, or hybrid (default: hybrid when both fields exist).
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// How hybrid search fuses the two result lists.
    #[arg(long, value_enum, default_value = "rrf")]
    ranker: RankerArg,
    /// RRF's k.
    #[arg(long, default_value_t = 60)]
    rrf_k: i64,
    /// Weighted ranker: dense,sparse weights.
    #[arg(long, value_delimiter = ',', default_values_t = [0.7, 0.3])]
    weights: Vec<f32>,
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// A Milvus filter expression, e.g. 'doc_id == "turing"'.
    #[arg(long)]
    filter: Option<String>,
    /// One JSON object per hit instead of a table.
    #[arg(long)]
    json: bool,
    /// Rerank the first --rerank-top hits with a cross-encoder.
    #[arg(long)]
    rerank: bool,
    #[arg(long, default_value_t = 20)]
    rerank_top: usize,
    /// The cross-encoder (default: the pipeline's rerank stage model).
    #[arg(long)]
    rerank_model: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Dense,
    Sparse,
    Hybrid,
}

#[derive(Clone, Copy, ValueEnum)]
enum RankerArg {
    Rrf,
    Weighted,
}

#[derive(Subcommand)]
enum Bm25Command {
    /// Fit BM25 statistics on a corpus and save them (pymilvus.model's JSON format).
    Fit(FitArgs),
}

#[derive(Args)]
struct FitArgs {
    /// Fit on this pipeline's source, through the stages before its `bm25` stage;
    /// the analyzer and output path default to that stage's.
    #[arg(long, conflicts_with = "input", required_unless_present = "input")]
    pipeline: Option<PathBuf>,
    /// A JSONL or Parquet file, directory or glob to fit on.
    #[arg(long)]
    input: Option<String>,
    /// Format of --input; by default from its extension.
    #[arg(long, value_enum, requires = "input")]
    format: Option<InputFormat>,
    /// Field holding the text in --input.
    #[arg(long, default_value = "text", requires = "input")]
    text_field: String,
    /// Where to write the params (required with --input).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    analyzer: AnalyzerArgs,
    #[arg(long, default_value_t = bm25::DEFAULT_K1)]
    k1: f64,
    #[arg(long, default_value_t = bm25::DEFAULT_B)]
    b: f64,
    #[arg(long, default_value_t = bm25::DEFAULT_EPSILON)]
    epsilon: f64,
}

/// Analyzer flags; any one given replaces the default analyzer.
#[derive(Args)]
struct AnalyzerArgs {
    /// standard (Unicode words) or whitespace.
    #[arg(long, value_enum)]
    tokenizer: Option<TokenizerArg>,
    /// Keep case (the default lowercases).
    #[arg(long)]
    no_lowercase: bool,
    /// english, none, or a comma-separated list of words.
    #[arg(long)]
    stop_words: Option<String>,
    /// A Snowball language (english, french, …) or none.
    #[arg(long)]
    stemmer: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenizerArg {
    Standard,
    Whitespace,
}

impl AnalyzerArgs {
    fn given(&self) -> bool {
        self.tokenizer.is_some()
            || self.no_lowercase
            || self.stop_words.is_some()
            || self.stemmer.is_some()
    }

    fn to_config(&self) -> AnalyzerConfig {
        let default = AnalyzerConfig::default();
        AnalyzerConfig {
            tokenizer: match self.tokenizer {
                Some(TokenizerArg::Whitespace) => TokenizerKind::Whitespace,
                Some(TokenizerArg::Standard) => TokenizerKind::Standard,
                None => default.tokenizer,
            },
            lowercase: !self.no_lowercase,
            stop_words: match self.stop_words.as_deref() {
                None | Some("english") => StopWords::English,
                Some("none") => StopWords::None,
                Some(list) => {
                    StopWords::List(list.split(',').map(|w| w.trim().to_string()).collect())
                }
            },
            stemmer: self.stemmer.clone().unwrap_or(default.stemmer),
        }
    }
}

/// A failure and the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: std::error::Error + Send + Sync + 'static> From<Phased<E>> for Failure {
    fn from(e: Phased<E>) -> Self {
        Failure {
            code: e.exit_code(),
            error: e.into(),
        }
    }
}

fn usage(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

fn async_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .map_err(runtime_failure)
}

/// A stop signal raised by SIGINT/SIGTERM (call inside the runtime).
fn os_stop_signal() -> Result<StopSignal, Failure> {
    let stop = StopSignal::default();
    stop.raise_on_os_signals()
        .context("cannot install signal handlers")
        .map_err(runtime_failure)?;
    Ok(stop)
}

fn runtime_failure(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 1,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Daemon { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VECPIPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {}", vecpipe::error::report(error.as_ref()));
            ExitCode::from(code)
        }
    }
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Validate { file } => {
            let cfg = load(&file)?;
            println!(
                "{}: ok ({} stage(s), {} sink(s))",
                file.display(),
                cfg.stages.len(),
                cfg.sinks.len()
            );
            Ok(())
        }
        Command::Run {
            file,
            shard,
            resume,
            state,
        } => {
            let cfg = load(&file)?;
            let backfill = backfill(&cfg, shard, resume, state);
            let runtime = async_runtime()?;
            let summary = runtime.block_on(async {
                let stop = os_stop_signal()?;
                run_pipeline(&cfg, stop, backfill)
                    .await
                    .map_err(Failure::from)
            })?;
            println!("{summary}");
            Ok(())
        }
        Command::Daemon {
            file,
            metrics_addr,
            shutdown_timeout,
        } => daemon(
            &file,
            metrics_addr,
            std::time::Duration::from_secs(shutdown_timeout),
        ),
        Command::Bm25(Bm25Command::Fit(args)) => fit(args),
        Command::Search(args) => search(args),
    }
}

fn daemon(
    file: &Path,
    metrics_addr: std::net::SocketAddr,
    shutdown_timeout: std::time::Duration,
) -> Result<(), Failure> {
    let cfg = load(file)?;
    let metrics = vecpipe::metrics::install()
        .context("cannot install the metrics recorder")
        .map_err(runtime_failure)?;
    let runtime = async_runtime()?;
    let summary = runtime.block_on(async {
        let listener = tokio::spawn(vecpipe::metrics::serve(metrics_addr, metrics));
        let stop = os_stop_signal()?;
        stop.exit_if_not_done_within(shutdown_timeout);
        let result = run_pipeline(&cfg, stop, Backfill::default())
            .await
            .map_err(Failure::from);
        listener.abort();
        result
    })?;
    println!("{summary}");
    Ok(())
}

fn search(args: SearchArgs) -> Result<(), Failure> {
    let cfg = load(&args.file)?;
    let options = SearchOptions {
        mode: args.mode.map(|m| match m {
            ModeArg::Dense => SearchMode::Dense,
            ModeArg::Sparse => SearchMode::Sparse,
            ModeArg::Hybrid => SearchMode::Hybrid,
        }),
        ranker: match args.ranker {
            RankerArg::Rrf => Ranker::Rrf { k: args.rrf_k },
            RankerArg::Weighted => Ranker::Weighted {
                weights: args.weights,
            },
        },
        limit: args.limit,
        filter: args.filter,
        rerank: args.rerank.then(|| RerankOptions {
            model: args.rerank_model.clone(),
            top: args.rerank_top,
        }),
    };
    let runtime = async_runtime()?;
    let hits = vecpipe::search::search(&cfg, &args.query, &options, runtime.handle())?;
    if args.json {
        for hit in &hits {
            println!("{}", serde_json::to_string(hit).expect("hits serialize"));
        }
    } else {
        let reranked = hits.iter().any(|h| h.rerank_score.is_some());
        if reranked {
            println!(
                "{:>4}  {:>8}  {:>8}  {:<16}  text",
                "rank", "rerank", "score", "id"
            );
        } else {
            println!("{:>4}  {:>8}  {:<16}  text", "rank", "score", "id");
        }
        for hit in &hits {
            let text: String = hit.text.chars().take(90).collect();
            let more = if hit.text.chars().count() > 90 {
                "…"
            } else {
                ""
            };
            match hit.rerank_score {
                Some(rerank) => println!(
                    "{:>4}  {:>8.4}  {:>8.4}  {:<16}  {text}{more}",
                    hit.rank, rerank, hit.score, hit.id
                ),
                None => println!(
                    "{:>4}  {:>8.4}  {:<16}  {text}{more}",
                    hit.rank, hit.score, hit.id
                ),
            }
        }
    }
    Ok(())
}

/// Parquet runs record finished row groups (for `--resume`) unless told otherwise.
fn backfill(
    cfg: &PipelineConfig,
    shard: Option<Shard>,
    resume: bool,
    state: Option<PathBuf>,
) -> Backfill {
    let state_file = state.or_else(|| {
        matches!(cfg.source, SourceConfig::Parquet(_)).then(|| {
            let suffix = shard.map_or(String::new(), |s| {
                format!(".shard-{}-of-{}", s.index, s.count)
            });
            PathBuf::from(".vecpipe/state").join(format!("{}{suffix}.jsonl", cfg.name))
        })
    });
    Backfill {
        shard,
        state_file,
        resume,
    }
}

fn load(file: &Path) -> Result<PipelineConfig, Failure> {
    load_pipeline_file(file).map_err(usage)
}

fn fit(args: FitArgs) -> Result<(), Failure> {
    let pipeline;
    let files_source;
    let (source, stages, mut analyzer, out) = match (&args.pipeline, &args.input) {
        (Some(file), _) => {
            pipeline = load(file)?;
            let bm25 = pipeline
                .stages
                .iter()
                .enumerate()
                .find_map(|(i, s)| match s {
                    StageConfig::Bm25(c) => Some((i, c)),
                    _ => None,
                });
            let (stages, stage_cfg) = match bm25 {
                Some((i, c)) => (&pipeline.stages[..i], Some(c)),
                None => (&pipeline.stages[..], None),
            };
            let out = args
                .out
                .clone()
                .or_else(|| stage_cfg.map(|c| c.params.clone()))
                .ok_or_else(|| {
                    usage(anyhow::anyhow!(
                        "{} has no bm25 stage: pass --out",
                        file.display()
                    ))
                })?;
            let analyzer = stage_cfg
                .and_then(|c| c.analyzer.clone())
                .unwrap_or_default();
            (&pipeline.source, stages, analyzer, out)
        }
        (None, Some(input)) => {
            let format = args.format.or_else(|| {
                let ext = Path::new(input.trim_end_matches('/'))
                    .extension()?
                    .to_str()?;
                match ext {
                    "jsonl" => Some(InputFormat::Jsonl),
                    "parquet" => Some(InputFormat::Parquet),
                    _ => None,
                }
            });
            let files = FileSourceConfig {
                path: input.clone(),
                id_field: None,
                text_field: args.text_field.clone(),
                metadata: Vec::new(),
                batch_rows: PositiveInt(1024),
                max_text_bytes: PositiveInt(1 << 20),
            };
            files_source = match format {
                Some(InputFormat::Jsonl) => SourceConfig::Jsonl(files),
                Some(InputFormat::Parquet) => SourceConfig::Parquet(files),
                None => {
                    return Err(usage(anyhow::anyhow!(
                        "cannot tell the format of `{input}`: pass --format"
                    )));
                }
            };
            let out = args
                .out
                .clone()
                .ok_or_else(|| usage(anyhow::anyhow!("--out is required with --input")))?;
            (&files_source, &[][..], AnalyzerConfig::default(), out)
        }
        (None, None) => {
            return Err(usage(anyhow::anyhow!(
                "pass --pipeline FILE or --input PATH"
            )));
        }
    };
    if args.analyzer.given() {
        analyzer = args.analyzer.to_config();
    }
    let summary = fit_bm25(&FitInput {
        source,
        stages,
        analyzer,
        k1: args.k1,
        b: args.b,
        epsilon: args.epsilon,
        out: &out,
    })?;
    println!(
        "fitted BM25 on {} documents ({} terms, {} skipped) → {}",
        summary.documents,
        summary.terms,
        summary.skipped,
        summary.out.display()
    );
    Ok(())
}
