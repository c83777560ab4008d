//! Reading a pipeline file: YAML with spans, `${VAR}` expansion, dispatch of
//! `type:`-tagged components, and validation — every error located as
//! `FILE:LINE:COL: path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::{LoadError, LoaderOptions, Marker, Node, from_node};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::env::expand;
use super::types::*;

/// A configuration error with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: String,
    /// 1-based; 0 when the place is unknown.
    pub line: usize,
    pub column: usize,
    /// Where in the schema, e.g. `stages[1].max_chars`; empty at the top.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the pipeline file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Located),
}

/// Loads and validates a pipeline file, expanding `${VAR}` from the process environment.
pub fn load_pipeline_file(path: &Path) -> Result<PipelineConfig, ConfigError> {
    load_pipeline_file_located(path).map(|(cfg, _)| cfg)
}

/// Finds places in a loaded pipeline file, for problems found after loading.
pub struct Locator {
    file: String,
    root: Node,
}

impl Locator {
    /// A problem at a schema path such as `stages[1].model` (or its deepest existing parent).
    pub fn at(&self, path: &str, message: String) -> Located {
        let marker = locate(&self.root, path);
        Located {
            file: self.file.clone(),
            line: marker.map_or(0, |m| m.line()),
            column: marker.map_or(0, |m| m.column()),
            path: path.to_string(),
            message,
        }
    }
}

/// Like [`load_pipeline_file`], with a [`Locator`] for the file.
pub fn load_pipeline_file_located(path: &Path) -> Result<(PipelineConfig, Locator), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let cfg = load_pipeline_str(&file, &text, &|name| std::env::var(name).ok())?;
    let root = marked_yaml::parse_yaml(0, &text).map_err(|e| {
        ConfigError::Invalid(Located {
            file: file.clone(),
            line: 0,
            column: 0,
            path: String::new(),
            message: load_error_message(&e),
        })
    })?;
    Ok((cfg, Locator { file, root }))
}

