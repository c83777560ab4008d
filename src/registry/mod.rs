//! The component registry: which sources, stages and sinks exist (one line
//! each), the pipeline they make up, and how a pipeline file becomes one.
//!
//! To add a component, write its module (a config struct deriving
//! `Deserialize`, and an implementation of `SourceComponent`,
//! `StageComponent` or `SinkComponent`) and add its line below.

mod macros;
mod validate;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_aux::serde_introspection::serde_introspect;

use crate::config::{ConfigError, Document, Located, NodeError, read_node, sequence, tagged};
use crate::dead_letter::{DeadLetterConfig, DeadLetters};
use crate::sink::SinkComponent;
use crate::source::SourceComponent;
use crate::source::backfill::{Backfill, Shard};
use crate::stage::{StageComponent, StageContext};
use macros::components;

components! {
    /// `source:` — where records come from.
    pub(crate) enum SourceConfig: SourceComponent {
        Jsonl(crate::source::jsonl::JsonlSourceConfig),
        Parquet(crate::source::parquet::ParquetSourceConfig),
        Kafka(crate::source::kafka::KafkaSourceConfig),
    }
}

components! {
    /// What one entry of `stages:` does.
    pub(crate) enum StageConfig: StageComponent {
        Chunk(crate::stage::chunk::ChunkStageConfig),
        Dense(crate::stage::dense::DenseStageConfig),
        Bm25(crate::stage::bm25::Bm25StageConfig),
        Splade(crate::stage::splade::SpladeStageConfig),
        Rerank(crate::stage::rerank::RerankStageConfig),
    }
}

components! {
    /// Where one entry of `sinks:` writes.
    pub(crate) enum SinkConfig: SinkComponent {
        Arrow(crate::sink::arrow_file::ArrowSinkConfig),
        Milvus(crate::sink::milvus::MilvusSinkConfig),
        Jsonl(crate::sink::jsonl::JsonlSinkConfig),
    }
}

/// One entry of `stages:`: the keys every stage has, and the stage.
#[derive(Debug, Clone)]
pub(crate) struct StageEntry {
    /// The optional `id:` a sink can name in `inputs:`.
    pub id: Option<String>,
    pub config: StageConfig,
}

/// One entry of `sinks:`: the keys every sink has, and the sink.
#[derive(Debug, Clone)]
pub(crate) struct SinkEntry {
    /// The stage ids this sink reads from; empty = the end of the stage chain.
    pub inputs: Vec<String>,
    pub config: SinkConfig,
}

/// The keys every source has, beside its own: none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceKeys {}

/// The keys every stage has, beside its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageKeys {
    #[serde(default)]
    id: Option<String>,
}

/// The keys every sink has, beside its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkKeys {
    #[serde(default)]
    inputs: Vec<String>,
}

/// The top of a pipeline file; the components are read by their tags.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineKeys {
    name: String,
    #[allow(dead_code)]
    source: serde::de::IgnoredAny,
    #[serde(default)]
    #[allow(dead_code)]
    stages: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    sinks: serde::de::IgnoredAny,
    #[serde(default)]
    dead_letter: Option<DeadLetterConfig>,
}

/// A whole pipeline file, checked.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub(crate) name: String,
    pub(crate) source: SourceConfig,
    pub(crate) stages: Vec<StageEntry>,
    pub(crate) sinks: Vec<SinkEntry>,
    pub(crate) dead_letter: Option<DeadLetterConfig>,
    document: Document,
    /// The pipeline file's directory: relative paths in the file were joined
    /// to it, and the backfill state is kept under it.
    base: PathBuf,
}

/// Loads and checks a pipeline file, expanding `${VAR}` from the process
/// environment; its relative paths name places next to it.
pub fn load_pipeline_file(path: &Path) -> Result<PipelineConfig, ConfigError> {
    let base = path.parent().unwrap_or(Path::new(""));
    PipelineConfig::from_document(Document::read(path)?, base)
}

