"""Builds an fp32 ONNX graph of a BERT encoder from its safetensors weights,
with no torch: the graph is written op by op from config.json.

    convert_bert_onnx.py SRC_DIR OUT_DIR [--head splade|classifier]

SRC_DIR holds model.safetensors, config.json, tokenizer.json (and optionally
1_Pooling/config.json). OUT_DIR receives model.onnx with inputs input_ids,
attention_mask, token_type_ids (int64, [batch, sequence]) and output
last_hidden_state ([batch, sequence, hidden]), plus the tokenizer and configs.
An XLM-RoBERTa / RoBERTa encoder (config `model_type`) gets inputs input_ids
and attention_mask only, and RoBERTa's position ids: counted over the
non-padding tokens from `pad_token_id + 1`, as Hugging Face's export does.
With --head splade (a BertForMaskedLM), the output is instead `sparse`
([batch, vocabulary]): max over tokens of log(1 + relu(MLM logits)), masked.
With --head classifier (a BertForSequenceClassification, e.g. a cross-encoder),
the output is `logits` ([batch, labels]) from the pooler and classifier; a
checkpoint without classifier weights gets a seeded random one (for tests).
"""
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file


class Graph:
    def __init__(self, weights, prefix):
        self.weights, self.prefix = weights, prefix
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint="const"):
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, key, transpose=False, prefix=None):
        name = (self.prefix if prefix is None else prefix) + key
        if name not in self.weights:
            # Older checkpoints name LayerNorm parameters gamma/beta.
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        array = self.weights[name].astype(np.float32)
        return self.const(array.T.copy() if transpose else array, key.replace(".", "_"))

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x, key):
        return self.op("Add", [self.op("MatMul", [x, self.weight(key + ".weight", transpose=True)]), self.weight(key + ".bias")])

    def layer_norm(self, x, key, eps, prefix=None):
        return self.op("LayerNormalization", [x, self.weight(key + ".weight", prefix=prefix), self.weight(key + ".bias", prefix=prefix)], epsilon=eps, axis=-1)

    def gelu(self, x):
        # GELU (erf form): 0.5·x·(1 + erf(x/√2))
        return self.op("Mul", [self.op("Mul", [x, self.const(np.float32(0.5))]),
                               self.op("Add", [self.op("Erf", [self.op("Div", [x, self.const(np.float32(math.sqrt(2.0)))])]), self.const(np.float32(1.0))])])


