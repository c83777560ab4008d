"""pymilvus.model's BM25EmbeddingFunction, driven by the interoperability test.

Uses a whitespace + lowercase analyzer built from pymilvus.model's own
Analyzer parts (its default analyzers need NLTK data that is not on PyPI).

    bm25_reference.py fit CORPUS.jsonl OUT.json
    bm25_reference.py encode PARAMS.json CORPUS.jsonl QUERIES.json
        prints {"documents": [[[index, value], ...], ...], "queries": [...]}
"""
import json
import sys

from pymilvus.model.sparse import BM25EmbeddingFunction
from pymilvus.model.sparse.bm25.tokenizers import Analyzer, LowercaseFilter


class WhitespaceTokenizer:
    def tokenize(self, text):
        return text.split()


def analyzer():
    return Analyzer("whitespace-lowercase", WhitespaceTokenizer(), preprocessors=[], filters=[LowercaseFilter()])


def texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def rows(matrix):
    matrix = matrix.tocsr()
    matrix.sort_indices()
    out = []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        out.append([[int(i), float(v)] for i, v in zip(matrix.indices[start:end], matrix.data[start:end])])
    return out


def main():
    command = sys.argv[1]
    if command == "fit":
        bm25 = BM25EmbeddingFunction(analyzer())
        bm25.fit(texts(sys.argv[2]))
        bm25.save(sys.argv[3])
    elif command == "encode":
        bm25 = BM25EmbeddingFunction(analyzer())
        bm25.load(sys.argv[2])
        with open(sys.argv[4], encoding="utf-8") as f:
            queries = json.load(f)
        print(json.dumps({
            "documents": rows(bm25.encode_documents(texts(sys.argv[3]))),
            "queries": rows(bm25.encode_queries(queries)),
        }))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
