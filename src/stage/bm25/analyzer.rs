//! Text analysis for BM25: tokenize, lowercase, stem, drop stop words — the
//! order of Milvus' `english` analyzer.

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashSet;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::Bm25Error;
use crate::config::Invalid;

/// Milvus' `_english_` stop-word list (Lucene's), one word per line.
const ENGLISH_STOP_WORDS: &str = include_str!("../../../config/stopwords/english.txt");

/// Text analysis for BM25, in the shape of Milvus analyzers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzerConfig {
    #[serde(default)]
    pub tokenizer: TokenizerKind,
    #[serde(default = "crate::config::yes")]
    pub lowercase: bool,
    #[serde(default)]
    pub stop_words: StopWords,
    /// A Snowball language (`english`, `french`, ...) or `none`.
    #[serde(default = "default_stemmer")]
    pub stemmer: String,
}

impl AnalyzerConfig {
    /// Rules serde cannot express: the stemmer must be a Snowball language.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.stemmer == "none" || STEMMER_LANGUAGES.contains(&self.stemmer.as_str()) {
            return Ok(());
        }
        Err(Invalid::at(
            "stemmer",
            format!(
                "unknown stemmer `{}`, expected `none` or one of: {}",
                self.stemmer,
                STEMMER_LANGUAGES.join(", ")
            ),
        ))
    }
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

pub struct Analyzer {
    tokenizer: TokenizerKind,
    lowercase: bool,
    stemmer: Option<Stemmer>,
    stop_words: FxHashSet<String>,
}

impl Analyzer {
    pub fn new(cfg: &AnalyzerConfig) -> Result<Self, Bm25Error> {
        let stop_words = match &cfg.stop_words {
            StopWords::English => ENGLISH_STOP_WORDS
                .lines()
                .map(str::trim)
                .filter(|w| !w.is_empty() && !w.starts_with('#'))
                .map(str::to_string)
                .collect(),
            StopWords::None => FxHashSet::default(),
            StopWords::List(words) => words.iter().cloned().collect(),
        };
        Ok(Analyzer {
            tokenizer: cfg.tokenizer,
            lowercase: cfg.lowercase,
            stemmer: stemmer(&cfg.stemmer)?,
            stop_words,
        })
    }

    /// The terms of a text, in order, repeats kept.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        self.for_each_term(text, |term| terms.push(term.to_string()));
        terms
    }

    /// Calls `f` with each term of `text`, in order, repeats kept; what
    /// [`Self::analyze`] returns, without allocating a string per term.
    pub fn for_each_term(&self, text: &str, mut f: impl FnMut(&str)) {
        let mut lowered = String::new();
        let mut each = |token: &str| {
            let token = if !self.lowercase {
                token
            } else if token.is_ascii() {
                lowered.clear();
                lowered.push_str(token);
                lowered.make_ascii_lowercase();
                lowered.as_str()
            } else {
                // Unicode lowercasing has context rules (final sigma).
                lowered = token.to_lowercase();
                lowered.as_str()
            };
            let term = match &self.stemmer {
                Some(stemmer) => stemmer.stem(token),
                None => Cow::Borrowed(token),
            };
            if !self.stop_words.contains(term.as_ref()) {
                f(&term);
            }
        };
        match self.tokenizer {
            TokenizerKind::Standard => text.unicode_words().for_each(&mut each),
            TokenizerKind::Whitespace => text.split_whitespace().for_each(&mut each),
        }
    }
}

fn stemmer(language: &str) -> Result<Option<Stemmer>, Bm25Error> {
    let algorithm = match language {
        "none" => return Ok(None),
        "arabic" => Algorithm::Arabic,
        "danish" => Algorithm::Danish,
        "dutch" => Algorithm::Dutch,
        "english" => Algorithm::English,
        "finnish" => Algorithm::Finnish,
        "french" => Algorithm::French,
        "german" => Algorithm::German,
        "greek" => Algorithm::Greek,
        "hungarian" => Algorithm::Hungarian,
        "italian" => Algorithm::Italian,
        "norwegian" => Algorithm::Norwegian,
        "portuguese" => Algorithm::Portuguese,
        "romanian" => Algorithm::Romanian,
        "russian" => Algorithm::Russian,
        "spanish" => Algorithm::Spanish,
        "swedish" => Algorithm::Swedish,
        "tamil" => Algorithm::Tamil,
        "turkish" => Algorithm::Turkish,
        other => return Err(Bm25Error::Stemmer(other.to_string())),
    };
    Ok(Some(Stemmer::create(algorithm)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_analyzer_splits_lowercases_stems_and_drops_stop_words() {
        let analyzer = Analyzer::new(&AnalyzerConfig::default()).unwrap();
        assert_eq!(
            analyzer.analyze("The Running dogs, and the cats!"),
            ["run", "dog", "cat"]
        );
    }

    #[test]
    fn whitespace_analyzer_keeps_punctuation_and_case_when_asked() {
        let cfg = AnalyzerConfig {
            tokenizer: TokenizerKind::Whitespace,
            lowercase: false,
            stop_words: StopWords::List(vec!["a".into()]),
            stemmer: "none".into(),
        };
        let analyzer = Analyzer::new(&cfg).unwrap();
        assert_eq!(analyzer.analyze("a Big  dog."), ["Big", "dog."]);
    }

    #[test]
    fn every_listed_stemmer_language_exists() {
        for language in STEMMER_LANGUAGES {
            assert!(stemmer(language).unwrap().is_some(), "{language}");
        }
        assert!(matches!(stemmer("klingon"), Err(Bm25Error::Stemmer(_))));
    }
}