/// Loads and validates pipeline YAML; `file` names it in errors.
pub fn load_pipeline_str(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineConfig, ConfigError> {
    let at = |marker: Option<&Marker>, path: &str, message: String| {
        ConfigError::Invalid(Located {
            file: file.to_string(),
            line: marker.map_or(0, |m| m.line()),
            column: marker.map_or(0, |m| m.column()),
            path: path.to_string(),
            message,
        })
    };
    let options = LoaderOptions::default().error_on_duplicate_keys(true);
    let mut root = marked_yaml::parse_yaml_with_options(0, text, options)
        .map_err(|e| at(load_error_marker(&e), "", load_error_message(&e)))?;
    expand_scalars(&mut root, env).map_err(|(marker, msg)| at(Some(&marker), "", msg))?;

    let cfg = parse_root(&root).map_err(|(marker, path, msg)| at(marker.as_ref(), &path, msg))?;
    validate(&cfg).map_err(|(path, msg)| at(locate(&root, &path).as_ref(), &path, msg))?;
    Ok(cfg)
}

type NodeError = (Option<Marker>, String, String);

fn parse_root(root: &Node) -> Result<PipelineConfig, NodeError> {
    // Everything but the tagged components, with unknown keys rejected.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Top {
        name: String,
        source: IgnoredAny,
        #[serde(default)]
        stages: Option<IgnoredAny>,
        sinks: IgnoredAny,
        #[serde(default)]
        dead_letter: Option<DeadLetterConfig>,
    }
    let top: Top = from_node(root).map_err(|e| node_error("", e))?;
    let map = root
        .as_mapping()
        .expect("the loader only accepts a mapping at the top");

    let source = tagged::<SourceConfig>(map.get_node("source").expect("checked by Top"), "source")?;
    let stages = match map.get_node("stages") {
        Some(node) => sequence(node, "stages")?
            .iter()
            .enumerate()
            .map(|(i, n)| tagged::<StageConfig>(n, &format!("stages[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let sinks = sequence(map.get_node("sinks").expect("checked by Top"), "sinks")?
        .iter()
        .enumerate()
        .map(|(i, n)| tagged::<SinkConfig>(n, &format!("sinks[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PipelineConfig {
        name: top.name,
        source,
        stages,
        sinks,
        dead_letter: top.dead_letter,
    })
}

fn sequence<'a>(node: &'a Node, path: &str) -> Result<&'a [Node], NodeError> {
    match node {
        Node::Sequence(seq) => Ok(seq.as_slice()),
        Node::Scalar(s) if s.as_str().is_empty() => Ok(&[]),
        other => Err((
            other.span().start().copied(),
            path.to_string(),
            "expected a list".to_string(),
        )),
    }
}

/// A `type:`-tagged component: the tag picks the struct, which then reads the
/// rest of the mapping directly from the spanned nodes.
trait Tagged: Sized {
    const KINDS: &'static [&'static str];
    fn from_kind(kind: &str, node: &Node) -> Option<Result<Self, marked_yaml::FromNodeError>>;
}

impl Tagged for SourceConfig {
    const KINDS: &'static [&'static str] = SourceConfig::KINDS;
    fn from_kind(kind: &str, node: &Node) -> Option<Result<Self, marked_yaml::FromNodeError>> {
        Some(match kind {
            "jsonl" => from_node(node).map(SourceConfig::Jsonl),
            "parquet" => from_node(node).map(SourceConfig::Parquet),
            "kafka" => from_node(node).map(SourceConfig::Kafka),
            _ => return None,
        })
    }
}

impl Tagged for StageConfig {
    const KINDS: &'static [&'static str] = StageConfig::KINDS;
    fn from_kind(kind: &str, node: &Node) -> Option<Result<Self, marked_yaml::FromNodeError>> {
        Some(match kind {
            "chunk" => from_node(node).map(StageConfig::Chunk),
            "dense" => from_node(node).map(StageConfig::Dense),
            "bm25" => from_node(node).map(StageConfig::Bm25),
            "splade" => from_node(node).map(StageConfig::Splade),
            "rerank" => from_node(node).map(StageConfig::Rerank),
            _ => return None,
        })
    }
}

impl Tagged for SinkConfig {
    const KINDS: &'static [&'static str] = SinkConfig::KINDS;
    fn from_kind(kind: &str, node: &Node) -> Option<Result<Self, marked_yaml::FromNodeError>> {
        Some(match kind {
            "arrow" => from_node(node).map(SinkConfig::Arrow),
            "milvus" => from_node(node).map(|c| SinkConfig::Milvus(Box::new(c))),
            _ => return None,
        })
    }
}

fn tagged<T: Tagged>(node: &Node, path: &str) -> Result<T, NodeError> {
    let start = node.span().start().copied();
    let Some(map) = node.as_mapping() else {
        return Err((
            start,
            path.to_string(),
            "expected a mapping with a `type` key".into(),
        ));
    };
    let Some(kind) = map.get_scalar("type") else {
        return Err((
            start,
            path.to_string(),
            format!("missing `type` (one of: {})", T::KINDS.join(", ")),
        ));
    };
    let mut rest = map.clone();
    rest.retain(|k, _| k.as_str() != "type");
    let rest = Node::Mapping(rest);
    match T::from_kind(kind.as_str(), &rest) {
        Some(result) => result.map_err(|e| node_error(path, e)),
        None => Err((
            kind.span().start().copied(),
            format!("{path}.type"),
            format!(
                "unknown type `{}`, expected one of: {}",
                kind.as_str(),
                T::KINDS.join(", ")
            ),
        )),
    }
}

fn node_error(prefix: &str, e: marked_yaml::FromNodeError) -> NodeError {
    let inner = e
        .path()
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string);
    let path = match (prefix.is_empty(), inner) {
        (_, None) => prefix.to_string(),
        (true, Some(inner)) => inner,
        (false, Some(inner)) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, Some(inner)) => format!("{prefix}.{inner}"),
    };
    let marker = e.start_mark();
    let message = match &*e {
        marked_yaml::Error::IntegerParseFailure(..) => format!("expected an integer ({})", *e),
        marked_yaml::Error::FloatParseFailure(..) => format!("expected a number ({})", *e),
        marked_yaml::Error::NotBoolean(..) => "expected true or false".to_string(),
        other => other.to_string(),
    };
    (marker, path, message)
}

