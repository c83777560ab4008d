//! Text analysis for BM25: tokenize, lowercase, stem, drop stop words — the
//! order of Milvus' `english` analyzer.

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

use super::Bm25Error;
use crate::config::{AnalyzerConfig, StopWords, TokenizerKind};

/// Milvus' `_english_` stop-word list (Lucene's), one word per line.
const ENGLISH_STOP_WORDS: &str = include_str!("../../../config/stopwords/english.txt");

pub struct Analyzer {
    tokenizer: TokenizerKind,
    lowercase: bool,
    stemmer: Option<Stemmer>,
    stop_words: HashSet<String>,
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
            StopWords::None => HashSet::new(),
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
        let tokens: Box<dyn Iterator<Item = &str>> = match self.tokenizer {
            TokenizerKind::Standard => Box::new(text.unicode_words()),
            TokenizerKind::Whitespace => Box::new(text.split_whitespace()),
        };
        tokens
            .map(|token| {
                let token = if self.lowercase {
                    token.to_lowercase()
                } else {
                    token.to_string()
                };
                match &self.stemmer {
                    Some(stemmer) => stemmer.stem(&token).into_owned(),
                    None => token,
                }
            })
            .filter(|term| !self.stop_words.contains(term))
            .collect()
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
        for language in crate::config::STEMMER_LANGUAGES {
            assert!(stemmer(language).unwrap().is_some(), "{language}");
        }
        assert!(matches!(stemmer("klingon"), Err(Bm25Error::Stemmer(_))));
    }
}
