"""Calibrated top-k probabilities: raw path scores vs Platt (sigmoid) vs isotonic.

    python -m benchmarks.bench_calibration [--data debian-debtags ...] [--cv 3] [--threads 2]

For each dataset (default: debian-debtags and debian-deps, TF-IDF rows already
L2-normalised) fits ``CalibratedXMRClassifier(XRLinearClassifier(random_state=0,
n_jobs=threads), method=m, cv=3, random_state=0)`` on the training set for m in
{sigmoid, isotonic} (cv + 1 ranker fits each: one per fold, then the refit on all
rows), and evaluates on the test set, over all top-10 (row, label) pairs:

- ECE: expected calibration error, 15 equal-width bins
  (``skxmr.metrics.expected_calibration_error``);
- Brier score: mean squared difference between probability and relevance;
- P@1 and P@5, ranking by the probabilities (ties by label index).

"raw" is the ranker's own l3-hinge path score (in [0, 1]) read as a probability;
it is the refitted ranker of the sigmoid model, i.e. the plain XRLinearClassifier.
Prints a markdown table.
"""

import time
import warnings

import numpy as np

from benchmarks._common import (
    add_data_argument,
    add_threads_argument,
    data_folder,
    load_split,
    parser_for,
    topk_to_csr,
)
from skxmr import CalibratedXMRClassifier, XRLinearClassifier
from skxmr.metrics import expected_calibration_error, precision_at_k

DEFAULT_DATA = ["debian-debtags", "debian-deps"]


def brier(Y, proba):
    """Mean squared error of the stored probabilities against relevance."""
    rows = np.repeat(np.arange(proba.shape[0]), np.diff(proba.indptr))
    outcome = np.asarray(Y.tocsr()[rows, proba.indices]).ravel() > 0
    return float(np.mean((proba.data.astype(np.float64) - outcome) ** 2))


def run(folder, cv, threads):
    name = data_folder(folder).name
    X, Y, Xt, Yt = load_split(folder)
    rows = []
    for method in ("sigmoid", "isotonic"):
        model = CalibratedXMRClassifier(
            XRLinearClassifier(random_state=0, n_jobs=threads), method=method, cv=cv,
            random_state=0)
        start = time.perf_counter()
        with warnings.catch_warnings():  # labels without rows in a fold
            warnings.simplefilter("ignore", UserWarning)
            model.fit(X, Y)
        seconds = time.perf_counter() - start
        labels, proba = model.predict_topk(Xt, k=10)
        if method == "sigmoid":
            raw_labels, raw_scores = model.estimator_.predict_topk(Xt, k=10)
            assert np.array_equal(raw_labels, labels)  # the ranking is kept
            rows.append(_row(name, "raw l3-hinge path score", Yt, raw_labels,
                             raw_scores, None))
            rows[-1]["pairs"] = None
        rows.append(_row(name, method, Yt, labels, proba, seconds))
        rows[-1]["pairs"] = model.n_calibration_pairs_
        assert model.score(Xt, Yt) == rows[0]["p1"]  # P@1 of the ranker
        print(f"# {name} {method}: fit {seconds:.1f} s, calibrator "
              f"{vars(model.calibrator_) if method == 'sigmoid' else 'isotonic'}",
              flush=True)
    return rows


def _row(name, scores_name, Yt, labels, scores, seconds):
    proba = topk_to_csr(labels, scores, Yt.shape[1])
    return {
        "data": name,
        "scores": scores_name,
        "ece": expected_calibration_error(Yt, proba, n_bins=15),
        "brier": brier(Yt, proba),
        # ranked by the probabilities (ties by label index, as skxmr.metrics does)
        "p1": precision_at_k(Yt, proba, k=1),
        "p5": precision_at_k(Yt, proba, k=5),
        "seconds": seconds,
    }


def main():
    parser = parser_for(__doc__)
    add_data_argument(parser, DEFAULT_DATA)
    parser.add_argument("--cv", type=int, default=3)
    add_threads_argument(parser)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for folder in args.data:
        rows.extend(run(folder, args.cv, args.threads))
    print()
    print("| dataset | probabilities | ECE (15 bins) | Brier | P@1 | P@5 | "
          "calibration pairs | fit (s) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        pairs = "-" if r["pairs"] is None else f"{r['pairs']:,}"
        print(f"| {r['data']} | {r['scores']} | {r['ece']:.4f} | {r['brier']:.4f} | "
              f"{100 * r['p1']:.2f} | {100 * r['p5']:.2f} | {pairs} | "
              f"{seconds} |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
