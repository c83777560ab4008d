"""Reads a collection written by vecpipe with pymilvus (a client we did not write).

    milvus_check.py URI COLLECTION QUERY_VECTORS.json
QUERY_VECTORS.json: {"dense": [...], "sparse": {"index": value, ...}}
prints JSON: {"count", "fields": {name: type}, "dim", "hybrid_top_doc_ids": [...]}
"""
import json
import sys

from pymilvus import AnnSearchRequest, MilvusClient, RRFRanker

uri, collection, queries_path = sys.argv[1:4]
with open(queries_path) as f:
    queries = json.load(f)
client = MilvusClient(uri)
client.load_collection(collection)
described = client.describe_collection(collection)
fields = {f["name"]: f["type"].name for f in described["fields"]}
dim = next(f["params"]["dim"] for f in described["fields"] if f["name"] == "dense")
count = client.query(collection, output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
sparse = {int(k): v for k, v in queries["sparse"].items()}
hits = client.hybrid_search(
    collection,
    [
        AnnSearchRequest([queries["dense"]], "dense", {}, limit=5),
        AnnSearchRequest([sparse], "sparse", {}, limit=5),
    ],
    RRFRanker(60),
    limit=3,
    output_fields=["doc_id"],
)
print(json.dumps({
    "count": count,
    "fields": fields,
    "dim": dim,
    "hybrid_top_doc_ids": [hit["entity"]["doc_id"] for hit in hits[0]],
}))
