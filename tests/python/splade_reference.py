"""SPLADE vectors from Python onnxruntime on the same ONNX file, one text at a time.

    splade_reference.py MODEL_DIR TEXTS.json   → prints [[[index, weight], ...], ...]
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model_dir, texts_path = sys.argv[1], sys.argv[2]
tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tokenizer.no_padding()
tokenizer.enable_truncation(256)
session = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])
out = []
for text in json.load(open(texts_path)):
    e = tokenizer.encode(text)
    ids = np.array([e.ids], dtype=np.int64)
    mask = np.array([e.attention_mask], dtype=np.int64)
    weights = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0][0]
    out.append([[int(i), float(weights[i])] for i in np.nonzero(weights > 0)[0]])
print(json.dumps(out))
