"""Reference: the same rows bulk-imported with plain pymilvus, as a user
would script it — pyarrow writes one Parquet file in the collection's
layout, `utility.do_bulk_insert` starts the job, its state is polled until
it completed, `load(_refresh=True)` asks for the new segments, and
`count(*)` is polled until it holds every row.

    import_pymilvus.py URI ROWS.parquet DIR   → prints "rows write_seconds job_seconds visible_seconds"

The job and the wait for visibility are the server's own times, which any
client pays: with the write they bound what import can reach on a server.
"""
import os
import warnings
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus import BulkInsertState, Collection, MilvusClient, connections, utility

import reference

warnings.simplefilter("ignore")  # pymilvus deprecates the ORM calls that reach 2.3's import

uri, path, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
client = MilvusClient(uri)
reference.create_collection(client, "reference", sparse=False)
connections.connect(uri=uri)
collection = Collection("reference")

start = time.perf_counter()
source = pq.read_table(path, columns=["id", "text", "dense"])
layout = pa.schema([("id", pa.string()), ("text", pa.string()), ("dense", pa.list_(pa.float32()))])
table = source.cast(layout)
os.makedirs(out_dir, exist_ok=True)
file = os.path.join(out_dir, "reference.parquet")
# Row groups of ~32 MB, as pymilvus' BulkWriter makes them.
pq.write_table(table, file, row_group_size=max(1, (32 << 20) // (table.nbytes // table.num_rows)),
               compression="none", use_dictionary=False, write_statistics=False)
written = time.perf_counter()

task = utility.do_bulk_insert("reference", files=[file])
while True:
    state = utility.get_bulk_insert_state(task)
    if state.state == BulkInsertState.ImportCompleted:
        break
    if state.state in (BulkInsertState.ImportFailed, BulkInsertState.ImportFailedAndCleaned):
        sys.exit(f"import failed: {state.failed_reason}")
    time.sleep(0.5)
completed = time.perf_counter()
collection.load(_refresh=True)
while client.query("reference", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"] < table.num_rows:
    time.sleep(0.5)
visible = time.perf_counter()
os.remove(file)
print(table.num_rows, written - start, completed - written, visible - completed)
