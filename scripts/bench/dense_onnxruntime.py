"""Reference: the best plain Python a user would write for dense embedding.

    dense_onnxruntime.py MODEL_DIR TEXTS.parquet THREADS OUT.parquet
prints: texts tokens seconds

Reads the `text` column, tokenizes everything with HF tokenizers
(`encode_batch`, truncation at 256), sorts the whole file by token count,
runs batches of 64 (padded to the longest in the batch) through onnxruntime
with THREADS intra-op threads, mean-pools and L2-normalises in numpy, and
writes id + vector to Parquet in input order. Timed from loading the model
to the written output (Python's start and imports excluded), as vecpipe's
whole run includes its model load.
"""
import sys
import time

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

model_dir, path, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tokenizer.enable_truncation(256)
tokenizer.no_padding()
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])

table = pq.read_table(path, columns=["id", "text"])
texts = table.column("text").to_pylist()
encodings = tokenizer.encode_batch(texts)
order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
vectors = np.zeros((len(texts), 384), dtype=np.float32)
tokens = 0
for b in range(0, len(order), 64):
    group = order[b:b + 64]
    width = max(len(encodings[i].ids) for i in group)
    ids = np.zeros((len(group), width), dtype=np.int64)
    mask = np.zeros((len(group), width), dtype=np.int64)
    for row, i in enumerate(group):
        n = len(encodings[i].ids)
        ids[row, :n] = encodings[i].ids
        mask[row, :n] = 1
    tokens += int(mask.sum())
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    vectors[group] = pooled
dense = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 384)
pq.write_table(pa.table({"id": table.column("id"), "dense": dense}), out)
print(len(texts), tokens, time.perf_counter() - start)
