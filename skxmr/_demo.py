"""The README's main job: train on the bundled dataset, print P@1/3/5 and examples.

PLACEHOLDER MODEL: until ``XRLinearClassifier`` lands, the demo ranks labels with a
label-centroid baseline (each label is the PIFA vector of its training documents:
the normalised sum of their TF-IDF vectors, each document's labels weighted by
1/sqrt(number of labels); a document's score for a label is the cosine
between the two). It is a real, honest baseline, not XR-Linear.
"""

import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr._embedding import pifa
from skxmr.datasets import load_debian_debtags
from skxmr.metrics import topk_report

MODEL_NAME = "label-centroid baseline (PLACEHOLDER until XRLinearClassifier lands)"


def _centroid_scores(X_train, Y_train, X_test):
    centroids = pifa(X_train, Y_train)  # (n_labels, n_features), sparse, unit rows
    return (X_test @ centroids.T).toarray()


def run_demo(n_examples=3, out=print):
    """Train and evaluate on the bundled Debian debtags data; return the metrics."""
    train = load_debian_debtags(subset="train")
    test = load_debian_debtags(subset="test")
    out(f"Data: bundled Debian debtags, {len(train.data)} train / {len(test.data)} "
        f"test packages, {len(train.target_names)} labels")
    out(f"Model: {MODEL_NAME}")

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2),
                                 max_features=200_000, dtype=np.float32)
    X_train = vectorizer.fit_transform(train.data)
    X_test = vectorizer.transform(test.data)
    binarizer = MultiLabelBinarizer(classes=list(train.target_names),
                                    sparse_output=True)
    Y_train = binarizer.fit_transform(train.target).astype(np.float32)
    known = set(train.target_names)
    Y_test = binarizer.transform([[t for t in tags if t in known] for tags in test.target])
    scores = _centroid_scores(X_train, Y_train, X_test)
    elapsed = time.perf_counter() - start

    popularity = np.broadcast_to(np.asarray(Y_train.sum(axis=0)), scores.shape)
    report = topk_report(Y_test, scores, ks=(1, 3, 5))
    baseline = topk_report(Y_test, np.ascontiguousarray(popularity), ks=(1, 3, 5))
    out(f"Fit + predict: {elapsed:.1f} s\n")
    out("                   P@1     P@3     P@5")
    for name, rep in (("model", report), ("popularity", baseline)):
        out(f"{name:>12}  " + "  ".join(f"{100 * rep[f'P@{k}']:6.2f}" for k in (1, 3, 5)))

    out("\nExample predictions (top 5; * = correct):")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    classes = binarizer.classes_
    for i in range(min(n_examples, len(test.data))):
        truth = set(test.target[i])
        shown = ", ".join(
            f"{classes[j]}{'*' if classes[j] in truth else ''}" for j in top[i]
        )
        out(f"  {test.ids[i]}: {shown}")
    return report
