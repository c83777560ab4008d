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
use super::language::Language;
use crate::config::Invalid;

/// Milvus' `_english_` stop-word list (Lucene's), one word per line.
const ENGLISH_STOP_WORDS: &str = include_str!("../../../config/stopwords/english.txt");

/// Text analysis for BM25, in the shape of Milvus analyzers; `language:`
/// chooses the rest as pymilvus.model's analyzer for that language does,
/// and keys written beside it override its choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AnalyzerKeys")]
pub struct AnalyzerConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    pub tokenizer: TokenizerKind,
    pub lowercase: bool,
    pub stop_words: StopWords,
    /// A Snowball language (`english`, `french`, ...) or `none`.
    pub stemmer: String,
}

/// The keys of `analyzer:` as written; what is left out comes from the
/// language's analysis, or the default one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyzerKeys {
    #[serde(default)]
    language: Option<Language>,
    #[serde(default)]
    tokenizer: Option<TokenizerKind>,
    #[serde(default)]
    lowercase: Option<bool>,
    #[serde(default)]
    stop_words: Option<StopWords>,
    #[serde(default)]
    stemmer: Option<String>,
}

impl From<AnalyzerKeys> for AnalyzerConfig {
    fn from(keys: AnalyzerKeys) -> Self {
        let base = keys
            .language
            .map_or_else(AnalyzerConfig::default, AnalyzerConfig::for_language);
        AnalyzerConfig {
            language: keys.language,
            tokenizer: keys.tokenizer.unwrap_or(base.tokenizer),
            lowercase: keys.lowercase.unwrap_or(base.lowercase),
            stop_words: keys.stop_words.unwrap_or(base.stop_words),
            stemmer: keys.stemmer.unwrap_or(base.stemmer),
        }
    }
}

impl AnalyzerConfig {
    /// The analysis of pymilvus.model's default analyzer for `language`
    /// (NLTK's tokenizer, lowercase, punctuation dropped, NLTK's stop
    /// words, then the Snowball stemmer; jieba and no lowercase for
    /// Chinese), and the same pattern for the other Snowball languages.
    /// Japanese gets lindera's IPADIC segmentation (content words only),
    /// Korean CJK bigrams (no Korean dictionary can be had offline).
    pub fn for_language(language: Language) -> Self {
        let (tokenizer, lowercase) = match language {
            Language::Chinese => (TokenizerKind::Jieba, false),
            Language::Japanese => (TokenizerKind::Lindera, true),
            Language::Korean => (TokenizerKind::CjkBigram, true),
            _ => (TokenizerKind::Nltk, true),
        };
        AnalyzerConfig {
            language: Some(language),
            tokenizer,
            lowercase,
            stop_words: match language.nltk_stop_words() {
                Some(_) => StopWords::Nltk(language),
                None => StopWords::None,
            },
            stemmer: if language.has_stemmer() {
                language.name().to_string()
            } else {
                "none".to_string()
            },
        }
    }

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
            language: None,
            tokenizer: TokenizerKind::default(),
            lowercase: true,
            stop_words: StopWords::default(),
            stemmer: "english".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// Unicode word boundaries (UAX #29), like Milvus' `standard` tokenizer.
    #[default]
    Standard,
    /// Split on white space only.
    Whitespace,
    /// NLTK's `word_tokenize`, as pymilvus.model's analyzers use it
    /// (tokens of one punctuation character are dropped).
    Nltk,
    /// jieba's Chinese word segmentation (`jieba.lcut`), as pymilvus.model's
    /// `zh` analyzer (tokens of one punctuation character are dropped).
    Jieba,
    /// Japanese morphological segmentation (lindera, IPADIC), particles,
    /// auxiliary verbs and symbols dropped; needs `vecpipe model prepare ipadic`.
    Lindera,
    /// Unicode words, with runs of Han and Hiragana characters and Hangul
    /// words cut into overlapping pairs of characters (Lucene's CJK bigrams).
    CjkBigram,
}

/// `stop_words: english | none | french | … | [list]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StopWords {
    /// Milvus' `_english_` list (Lucene's), removed after stemming as
    /// Milvus' `english` analyzer does.
    #[default]
    English,
    None,
    /// NLTK's list for a language (`french`, …, `nltk_english`), removed
    /// before stemming as pymilvus.model does.
    Nltk(Language),
    /// Words removed before stemming.
    List(Vec<String>),
}

