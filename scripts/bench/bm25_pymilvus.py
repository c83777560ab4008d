"""Reference timing: pymilvus.model BM25 encode_documents on a JSONL corpus.

    bm25_pymilvus.py PARAMS.json CORPUS.jsonl [default|whitespace]   → prints "docs seconds"

`default` is pymilvus.model's default analyzer (English: standard tokenizer,
lowercase, stop words, Snowball stemmer), what a user gets from
`BM25EmbeddingFunction()`; `whitespace` splits on whitespace and lowercases.
"""
import json
import sys
import time

from pymilvus.model.sparse import BM25EmbeddingFunction
from pymilvus.model.sparse.bm25.tokenizers import Analyzer, LowercaseFilter


class WhitespaceTokenizer:
    def tokenize(self, text):
        return text.split()


if sys.argv[3:] == ["whitespace"]:
    bm25 = BM25EmbeddingFunction(Analyzer("ws", WhitespaceTokenizer(), preprocessors=[], filters=[LowercaseFilter()]))
else:
    bm25 = BM25EmbeddingFunction()
bm25.load(sys.argv[1])
with open(sys.argv[2]) as f:
    texts = [json.loads(line)["text"] for line in f]
start = time.perf_counter()
bm25.encode_documents(texts)
print(len(texts), time.perf_counter() - start)
