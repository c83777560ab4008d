"""pymilvus.model's BM25EmbeddingFunction, driven by the interoperability test.

Without --language: a whitespace + lowercase analyzer built from pymilvus.model's
own Analyzer parts. With --language L: pymilvus.model's
build_default_analyzer(L), with NLTK's data (not on PyPI) made from the
project's copy of NLTK's stop-word lists and Punkt's English model as
pymilvus ships it here (empty).

    bm25_reference.py fit CORPUS.jsonl OUT.json [--language L]
    bm25_reference.py encode PARAMS.json CORPUS.jsonl QUERIES.json [--language L]
        prints {"documents": [[[index, value], ...], ...], "queries": [...]}
    bm25_reference.py analyze CORPUS.jsonl --language L
        prints each text's terms: [[term, ...], ...]
"""
import json
import os
import shutil
import sys
import tempfile

from pymilvus.model.sparse import BM25EmbeddingFunction
from pymilvus.model.sparse.bm25.tokenizers import Analyzer, LowercaseFilter


class WhitespaceTokenizer:
    def tokenize(self, text):
        return text.split()


def nltk_data():
    """An NLTK data directory holding what pymilvus.model's analyzers load."""
    root = tempfile.mkdtemp(prefix="nltk_data")
    lists = os.path.join(os.path.dirname(__file__), "..", "..", "config", "stopwords", "nltk")
    shutil.copytree(lists, os.path.join(root, "corpora", "stopwords"))
    punkt = os.path.join(root, "tokenizers", "punkt_tab", "english")
    os.makedirs(punkt)
    for name in ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"):
        open(os.path.join(punkt, name), "w").close()
    import nltk
    nltk.data.path.insert(0, root)


def analyzer(language):
    if language is None:
        return Analyzer("whitespace-lowercase", WhitespaceTokenizer(), preprocessors=[], filters=[LowercaseFilter()])
    nltk_data()
    import logging
    logging.getLogger("jieba").setLevel(logging.WARNING)
    from pymilvus.model.sparse.bm25.tokenizers import build_default_analyzer
    return build_default_analyzer(language=language)


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