/// The name `stop_words:` gives NLTK's English list (`english` is Milvus').
const NLTK_ENGLISH: &str = "nltk_english";

impl StopWords {
    /// A list's name, or words separated by commas (`--stop-words`).
    pub fn parse(value: &str) -> Self {
        StopWords::named(value).unwrap_or_else(|| {
            StopWords::List(value.split(',').map(|w| w.trim().to_string()).collect())
        })
    }

    fn named(name: &str) -> Option<Self> {
        match name {
            "english" => Some(StopWords::English),
            "none" => Some(StopWords::None),
            NLTK_ENGLISH => Some(StopWords::Nltk(Language::English)),
            other => Language::from_name(other)
                .filter(|l| *l != Language::English && l.nltk_stop_words().is_some())
                .map(StopWords::Nltk),
        }
    }

    fn name(&self) -> Option<&'static str> {
        match self {
            StopWords::English => Some("english"),
            StopWords::None => Some("none"),
            StopWords::Nltk(Language::English) => Some(NLTK_ENGLISH),
            StopWords::Nltk(language) => Some(language.name()),
            StopWords::List(_) => None,
        }
    }
}

impl Serialize for StopWords {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self, self.name()) {
            (StopWords::List(words), _) => words.serialize(s),
            (_, Some(name)) => s.serialize_str(name),
            (_, None) => unreachable!("every list but a custom one has a name"),
        }
    }
}

impl<'de> Deserialize<'de> for StopWords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StopWordsVisitor;
        impl<'de> Visitor<'de> for StopWordsVisitor {
            type Value = StopWords;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`english`, `none`, a language's NLTK list or a list of words")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StopWords, E> {
                StopWords::named(v).ok_or_else(|| {
                    E::custom(format!(
                        "expected `english` (Milvus' list), `none`, {NLTK_ENGLISH}, a language's NLTK list ({}) or a list of words, found `{v}`",
                        nltk_list_names().join(", ")
                    ))
                })
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

/// The names of NLTK's lists other than English's.
fn nltk_list_names() -> Vec<&'static str> {
    STEMMER_LANGUAGES
        .iter()
        .chain(["chinese"].iter())
        .filter_map(|name| Language::from_name(name))
        .filter(|l| *l != Language::English && l.nltk_stop_words().is_some())
        .map(Language::name)
        .collect()
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
    /// Removed after stemming (Milvus' list) rather than before.
    stop_after_stemming: bool,
    /// Tokens of one of these characters are dropped.
    punctuation: &'static str,
    /// The stemmer is Russian's.
    russian: bool,
    /// The Japanese segmenter, for the `lindera` tokenizer.
    japanese: Option<&'static lindera::segmenter::Segmenter>,
}

/// Python's `string.punctuation`, which pymilvus.model's filter drops.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/// The same with pymilvus.model's extras for Spanish.
const PUNCTUATION_SPANISH: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿";
/// The same with pymilvus.model's extras for Chinese.
const PUNCTUATION_CHINESE: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ 、＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､〃〈〉《》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰–—‘’‛“”„‟…‧﹏﹑﹔·．！？｡。";

