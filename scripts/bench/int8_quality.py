"""The int8 model's quality gate on real text, against fp32, same runtime.

    int8_quality.py FP32_DIR INT8_DIR [SENTENCES]

Sentences: the first SENTENCES (default 10,000) distinct sentences of 6–40
words from the docstrings of Python's standard library, shuffled with a fixed
seed. Prints: sentences, mean cosine int8→fp32, its minimum, and the mean
overlap of the 10 nearest neighbours of 200 of them.
"""
import glob
import random
import re
import sys
import sysconfig

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

fp32_dir, int8_dir = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000

sentences, seen = [], set()
stdlib = sysconfig.get_paths()["stdlib"]
for path in sorted(glob.glob(f"{stdlib}/**/*.py", recursive=True)):
    if "/test" in path or "site-packages" in path:
        continue
    with open(path, errors="ignore") as f:
        body = " ".join(re.findall(r'"""(.*?)"""', f.read(), flags=re.S))
    for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", body)):
        words = s.split()
        if 6 <= len(words) <= 40 and sum(c.isalpha() or c == " " for c in s) > 0.9 * len(s) and s not in seen:
            seen.add(s)
            sentences.append(s)
random.Random(0).shuffle(sentences)
sentences = sentences[:limit]

tokenizer = Tokenizer.from_file(f"{fp32_dir}/tokenizer.json")
tokenizer.enable_truncation(256)
tokenizer.enable_padding()


def embed(model_dir):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = np.zeros((len(sentences), 384), dtype=np.float32)
    for start in range(0, len(order), 64):
        idx = order[start:start + 64]
        enc = tokenizer.encode_batch([sentences[i] for i in idx])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out[idx] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


a, b = embed(fp32_dir), embed(int8_dir)
cosines = (a * b).sum(1)
queries = range(0, len(sentences), len(sentences) // 200)[:200]
overlap = []
for i in queries:
    theirs = set(np.argsort(-(a @ a[i]))[1:11])
    ours = set(np.argsort(-(b @ b[i]))[1:11])
    overlap.append(len(theirs & ours) / 10)
print(len(sentences), f"{cosines.mean():.4f}", f"{cosines.min():.4f}", f"{np.mean(overlap):.3f}")
