//! The `vecpipe` command: parses arguments, calls the library, and maps
//! errors to exit codes: 0 done, 1 a failure while running, 2 a problem
//! found while setting up (see `vecpipe::error::Phased`).

mod cli;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Parser;
use cli::{Bm25Command, Cli, Command, EvalArgs, FitArgs, LogFormat, ModelCommand, SearchArgs};
use vecpipe::error::Phased;
use vecpipe::pipeline::{
    FitInput, RunOptions, StopSignal, check_environment, fit_bm25, run_pipeline,
};
use vecpipe::search::{QueryHit, Searcher, json_lines};
use vecpipe::{PipelineConfig, load_pipeline_file};

/// Queries encoded and searched per request with `search --queries`.
const QUERY_BATCH: usize = 32;

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
        .with_ansi(colour_on_stderr())
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

/// Colour codes only for a terminal, and not when `NO_COLOR` is set (no-color.org).
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Validate {
            file,
            no_environment,
        } => validate(&file, no_environment),
        Command::Run {
            file,
            shard,
            resume,
            state,
            force,
            sync,
            sync_max_delete,
        } => {
            let cfg = load(&file)?;
            let options = RunOptions {
                backfill: cfg.backfill(shard, resume, state),
                force,
                sync: sync.then_some(sync_max_delete),
            };
            let summary = async_runtime()?.block_on(async {
                run_pipeline(&cfg, os_stop_signal()?, options)
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
        } => daemon(&file, metrics_addr, Duration::from_secs(shutdown_timeout)),
        Command::Bm25(Bm25Command::Fit(args)) => fit(args),
        Command::Model(ModelCommand::Prepare { name, dir, from }) => {
            prepare_model(&name, dir, from)
        }
        Command::Search(args) => search(args),
        Command::Eval(args) => eval(args),
    }
}

fn prepare_model(
    name: &str,
    dir: Option<std::path::PathBuf>,
    from: Option<std::path::PathBuf>,
) -> Result<(), Failure> {
    use vecpipe::bm25::japanese;
    use vecpipe::prepare::{PrepareError, prepare};
    let dir = dir.or_else(vecpipe::user_models_dir).ok_or_else(|| {
        usage(anyhow!(
            "no models directory: pass --dir, or set VECPIPE_MODELS_DIR or HOME"
        ))
    })?;
    if name == japanese::DICTIONARY {
        let from = from.unwrap_or_else(|| japanese::DEBIAN_SOURCES.into());
        let (path, built) = japanese::prepare(&from, &dir).map_err(|e| Failure {
            code: 1,
            error: e.into(),
        })?;
        match built {
            true => println!("{name}: built from {} → {}", from.display(), path.display()),
            false => println!("{name}: already there → {}", path.display()),
        }
        return Ok(());
    }
    if from.is_some() {
        return Err(usage(anyhow!(
            "--from is for `model prepare {}` only",
            japanese::DICTIONARY
        )));
    }
    let (path, origin) = prepare(name, &dir).map_err(|e| match e {
        PrepareError::Unknown { .. } => usage(e),
        e => Failure {
            code: 1,
            error: e.into(),
        },
    })?;
    println!("{name}: {origin} → {}", path.display());
    Ok(())
}

fn validate(file: &Path, no_environment: bool) -> Result<(), Failure> {
    let cfg = load(file)?;
    if !no_environment {
        let problems = async_runtime()?.block_on(check_environment(&cfg));
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .into_iter()
                .map(|p| cfg.at(&p.path, p.message).to_string())
                .collect();
            return Err(usage(anyhow!(lines.join("\nerror: "))));
        }
    }
    println!(
        "{}: ok ({} stage(s), {} sink(s))",
        file.display(),
        cfg.stage_count(),
        cfg.sink_count()
    );
    Ok(())
}

