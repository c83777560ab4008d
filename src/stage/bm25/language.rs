//! `language:` on the BM25 analyzer: ISO 639-1 codes (and pymilvus.model's
//! `sp`, `jp`, `kr`), each naming the analysis pymilvus.model's default
//! analyzer for that language does, or the same pattern for the other
//! Snowball languages.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A language with an analysis of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Arabic,
    Chinese,
    Danish,
    Dutch,
    English,
    Finnish,
    French,
    German,
    Greek,
    Hungarian,
    Italian,
    Japanese,
    Korean,
    Norwegian,
    Portuguese,
    Romanian,
    Russian,
    Spanish,
    Swedish,
    Tamil,
    Turkish,
}

/// Each language: its ISO 639-1 code, other codes accepted for it, its
/// English name (the Snowball stemmer's and NLTK stop-word list's name).
const LANGUAGES: &[(Language, &str, &[&str], &str)] = &[
    (Language::Arabic, "ar", &[], "arabic"),
    (Language::Chinese, "zh", &[], "chinese"),
    (Language::Danish, "da", &[], "danish"),
    (Language::Dutch, "nl", &[], "dutch"),
    (Language::English, "en", &[], "english"),
    (Language::Finnish, "fi", &[], "finnish"),
    (Language::French, "fr", &[], "french"),
    (Language::German, "de", &[], "german"),
    (Language::Greek, "el", &[], "greek"),
    (Language::Hungarian, "hu", &[], "hungarian"),
    (Language::Italian, "it", &[], "italian"),
    (Language::Japanese, "ja", &["jp"], "japanese"),
    (Language::Korean, "ko", &["kr"], "korean"),
    (Language::Norwegian, "no", &["nb"], "norwegian"),
    (Language::Portuguese, "pt", &[], "portuguese"),
    (Language::Romanian, "ro", &[], "romanian"),
    (Language::Russian, "ru", &[], "russian"),
    (Language::Spanish, "es", &["sp"], "spanish"),
    (Language::Swedish, "sv", &[], "swedish"),
    (Language::Tamil, "ta", &[], "tamil"),
    (Language::Turkish, "tr", &[], "turkish"),
];

impl Language {
    fn entry(
        self,
    ) -> &'static (
        Language,
        &'static str,
        &'static [&'static str],
        &'static str,
    ) {
        LANGUAGES
            .iter()
            .find(|entry| entry.0 == self)
            .expect("every language is listed")
    }

    /// Its ISO 639-1 code.
    pub fn code(self) -> &'static str {
        self.entry().1
    }

    /// Its English name, as Snowball and NLTK name it.
    pub fn name(self) -> &'static str {
        self.entry().3
    }

    /// The language a code (or pymilvus.model's alias) names.
    pub fn from_code(code: &str) -> Option<Self> {
        LANGUAGES
            .iter()
            .find(|(_, iso, aliases, _)| *iso == code || aliases.contains(&code))
            .map(|entry| entry.0)
    }

    /// The language an NLTK stop-word list's name names.
    pub fn from_name(name: &str) -> Option<Self> {
        LANGUAGES
            .iter()
            .find(|entry| entry.3 == name)
            .map(|entry| entry.0)
    }

    /// Every code `language:` accepts, for error messages.
    pub fn codes() -> String {
        LANGUAGES
            .iter()
            .map(|(_, iso, aliases, _)| match aliases {
                [] => iso.to_string(),
                _ => format!("{iso} ({})", aliases.join(", ")),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// NLTK's stop-word list for the language (the one pymilvus.model's
    /// analyzers load), one word a line; `None` where NLTK has none.
    pub fn nltk_stop_words(self) -> Option<&'static str> {
        Some(match self {
            Language::Arabic => include_str!("../../../config/stopwords/nltk/arabic"),
            Language::Chinese => include_str!("../../../config/stopwords/nltk/chinese"),
            Language::Danish => include_str!("../../../config/stopwords/nltk/danish"),
            Language::Dutch => include_str!("../../../config/stopwords/nltk/dutch"),
            Language::English => include_str!("../../../config/stopwords/nltk/english"),
            Language::Finnish => include_str!("../../../config/stopwords/nltk/finnish"),
            Language::French => include_str!("../../../config/stopwords/nltk/french"),
            Language::German => include_str!("../../../config/stopwords/nltk/german"),
            Language::Greek => include_str!("../../../config/stopwords/nltk/greek"),
            Language::Hungarian => include_str!("../../../config/stopwords/nltk/hungarian"),
            Language::Italian => include_str!("../../../config/stopwords/nltk/italian"),
            Language::Norwegian => include_str!("../../../config/stopwords/nltk/norwegian"),
            Language::Portuguese => include_str!("../../../config/stopwords/nltk/portuguese"),
            Language::Romanian => include_str!("../../../config/stopwords/nltk/romanian"),
            Language::Russian => include_str!("../../../config/stopwords/nltk/russian"),
            Language::Spanish => include_str!("../../../config/stopwords/nltk/spanish"),
            Language::Swedish => include_str!("../../../config/stopwords/nltk/swedish"),
            Language::Turkish => include_str!("../../../config/stopwords/nltk/turkish"),
            Language::Japanese | Language::Korean | Language::Tamil => return None,
        })
    }

    /// Whether a Snowball stemmer exists for the language.
    pub fn has_stemmer(self) -> bool {
        !matches!(
            self,
            Language::Chinese | Language::Japanese | Language::Korean
        )
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Language {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Language::from_code(&code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown language `{code}`, expected one of: {}",
                Language::codes()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_pymilvus_aliases_name_the_same_language() {
        assert_eq!(Language::from_code("sp"), Some(Language::Spanish));
        assert_eq!(Language::from_code("es"), Some(Language::Spanish));
        assert_eq!(Language::from_code("jp"), Some(Language::Japanese));
        assert_eq!(Language::from_code("kr"), Some(Language::Korean));
        assert_eq!(Language::from_code("xx"), None);
        for (language, code, _, name) in LANGUAGES {
            assert_eq!(Language::from_code(code), Some(*language));
            assert_eq!(Language::from_name(name), Some(*language));
        }
    }
}
