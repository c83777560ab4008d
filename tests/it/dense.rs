//! The dense stage on the real all-MiniLM-L6-v2 ONNX model (set up by
//! `scripts/setup.sh`), checked through pipelines and their output files.

use crate::common::*;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type};

const REFERENCE: &str = "Artificial intelligence was founded as an academic discipline in 1956.";
/// sentence-transformers' output for REFERENCE (pymilvus model docs).
const REFERENCE_START: [f64; 4] = [
    -3.09392996e-02,
    -1.80662833e-02,
    1.34775648e-02,
    2.77156215e-02,
];

/// The models directory, after the setup script installed the model and runtime.
fn setup() -> std::path::PathBuf {
    crate::common::setup(None);
    repo_root().join("models")
}

fn vectors(batch: &RecordBatch, column: &str) -> Vec<Vec<f32>> {
    let list = batch.column_by_name(column).unwrap().as_fixed_size_list();
    (0..list.len())
        .map(|i| {
            list.value(i)
                .as_primitive::<Float32Type>()
                .values()
                .to_vec()
        })
        .collect()
}

fn jsonl(texts: &[String]) -> String {
    id_text_lines(texts.iter().enumerate().map(|(i, t)| (format!("t{i}"), t)))
}

fn dense_pipeline(ws: &Workspace, name: &str, stage: &str) -> RecordBatch {
    setup();
    ws.write(
        &format!("{name}.yaml"),
        format!(
            "name: {name}\nsource: {{ type: jsonl, path: {name}.jsonl, id_field: id }}\nstages:\n  - {stage}\nsinks:\n  - {{ type: arrow, path: out/{name}.parquet }}\n"
        ),
    );
    ws.vecpipe(&["run", &format!("{name}.yaml")]).expect_code(0);
    read_parquet(&ws.path(&format!("out/{name}.parquet")))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn reference_sentence_embeds_like_sentence_transformers_through_the_pipeline() {
    let ws = Workspace::new();
    ws.write("ref.jsonl", jsonl(&[REFERENCE.to_string()]));
    let batch = dense_pipeline(&ws, "ref", "{ type: dense }");
    let field = batch.schema().field_with_name("dense").unwrap().clone();
    assert!(
        matches!(field.data_type(), DataType::FixedSizeList(item, 384) if item.data_type() == &DataType::Float32)
    );
    let v = &vectors(&batch, "dense")[0];
    assert_eq!(v.len(), 384);
    for (got, want) in v.iter().zip(REFERENCE_START) {
        assert!(
            (f64::from(*got) - want).abs() < 1e-4,
            "{:?} vs {REFERENCE_START:?}",
            &v[..4]
        );
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}

#[test]
fn a_text_embeds_the_same_alone_and_inside_a_batch_of_mixed_lengths() {
    let ws = Workspace::new();
    ws.write("alone.jsonl", jsonl(&[REFERENCE.to_string()]));
    let mut mixed: Vec<String> = (0..23)
        .map(|i| {
            format!(
                "filler sentence {i} {}",
                "with many extra words ".repeat(i * 3)
            )
        })
        .collect();
    mixed.insert(11, REFERENCE.to_string());
    ws.write("mixed.jsonl", jsonl(&mixed));
    let alone = vectors(
        &dense_pipeline(&ws, "alone", "{ type: dense, batch_size: 8 }"),
        "dense",
    );
    let batch = dense_pipeline(&ws, "mixed", "{ type: dense, batch_size: 8 }");
    assert_eq!(strs(&batch, "text"), mixed, "output keeps the input order");
    let in_batch = vectors(&batch, "dense");
    assert!(
        max_diff(&alone[0], &in_batch[11]) < 1e-5,
        "{}",
        max_diff(&alone[0], &in_batch[11])
    );
}

#[test]
fn texts_longer_than_max_length_are_truncated_not_rejected() {
    let ws = Workspace::new();
    let long = "word ".repeat(600);
    ws.write(
        "long.jsonl",
        jsonl(&[
            long.clone(),
            format!("{long} and an ending that falls beyond the limit"),
            "short".into(),
        ]),
    );
    let batch = dense_pipeline(&ws, "long", "{ type: dense, max_length: 128 }");
    let v = vectors(&batch, "dense");
    assert_eq!(v.len(), 3);
    assert!(
        max_diff(&v[0], &v[1]) < 1e-6,
        "text past max_length must not change the vector"
    );
    assert!(max_diff(&v[0], &v[2]) > 1e-2);
}

#[test]
fn a_batch_whose_records_were_all_dead_lettered_flows_through_empty() {
    let ws = Workspace::new();
    ws.write("empty.jsonl", "{\"id\": \"a\", \"text\": \"\"}\nnot json\n");
    let batch = dense_pipeline(&ws, "empty", "{ type: dense }");
    assert_eq!(batch.num_rows(), 0);
    assert!(batch.column_by_name("dense").is_some());
}

fn failing_run(ws: &Workspace, stage: &str, env: &[(&str, &str)]) -> String {
    setup();
    ws.write("in.jsonl", jsonl(&["hello".into()]));
    ws.write(
        "p.yaml",
        format!("name: bad\nsource: {{ type: jsonl, path: in.jsonl }}\nstages:\n  - {stage}\nsinks:\n  - {{ type: arrow, path: out/x.arrow }}\n"),
    );
    let mut cmd = ws.command(&["run", "p.yaml"]);
    cmd.env_remove("ORT_DYLIB_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = Run(cmd.output().unwrap()).expect_code(2);
    assert!(!ws.path("out/x.arrow").exists());
    run.stderr()
}

#[test]
fn a_missing_model_directory_says_where_it_looked() {
    let ws = Workspace::new();
    let err = failing_run(&ws, "{ type: dense, model: ./no-such-model }", &[]);
    assert!(err.contains("model `./no-such-model` not found"), "{err}");

    let empty = ws.path("empty-models");
    std::fs::create_dir_all(&empty).unwrap();
    let hf = ws.path("hf-home");
    let err = failing_run(
        &ws,
        "{ type: dense, model: sentence-transformers/paraphrase-MiniLM-L3-v2 }",
        &[
            ("VECPIPE_MODELS_DIR", empty.to_str().unwrap()),
            ("HF_HOME", hf.to_str().unwrap()),
            ("HF_HUB_OFFLINE", "1"),
            (
                "ORT_DYLIB_PATH",
                setup()
                    .join("onnxruntime/libonnxruntime.so")
                    .to_str()
                    .unwrap(),
            ),
        ],
    );
    assert!(err.contains("not found; looked in:"), "{err}");
    assert!(
        err.contains("models--sentence-transformers--paraphrase-MiniLM-L3-v2"),
        "{err}"
    );
    assert!(
        err.contains("`vecpipe model prepare` makes all-MiniLM-L6-v2, all-MiniLM-L6-v2-int8, paraphrase-multilingual-MiniLM-L12-v2."),
        "{err}"
    );
}

#[test]
fn a_corrupt_model_file_is_a_clear_error() {
    let ws = Workspace::new();
    let model = ws.path("broken-model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("model.onnx"), b"this is not an onnx graph").unwrap();
    std::fs::copy(
        setup().join("all-MiniLM-L6-v2/tokenizer.json"),
        model.join("tokenizer.json"),
    )
    .unwrap();
    let err = failing_run(&ws, "{ type: dense, model: ./broken-model }", &[]);
    assert!(
        err.contains("cannot load ONNX model ./broken-model/model.onnx"),
        "{err}"
    );
}

#[test]
fn a_missing_or_broken_onnxruntime_library_is_a_clear_error() {
    let ws = Workspace::new();
    let model = setup().join("all-MiniLM-L6-v2");
    let stage = format!("{{ type: dense, model: {} }}", model.display());
    let empty = ws.path("empty-models");
    std::fs::create_dir_all(&empty).unwrap();
    let err = failing_run(
        &ws,
        &stage,
        &[("VECPIPE_MODELS_DIR", empty.to_str().unwrap())],
    );
    assert!(
        err.contains("ONNX Runtime library not found; looked at:"),
        "{err}"
    );
    assert!(err.contains("ORT_DYLIB_PATH"), "{err}");

    let fake = ws.write("libonnxruntime.so", "not a library");
    let err = failing_run(
        &ws,
        &stage,
        &[
            ("VECPIPE_MODELS_DIR", empty.to_str().unwrap()),
            ("ORT_DYLIB_PATH", fake.to_str().unwrap()),
        ],
    );
    assert!(err.contains("cannot load ONNX Runtime from"), "{err}");
}

#[test]
fn chunking_by_tokens_defaults_to_the_dense_models_tokenizer() {
    let ws = Workspace::new();
    let text = "Tokenizers split words into pieces. ".repeat(30);
    ws.write("tok.jsonl", jsonl(&[text]));
    let batch = dense_pipeline(
        &ws,
        "tok",
        "{ type: chunk, max_tokens: 24, overlap: 4 }\n  - { type: dense }",
    );
    let mut tokenizer =
        tokenizers::Tokenizer::from_file(setup().join("all-MiniLM-L6-v2/tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let texts = strs(&batch, "text");
    assert!(texts.len() > 5, "{} chunks", texts.len());
    for text in &texts {
        let tokens = tokenizer.encode(text.as_str(), false).unwrap().len();
        assert!(tokens <= 24, "{tokens} tokens in {text:?}");
    }
    assert_eq!(vectors(&batch, "dense").len(), texts.len());
}

/// The int8 model the setup makes (`all-MiniLM-L6-v2-int8`) stays within the
/// quality gate on 500 real sentences (Python standard library docstrings):
/// mean cosine to the fp32 vectors ≥ 0.99, and the 10 nearest neighbours of
/// each of the first 100 sentences overlap fp32's by ≥ 90 % on average.
#[test]
fn int8_model_vectors_stay_within_the_quality_gate() {
    let models = setup();
    let fp32 = std::fs::metadata(models.join("all-MiniLM-L6-v2/model.onnx")).unwrap();
    let int8 = std::fs::metadata(models.join("all-MiniLM-L6-v2-int8/model.onnx")).unwrap();
    assert!(
        int8.len() < fp32.len() * 9 / 10,
        "the int8 model is quantized"
    );
    let ws = Workspace::new();
    std::fs::copy(
        repo_root().join("tests/data/stdlib-sentences.jsonl"),
        ws.path("s.jsonl"),
    )
    .unwrap();
    let embed = |model: &str| {
        ws.write(
            "p.yaml",
            format!("name: q\nsource: {{ type: jsonl, path: s.jsonl, id_field: id }}\nstages:\n  - {{ type: dense, model: {model} }}\nsinks:\n  - {{ type: arrow, path: out/{model}.arrow }}\n"),
        );
        ws.vecpipe(&["run", "p.yaml"]).expect_code(0);
        let batch = read_ipc(&ws.path(&format!("out/{model}.arrow")));
        assert_eq!(strs(&batch, "id").len(), 500);
        vectors(&batch, "dense")
    };
    let (a, b) = (embed("all-MiniLM-L6-v2"), embed("all-MiniLM-L6-v2-int8"));
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let cosines: Vec<f32> = a.iter().zip(&b).map(|(x, y)| dot(x, y)).collect();
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    assert!(mean >= 0.99, "mean cosine to fp32: {mean}");
    assert!(mean < 0.9999, "int8 vectors differ from fp32 ones: {mean}");
    let neighbours = |vectors: &[Vec<f32>], i: usize| -> Vec<usize> {
        let mut others: Vec<(usize, f32)> = (0..vectors.len())
            .filter(|j| *j != i)
            .map(|j| (j, dot(&vectors[i], &vectors[j])))
            .collect();
        others.sort_by(|x, y| y.1.total_cmp(&x.1));
        others.iter().take(10).map(|(j, _)| *j).collect()
    };
    let overlap = (0..100)
        .map(|i| {
            let (ours, theirs) = (neighbours(&b, i), neighbours(&a, i));
            ours.iter().filter(|j| theirs.contains(j)).count() as f32 / 10.0
        })
        .sum::<f32>()
        / 100.0;
    assert!(overlap >= 0.9, "top-10 overlap with fp32: {overlap}");
}

/// A multilingual XLM-RoBERTa model (tiny, random weights, the real
/// architecture: no `token_type_ids` input, RoBERTa positions, a Unigram
/// tokenizer trained on the languages' test texts) embeds every language's
/// paragraphs as onnxruntime does on the same file, in batches of mixed
/// lengths (so padded with the tokenizer's `<pad>`).
#[test]
fn an_xlm_roberta_model_with_a_unigram_tokenizer_embeds_as_onnxruntime_does() {
    setup();
    let ws = Workspace::new();
    let model = ws.path("xlmr");
    let model_arg = model.as_os_str();
    crate::common::python_script("xlmr_model.py", &["build".as_ref(), model_arg]);
    let mut lines = String::new();
    for code in ["en", "de", "fr", "ru", "es", "it", "pt", "zh", "ja"] {
        lines += &std::fs::read_to_string(
            repo_root().join(format!("tests/data/languages/{code}.jsonl")),
        )
        .unwrap();
    }
    ws.write("xlmr.jsonl", lines);
    let expected: Vec<Vec<f32>> = serde_json::from_slice(&crate::common::python_script(
        "xlmr_model.py",
        &[
            "embed".as_ref(),
            model_arg,
            ws.path("xlmr.jsonl").as_os_str(),
        ],
    ))
    .unwrap();
    let batch = dense_pipeline(
        &ws,
        "xlmr",
        &format!(
            "{{ type: dense, model: {}, batch_size: 8 }}",
            model.display()
        ),
    );
    let ids: Vec<String> = batch
        .column_by_name("id")
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|id| id.unwrap().to_string())
        .collect();
    let got = vectors(&batch, "dense");
    assert_eq!(got.len(), expected.len(), "one vector per paragraph");
    assert_eq!(got[0].len(), 32);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(ws.path("xlmr.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (id, vector) in ids.iter().zip(&got) {
        let at = lines.iter().position(|l| l["id"] == id.as_str()).unwrap();
        let diff = max_diff(vector, &expected[at]);
        assert!(diff < 1e-4, "{id}: differs from onnxruntime by {diff}");
    }
}

/// The multilingual model `model prepare` knows comes only from the hub:
/// offline, it says so and what to do instead, and leaves nothing behind.
#[test]
fn preparing_the_multilingual_model_offline_says_it_needs_the_hub() {
    let ws = Workspace::new();
    let run = Run(ws
        .command(&[
            "model",
            "prepare",
            "paraphrase-multilingual-MiniLM-L12-v2",
            "--dir",
            "models",
        ])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap())
    .expect_code(1);
    assert_eq!(
        run.stderr(),
        "error: paraphrase-multilingual-MiniLM-L12-v2: offline (HF_HUB_OFFLINE is set); it is had only from the Hugging Face hub (sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2): run this online, or put its ONNX export (model.onnx, tokenizer.json) in a directory and name that as `model:`\n"
    );
    assert!(
        !ws.path("models/paraphrase-multilingual-MiniLM-L12-v2")
            .exists()
    );
}
