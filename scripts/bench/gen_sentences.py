"""Writes N English-like sentences as JSONL for the dense benchmark.

    gen_sentences.py N OUT.jsonl MIN_WORDS MAX_WORDS
"""
import json
import random
import sys

WORDS = """time year people way day man thing woman life child world school state family student group
country problem hand part place case week company system program question work government number night
point home water room mother area money story fact month lot right study book eye job word business issue
side kind head house service friend father power hour game line end member law car city community name
president team minute idea kid body information back parent face others level office door health person
art war history party result change morning reason research girl guy moment air teacher force education
make know think take see come want look use find give tell ask seem feel try leave call keep let begin
show hear play run move like live believe hold bring happen write provide sit stand lose pay meet include
continue set learn lead understand watch follow stop create speak read allow add spend grow open walk win
offer remember love consider appear buy wait serve die send expect build stay fall cut reach kill remain
good new first last long great little own other old right big high different small large next early young
important few public bad same able the of and to in a is that for it as was with on by at from""".split()

if __name__ == "__main__":
    n, out, lo, hi = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(7)
    with open(out, "w") as f:
        for i in range(n):
            words = rng.choices(WORDS, k=rng.randint(lo, hi))
            f.write(json.dumps({"id": f"s{i}", "text": " ".join(words).capitalize() + "."}) + "\n")
