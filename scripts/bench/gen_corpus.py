"""Writes a deterministic synthetic corpus as JSONL: {"id", "title", "text"}.

    gen_corpus.py ROWS OUT.jsonl [MIN_WORDS MAX_WORDS]
"""
import json
import random
import sys

rows, out = int(sys.argv[1]), sys.argv[2]
min_words = int(sys.argv[3]) if len(sys.argv) > 3 else 20
max_words = int(sys.argv[4]) if len(sys.argv) > 4 else 200
rng = random.Random(42)
# A Zipf-like vocabulary: a few very common words, a long tail of rare ones.
vocab = [f"w{i}" for i in range(50_000)]
common = "the of and to in a is that for it as was with on by".split()
cum_weights = list(__import__("itertools").accumulate(1.0 / (i + 1) for i in range(len(vocab))))
with open(out, "w") as f:
    for i in range(rows):
        n = rng.randint(min_words, max_words)
        words = rng.choices(vocab, cum_weights=cum_weights, k=n)
        for j in range(0, n, 4):
            words[j] = rng.choice(common)
        f.write(json.dumps({"id": f"doc{i}", "title": f"Title {i % 1000}", "text": " ".join(words) + "."}) + "\n")
