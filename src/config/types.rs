//! Primitives every component's config uses: positive integers, the rules
//! serde cannot express (`Invalid`), and what a component's validation may
//! know of the rest of the pipeline (`Surroundings`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A rule broken: the schema path (relative to the component, empty for the
/// component itself) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub path: String,
    pub message: String,
}

impl Invalid {
    /// A problem with the key `path` (`""`: the component as a whole).
    pub(crate) fn at(path: &str, message: impl Into<String>) -> Self {
        Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// The same problem, seen from a parent at `prefix` (e.g. `stages[2]`).
    pub(crate) fn within(self, prefix: &str) -> Self {
        Invalid {
            path: join_path(prefix, &self.path),
            ..self
        }
    }
}

/// A schema path below `prefix`: `stages[1]` + `overlap` → `stages[1].overlap`,
/// `sinks[0]` + `[2]` → `sinks[0][2]`; either side may be empty.
pub(crate) fn join_path(prefix: &str, inner: &str) -> String {
    match (prefix, inner) {
        ("", inner) => inner.to_string(),
        (prefix, "") => prefix.to_string(),
        (prefix, inner) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (prefix, inner) => format!("{prefix}.{inner}"),
    }
}

/// What a component's validation may know of the rest of the pipeline.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Surroundings<'a> {
    /// The source's metadata fields.
    pub metadata: &'a [String],
    /// The columns the stages add (their `field:`), in order.
    pub stage_fields: &'a [&'a str],
    /// For a stage: the model of a later stage whose tokenizer it may borrow
    /// (`chunk` with `max_tokens` and no `tokenizer`).
    pub later_model: Option<&'a str>,
    /// The source ends by itself (files, not Kafka).
    pub source_bounded: bool,
}

/// `#[serde(default = "crate::config::yes")]`: a flag that is on unless turned off.
pub(crate) fn yes() -> bool {
    true
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
