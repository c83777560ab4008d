"""Reference: a bare pymilvus insert of the same rows into the same kind of server.

    milvus_pymilvus.py URI ROWS.parquet [dense]   → prints "rows insert_seconds flush_seconds"
`dense`: the dense vectors only (for Milvus 2.3, which has no sparse vectors).
Creates the same schema vecpipe creates, inserts batches of 1,000 rows, then
flushes (as vecpipe's sink does at the end of a run: sealed rows are searched
5–10× faster by Milvus Lite); times the inserts and the flush.
"""
import sys
import time

import pyarrow.parquet as pq
from pymilvus import MilvusClient

import reference

uri, path = sys.argv[1], sys.argv[2]
with_sparse = sys.argv[3:] != ["dense"]
client = MilvusClient(uri)
reference.create_collection(client, "reference", sparse=with_sparse)

rows = []
for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
    for r in batch.to_pylist():
        row = {"id": r["id"], "text": r["text"], "dense": r["dense"]}
        if with_sparse:
            row["sparse"] = {e["index"]: e["value"] for e in r["sparse"]}
        rows.append(row)
start = time.perf_counter()
for i in range(0, len(rows), 1000):
    client.insert("reference", rows[i:i + 1000])
inserted = time.perf_counter()
client.flush("reference")
print(len(rows), inserted - start, time.perf_counter() - inserted)
