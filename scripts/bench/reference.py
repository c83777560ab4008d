"""The pieces of the plain-Python references, written once.

`load_model` and `embed_sorted` are what a user writes for dense embedding
with onnxruntime + tokenizers: truncation at 256, the whole input sorted by
token count, batches of 64 padded to their longest, mean pooling over the
attention mask and L2 normalisation in numpy. `create_collection` makes the
collection vecpipe's sink makes (same vector fields and indexes).
"""
import numpy as np
import onnxruntime as ort
from pymilvus import DataType
from tokenizers import Tokenizer


def load_model(model_dir, threads):
    tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.enable_truncation(256)
    tokenizer.no_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])
    return tokenizer, session


def embed_sorted(tokenizer, session, texts, batch=64, dim=384):
    """Vectors in input order, and the number of real (unpadded) tokens."""
    encodings = tokenizer.encode_batch(texts)
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    tokens = 0
    for b in range(0, len(order), batch):
        group = order[b:b + batch]
        width = max(len(encodings[i].ids) for i in group)
        ids = np.zeros((len(group), width), dtype=np.int64)
        mask = np.zeros((len(group), width), dtype=np.int64)
        for row, i in enumerate(group):
            n = len(encodings[i].ids)
            ids[row, :n] = encodings[i].ids
            mask[row, :n] = 1
        tokens += int(mask.sum())
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        vectors[group] = pooled
    return vectors, tokens


def create_collection(client, name, dim=384, sparse=True):
    """`sparse=False`: dense only (Milvus 2.3 has no sparse vectors)."""
    schema = client.create_schema()
    schema.add_field("id", DataType.VARCHAR, max_length=512, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    if sparse:
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    index = client.prepare_index_params()
    index.add_index("dense", index_type="AUTOINDEX", metric_type="COSINE")
    if sparse:
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)
