"""add_labels against a full refit (issue 25).

Protocol: hold out 10% of the labels (at random among those with >= 2 training
rows), fit without them, add them with ``add_labels(X_train, Y_train)``, and
compare with a fit that knew them from the start: time (ratio to the full fit,
measured in the same run, interleaved), P@1/P@5 of the new labels on the test
rows that have them (ranking among the new labels only) and of the old labels.

    python -m benchmarks.bench_add_labels --data debian-debtags --threads 1
    python -m benchmarks.bench_add_labels --data synthetic
    python -m benchmarks.bench_add_labels --data debian-debtags --n-estimators 3
    python -m benchmarks.bench_add_labels --data debian-deps --rounds 3

``--validate`` measures on a split of the training rows (80/20) instead of the
test split: design choices are made there. ``--rounds R`` adds the held-out
labels in R successive calls (``refresh="none"``) and, after each, compares
the model with a refit on the labels known so far.

The model fitted without the held-out labels is fitted once and copied for each
``refresh`` (``add_labels`` changes the model it is called on).
"""

import argparse
import copy
import json
import time

import numpy as np
import scipy.sparse as sp

from benchmarks._common import load_split


def _restricted_pk(model, X, Y, columns, ks=(1, 5)):
    """P@k over the test rows with a label in ``columns``, ranking only those."""
    from skxmr.metrics import precision_at_k

    labels, scores = model.predict_topk(X, k=50)
    keep = np.isin(labels, columns)
    order = np.argsort(~keep, axis=1, kind="stable")
    labels = np.where(np.take_along_axis(keep, order, 1),
                      np.take_along_axis(labels, order, 1), -1)
    scores = np.where(labels >= 0, np.take_along_axis(scores, order, 1), 0)
    rows = np.flatnonzero(np.asarray(Y[:, columns].sum(axis=1)).ravel() > 0)
    return [round(100 * precision_at_k(Y[rows], (labels[rows], scores[rows]), k=k), 2)
            for k in ks]


def _rounds(base, params, X_tr, Y_tr, X_te, Y_te, n_old, n_rounds):
    """Add the held-out labels in ``n_rounds`` calls; after each, the added
    labels' and the old labels' P@k against a refit on the labels so far."""
    from skxmr import XRLinearClassifier

    model = copy.deepcopy(base)
    cuts = np.linspace(n_old, Y_tr.shape[1], n_rounds + 1).round().astype(int)
    rows, added_s = [], 0.0
    for r, known in enumerate(cuts[1:], start=1):
        t = time.perf_counter()
        model.add_labels(X_tr, Y_tr[:, :known])
        added_s += time.perf_counter() - t
        t = time.perf_counter()
        refit = XRLinearClassifier(**params).fit(X_tr, Y_tr[:, :known])
        refit_s = time.perf_counter() - t
        added, old = np.arange(n_old, known), np.arange(n_old)
        Y_r = sp.csr_matrix(Y_te)[:, :known]
        rows.append({
            "round": r, "labels": int(known), "added": int(known - n_old),
            "add_s_total": round(added_s, 3), "refit_s": round(refit_s, 3),
            "leaves": int(model.tree_.level_sizes[-2]),
            "refit_leaves": int(refit.tree_.level_sizes[-2]),
            "added_P@1,5": _restricted_pk(model, X_te, Y_r, added),
            "refit_added_P@1,5": _restricted_pk(refit, X_te, Y_r, added),
            "old_P@1,5": _restricted_pk(model, X_te, Y_r, old),
            "refit_old_P@1,5": _restricted_pk(refit, X_te, Y_r, old)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="debian-debtags")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-estimators", type=int, default=1,
                        help="trees of XRLinearClassifier (an ensemble when > 1)")
    parser.add_argument("--validate", action="store_true",
                        help="measure on a validation split of the training rows "
                             "(80/20, seed 1) instead of the test split")
    parser.add_argument("--rounds", type=int, default=1,
                        help="add the held-out labels in this many calls, each "
                             "compared with a refit")
    args = parser.parse_args(argv)
    from skxmr import XRLinearClassifier
    from skxmr.datasets import make_xmc_classification

    if args.data == "synthetic":
        X, Y = make_xmc_classification(12000, 5000, 1000, random_state=0)
        X, Y = sp.csr_matrix(X), sp.csr_matrix(Y)
        X_tr, Y_tr, X_te, Y_te = X[:10000], Y[:10000], X[10000:], Y[10000:]
    else:
        X_tr, Y_tr, X_te, Y_te = load_split(args.data)
    if args.validate:  # the split that design choices were made on
        r = np.random.RandomState(1).permutation(X_tr.shape[0])
        cut = int(0.8 * X_tr.shape[0])
        X_tr, Y_tr, X_te, Y_te = (X_tr[r[:cut]], sp.csr_matrix(Y_tr)[r[:cut]],
                                  X_tr[r[cut:]], sp.csr_matrix(Y_tr)[r[cut:]])
    rng = np.random.RandomState(args.seed)
    counts = np.asarray((Y_tr > 0).sum(axis=0)).ravel()
    eligible = np.flatnonzero(counts >= 2)
    new = np.sort(rng.choice(eligible, int(round(0.1 * Y_tr.shape[1])), replace=False))
    old = np.setdiff1d(np.arange(Y_tr.shape[1]), new)
    perm = np.concatenate([old, new])
    Y_tr, Y_te = sp.csr_matrix(Y_tr)[:, perm], sp.csr_matrix(Y_te)[:, perm]
    n_old = old.size
    new_cols, old_cols = np.arange(n_old, Y_tr.shape[1]), np.arange(n_old)
    params = dict(random_state=0, n_jobs=args.threads, n_estimators=args.n_estimators)
    out = {"data": args.data, "validate": args.validate,
           "n_estimators": args.n_estimators,
           "n_labels": int(Y_tr.shape[1]), "n_new": int(new.size)}
    t = time.perf_counter()
    full = XRLinearClassifier(**params).fit(X_tr, Y_tr)
    out["full_fit_s"] = time.perf_counter() - t
    out["full"] = {"new_P@1,5": _restricted_pk(full, X_te, Y_te, new_cols),
                   "old_P@1,5": _restricted_pk(full, X_te, Y_te, old_cols)}
    t = time.perf_counter()
    base = XRLinearClassifier(**params).fit(X_tr, Y_tr[:, :n_old])
    out["base_fit_s"] = time.perf_counter() - t
    out["base_old_P@1,5"] = _restricted_pk(base, X_te, Y_te, old_cols)
    if args.rounds > 1:
        out["rounds"] = _rounds(base, params, X_tr, Y_tr, X_te, Y_te, n_old, args.rounds)
        print(json.dumps(out, indent=1))
        return
    for refresh in ("none", "path"):
        model = copy.deepcopy(base)
        t = time.perf_counter()
        model.add_labels(X_tr, Y_tr, refresh=refresh)
        seconds = time.perf_counter() - t
        out[f"add_{refresh}"] = {
            "seconds": round(seconds, 3),
            "cost_vs_full_fit": round(seconds / out["full_fit_s"], 3),
            "new_P@1,5": _restricted_pk(model, X_te, Y_te, new_cols),
            "old_P@1,5": _restricted_pk(model, X_te, Y_te, old_cols)}
    for key in ("full_fit_s", "base_fit_s"):
        out[key] = round(out[key], 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
