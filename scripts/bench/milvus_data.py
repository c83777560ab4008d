"""Writes N rows with text, a 384-d dense vector and a sparse vector as
Parquet (the column types vecpipe's stages produce), for the sink benchmark.

    milvus_data.py N OUT.parquet
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(3)
dense = rng.standard_normal((n, 384), dtype=np.float32)
dense /= np.linalg.norm(dense, axis=1, keepdims=True)
entry = pa.struct([pa.field("index", pa.uint32(), False), pa.field("value", pa.float32(), False)])
sparse = [
    [{"index": int(i), "value": float(v)} for i, v in zip(sorted(rng.choice(30000, 30, replace=False)), rng.random(30))]
    for _ in range(n)
]
table = pa.table({
    "id": pa.array([f"doc{i}#0" for i in range(n)]),
    "text": pa.array([f"text of row {i} " + "lorem ipsum " * 15 for i in range(n)]),
    "dense": pa.FixedSizeListArray.from_arrays(pa.array(dense.ravel(), pa.float32()), 384),
    "sparse": pa.array(sparse, pa.list_(pa.field("item", entry, False))),
})
pq.write_table(table, out, row_group_size=4096)
