"""Reference timing: pymilvus.model BM25 encode_documents on a JSONL corpus.

    bm25_pymilvus.py PARAMS.json CORPUS.jsonl [english|whitespace|language=L]   → prints "docs seconds"

The analyzers are in pymilvus_analyzer.py (English by default; language=L is
pymilvus.model's build_default_analyzer(L)).
"""
import json
import sys
import time

import pymilvus_analyzer
from pymilvus.model.sparse import BM25EmbeddingFunction

choice = sys.argv[3] if len(sys.argv) > 3 else "english"
if choice == "whitespace":
    analyzer = pymilvus_analyzer.whitespace()
elif choice.startswith("language="):
    analyzer = pymilvus_analyzer.default(choice.removeprefix("language="))
else:
    analyzer = pymilvus_analyzer.english()
bm25 = BM25EmbeddingFunction(analyzer)
bm25.load(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    texts = [json.loads(line)["text"] for line in f]
start = time.perf_counter()
bm25.encode_documents(texts)
print(len(texts), time.perf_counter() - start)
