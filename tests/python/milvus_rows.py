"""Prints a collection's rows as pymilvus reads them (a client we did not write).

    milvus_rows.py URI COLLECTION FIELD[,FIELD...]
prints JSON: a list of {field: value}, sorted by `id`
"""
import json
import sys

from pymilvus import MilvusClient

uri, collection, fields = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
client = MilvusClient(uri)
client.load_collection(collection)
rows = client.query(collection, filter='id != ""', output_fields=fields, consistency_level="Strong")
print(json.dumps(sorted(([{f: row[f] for f in fields} for row in rows]), key=lambda r: r["id"])))