def build(src, out, head=None):
    config = json.loads((src / "config.json").read_text())
    weights = load_file(str(src / "model.safetensors"))
    roberta = config.get("model_type") in ("xlm-roberta", "roberta")
    prefix = next((p for p in ("bert.", "roberta.") if p + "embeddings.word_embeddings.weight" in weights), "")
    g = Graph(weights, prefix)
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim, eps = hidden // heads, config.get("layer_norm_eps", 1e-12)

    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), "input_ids"])
    if roberta:
        # Position ids: cumulative count of non-padding tokens, offset by the
        # padding id (padding itself gets the padding id); one token type.
        pad = config.get("pad_token_id", 1)
        real = g.op("Cast", [g.op("Not", [g.op("Equal", ["input_ids", g.const(np.int64(pad))])])], to=TensorProto.INT64)
        ids = g.op("Add", [g.op("Mul", [g.op("CumSum", [real, g.const(np.int64(1))]), real]), g.const(np.int64(pad))])
        positions = g.op("Gather", [g.weight("embeddings.position_embeddings.weight"), ids], "positions")
        types = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"), g.const(np.int64(0))])
        x = g.op("Add", [g.op("Add", [words, types]), positions])
    else:
        # Position ids come from slicing the table to the sequence length (a
        # Range over Shape crashed ONNX Runtime's optimiser).
        seq_len = g.op("Slice", [g.op("Shape", ["input_ids"]), g.const([1]), g.const([2])], "seq_len")
        positions = g.op("Slice", [g.weight("embeddings.position_embeddings.weight"), g.const([0]), seq_len, g.const([0])], "positions")
        x = g.op("Add", [g.op("Add", [words, g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])]), positions])
    x = g.layer_norm(x, "embeddings.LayerNorm", eps)

    # Additive attention mask: 0 where attended, -10000 where padded; [batch, 1, 1, sequence].
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const([1, 2])])
    mask = g.op("Mul", [g.op("Sub", [g.const(np.float32(1.0)), mask]), g.const(np.float32(-10000.0))], "mask")

    split = g.const([0, 0, heads, head_dim])
    merge = g.const([0, 0, hidden])
    scale = g.const(np.float32(1.0 / math.sqrt(head_dim)))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = g.op("Transpose", [g.op("Reshape", [g.linear(x, p + "attention.self.query"), split])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [g.linear(x, p + "attention.self.key"), split])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [g.linear(x, p + "attention.self.value"), split])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask])
        context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge])
        x = g.layer_norm(g.op("Add", [g.linear(context, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm", eps)
        inter = g.linear(x, p + "intermediate.dense")
        x = g.layer_norm(g.op("Add", [g.linear(g.gelu(inter), p + "output.dense"), x]), p + "output.LayerNorm", eps)

    if head == "classifier":
        cls = g.op("Gather", [x, g.const(np.int64(0))], axis=1)
        pooled = g.op("Tanh", [g.linear(cls, "pooler.dense")])
        if g.prefix + "classifier.weight" in weights or "classifier.weight" in weights:
            w, b = weights.get("classifier.weight"), weights.get("classifier.bias")
        else:
            rng = np.random.default_rng(7)
            w = rng.standard_normal((1, hidden)).astype(np.float32) * 0.5
            b = np.zeros((1,), dtype=np.float32)
        logits = g.op("Add", [g.op("MatMul", [pooled, g.const(w.astype(np.float32).T.copy())]), g.const(b.astype(np.float32))])
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
        output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", int(w.shape[0])])
    elif head == "splade":
        # MLM head: dense → GELU → LayerNorm → tied decoder (word embeddings) + bias.
        t = g.op("Add", [g.op("MatMul", [x, g.weight("cls.predictions.transform.dense.weight", transpose=True, prefix="")]),
                         g.weight("cls.predictions.transform.dense.bias", prefix="")])
        t = g.layer_norm(g.gelu(t), "cls.predictions.transform.LayerNorm", eps, prefix="")
        logits = g.op("Add", [g.op("MatMul", [t, g.weight("embeddings.word_embeddings.weight", transpose=True)]),
                              g.weight("cls.predictions.bias", prefix="")])
        # SPLADE: log(1 + relu(logits)), padding masked out, max over tokens.
        activated = g.op("Log", [g.op("Add", [g.op("Relu", [logits]), g.const(np.float32(1.0))])])
        token_mask = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT), g.const([2])])
        pooled = g.op("ReduceMax", [g.op("Mul", [activated, token_mask])], axes=[1], keepdims=0)
        g.nodes.append(helper.make_node("Identity", [pooled], ["sparse"]))
        output = helper.make_tensor_value_info("sparse", TensorProto.FLOAT, ["batch", config["vocab_size"]])
    else:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
        output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])

    names = ("input_ids", "attention_mask") if roberta else ("input_ids", "attention_mask", "token_type_ids")
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
    graph = helper.make_graph(g.nodes, "bert", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vecpipe")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx.tmp"))
    for name in ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    if (src / "1_Pooling" / "config.json").exists():
        (out / "1_Pooling").mkdir(exist_ok=True)
        shutil.copy(src / "1_Pooling" / "config.json", out / "1_Pooling" / "config.json")
    (out / "model.onnx.tmp").rename(out / "model.onnx")


if __name__ == "__main__":
    head = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--head" else None
    build(Path(sys.argv[1]), Path(sys.argv[2]), head)
