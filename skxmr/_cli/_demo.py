"""The README's main job: train on the bundled dataset, print P@1/3/5 and examples.

The model is XR-Linear: a scikit-learn pipeline of a TF-IDF vectorizer (word uni-
and bigrams) and :class:`~skxmr.XRLinearClassifier` (labels clustered into a tree
from their PIFA vectors, one linear squared-hinge model per tree node, beam search
down the tree at prediction time), fitted on the Debian package descriptions of
the bundled debtags train split with their tags as label lists. It is evaluated on
the test split with :func:`~skxmr.metrics.topk_report` and printed next to the
popularity baseline (every package gets the most frequent training tags).
"""

import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline

from skxmr._targets import label_sets_to_indicator
from skxmr._xrlinear import XRLinearClassifier
from skxmr.datasets import load_debian_debtags
from skxmr.metrics import topk_report


def build_model():
    """The demo's pipeline: TF-IDF + XRLinearClassifier (top 5 labels per row)."""
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2),
                                 max_features=200_000, dtype=np.float32)
    return make_pipeline(vectorizer, XRLinearClassifier(top_k=5, random_state=0))


def run_demo(n_examples=3, out=print):
    """Train and evaluate on the bundled Debian debtags data; return the metrics."""
    train = load_debian_debtags(subset="train")
    test = load_debian_debtags(subset="test")
    out(f"Data: bundled Debian debtags, {len(train.data)} train / {len(test.data)} "
        f"test packages, {len(train.target_names)} labels")

    start = time.perf_counter()
    model = build_model().fit(train.data, train.target)  # tags: lists of names
    fit_time = time.perf_counter() - start
    classifier = model[-1]
    sizes = " -> ".join(str(size) for size in classifier.tree_.level_sizes)
    out(f"Model: TF-IDF (word 1-2 grams) + XRLinearClassifier (label tree: {sizes} "
        f"nodes per level; one linear model per node; beam {classifier.beam_size})")

    start = time.perf_counter()
    scores = model.decision_function(test.data)  # CSR: the top-5 scores of each row
    predict_time = time.perf_counter() - start
    classes = classifier.classes_
    Y_test = label_sets_to_indicator(test.target, classes)  # unseen tags dropped
    Y_train = label_sets_to_indicator(train.target, classes)
    popularity = np.broadcast_to(np.asarray(Y_train.sum(axis=0)), Y_test.shape)
    report = topk_report(Y_test, scores, ks=(1, 3, 5))
    baseline = topk_report(Y_test, np.ascontiguousarray(popularity), ks=(1, 3, 5))
    out(f"Fit: {fit_time:.1f} s; predict {len(test.data)} packages: "
        f"{predict_time:.1f} s\n")
    out("                   P@1     P@3     P@5")
    for name, rep in (("XR-Linear", report), ("popularity", baseline)):
        out(f"{name:>12}  " + "  ".join(f"{100 * rep[f'P@{k}']:6.2f}" for k in (1, 3, 5)))

    out("\nExample predictions (top 5; * = correct):")
    n_shown = min(n_examples, len(test.data))
    predicted = model.predict(test.data[:n_shown]) if n_shown > 0 else []
    for i, labels in enumerate(predicted):
        truth = set(test.target[i])
        shown = ", ".join(f"{label}{'*' if label in truth else ''}" for label in labels)
        out(f"  {test.ids[i]}: {shown}")
    return report
