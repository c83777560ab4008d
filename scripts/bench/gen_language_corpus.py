"""A corpus of N documents in one language, from the paragraphs of the
interop tests' real text (tests/data/languages/CODE.jsonl): each document
joins 2 to 6 of its sentences, picked at random (seeded).

    gen_language_corpus.py CODE N OUT.jsonl
"""
import json
import random
import re
import sys
from pathlib import Path

code, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
source = Path(__file__).resolve().parents[2] / "tests/data/languages" / f"{code}.jsonl"
paragraphs = [json.loads(line)["text"] for line in source.open(encoding="utf-8")]
sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?。！？])\s*", p) if s.strip()]
rng = random.Random(7)
joiner = "" if code == "zh" else " "
with open(out, "w", encoding="utf-8") as f:
    for i in range(n):
        text = joiner.join(rng.choice(sentences) for _ in range(rng.randint(2, 6)))
        f.write(json.dumps({"id": f"{code}-{i}", "text": text}, ensure_ascii=False) + "\n")
