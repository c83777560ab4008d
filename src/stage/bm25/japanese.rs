//! Japanese words for BM25: morphological segmentation with lindera over
//! the IPADIC dictionary (MeCab's), keeping content words: particles
//! (助詞), auxiliary verbs (助動詞) and symbols (記号) are dropped, as Milvus'
//! Japanese analyzer drops them with its stop-tag filter. Katakana runs
//! unknown to the dictionary stay whole words (`リランカー`).
//!
//! No dictionary is bundled (lindera's `embed-*` features download one at
//! build time): `vecpipe model prepare ipadic` builds it from the
//! mecab-ipadic sources (Debian's `mecab-ipadic` package) into the models
//! directory, where the analyzer finds it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lindera::dictionary::{DictionaryBuilder, Metadata, load_fs_dictionary};
use lindera::mode::Mode;
use lindera::segmenter::Segmenter;

use super::Bm25Error;

/// The dictionary's directory name in the models directory.
pub const DICTIONARY: &str = "ipadic";

/// Where Debian's `mecab-ipadic` package puts the sources.
pub const DEBIAN_SOURCES: &str = "/usr/share/mecab/dic/ipadic";

/// The mecab-ipadic sources' layout (EUC-JP CSVs, MeCab's fields).
const METADATA: &str = include_str!("../../../config/lindera/ipadic.json");

/// Parts of speech whose words are not terms.
const DROPPED: &[&str] = &["助詞", "助動詞", "記号"];

/// What the command that builds the dictionary says to run.
pub fn prepare_hint() -> String {
    format!(
        "run `vecpipe model prepare {DICTIONARY}` (it builds the dictionary from mecab-ipadic: \
         `apt-get install mecab-ipadic`, or pass --from DIR with its CSV and .def files)"
    )
}

/// Builds the dictionary from the mecab-ipadic sources in `from` into
/// `models_dir/ipadic`; a complete one already there is kept (`false`).
pub fn prepare(from: &Path, models_dir: &Path) -> Result<(PathBuf, bool), Bm25Error> {
    let target = models_dir.join(DICTIONARY);
    if load_fs_dictionary(&target).is_ok() {
        return Ok((target, false));
    }
    if !from.join("matrix.def").is_file() {
        return Err(Bm25Error::JapaneseSources {
            from: from.to_path_buf(),
        });
    }
    let metadata: Metadata = serde_json::from_str(METADATA).expect("the bundled metadata parses");
    let partial = models_dir.join(format!(".{DICTIONARY}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    let built = DictionaryBuilder::new(metadata)
        .build_dictionary(from, &partial)
        .map_err(|e| Bm25Error::JapaneseBuild {
            from: from.to_path_buf(),
            problem: e.to_string(),
        });
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&partial, &target).map_err(|source| Bm25Error::Write {
        path: target.clone(),
        source,
    })?;
    Ok((target, true))
}

/// The segmenter over the prepared dictionary, loaded once per process.
pub(crate) fn segmenter() -> Result<&'static Segmenter, Bm25Error> {
    static SEGMENTER: OnceLock<Result<Segmenter, Vec<PathBuf>>> = OnceLock::new();
    SEGMENTER
        .get_or_init(|| {
            let looked: Vec<PathBuf> = crate::model::models_dirs()
                .into_iter()
                .map(|dir| dir.join(DICTIONARY))
                .collect();
            looked
                .iter()
                .find_map(|dir| load_fs_dictionary(dir).ok())
                .map(|dictionary| Segmenter::new(Mode::Normal, dictionary, None))
                .ok_or(looked)
        })
        .as_ref()
        .map_err(|looked| Bm25Error::NoJapaneseDictionary {
            looked: looked.clone(),
        })
}

/// Calls `each` with the content words of `text`.
pub(crate) fn words(segmenter: &Segmenter, text: &str, each: &mut impl FnMut(&str)) {
    let tokens = match segmenter.segment(Cow::Borrowed(text)) {
        Ok(tokens) => tokens,
        Err(e) => {
            // Not seen in practice; the text still gets terms rather than none.
            tracing::warn!(error = %e, "Japanese segmentation failed; indexing the text as CJK bigrams");
            super::cjk::bigrams(text, each);
            return;
        }
    };
    for mut token in tokens {
        let dropped = token
            .get_detail(0)
            .is_some_and(|pos| DROPPED.contains(&pos));
        // MeCab calls an unknown `.` a noun: a token needs a letter or digit.
        if !dropped && token.surface.chars().any(char::is_alphanumeric) {
            each(&token.surface);
        }
    }
}
