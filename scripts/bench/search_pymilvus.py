"""Reference for one query: what a user's plain Python script does — load the
tokenizer and an ONNX Runtime session on the same model, embed the query
(mean pooling, L2 normalisation), search the collection with pymilvus, print
the hits. Timed from outside as a whole process, like `vecpipe search`.

    search_pymilvus.py MODEL_DIR URI COLLECTION QUERY THREADS
"""
import sys

import numpy as np
import onnxruntime as ort
from pymilvus import MilvusClient
from tokenizers import Tokenizer

model_dir, uri, collection, query, threads = sys.argv[1:6]
tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
options = ort.SessionOptions()
options.intra_op_num_threads = int(threads)
session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])
encoding = tokenizer.encode(query)
ids = np.array([encoding.ids], dtype=np.int64)
mask = np.array([encoding.attention_mask], dtype=np.int64)
hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
vector = (hidden * mask[..., None]).sum(1) / mask.sum()
vector /= np.linalg.norm(vector)
client = MilvusClient(uri)
hits = client.search(collection, data=[vector[0].tolist()], anns_field="dense", limit=10, output_fields=["id", "text"])
for hit in hits[0]:
    print(hit["id"], round(hit["distance"], 4), hit["entity"]["text"][:60])
