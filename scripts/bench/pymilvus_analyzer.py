"""pymilvus.model analyzers for the references, as far as they run offline.

`default(language)` is pymilvus.model's own `build_default_analyzer`, with
the NLTK data it loads (not on PyPI) made from the project's copy of NLTK's
stop-word lists and Punkt's English model as pymilvus finds it here (empty).

pymilvus.model's `build_default_analyzer` needs NLTK data downloads
(punkt_tab for `word_tokenize`, the stop-word corpus), which fail here. So
`english()` keeps its own lowercase filter and NLTK Snowball stemming filter
(code only, no data) and swaps in a word regex for the tokenizer and Milvus'
stop-word list (vecpipe's) for NLTK's: the same work per term as vecpipe's
default analyzer.
"""
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from pymilvus.model.sparse.bm25.tokenizers import Analyzer, LowercaseFilter, StemmingFilter

STOP_WORDS = Path(__file__).resolve().parents[2] / "config/stopwords/english.txt"
NLTK_STOP_WORDS = Path(__file__).resolve().parents[2] / "config/stopwords/nltk"


def nltk_data():
    """An NLTK data directory holding what pymilvus.model's analyzers load."""
    root = tempfile.mkdtemp(prefix="nltk_data")
    shutil.copytree(NLTK_STOP_WORDS, os.path.join(root, "corpora", "stopwords"))
    punkt = os.path.join(root, "tokenizers", "punkt_tab", "english")
    os.makedirs(punkt)
    for name in ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"):
        open(os.path.join(punkt, name), "w").close()
    import nltk
    nltk.data.path.insert(0, root)


def default(language):
    """pymilvus.model's `build_default_analyzer(language)`."""
    nltk_data()
    logging.getLogger("jieba").setLevel(logging.WARNING)
    from pymilvus.model.sparse.bm25.tokenizers import build_default_analyzer
    return build_default_analyzer(language=language)


class WordTokenizer:
    pattern = re.compile(r"\w+")

    def tokenize(self, text):
        return self.pattern.findall(text)


class WhitespaceTokenizer:
    def tokenize(self, text):
        return text.split()


class StopWords:
    def __init__(self, path):
        lines = (line.strip() for line in open(path))
        self.words = {w for w in lines if w and not w.startswith("#")}

    def apply(self, tokens):
        return [t for t in tokens if t not in self.words]


def english():
    return Analyzer("english", WordTokenizer(), preprocessors=[],
                    filters=[LowercaseFilter(), StemmingFilter("english"), StopWords(STOP_WORDS)])


def whitespace():
    return Analyzer("whitespace", WhitespaceTokenizer(), preprocessors=[], filters=[LowercaseFilter()])
