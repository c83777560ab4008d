"""Cross-encoder scores from Python onnxruntime on the same ONNX file.

    cross_encoder_reference.py MODEL_DIR PAIRS.json   → prints [score, ...] (first logit)
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model_dir, pairs_path = sys.argv[1], sys.argv[2]
tokenizer = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tokenizer.no_padding()
tokenizer.enable_truncation(512)
session = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])
scores = []
for query, passage in json.load(open(pairs_path)):
    e = tokenizer.encode(query, passage)
    feed = {
        "input_ids": np.array([e.ids], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids], dtype=np.int64),
    }
    scores.append(float(session.run(None, feed)[0][0][0]))
print(json.dumps(scores))
