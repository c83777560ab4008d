"""Reference: the plain Python script a user writes for Parquet → dense +
BM25 → Milvus, with the same model file and BM25 params as vecpipe.

    e2e_python.py MODEL_DIR BM25.json TEXTS.parquet THREADS URI   → prints "texts seconds"
BM25.json `none`: dense only (for Milvus 2.3, which has no sparse vectors).

Reads `id` and `text`; dense as reference.embed_sorted (the whole file
sorted by token count, batches of 64, THREADS intra-op threads); BM25 with
pymilvus.model's `BM25EmbeddingFunction` (its English analysis as far as it
runs offline, pymilvus_analyzer.py; the params vecpipe fitted);
`MilvusClient.insert` in batches of 1,000 rows into the collection vecpipe
makes, then a flush. Timed from loading the model to the flush, Python's
start excluded.
"""
import sys
import time

import pyarrow.parquet as pq
from pymilvus import MilvusClient
from pymilvus.model.sparse import BM25EmbeddingFunction

import pymilvus_analyzer
import reference

model_dir, params, path, threads, uri = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
start = time.perf_counter()
tokenizer, session = reference.load_model(model_dir, threads)
bm25 = None
if params != "none":
    bm25 = BM25EmbeddingFunction(pymilvus_analyzer.english())
    bm25.load(params)

table = pq.read_table(path, columns=["id", "text"])
ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
dense, _ = reference.embed_sorted(tokenizer, session, texts)
sparse = bm25.encode_documents(texts) if bm25 else None

client = MilvusClient(uri)
reference.create_collection(client, "reference", sparse=bm25 is not None)
rows = []
for i in range(len(texts)):
    row = {"id": ids[i], "text": texts[i], "dense": dense[i]}
    if sparse is not None:
        weights = sparse[[i]]
        row["sparse"] = dict(zip(weights.indices.tolist(), weights.data.tolist()))
    rows.append(row)
for i in range(0, len(rows), 1000):
    client.insert("reference", rows[i:i + 1000])
client.flush("reference")
print(len(texts), time.perf_counter() - start)
