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

/// mecab-ipadic's sources, from Debian's package (scripts/setup.sh test).
fn ipadic_sources() -> PathBuf {
    setup(Some("test"));
    repo_root().join(".tools/mecab-ipadic/ipadic")
}

/// `vecpipe model prepare ipadic` into the workspace's `models/`.
fn prepare_ipadic(ws: &Workspace) -> Run {
    let from = ipadic_sources();
    ws.vecpipe(&[
        "model",
        "prepare",
        "ipadic",
        "--from",
        from.to_str().unwrap(),
        "--dir",
        "models",
    ])
}

/// `bm25 fit --language ja` on the Japanese paragraphs, with `models` as
/// the only models directory.
fn fit_japanese(ws: &Workspace, models: &Path) -> Run {
    std::fs::copy(corpus("ja"), ws.path("ja.jsonl")).unwrap();
    Run(ws
        .command(&[
            "bm25",
            "fit",
            "--input",
            "ja.jsonl",
            "--language",
            "ja",
            "--out",
            "ja.json",
        ])
        .env("VECPIPE_MODELS_DIR", models)
        .output()
        .unwrap())
}

#[test]
fn japanese_is_cut_into_words_and_particles_and_symbols_are_not_terms() {
    let ws = Workspace::new();
    let run = prepare_ipadic(&ws).expect_code(0);
    assert_eq!(
        run.stdout(),
        format!(
            "ipadic: built from {} → models/ipadic\n",
            ipadic_sources().display()
        )
    );
    let again = prepare_ipadic(&ws).expect_code(0);
    assert_eq!(again.stdout(), "ipadic: already there → models/ipadic\n");

    fit_japanese(&ws, &ws.path("models")).expect_code(0);
    let params = Bm25Params::load(&ws.path("ja.json")).unwrap();
    assert_eq!(params.analyzer, Some(analyzer("ja")));
    let terms: std::collections::BTreeSet<&str> =
        params.idf_word.iter().map(String::as_str).collect();
    for word in [
        "検索",
        "ベクトル",
        "データベース",
        "リランカー",
        "ハイブリッド",
        "インデックス",
        "milvus",
    ] {
        assert!(terms.contains(word), "`{word}` is a term: {terms:?}");
    }
    for particle in [
        "は", "が", "を", "に", "で", "と", "か", "です", "ます", "、", "。", "「", ".",
    ] {
        assert!(!terms.contains(particle), "`{particle}` is not a term");
    }

    // The whole analysis of one paragraph: its terms in order of first appearance.
    let paragraph = "ハイブリッド検索とは何ですか？密ベクトルとBM25の疎ベクトルを組み合わせ、その後リランカーが結果を並べ替えます。";
    ws.write(
        "one.jsonl",
        id_text_lines([("p".to_string(), paragraph.to_string())]),
    );
    let run = ws
        .command(&[
            "bm25",
            "fit",
            "--input",
            "one.jsonl",
            "--language",
            "ja",
            "--out",
            "one.json",
        ])
        .env("VECPIPE_MODELS_DIR", ws.path("models"))
        .output()
        .unwrap();
    Run(run).expect_code(0);
    assert_eq!(
        Bm25Params::load(&ws.path("one.json")).unwrap().idf_word,
        [
            "ハイブリッド",
            "検索",
            "何",
            "密",
            "ベクトル",
            "bm",
            "25",
            "疎",
            "組み合わせ",
            "その後",
            "リランカー",
            "結果",
            "並べ",
            "替え"
        ]
    );
}

#[test]
fn japanese_without_its_dictionary_is_refused_naming_the_command() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("empty")).unwrap();
    let run = fit_japanese(&ws, &ws.path("empty")).expect_code(2);
    assert_eq!(
        run.stderr(),
        format!(
            "error: no Japanese dictionary (looked in {}/ipadic); run `vecpipe model prepare ipadic` (it builds the dictionary from mecab-ipadic: `apt-get install mecab-ipadic`, or pass --from DIR with its CSV and .def files)\n",
            ws.path("empty").display()
        )
    );
    assert!(!ws.path("ja.json").exists());

    let run = ws
        .vecpipe(&[
            "model", "prepare", "ipadic", "--from", "nowhere", "--dir", "models",
        ])
        .expect_code(1);
    assert_eq!(
        run.stderr(),
        "error: nowhere: no mecab-ipadic sources there (matrix.def, *.csv); install Debian's mecab-ipadic package or pass --from with the directory of its CSV and .def files\n"
    );
    assert!(!ws.path("models/ipadic").exists());
}
