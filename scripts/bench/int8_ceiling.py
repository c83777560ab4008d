"""How fast can a dynamically quantized model be on this CPU, at best?

    int8_ceiling.py FP32_DIR SENTENCES.jsonl [THREADS]

Two measurements, then Amdahl's law:
- g, the int8 speed-up of the weight products themselves: each weight shape
  of the fp32 model (MatMul with a 2-D constant B) as a one-node model, in
  fp32 and quantized as scripts/quantize_int8.py does (int8 weights per
  channel, 7 bits), 1,024 rows (batch_tokens' default), the two alternated
  seven times (medians), weighted by how often the shape occurs;
- r, the share of the fp32 model's time spent outside those products
  (attention products, softmax, layer norms, GELU, adds, transposes), from
  ONNX Runtime's profiler over the sentences in batches of ~1,024 tokens.
The rest of the model does not get faster with int8 weights, so the best a
whole-model int8 run can reach is 1 / (r + (1 - r) / g).

Prints: "g r ceiling".
"""
import collections
import json
import logging
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from tokenizers import Tokenizer

fp32_dir, sentences_path = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
ROWS = 1024
# quantize_dynamic's advice to pre-process the graph is not for a one-node model.
logging.getLogger().setLevel(logging.ERROR)


def session(path, profile=False):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = profile
    # As vecpipe opens its sessions (src/model/session.rs).
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=["SkipLayerNormFusion"])


def weight_shapes(model):
    constants = {i.name: list(i.dims) for i in model.graph.initializer}
    shapes = collections.Counter()
    for node in model.graph.node:
        b = constants.get(node.input[1]) if node.op_type == "MatMul" else None
        if b is not None and len(b) == 2:
            shapes[tuple(b)] += 1
    return shapes


def seconds_per_product(work, k, n):
    """Median seconds of one [ROWS, k] x [k, n] product, fp32 and int8."""
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((k, n)) * 0.05).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "product",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [ROWS, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [ROWS, n])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    fp32, int8 = f"{work}/fp32.onnx", f"{work}/int8.onnx"
    onnx.save(model, fp32)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    x = rng.standard_normal((ROWS, k)).astype(np.float32)
    times = {fp32: [], int8: []}
    for _ in range(7):
        for path in times:
            # One session at a time: an idle one's spinning threads would slow the other.
            s = session(path)
            for _ in range(10):
                s.run(None, {"x": x})
            start = time.perf_counter()
            for _ in range(100):
                s.run(None, {"x": x})
            times[path].append((time.perf_counter() - start) / 100)
            del s
    return statistics.median(times[fp32]), statistics.median(times[int8])


def outside_share(path):
    """Share of kernel time outside the weight products, profiled on the sentences."""
    tokenizer = Tokenizer.from_file(f"{fp32_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    with open(sentences_path) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    encodings = sorted(tokenizer.encode_batch(texts), key=lambda e: len(e.ids))
    s = session(path, profile=True)
    names = {i.name for i in s.get_inputs()}
    start = 0
    while start < len(encodings):
        # As vecpipe's batches: rows while rows x the longest stays within ROWS tokens.
        end = start + 1
        while end < len(encodings) and (end - start + 1) * len(encodings[end].ids) <= ROWS:
            end += 1
        batch, start = encodings[start:end], end
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(batch):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        s.run(None, feed)
    with open(s.end_profiling()) as f:
        events = json.load(f)
    os.remove(f.name)
    total = products = 0
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        total += e["dur"]
        # A weight product lists one input shape: the profiler leaves constants out.
        if e["args"].get("op_name") == "MatMul" and len(e["args"].get("input_type_shape", [])) == 1:
            products += e["dur"]
    return 1 - products / total


model = onnx.load(f"{fp32_dir}/model.onnx")
shapes = weight_shapes(model)
with tempfile.TemporaryDirectory() as work:
    fp32_total = int8_total = 0.0
    for (k, n), count in shapes.items():
        fp32_s, int8_s = seconds_per_product(work, k, n)
        fp32_total += count * fp32_s
        int8_total += count * int8_s
    g = fp32_total / int8_total
    r = outside_share(f"{fp32_dir}/model.onnx")
print(f"{g:.3f} {r:.3f} {1 / (r + (1 - r) / g):.3f}")
