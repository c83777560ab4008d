"""Reference: the plain Python script a user writes for Parquet → dense +
BM25 → Milvus, with the same model file and BM25 params as vecpipe.

    e2e_python.py MODEL_DIR BM25.json TEXTS.parquet THREADS URI   → prints "texts seconds"

Reads `id` and `text`; dense as dense_onnxruntime.py (the whole file sorted
by token count, batches of 64, THREADS intra-op threads, mean pooling + L2 in
numpy); BM25 with pymilvus.model's `BM25EmbeddingFunction` (its English
analysis as far as it runs offline, pymilvus_analyzer.py; the params vecpipe
fitted); `MilvusClient.insert` in batches of 1,000 rows
into a collection with the same vector fields and indexes, then a flush.
Timed from loading the model to the flush, Python's start excluded.
"""
import sys
import time

import numpy as np
import onnxruntime as ort
import pymilvus_analyzer
import pyarrow.parquet as pq
from pymilvus import DataType, MilvusClient
from pymilvus.model.sparse import BM25EmbeddingFunction
from tokenizers import Tokenizer

model_dir, params, path, threads, uri = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
start = time.perf_counter()
tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tokenizer.enable_truncation(256)
tokenizer.no_padding()
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])
bm25 = BM25EmbeddingFunction(pymilvus_analyzer.english())
bm25.load(params)

table = pq.read_table(path, columns=["id", "text"])
ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
encodings = tokenizer.encode_batch(texts)
order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
dense = np.zeros((len(texts), 384), dtype=np.float32)
for b in range(0, len(order), 64):
    group = order[b:b + 64]
    width = max(len(encodings[i].ids) for i in group)
    ids_in = np.zeros((len(group), width), dtype=np.int64)
    mask = np.zeros((len(group), width), dtype=np.int64)
    for row, i in enumerate(group):
        n = len(encodings[i].ids)
        ids_in[row, :n] = encodings[i].ids
        mask[row, :n] = 1
    hidden = session.run(None, {"input_ids": ids_in, "attention_mask": mask, "token_type_ids": np.zeros_like(ids_in)})[0]
    pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    dense[group] = pooled
sparse = bm25.encode_documents(texts)

client = MilvusClient(uri)
schema = client.create_schema()
schema.add_field("id", DataType.VARCHAR, max_length=512, is_primary=True)
schema.add_field("text", DataType.VARCHAR, max_length=65535)
schema.add_field("dense", DataType.FLOAT_VECTOR, dim=384)
schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
index = client.prepare_index_params()
index.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
client.create_collection("reference", schema=schema, index_params=index)
rows = []
for i in range(len(texts)):
    row = sparse[[i]]
    rows.append({"id": ids[i], "text": texts[i], "dense": dense[i],
                 "sparse": dict(zip(row.indices.tolist(), row.data.tolist()))})
for i in range(0, len(rows), 1000):
    client.insert("reference", rows[i:i + 1000])
client.flush("reference")
print(len(texts), time.perf_counter() - start)
