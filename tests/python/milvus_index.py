"""Drops or creates the index of a collection's vector field with pymilvus,
as a user (or another writer still creating the collection) leaves it.

    milvus_index.py URI COLLECTION FIELD drop|create
drop releases the collection first (Milvus refuses to drop a loaded index);
create makes the index vecpipe makes by default (AUTOINDEX, COSINE).
"""
import sys

from pymilvus import MilvusClient

uri, collection, field, action = sys.argv[1:5]
client = MilvusClient(uri)
if action == "drop":
    client.release_collection(collection)
    client.drop_index(collection, field)
elif action == "create":
    params = client.prepare_index_params()
    params.add_index(field_name=field, index_type="AUTOINDEX", metric_type="COSINE")
    client.create_index(collection, params)
else:
    sys.exit(f"unknown action {action!r}")