fn words(list: &str) -> FxHashSet<String> {
    list.lines()
        .map(str::trim)
        .filter(|w| !w.is_empty() && !w.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// jieba's segmenter with its bundled dictionary, loaded once.
static JIEBA: std::sync::LazyLock<jieba_rs::Jieba> = std::sync::LazyLock::new(jieba_rs::Jieba::new);

impl Analyzer {
    pub fn new(cfg: &AnalyzerConfig) -> Result<Self, Bm25Error> {
        let stop_words = match &cfg.stop_words {
            StopWords::English => words(ENGLISH_STOP_WORDS),
            StopWords::None => FxHashSet::default(),
            StopWords::Nltk(language) => words(language.nltk_stop_words().unwrap_or_default()),
            StopWords::List(words) => words.iter().cloned().collect(),
        };
        let punctuation = match (cfg.tokenizer, cfg.language) {
            (TokenizerKind::Nltk, Some(Language::Spanish)) => PUNCTUATION_SPANISH,
            (TokenizerKind::Nltk, _) => PUNCTUATION,
            (TokenizerKind::Jieba, _) => PUNCTUATION_CHINESE,
            _ => "",
        };
        Ok(Analyzer {
            tokenizer: cfg.tokenizer,
            lowercase: cfg.lowercase,
            stemmer: stemmer(&cfg.stemmer)?,
            stop_words,
            stop_after_stemming: cfg.stop_words == StopWords::English,
            punctuation,
            russian: cfg.stemmer == "russian",
            japanese: match cfg.tokenizer {
                TokenizerKind::Lindera => Some(super::japanese::segmenter()?),
                _ => None,
            },
        })
    }

    /// The terms of a text, in order, repeats kept.
    pub fn analyze(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        self.for_each_term(text, |term| terms.push(term.to_string()));
        terms
    }

    fn is_punctuation(&self, token: &str) -> bool {
        let mut chars = token.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => self.punctuation.contains(c),
            _ => false,
        }
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
            if self.is_punctuation(token)
                || (!self.stop_after_stemming && self.stop_words.contains(token))
            {
                return;
            }
            let term = match &self.stemmer {
                // Snowball 2's Russian stemmer (and NLTK's) reads ё as е.
                Some(stemmer) if self.russian && token.contains('ё') => {
                    Cow::Owned(stemmer.stem(&token.replace('ё', "е")).into_owned())
                }
                Some(stemmer) => stemmer.stem(token),
                None => Cow::Borrowed(token),
            };
            if !(self.stop_after_stemming && self.stop_words.contains(term.as_ref())) {
                f(&term);
            }
        };
        match self.tokenizer {
            TokenizerKind::Standard => text.unicode_words().for_each(&mut each),
            TokenizerKind::Whitespace => text.split_whitespace().for_each(&mut each),
            TokenizerKind::Nltk => super::nltk_words::word_tokenize(text, &mut each),
            TokenizerKind::Jieba => JIEBA
                .cut(text, true)
                .iter()
                .for_each(|token| each(token.word)),
            TokenizerKind::CjkBigram => super::cjk::bigrams(text, &mut each),
            TokenizerKind::Lindera => match self.japanese {
                Some(segmenter) => super::japanese::words(segmenter, text, &mut each),
                None => unreachable!("Analyzer::new loads the segmenter for `lindera`"),
            },
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
            language: None,
            tokenizer: TokenizerKind::Whitespace,
            lowercase: false,
            stop_words: StopWords::List(vec!["a".into()]),
            stemmer: "none".into(),
        };
        let analyzer = Analyzer::new(&cfg).unwrap();
        assert_eq!(analyzer.analyze("a Big  dog."), ["Big", "dog."]);
    }

    #[test]
    fn an_analyzer_serializes_as_a_pipeline_file_writes_it_for_stable_fingerprints() {
        assert_eq!(
            serde_json::to_string(&AnalyzerConfig::default()).unwrap(),
            r#"{"tokenizer":"standard","lowercase":true,"stop_words":"english","stemmer":"english"}"#
        );
        assert_eq!(
            serde_json::to_string(&AnalyzerConfig::for_language(Language::French)).unwrap(),
            r#"{"language":"fr","tokenizer":"nltk","lowercase":true,"stop_words":"french","stemmer":"french"}"#
        );
    }

    #[test]
    fn language_keys_are_overridden_by_the_keys_written_beside_them() {
        let cfg: AnalyzerConfig =
            serde_json::from_str(r#"{"language": "sp", "stop_words": "none"}"#).unwrap();
        assert_eq!(
            cfg,
            AnalyzerConfig {
                stop_words: StopWords::None,
                ..AnalyzerConfig::for_language(Language::Spanish)
            }
        );
        let written = serde_json::to_string(&cfg).unwrap();
        assert_eq!(
            written,
            r#"{"language":"es","tokenizer":"nltk","lowercase":true,"stop_words":"none","stemmer":"spanish"}"#
        );
        assert_eq!(
            serde_json::from_str::<AnalyzerConfig>(&written).unwrap(),
            cfg
        );
    }

    #[test]
    fn named_stop_word_lists_are_removed_before_stemming() {
        let cfg = AnalyzerConfig {
            stop_words: StopWords::parse("french"),
            stemmer: "french".into(),
            ..AnalyzerConfig::default()
        };
        // `dans` and `notre` would stem to `dan` and `notr` and slip through.
        let analyzer = Analyzer::new(&cfg).unwrap();
        assert_eq!(analyzer.analyze("Dans notre maison"), ["maison"]);
    }

    #[test]
    fn every_listed_stemmer_language_exists() {
        for language in STEMMER_LANGUAGES {
            assert!(stemmer(language).unwrap().is_some(), "{language}");
        }
        assert!(matches!(stemmer("klingon"), Err(Bm25Error::Stemmer(_))));
    }
}
