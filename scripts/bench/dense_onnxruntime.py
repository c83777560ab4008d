"""Reference: a bare ONNX Runtime session on the same model, in Python.

    dense_onnxruntime.py MODEL_DIR SENTENCES.jsonl THREADS
prints: sentences tokens encode_seconds
HF tokenizers (truncation 256, padding to the longest in each batch of 64,
input order), onnxruntime with THREADS intra-op threads, mean pooling and L2
normalisation in numpy.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model_dir, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path) as f:
    texts = [json.loads(line)["text"] for line in f]
tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tokenizer.enable_truncation(256)
tokenizer.enable_padding()
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])

start = time.perf_counter()
tokens = 0
for i in range(0, len(texts), 64):
    encodings = tokenizer.encode_batch(texts[i:i + 64])
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    tokens += int(mask.sum())
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
print(len(texts), tokens, time.perf_counter() - start)
