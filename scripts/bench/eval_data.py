"""Writes a BEIR-format set for the eval benchmark into OUT_DIR: corpus.jsonl
(DOCS documents, each three sentences drawn from the example BEIR corpus),
queries.jsonl (200 queries: nine words of one document) and qrels.tsv (that
document, grade 1). Deterministic.

    eval_data.py DOCS OUT_DIR
"""
import json
import random
import sys

docs, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
sentences = []
with open("pipelines/data/beir-mini/corpus.jsonl") as f:
    for line in f:
        text = json.loads(line)["text"]
        sentences += [s.strip().rstrip(".") + "." for s in text.split(". ") if s.strip()]
corpus = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.sample(sentences, 3))} for i in range(docs)]
with open(f"{out}/corpus.jsonl", "w") as f:
    for doc in corpus:
        f.write(json.dumps(doc) + "\n")
with open(f"{out}/queries.jsonl", "w") as q, open(f"{out}/qrels.tsv", "w") as r:
    r.write("query-id\tcorpus-id\tscore\n")
    for i, doc in enumerate(rng.sample(corpus, 200)):
        words = doc["text"].split()
        q.write(json.dumps({"_id": f"q{i}", "text": " ".join(words[3:12])}) + "\n")
        r.write(f"q{i}\t{doc['_id']}\t1\n")
