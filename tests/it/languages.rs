//! Per-language BM25 analysis against pymilvus.model's default analyzers
//! (`build_default_analyzer(language)`) on real text in each language: the
//! same terms for every paragraph, the same fitted params, and params made
//! by either side encoding documents and queries the same on the other.

use std::path::{Path, PathBuf};

use crate::bm25_pymilvus::{assert_same, pymilvus_encodings, reference, vecpipe_documents};
use crate::common::*;
use vecpipe::bm25::{Analyzer, AnalyzerConfig, Bm25Encoder, Bm25Params, Language};

/// vecpipe's code, pymilvus.model's name for the same analyzer.
const LANGUAGES: &[(&str, &str)] = &[
    ("en", "en"),
    ("de", "de"),
    ("fr", "fr"),
    ("ru", "ru"),
    ("es", "sp"),
    ("it", "it"),
    ("pt", "pt"),
    ("zh", "zh"),
];

fn corpus(code: &str) -> PathBuf {
    repo_root().join(format!("tests/data/languages/{code}.jsonl"))
}

fn texts(code: &str) -> Vec<String> {
    std::fs::read_to_string(corpus(code))
        .unwrap()
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["text"].as_str().unwrap().to_string()
        })
        .collect()
}

fn analyzer(code: &str) -> AnalyzerConfig {
    AnalyzerConfig::for_language(Language::from_code(code).unwrap())
}

#[test]
fn every_language_analyzes_each_paragraph_as_pymilvus_model_does() {
    let mut differences = Vec::new();
    for (code, theirs) in LANGUAGES {
        let expected: Vec<Vec<String>> = serde_json::from_str(&reference(&[
            Path::new("analyze"),
            &corpus(code),
            Path::new("--language"),
            Path::new(theirs),
        ]))
        .unwrap();
        let ours = Analyzer::new(&analyzer(code)).unwrap();
        for (text, expected) in texts(code).iter().zip(&expected) {
            let terms = ours.analyze(text);
            if &terms != expected {
                differences.push(format!(
                    "{code}: {text}\n  vecpipe:   {terms:?}\n  pymilvus:  {expected:?}"
                ));
            }
        }
        assert!(
            expected.iter().map(Vec::len).sum::<usize>() > 50,
            "{code}: the corpus has terms"
        );
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// The opening words of each paragraph, as queries.
fn queries(code: &str) -> Vec<String> {
    texts(code)
        .iter()
        .map(|text| text.chars().take(40).collect())
        .collect()
}

#[test]
fn params_fitted_by_either_side_are_equal_and_encode_the_same_on_the_other() {
    for (code, theirs) in LANGUAGES {
        let ws = Workspace::new();
        std::fs::copy(corpus(code), ws.path("corpus.jsonl")).unwrap();
        ws.vecpipe(&[
            "bm25",
            "fit",
            "--input",
            "corpus.jsonl",
            "--language",
            code,
            "--out",
            "ours.json",
        ])
        .expect_code(0);
        let theirs_path = ws.path("theirs.json");
        reference(&[
            Path::new("fit"),
            &ws.path("corpus.jsonl"),
            &theirs_path,
            Path::new("--language"),
            Path::new(theirs),
        ]);
        let ours = Bm25Params::load(&ws.path("ours.json")).unwrap();
        let pymilvus = Bm25Params::load(&theirs_path).unwrap();
        assert_eq!(ours.idf_word, pymilvus.idf_word, "{code}: vocabulary");
        assert_eq!(ours.corpus_size, pymilvus.corpus_size, "{code}");
        assert!((ours.avgdl - pymilvus.avgdl).abs() < 1e-9, "{code}: avgdl");
        for (word, (a, b)) in ours
            .idf_word
            .iter()
            .zip(ours.idf_value.iter().zip(&pymilvus.idf_value))
        {
            assert!((a - b).abs() <= 1e-6, "{code}: idf of {word}: {a} vs {b}");
        }
        assert_eq!(
            ours.analyzer,
            Some(analyzer(code)),
            "{code}: the params file records the language's analysis"
        );

        // Each side's file, encoded by the other.
        let queries = queries(code);
        let options = ["--language", theirs];
        for name in ["ours.json", "theirs.json"] {
            let params = ws.path(name);
            let (py_docs, py_queries) = pymilvus_encodings(&ws, &params, &queries, &options);
            let analyzer_key = format!("{{ language: {code} }}");
            assert_same(
                &format!("{code} documents ({name})"),
                &vecpipe_documents(&ws, name, &analyzer_key),
                &py_docs,
            );
            let encoder = Bm25Encoder::new(
                Bm25Params::load(&params).unwrap(),
                Analyzer::new(&analyzer(code)).unwrap(),
            );
            let ours: Vec<_> = queries.iter().map(|q| encoder.encode_query(q)).collect();
            assert_same(&format!("{code} queries ({name})"), &ours, &py_queries);
        }
    }
}