fn load_error_marker(e: &LoadError) -> Option<&Marker> {
    match e {
        LoadError::TopLevelMustBeMapping(m)
        | LoadError::TopLevelMustBeSequence(m)
        | LoadError::UnexpectedAnchor(m)
        | LoadError::MappingKeyMustBeScalar(m)
        | LoadError::UnexpectedTag(m)
        | LoadError::ScanError(m, _) => Some(m),
        LoadError::DuplicateKey(inner) => inner.key.span().start(),
    }
}

fn load_error_message(e: &LoadError) -> String {
    match e {
        LoadError::TopLevelMustBeMapping(_) => "the pipeline must be a YAML mapping".into(),
        LoadError::ScanError(_, scan) => format!("invalid YAML: {scan}"),
        LoadError::DuplicateKey(inner) => format!("duplicate key `{}`", inner.key.as_str()),
        LoadError::UnexpectedAnchor(_) => "YAML anchors are not supported".into(),
        LoadError::UnexpectedTag(_) => "YAML tags are not supported".into(),
        LoadError::MappingKeyMustBeScalar(_) => "mapping keys must be plain strings".into(),
        LoadError::TopLevelMustBeSequence(_) => "unexpected top-level sequence".into(),
    }
}

fn expand_scalars(
    node: &mut Node,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (Marker, String)> {
    match node {
        Node::Scalar(scalar) => {
            if scalar.as_str().contains('$') {
                let expanded = expand(scalar.as_str(), env).map_err(|e| {
                    (
                        scalar
                            .span()
                            .start()
                            .copied()
                            .unwrap_or_else(|| Marker::new(0, 0, 0, 0)),
                        e.to_string(),
                    )
                })?;
                let mut replaced =
                    marked_yaml::types::MarkedScalarNode::new(*scalar.span(), expanded);
                replaced.set_coerce(scalar.may_coerce());
                *scalar = replaced;
            }
        }
        Node::Sequence(seq) => {
            for item in seq.iter_mut() {
                expand_scalars(item, env)?;
            }
        }
        Node::Mapping(map) => {
            for (_, value) in map.iter_mut() {
                expand_scalars(value, env)?;
            }
        }
    }
    Ok(())
}

/// Finds the node at a path like `stages[1].overlap`, or the deepest parent that exists.
fn locate(root: &Node, path: &str) -> Option<Marker> {
    let mut node = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            match node.as_mapping().and_then(|m| m.get_node(key)) {
                Some(next) => node = next,
                None => break,
            }
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            let next = index
                .parse::<usize>()
                .ok()
                .and_then(|i| node.as_sequence().and_then(|s| s.get(i)));
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
    }
    node.span().start().copied()
}

/// A rule broken: the schema path and the message.
type Invalid = (String, String);

fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    (path.to_string(), message.into())
}

/// Columns every batch has, whatever the pipeline.
const RESERVED_COLUMNS: [&str; 4] = ["id", "doc_id", "chunk_index", "text"];

/// Rules serde cannot express; the error names the schema path.
fn validate(cfg: &PipelineConfig) -> Result<(), Invalid> {
    if cfg.name.trim().is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    validate_metadata(&cfg.source)?;
    let ids = validate_stages(cfg)?;
    if let Some(dl) = &cfg.dead_letter {
        validate_dead_letter(dl)?;
    }
    validate_sinks(cfg, &ids)
}

