"""Writes N texts of MIN..MAX words (English-like) to Parquet (`id`, `text`).

    gen_texts.py N OUT.parquet MIN_WORDS MAX_WORDS
"""
import random
import sys

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gen_sentences import WORDS  # noqa: E402

n, out, lo, hi = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(11)
texts = [" ".join(rng.choices(WORDS, k=rng.randint(lo, hi))).capitalize() + "." for _ in range(n)]
pq.write_table(pa.table({"id": [f"t{i}" for i in range(n)], "text": texts}), out)
