#!/usr/bin/env python3
"""A reference point for the learned tier: whole-text logistic regression over hashed word
1-2-grams and/or character 3-5-grams (scikit-learn), scored leave-one-source-out on the same
corpus and pooled the same way as `learned eval` (eval/generalise.sh). It shows what the
standard linear text classifier does on these sources; nothing from it is shipped.

Usage: pip install scikit-learn==1.9.1 && python3 eval/datasets.py && python3 eval/baseline.py
"""
import json
import pathlib

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import normalize

CORPUS = pathlib.Path(__file__).parent / "build" / "corpus.jsonl"


def evaluation_only(source):
    return source.startswith("demarc-heldout") or source == "demarc-tests"


def features(texts, words, chars):
    parts = []
    if words:
        parts.append(HashingVectorizer(n_features=2**20, ngram_range=(1, 2), alternate_sign=False,
                                       norm=None, token_pattern=r"(?u)\b\w+\b").transform(texts))
    if chars:
        parts.append(HashingVectorizer(n_features=2**20, analyzer="char_wb", ngram_range=(3, 5),
                                       alternate_sign=False, norm=None).transform(texts))
    x = hstack(parts).tocsr()
    x.data = np.log1p(x.data)
    return normalize(x)


def operating_points(y, s):
    benign = np.sort(s[~y])[::-1]
    row = [f"{roc_auc_score(y, s):.3f}"]
    for fpr in (0.02, 0.05, 0.10):
        bar = benign[int(len(benign) * fpr)]
        row.append(f"{np.mean(s[y] > bar):.3f}")
    return row


def main():
    records = [json.loads(line) for line in CORPUS.open()]
    records = [r for r in records if not evaluation_only(r["source"])]
    texts = [r["text"].lower() for r in records]
    y = np.array([r["label"] != "benign" for r in records])
    source = np.array([r["source"] for r in records])
    authored = np.array([s.startswith("demarc-train") for s in source])
    print("| features | pooled | AUC | TPR at FPR 0.02 | 0.05 | 0.10 |\n|---|---|---:|---:|---:|---:|")
    for name, words, chars in (("word 1-2-grams", True, False), ("char 3-5-grams", False, True),
                               ("both", True, True)):
        x = features(texts, words, chars)
        scores = np.zeros(len(records))
        for held in sorted(set(source)):
            model = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
            model.fit(x[source != held], y[source != held])
            scores[source == held] = model.decision_function(x[source == held])
        for pooled, sel in (("authored sets", authored), ("all sources", np.ones(len(y), bool))):
            print("| " + " | ".join([name, pooled] + operating_points(y[sel], scores[sel])) + " |")


if __name__ == "__main__":
    main()
