"""Retrieval metrics computed by trec_eval's own code (pytrec_eval), the
reference `vecpipe eval` is checked against.

usage: trec_reference.py QRELS RUN K DEEP
  QRELS  BEIR qrels TSV (header line); queries with no grade >= 1 are left out,
         as vecpipe eval leaves them out
  RUN    JSON: {query_id: {doc_id: score}}
Prints one JSON object: the means of ndcg@K, recall@K, recall@DEEP, mrr@K.
"""
import json
import sys

import pytrec_eval

qrels_path, run_path, k, deep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
qrels = {}
with open(qrels_path) as f:
    next(f)
    for line in f:
        query, doc, grade = line.rstrip("\n").split("\t")
        qrels.setdefault(query, {})[doc] = int(grade)
qrels = {q: j for q, j in qrels.items() if any(g >= 1 for g in j.values())}
with open(run_path) as f:
    run = json.load(f)
run = {q: docs for q, docs in run.items() if q in qrels}
for q in qrels:
    run.setdefault(q, {})

measures = {f"ndcg_cut_{k}", f"recall_{k}", f"recall_{deep}"}
scores = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def top(docs):
    """trec_eval's order: score descending, then document id descending."""
    ranked = sorted(docs.items(), key=lambda d: (d[1], d[0]), reverse=True)
    return dict(ranked[:k])


reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
    {q: top(docs) for q, docs in run.items()}
)


def mean(values):
    values = list(values)
    return sum(values) / len(values)


print(
    json.dumps(
        {
            f"ndcg@{k}": mean(s[f"ndcg_cut_{k}"] for s in scores.values()),
            f"recall@{k}": mean(s[f"recall_{k}"] for s in scores.values()),
            f"recall@{deep}": mean(s[f"recall_{deep}"] for s in scores.values()),
            f"mrr@{k}": mean(s["recip_rank"] for s in reciprocal.values()),
            "queries": len(scores),
        }
    )
)
