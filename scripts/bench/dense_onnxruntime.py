"""Reference: the best plain Python a user would write for dense embedding.

    dense_onnxruntime.py MODEL_DIR TEXTS.parquet THREADS OUT.parquet
prints: texts tokens seconds

Reads the `text` column, embeds it as reference.embed_sorted does (the whole
file sorted by token count, batches of 64, THREADS intra-op threads) and
writes id + vector to Parquet in input order. Timed from loading the model
to the written output (Python's start and imports excluded), as vecpipe's
whole run includes its model load.
"""
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq

import reference

model_dir, path, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
tokenizer, session = reference.load_model(model_dir, threads)
table = pq.read_table(path, columns=["id", "text"])
vectors, tokens = reference.embed_sorted(tokenizer, session, table.column("text").to_pylist())
dense = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
pq.write_table(pa.table({"id": table.column("id"), "dense": dense}), out)
print(len(vectors), tokens, time.perf_counter() - start)