/// Loads and checks pipeline YAML; `file` names it in errors, and relative
/// paths stay relative to the working directory.
pub fn load_pipeline_str(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineConfig, ConfigError> {
    PipelineConfig::from_document(Document::parse(file, text, env)?, Path::new(""))
}

impl PipelineConfig {
    fn from_document(document: Document, base: &Path) -> Result<Self, ConfigError> {
        let mut cfg = read_pipeline(&document).map_err(|e| document.error(e))?;
        cfg.rebase(base);
        validate::pipeline(&cfg)
            .map_err(|e| ConfigError::Invalid(document.at(&e.path, e.message)))?;
        Ok(cfg)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn rebase(&mut self, base: &Path) {
        self.source.rebase(base);
        for stage in &mut self.stages {
            stage.config.rebase(base);
        }
        for sink in &mut self.sinks {
            sink.config.rebase(base);
        }
        if let Some(dead_letter) = &mut self.dead_letter {
            crate::config::RelativePaths::rebase(dead_letter, base);
        }
        self.base = base.to_path_buf();
    }

    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    pub fn sink_count(&self) -> usize {
        self.sinks.len()
    }

    /// A problem found after loading, at a schema path such as `stages[1].model`.
    pub fn at(&self, path: &str, message: impl Into<String>) -> Located {
        self.document.at(path, message)
    }

    /// The plan of a `run`: sources that support backfills record finished
    /// units unless told where, in `.vecpipe/state/NAME[.shard-K-of-N].jsonl`
    /// beside the pipeline file.
    pub fn backfill(&self, shard: Option<Shard>, resume: bool, state: Option<PathBuf>) -> Backfill {
        let state_file = state.or_else(|| {
            self.source.component().supports_backfill().then(|| {
                let suffix = shard.map_or(String::new(), |s| {
                    format!(".shard-{}-of-{}", s.index, s.count)
                });
                self.base
                    .join(".vecpipe/state")
                    .join(format!("{}{suffix}.jsonl", self.name))
            })
        });
        Backfill {
            shard,
            state_file,
            resume,
        }
    }

    /// How many stages a sink's input has passed through: all of them, or up
    /// to the stage its `inputs` names (`None` when no stage has that id).
    pub(crate) fn sink_depth(&self, sink: &SinkEntry) -> Option<usize> {
        match sink.inputs.first() {
            None => Some(self.stages.len()),
            Some(id) => self
                .stages
                .iter()
                .position(|s| s.id.as_deref() == Some(id.as_str()))
                .map(|index| index + 1),
        }
    }

    pub(crate) fn stage_configs(&self) -> impl Iterator<Item = &StageConfig> {
        self.stages.iter().map(|s| &s.config)
    }
}

/// What the stages share when they are built: the dead letters, and the
/// first model a stage offers its tokenizer from (for `chunk`).
pub(crate) fn stage_context<'a>(
    stages: impl IntoIterator<Item = &'a StageConfig>,
    dead_letters: &DeadLetters,
) -> StageContext {
    StageContext {
        dead_letters: dead_letters.clone(),
        tokenizer_model: stages
            .into_iter()
            .find_map(|s| s.component().tokenizer_model().map(str::to_string)),
    }
}

fn read_pipeline(document: &Document) -> Result<PipelineConfig, NodeError> {
    let root = document.root();
    let top: PipelineKeys = read_node(root, "")?;
    let map = root
        .as_mapping()
        .expect("the loader only accepts a mapping at the top");
    let child = |key: &str| map.get_node(key).expect("checked by PipelineKeys");

    let (_, source) = tagged::<SourceConfig, SourceKeys>(child("source"), "source", &[])?;
    let stages = match map.get_node("stages") {
        Some(node) => sequence(node, "stages")?
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let (keys, config) =
                    tagged::<StageConfig, StageKeys>(node, &format!("stages[{i}]"), &["id"])?;
                Ok(StageEntry {
                    id: keys.id,
                    config,
                })
            })
            .collect::<Result<Vec<_>, NodeError>>()?,
        None => Vec::new(),
    };
    let sinks = sequence(child("sinks"), "sinks")?
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let (keys, config) =
                tagged::<SinkConfig, SinkKeys>(node, &format!("sinks[{i}]"), &["inputs"])?;
            Ok(SinkEntry {
                inputs: keys.inputs,
                config,
            })
        })
        .collect::<Result<Vec<_>, NodeError>>()?;
    Ok(PipelineConfig {
        name: top.name,
        source,
        stages,
        sinks,
        dead_letter: top.dead_letter,
        document: document.clone(),
        base: PathBuf::new(),
    })
}

/// One registered component: its family, its `type:` and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// `source`, `stage` or `sink`.
    pub family: &'static str,
    pub kind: &'static str,
    /// Its own keys and the ones every member of the family has.
    pub keys: Vec<&'static str>,
}

/// Every registered component, in registration order.
pub fn catalog() -> Vec<ComponentInfo> {
    fn family(
        family: &'static str,
        shared: &'static [&'static str],
        entries: Vec<(&'static str, &'static [&'static str])>,
    ) -> impl Iterator<Item = ComponentInfo> {
        entries.into_iter().map(move |(kind, keys)| ComponentInfo {
            family,
            kind,
            keys: shared.iter().chain(keys).copied().collect(),
        })
    }
    family(
        "source",
        serde_introspect::<SourceKeys>(),
        SourceConfig::catalog(),
    )
    .chain(family(
        "stage",
        serde_introspect::<StageKeys>(),
        StageConfig::catalog(),
    ))
    .chain(family(
        "sink",
        serde_introspect::<SinkKeys>(),
        SinkConfig::catalog(),
    ))
    .collect()
}

/// The keys of the settings that are not components: the top of the file,
/// `dead_letter`, and the nested settings of components (`analyzer`, `index`).
pub fn setting_keys() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("pipeline", serde_introspect::<PipelineKeys>()),
        ("dead_letter", serde_introspect::<DeadLetterConfig>()),
        (
            "stages[bm25].analyzer",
            serde_introspect::<crate::stage::bm25::AnalyzerConfig>(),
        ),
        (
            "sinks[milvus].index",
            serde_introspect::<crate::sink::milvus::IndexConfig>(),
        ),
        (
            "sinks[milvus].index.dense",
            serde_introspect::<crate::sink::milvus::IndexSpec>(),
        ),
    ]
}

#[cfg(test)]
mod tests;
