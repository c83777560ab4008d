"""A tiny multilingual XLM-RoBERTa encoder for the tests: the real
architecture (RoBERTa positions, no token type input) with seeded random
weights, exported to ONNX by scripts/convert_bert_onnx.py, and a Unigram
(SentencePiece-style) tokenizer.json trained on the languages' test texts.
It checks vecpipe's code path for such models, not embedding quality.

    xlmr_model.py build OUT_DIR
    xlmr_model.py embed MODEL_DIR TEXTS.jsonl
        prints each text's mean-pooled, L2-normalised vector (onnxruntime,
        one text per call, so no padding): [[float, ...], ...]
"""
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS = 32, 2, 4, 64, 514


def texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=800, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>")
    corpus = [t for f in sorted((ROOT / "tests/data/languages").glob("*.jsonl")) for t in texts(f)]
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def build(out):
    from safetensors.numpy import save_file

    sys.path.insert(0, str(ROOT / "scripts"))
    import convert_bert_onnx

    tok = tokenizer()
    vocab = tok.get_vocab_size()
    rng = np.random.default_rng(11)
    w = {}

    def dense(name, rows, cols):
        w[f"roberta.{name}.weight"] = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
        w[f"roberta.{name}.bias"] = (rng.standard_normal(rows) * 0.02).astype(np.float32)

    def norm(name):
        w[f"roberta.{name}.weight"] = np.ones(HIDDEN, np.float32)
        w[f"roberta.{name}.bias"] = np.zeros(HIDDEN, np.float32)

    w["roberta.embeddings.word_embeddings.weight"] = rng.standard_normal((vocab, HIDDEN)).astype(np.float32)
    w["roberta.embeddings.position_embeddings.weight"] = rng.standard_normal((POSITIONS, HIDDEN)).astype(np.float32)
    w["roberta.embeddings.token_type_embeddings.weight"] = rng.standard_normal((1, HIDDEN)).astype(np.float32)
    norm("embeddings.LayerNorm")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for part in ("query", "key", "value"):
            dense(p + "attention.self." + part, HIDDEN, HIDDEN)
        dense(p + "attention.output.dense", HIDDEN, HIDDEN)
        norm(p + "attention.output.LayerNorm")
        dense(p + "intermediate.dense", INTERMEDIATE, HIDDEN)
        dense(p + "output.dense", HIDDEN, INTERMEDIATE)
        norm(p + "output.LayerNorm")
    config = {"model_type": "xlm-roberta", "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "vocab_size": vocab,
              "max_position_embeddings": POSITIONS, "type_vocab_size": 1, "pad_token_id": 1,
              "layer_norm_eps": 1e-5}
    with tempfile.TemporaryDirectory() as src:
        src = Path(src)
        save_file(w, str(src / "model.safetensors"))
        (src / "config.json").write_text(json.dumps(config))
        tok.save(str(src / "tokenizer.json"))
        (src / "1_Pooling").mkdir()
        (src / "1_Pooling/config.json").write_text(json.dumps(
            {"word_embedding_dimension": HIDDEN, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}))
        convert_bert_onnx.build(src, Path(out))


def embed(model_dir, path):
    import onnxruntime
    from tokenizers import Tokenizer

    model_dir = Path(model_dir)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    vectors = []
    for text in texts(path):
        ids = np.array([tok.encode(text).ids], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        v = hidden.mean(axis=0)
        vectors.append((v / np.linalg.norm(v)).tolist())
    print(json.dumps(vectors))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "embed":
        embed(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
