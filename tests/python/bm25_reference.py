"""pymilvus.model's BM25EmbeddingFunction, driven by the interoperability test.

Without --language: a whitespace + lowercase analyzer built from pymilvus.model's
own Analyzer parts. With --language L: pymilvus.model's
build_default_analyzer(L) (scripts/bench/pymilvus_analyzer.py: default).

    bm25_reference.py fit CORPUS.jsonl OUT.json [--language L]
    bm25_reference.py encode PARAMS.json CORPUS.jsonl QUERIES.json [--language L]
        prints {"documents": [[[index, value], ...], ...], "queries": [...]}
    bm25_reference.py analyze CORPUS.jsonl --language L
        prints each text's terms: [[term, ...], ...]
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "bench"))
import pymilvus_analyzer  # noqa: E402

from pymilvus.model.sparse import BM25EmbeddingFunction  # noqa: E402


def analyzer(language):
    if language is None:
        return pymilvus_analyzer.whitespace()
    return pymilvus_analyzer.default(language)


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
    args = sys.argv[1:]
    language = None
    if "--language" in args:
        at = args.index("--language")
        language = args[at + 1]
        del args[at:at + 2]
    command = args[0]
    if command == "fit":
        bm25 = BM25EmbeddingFunction(analyzer(language))
        bm25.fit(texts(args[1]))
        bm25.save(args[2])
    elif command == "encode":
        bm25 = BM25EmbeddingFunction(analyzer(language))
        bm25.load(args[1])
        with open(args[3], encoding="utf-8") as f:
            queries = json.load(f)
        print(json.dumps({
            "documents": rows(bm25.encode_documents(texts(args[2]))),
            "queries": rows(bm25.encode_queries(queries)),
        }))
    elif command == "analyze":
        analyze = analyzer(language)
        print(json.dumps([analyze(text) for text in texts(args[1])], ensure_ascii=False))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
