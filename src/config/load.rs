//! Reading YAML for the pipeline: spans kept, `${VAR}` expanded, `type:`
//! components dispatched, and every error located as
//! `FILE:LINE:COL: path: message`. Nothing here knows which components exist;
//! the registry (`crate::registry`) says that.

use std::fmt;
use std::path::{Path, PathBuf};

use marked_yaml::{LoadError, LoaderOptions, Marker, Node, from_node};
use serde::de::DeserializeOwned;

use super::env::expand;

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

/// A parsed pipeline file with `${VAR}` expanded: the nodes keep their
/// places, so problems found at any time can be located.
#[derive(Debug, Clone)]
pub struct Document {
    file: String,
    root: Node,
}

impl Document {
    /// Reads and parses a file, expanding `${VAR}` from the process environment.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Document::parse(&path.display().to_string(), &text, &|name| {
            std::env::var(name).ok()
        })
    }

    /// Parses YAML text; `file` names it in errors.
    pub fn parse(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let options = LoaderOptions::default().error_on_duplicate_keys(true);
        let mut root = marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| {
            located(
                file,
                NodeError {
                    marker: load_error_marker(&e).copied(),
                    path: String::new(),
                    message: load_error_message(&e),
                },
            )
        })?;
        expand_scalars(&mut root, env).map_err(|e| located(file, e))?;
        Ok(Document {
            file: file.to_string(),
            root,
        })
    }

    pub(crate) fn root(&self) -> &Node {
        &self.root
    }

    /// A problem at a schema path such as `stages[1].model` (or its deepest existing parent).
    pub fn at(&self, path: &str, message: impl Into<String>) -> Located {
        let marker = locate(&self.root, path);
        Located {
            file: self.file.clone(),
            line: marker.map_or(0, |m| m.line()),
            column: marker.map_or(0, |m| m.column()),
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// An error from reading nodes, at its own marker.
    pub(crate) fn error(&self, e: NodeError) -> ConfigError {
        located(&self.file, e)
    }
}

fn located(file: &str, e: NodeError) -> ConfigError {
    ConfigError::Invalid(Located {
        file: file.to_string(),
        line: e.marker.map_or(0, |m| m.line()),
        column: e.marker.map_or(0, |m| m.column()),
        path: e.path,
        message: e.message,
    })
}

/// A problem found while reading nodes: where, at which schema path, what.
#[derive(Debug)]
pub(crate) struct NodeError {
    pub marker: Option<Marker>,
    pub path: String,
    pub message: String,
}

/// A family of `type:`-tagged components (sources, stages, sinks); the
/// registry's `components!` macro implements it.
pub(crate) trait Tagged: Sized {
    /// The `type:` names, in registration order.
    fn kinds() -> Vec<&'static str>;
    /// Reads the component named `kind` from the rest of its mapping; `None`
    /// when no component has that name.
    fn from_kind(kind: &str, node: &Node) -> Option<Result<Self, marked_yaml::FromNodeError>>;
}

/// Reads a node into `T`, naming `path` in errors.
pub(crate) fn read_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, NodeError> {
    from_node(node).map_err(|e| node_error(path, e))
}

/// The items of a list (an empty value is an empty list).
pub(crate) fn sequence<'a>(node: &'a Node, path: &str) -> Result<&'a [Node], NodeError> {
    match node {
        Node::Sequence(seq) => Ok(seq.as_slice()),
        Node::Scalar(s) if s.as_str().is_empty() => Ok(&[]),
        other => Err(NodeError {
            marker: other.span().start().copied(),
            path: path.to_string(),
            message: "expected a list".to_string(),
        }),
    }
}

/// A `type:`-tagged component with shared keys beside it (`id:`, `inputs:`,
/// read into `S`): the tag picks the component, which reads the rest of the
/// mapping directly from the spanned nodes.
pub(crate) fn tagged<T: Tagged, S: DeserializeOwned>(
    node: &Node,
    path: &str,
    shared_keys: &[&str],
) -> Result<(S, T), NodeError> {
    let at = |marker: Option<&Marker>, path: String, message: String| NodeError {
        marker: marker.copied(),
        path,
        message,
    };
    let start = node.span().start();
    let Some(map) = node.as_mapping() else {
        let message = "expected a mapping with a `type` key".to_string();
        return Err(at(start, path.to_string(), message));
    };
    let Some(kind) = map.get_scalar("type") else {
        let message = format!("missing `type` (one of: {})", T::kinds().join(", "));
        return Err(at(start, path.to_string(), message));
    };
    let (mut shared, mut rest) = (map.clone(), map.clone());
    shared.retain(|k, _| shared_keys.contains(&k.as_str()));
    rest.retain(|k, _| k.as_str() != "type" && !shared_keys.contains(&k.as_str()));
    let shared = read_node(&Node::Mapping(shared), path)?;
    match T::from_kind(kind.as_str(), &Node::Mapping(rest)) {
        Some(result) => Ok((shared, result.map_err(|e| node_error(path, e))?)),
        None => Err(at(
            kind.span().start(),
            format!("{path}.type"),
            format!(
                "unknown type `{}`, expected one of: {}",
                kind.as_str(),
                T::kinds().join(", ")
            ),
        )),
    }
}

fn node_error(prefix: &str, e: marked_yaml::FromNodeError) -> NodeError {
    let inner = e.path().filter(|p| *p != ".").unwrap_or_default();
    let path = super::types::join_path(prefix, inner);
    let marker = e.start_mark();
    let message = match &*e {
        marked_yaml::Error::IntegerParseFailure(..) => format!("expected an integer ({})", *e),
        marked_yaml::Error::FloatParseFailure(..) => format!("expected a number ({})", *e),
        marked_yaml::Error::NotBoolean(..) => "expected true or false".to_string(),
        other => other.to_string(),
    };
    NodeError {
        marker,
        path,
        message,
    }
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

fn expand_scalars(node: &mut Node, env: &dyn Fn(&str) -> Option<String>) -> Result<(), NodeError> {
    match node {
        Node::Scalar(scalar) => {
            if scalar.as_str().contains('$') {
                let expanded = expand(scalar.as_str(), env).map_err(|e| NodeError {
                    marker: scalar.span().start().copied(),
                    path: String::new(),
                    message: e.to_string(),
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