fn daemon(
    file: &Path,
    metrics_addr: std::net::SocketAddr,
    shutdown_timeout: Duration,
) -> Result<(), Failure> {
    let cfg = load(file)?;
    let metrics = vecpipe::metrics::install()
        .context("cannot install the metrics recorder")
        .map_err(runtime_failure)?;
    let summary = async_runtime()?.block_on(async {
        let listener = tokio::spawn(vecpipe::metrics::serve(metrics_addr, metrics));
        let stop = os_stop_signal()?;
        stop.exit_if_not_done_within(shutdown_timeout);
        let result = run_pipeline(&cfg, stop, RunOptions::default())
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
    let runtime = async_runtime()?;
    let options = args.options();
    let Some(file) = &args.queries else {
        let query = args.query.as_deref().unwrap_or_default();
        let hits = vecpipe::search::search(&cfg, query, &options, runtime.handle())?;
        let text = vecpipe::search::format_hits(&hits, args.json);
        write_out(&mut std::io::stdout().lock(), &text)?;
        return Ok(());
    };
    let queries = vecpipe::search::read_queries(file).map_err(usage)?;
    let mut searcher = Searcher::open(&cfg, options.rerank.as_ref(), runtime.handle())?;
    let mut out = std::io::stdout().lock();
    for batch in queries.chunks(QUERY_BATCH) {
        let texts: Vec<&str> = batch.iter().map(|q| q.text.as_str()).collect();
        let hits = searcher.search(&texts, &options)?;
        let lines = batch.iter().zip(&hits).flat_map(|(query, hits)| {
            hits.iter().map(|hit| QueryHit {
                query_id: &query.id,
                hit,
            })
        });
        if !write_out(&mut out, &json_lines(lines))? {
            break;
        }
    }
    Ok(())
}

/// Writes `text` to stdout; `false` when the reader has gone (`| head`),
/// which ends the command quietly, as it would a shell tool.
fn write_out(out: &mut impl Write, text: &str) -> Result<bool, Failure> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(runtime_failure(
            anyhow::Error::new(e).context("cannot write to stdout"),
        )),
    }
}

fn eval(args: EvalArgs) -> Result<(), Failure> {
    let cfg = load(&args.file)?;
    let runtime = async_runtime()?;
    let report = vecpipe::eval::evaluate(&cfg, &args.options(), runtime.handle())?;
    let text = if args.json {
        let json = serde_json::to_string_pretty(&report).expect("the report serializes");
        format!("{json}\n")
    } else {
        report.table(args.cutoffs())
    };
    write_out(&mut std::io::stdout().lock(), &text)?;
    Ok(())
}

fn fit(args: FitArgs) -> Result<(), Failure> {
    let out = args.out.clone().or_else(|| args.update.clone());
    let mut input = match (&args.pipeline, &args.input) {
        (Some(file), _) => FitInput::from_pipeline(&load(file)?, out)?,
        (None, Some(path)) => {
            let out = out.ok_or_else(|| usage(anyhow!("--out is required with --input")))?;
            FitInput::from_files(path, args.format.map(Into::into), &args.text_field, out)?
        }
        (None, None) => return Err(usage(anyhow!("pass --pipeline FILE or --input PATH"))),
    };
    if args.analyzer.given() {
        input.analyzer = args.analyzer.to_config();
        input.analyzer_chosen = true;
    }
    (input.k1, input.b, input.epsilon) = (args.k1, args.b, args.epsilon);
    input.update = args.update.clone();
    let summary = fit_bm25(&input)?;
    match summary.updated_from {
        None => println!(
            "fitted BM25 on {} chunks ({} terms, {} skipped) → {}",
            summary.documents,
            summary.terms,
            summary.skipped,
            summary.out.display()
        ),
        Some((documents, terms, exact)) => {
            if !exact {
                eprintln!(
                    "warning: the params had no doc_freq (pymilvus.model's file, or an older one): document frequencies were recovered from the idfs, and terms in over half of the documents were taken to be in all of them"
                );
            }
            println!(
                "updated BM25 with {} chunks ({} skipped): {} chunks, {} terms ({} new) → {}",
                summary.documents - documents,
                summary.skipped,
                summary.documents,
                summary.terms,
                summary.terms - terms,
                summary.out.display()
            );
        }
    }
    Ok(())
}

fn load(file: &Path) -> Result<PipelineConfig, Failure> {
    load_pipeline_file(file).map_err(usage)
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
