"""pymilvus.model analyzers for the references, as far as they run offline.

pymilvus.model's `build_default_analyzer` needs NLTK data downloads
(punkt_tab for `word_tokenize`, the stop-word corpus), which fail here. So
`english()` keeps its own lowercase filter and NLTK Snowball stemming filter
(code only, no data) and swaps in a word regex for the tokenizer and Milvus'
stop-word list (vecpipe's) for NLTK's: the same work per term as vecpipe's
default analyzer.
"""
import re
from pathlib import Path

from pymilvus.model.sparse.bm25.tokenizers import Analyzer, LowercaseFilter, StemmingFilter

STOP_WORDS = Path(__file__).resolve().parents[2] / "config/stopwords/english.txt"


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