fn validate_metadata(source: &SourceConfig) -> Result<(), Invalid> {
    let (id_field, text_field, metadata) = source.record_keys();
    for (i, field) in metadata.iter().enumerate() {
        let path = format!("source.metadata[{i}]");
        if RESERVED_COLUMNS.contains(&field.as_str())
            || Some(field.as_str()) == id_field
            || field == text_field
        {
            return Err(invalid(
                &path,
                format!("`{field}` is already an output column (id, doc_id, chunk_index, text)"),
            ));
        }
        if metadata[..i].contains(field) {
            return Err(invalid(&path, format!("`{field}` is listed twice")));
        }
    }
    Ok(())
}

/// Checks every stage; returns the stage ids.
fn validate_stages(cfg: &PipelineConfig) -> Result<Vec<&str>, Invalid> {
    let (_, _, metadata) = cfg.source.record_keys();
    let mut ids: Vec<&str> = Vec::new();
    let mut added: Vec<&str> = Vec::new();
    for (i, stage) in cfg.stages.iter().enumerate() {
        let path = format!("stages[{i}]");
        if let Some(field) = stage.output_field() {
            if RESERVED_COLUMNS.contains(&field)
                || metadata.iter().any(|m| m == field)
                || added.contains(&field)
            {
                return Err(invalid(
                    &format!("{path}.field"),
                    format!("`{field}` is already a column"),
                ));
            }
            added.push(field);
        }
        if let Some(id) = stage.id() {
            if ids.contains(&id) {
                return Err(invalid(
                    &format!("{path}.id"),
                    format!("stage id `{id}` is used twice"),
                ));
            }
            ids.push(id);
        }
        match stage {
            StageConfig::Chunk(c) => {
                let dense_follows = cfg.stages[i..]
                    .iter()
                    .any(|s| matches!(s, StageConfig::Dense(_)));
                validate_chunk(c, &path, dense_follows)?;
            }
            StageConfig::Dense(c)
                if c.provider == DenseProvider::Openai && c.base_url.is_none() =>
            {
                return Err(invalid(&path, "`provider: openai` needs `base_url`"));
            }
            StageConfig::Dense(_) | StageConfig::Splade(_) => {}
            StageConfig::Rerank(c) => validate_rerank(c, &path, metadata)?,
            StageConfig::Bm25(c) => validate_bm25(c, &path)?,
        }
    }
    Ok(ids)
}

fn validate_chunk(c: &ChunkStageConfig, path: &str, dense_follows: bool) -> Result<(), Invalid> {
    let size = match (c.max_chars, c.max_tokens) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                path,
                "set either `max_chars` or `max_tokens`, not both",
            ));
        }
        (None, None) => return Err(invalid(path, "set `max_chars` or `max_tokens`")),
        (Some(n), None) => n.get(),
        (None, Some(_)) if c.tokenizer.is_none() && !dense_follows => {
            return Err(invalid(
                path,
                "`max_tokens` needs `tokenizer:` (a tokenizer.json or a model) or a later dense stage",
            ));
        }
        (None, Some(n)) => n.get(),
    };
    if c.overlap >= size {
        return Err(invalid(
            &format!("{path}.overlap"),
            format!("must be smaller than the chunk size ({size})"),
        ));
    }
    Ok(())
}

fn validate_rerank(c: &RerankStageConfig, path: &str, metadata: &[String]) -> Result<(), Invalid> {
    if c.provider == RerankProvider::Http && c.base_url.is_none() {
        return Err(invalid(path, "`provider: http` needs `base_url`"));
    }
    if c.candidates_field
        .as_ref()
        .is_some_and(|f| !metadata.contains(f))
    {
        return Err(invalid(
            &format!("{path}.candidates_field"),
            "must be one of source.metadata",
        ));
    }
    match (&c.query, &c.query_field) {
        (Some(_), None) => Ok(()),
        (None, Some(q)) if metadata.contains(q) => Ok(()),
        (None, Some(q)) => Err(invalid(
            &format!("{path}.query_field"),
            format!("`{q}` must be one of source.metadata"),
        )),
        _ => Err(invalid(path, "set either `query` or `query_field`")),
    }
}

fn validate_bm25(c: &Bm25StageConfig, path: &str) -> Result<(), Invalid> {
    match &c.analyzer {
        Some(analyzer)
            if analyzer.stemmer != "none"
                && !STEMMER_LANGUAGES.contains(&analyzer.stemmer.as_str()) =>
        {
            Err(invalid(
                &format!("{path}.analyzer.stemmer"),
                format!(
                    "unknown stemmer `{}`, expected `none` or one of: {}",
                    analyzer.stemmer,
                    STEMMER_LANGUAGES.join(", ")
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn validate_dead_letter(dl: &DeadLetterConfig) -> Result<(), Invalid> {
    match dl.kind {
        DeadLetterKind::File if dl.path.is_none() => {
            Err(invalid("dead_letter", "`type: file` needs `path`"))
        }
        DeadLetterKind::Kafka if dl.topic.is_none() || dl.brokers.is_none() => Err(invalid(
            "dead_letter",
            "`type: kafka` needs `topic` and `brokers`",
        )),
        _ => Ok(()),
    }
}

fn validate_sinks(cfg: &PipelineConfig, ids: &[&str]) -> Result<(), Invalid> {
    if cfg.sinks.is_empty() {
        return Err(invalid("sinks", "at least one sink is required"));
    }
    let mut paths: Vec<&Path> = Vec::new();
    for (i, sink) in cfg.sinks.iter().enumerate() {
        let path = format!("sinks[{i}]");
        match sink.inputs() {
            [] => {}
            [one] if ids.contains(&one.as_str()) => {}
            [one] => {
                return Err(invalid(
                    &format!("{path}.inputs[0]"),
                    format!("no stage has `id: {one}` (stage ids: {})", ids.join(", ")),
                ));
            }
            _ => {
                return Err(invalid(
                    &format!("{path}.inputs"),
                    "a sink takes exactly one input",
                ));
            }
        }
        match sink {
            SinkConfig::Arrow(c) => {
                if ArrowFormat::from_path(&c.path).is_none() {
                    return Err(invalid(
                        &format!("{path}.path"),
                        format!("`{}` must end in .parquet or .arrow", c.path.display()),
                    ));
                }
                if paths.contains(&c.path.as_path()) {
                    return Err(invalid(
                        &format!("{path}.path"),
                        "two sinks write the same file",
                    ));
                }
                paths.push(&c.path);
            }
            SinkConfig::Milvus(c) => validate_milvus(c, &path, &cfg.stages)?,
        }
    }
    Ok(())
}

fn validate_milvus(
    c: &MilvusSinkConfig,
    path: &str,
    stages: &[StageConfig],
) -> Result<(), Invalid> {
    if c.collection.trim().is_empty() {
        return Err(invalid(&format!("{path}.collection"), "must not be empty"));
    }
    if c.text_max_length.get() > 65_535 {
        return Err(invalid(
            &format!("{path}.text_max_length"),
            "Milvus VARCHAR holds at most 65535 bytes",
        ));
    }
    let client_sparse = stages
        .iter()
        .any(|s| matches!(s, StageConfig::Bm25(b) if b.field == c.sparse_field));
    if c.bm25 == Bm25Mode::Server && client_sparse {
        return Err(invalid(
            &format!("{path}.bm25"),
            format!(
                "`server` makes Milvus compute `{}` from the text; remove the bm25 stage or use `bm25: client`",
                c.sparse_field
            ),
        ));
    }
    Ok(())
}

/// Snowball languages that `stemmer:` accepts.
pub const STEMMER_LANGUAGES: &[&str] = &[
    "arabic",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hungarian",
    "italian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<PipelineConfig, ConfigError> {
        load_pipeline_str("p.yaml", text, &|name| {
            (name == "OUT").then(|| "out/x.parquet".to_string())
        })
    }

    fn error(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    const GOOD: &str = "\
name: t
source: { type: jsonl, path: data/*.jsonl, id_field: id, metadata: [title] }
stages:
  - { type: chunk, max_chars: 100, overlap: 10 }
  - type: bm25
    params: models/bm25.json
    analyzer: { tokenizer: whitespace, stop_words: none, stemmer: none }
sinks:
  - { type: arrow, path: '${OUT}' }
dead_letter: { path: out/dl.jsonl }
";

    #[test]
    fn a_full_pipeline_loads_with_env_expanded() {
        let cfg = load(GOOD).unwrap();
        assert_eq!(cfg.name, "t");
        let SourceConfig::Jsonl(source) = &cfg.source else {
            panic!("the source is jsonl")
        };
        assert_eq!(source.metadata, vec!["title"]);
        assert_eq!(source.batch_rows.get(), 1024);
        assert!(
            matches!(&cfg.stages[0], StageConfig::Chunk(c) if c.max_chars == Some(PositiveInt(100)) && c.overlap == 10)
        );
        let StageConfig::Bm25(bm25) = &cfg.stages[1] else {
            panic!("second stage is bm25")
        };
        let analyzer = bm25.analyzer.as_ref().unwrap();
        assert_eq!(analyzer.tokenizer, TokenizerKind::Whitespace);
        assert_eq!(analyzer.stop_words, StopWords::None);
        assert!(analyzer.lowercase);
        let SinkConfig::Arrow(sink) = &cfg.sinks[0] else {
            panic!("the sink is arrow")
        };
        assert_eq!(sink.path, PathBuf::from("out/x.parquet"));
    }

    #[test]
    fn typo_in_a_stage_key_names_line_column_and_path() {
        let text = GOOD.replace("overlap: 10", "overlpa: 10");
        let msg = error(&text);
        assert!(msg.starts_with("p.yaml:4:"), "{msg}");
        assert!(msg.contains("stages[0]"), "{msg}");
        assert!(msg.contains("overlpa"), "{msg}");
    }

    #[test]
    fn zero_batch_size_is_not_a_positive_integer() {
        let text = GOOD.replace("metadata: [title]", "metadata: [title], batch_rows: 0");
        let msg = error(&text);
        assert!(msg.starts_with("p.yaml:2:"), "{msg}");
        assert!(
            msg.contains("source.batch_rows: expected a positive integer, found 0"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_stage_type_lists_the_known_ones() {
        let msg = error(&GOOD.replace("type: chunk", "type: chunky"));
        assert!(msg.contains("p.yaml:4:"), "{msg}");
        assert!(
            msg.contains(
                "unknown type `chunky`, expected one of: chunk, dense, bm25, splade, rerank"
            ),
            "{msg}"
        );
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let msg = error(&format!("{GOOD}sink: []\n"));
        assert!(
            msg.starts_with("p.yaml:11:1: sink: Unknown field `sink`"),
            "{msg}"
        );
        assert!(msg.contains("sink"), "{msg}");
    }

    #[test]
    fn unset_variable_is_located() {
        let msg = error(&GOOD.replace("${OUT}", "${NOT_SET_ANYWHERE}"));
        assert!(msg.starts_with("p.yaml:9:"), "{msg}");
        assert!(msg.contains("NOT_SET_ANYWHERE"), "{msg}");
    }

    #[test]
    fn overlap_not_smaller_than_size_points_at_overlap() {
        let msg = error(&GOOD.replace("overlap: 10", "overlap: 100"));
        assert!(msg.contains("stages[0].overlap: must be smaller"), "{msg}");
        assert!(msg.starts_with("p.yaml:4:"), "{msg}");
    }

    #[test]
    fn sink_input_must_name_a_stage() {
        let msg = error(&GOOD.replace("path: '${OUT}'", "path: a.arrow, inputs: [nope]"));
        assert!(
            msg.contains("sinks[0].inputs[0]: no stage has `id: nope`"),
            "{msg}"
        );
    }

    #[test]
    fn broken_yaml_is_located() {
        let msg = error("name: [unclosed\nsource: x\n");
        assert!(msg.starts_with("p.yaml:"), "{msg}");
        assert!(msg.contains("invalid YAML"), "{msg}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let msg = error(&format!("name: a\n{GOOD}"));
        assert!(msg.contains("duplicate key `name`"), "{msg}");
    }
}
