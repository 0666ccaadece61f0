"""Bit-for-bit equivalence of two skxmr source trees (public API only).

    python -m benchmarks.check_equivalence --before /tmp/skxmr_before --after . \\
        [--skip debian-deps] [--no-dask-on debian-deps] [--out /tmp/skxmr_equivalence]

``--before`` and ``--after`` are checkouts of skxmr with built kernels (the ``.so``
files in ``skxmr/_cython/``). Each tree runs in its own subprocess with
``PYTHONPATH=DIR`` (working directory a temporary folder, so no other checkout's
``skxmr`` can be picked up; the worker checks ``skxmr.__file__`` and stops if it is
not under DIR). Same interpreter for both, so numpy, scipy, scikit-learn and dask are
the same.

Datasets (``--skip`` any of them):

- ``debian-debtags``: the bundled set (``skxmr.datasets.load_debian_debtags``), train
  split, TF-IDF from ``TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2),
  max_features=200_000, dtype=float32)`` fitted on the training texts, labels as a CSR
  indicator (``MultiLabelBinarizer`` of the training label sets); test rows: the test
  split;
- ``debian-deps``: ``X.trn.npz``/``Y.trn.npz``/``X.tst.npz`` of shared/data/debian-deps
  (TF-IDF rows, L2-normalised already), as every benchmark loads it;
- ``synthetic``: ``make_xmc_classification(6000, 20000, 3000, random_state=0)``, the last
  1,000 rows held out.

Settings, each ``XRLinearClassifier(random_state=0)`` with every other parameter at its
default: ``n_jobs=1``, ``n_jobs=2``, ``dask`` (``n_jobs=None`` inside
``joblib.parallel_config(backend="dask")`` on a ``LocalCluster`` of 2 worker processes
with 1 thread each; ``--no-dask-on`` leaves it out for the datasets named), and on
debian-debtags also ``tfn+man`` (``negative_sampling="tfn+man"``, ``n_jobs=2``).

Each fit dumps to ``OUT/<tree>/<dataset>__<setting>.npz``: ``model.tree_.level_ptr``,
``child_ptr``, ``label_perm``, every ``coef_`` level (``data``, ``indices``, ``indptr``,
``shape``) and ``predict_topk`` labels and scores of the test rows. Before and after are
then compared exactly (``np.array_equal``; dtypes are compared too and reported
separately) and a table is printed: dataset, setting, tree equal, weights equal,
predictions equal, dtypes equal, and whether the settings agree with each other
within the after tree (``n_jobs=1`` = ``n_jobs=2`` = ``dask``). Exit status 1 if
anything differs.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATASETS = ("debian-debtags", "debian-deps", "synthetic")
SETTINGS = ("n_jobs=1", "n_jobs=2", "dask")
EXTRA = {"debian-debtags": ("tfn+man",)}
TREE_KEYS = ("level_ptr", "child_ptr", "label_perm")


def _shared_data():
    if os.environ.get("SKXMR_BENCH_DATA"):
        return Path(os.environ["SKXMR_BENCH_DATA"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path("/work/shared/data")


# ----------------------------------------------------------------------------- worker
# The worker runs with PYTHONPATH=<tree> and imports nothing from the benchmarks package
# (that would come from this checkout, not from <tree>).
def load_dataset(name):
    """``X, Y, X_test`` of a dataset (Y a CSR indicator)."""
    import scipy.sparse as sp

    if name == "debian-debtags":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import MultiLabelBinarizer

        from skxmr.datasets import load_debian_debtags

        texts, labels = load_debian_debtags(subset="train", return_X_y=True)
        test_texts, _ = load_debian_debtags(subset="test", return_X_y=True)
        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2),
                                     max_features=200_000, dtype=np.float32)
        X = vectorizer.fit_transform(texts)
        Y = MultiLabelBinarizer(sparse_output=True).fit_transform(labels)
        return X.tocsr(), sp.csr_matrix(Y, dtype=np.float32), vectorizer.transform(
            test_texts).tocsr()
    if name == "debian-deps":
        folder = _shared_data() / "debian-deps"
        return tuple(sp.load_npz(folder / f"{part}.npz").tocsr()
                     for part in ("X.trn", "Y.trn", "X.tst"))
    if name == "synthetic":
        from skxmr.datasets import make_xmc_classification

        X, Y = make_xmc_classification(6000, 20000, 3000, random_state=0)
        return X[:5000], Y[:5000], X[5000:]
    raise ValueError(f"unknown dataset {name!r}")


def fit_one(X, Y, setting, client):
    import joblib

    from skxmr import XRLinearClassifier

    if setting == "dask":
        if client is None:
            raise RuntimeError("dask setting without a cluster")
        with joblib.parallel_config(backend="dask"):
            return XRLinearClassifier(n_jobs=None, random_state=0).fit(X, Y)
    if setting == "tfn+man":
        return XRLinearClassifier(negative_sampling="tfn+man", n_jobs=2,
                                  random_state=0).fit(X, Y)
    n_jobs = int(setting.split("=")[1])
    return XRLinearClassifier(n_jobs=n_jobs, random_state=0).fit(X, Y)


def dump(model, Xt, path):
    arrays = {}
    for key in TREE_KEYS:
        arrays[f"tree.{key}"] = np.asarray(getattr(model.tree_, key))
    for level, W in enumerate(model.coef_):
        W = W.tocsc() if W.format not in ("csr", "csc") else W
        arrays[f"coef{level}.format"] = np.array(W.format)
        for part in ("data", "indices", "indptr"):
            arrays[f"coef{level}.{part}"] = getattr(W, part)
        arrays[f"coef{level}.shape"] = np.asarray(W.shape, dtype=np.int64)
    arrays["n_coef_levels"] = np.int64(len(model.coef_))
    labels, scores = model.predict_topk(Xt)
    arrays["pred.labels"], arrays["pred.scores"] = np.asarray(labels), np.asarray(scores)
    np.savez(path, **arrays)


def worker(tree_dir, dataset, settings, out_dir):
    import skxmr

    where = Path(skxmr.__file__).resolve()
    if Path(tree_dir).resolve() not in where.parents:
        raise SystemExit(f"imported skxmr from {where}, not from {tree_dir}")
    start = time.perf_counter()
    X, Y, Xt = load_dataset(dataset)
    times = {"load": time.perf_counter() - start}
    client = cluster = None
    if "dask" in settings:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    try:
        for setting in settings:
            start = time.perf_counter()
            model = fit_one(X, Y, setting, client)
            times[setting] = time.perf_counter() - start
            dump(model, Xt, Path(out_dir) / f"{dataset}__{setting}.npz")
    finally:
        if client is not None:
            client.close()
            cluster.close()
    print(json.dumps({"skxmr": str(where), "version": skxmr.__version__,
                      "seconds": times}))


# ----------------------------------------------------------------------------- compare
def _arrays_equal(a, b, keys):
    values = all(k in a and k in b and a[k].shape == b[k].shape
                 and np.array_equal(a[k], b[k]) for k in keys)
    dtypes = all(k in a and k in b and a[k].dtype == b[k].dtype for k in keys)
    return values, dtypes


def compare(path_a, path_b):
    """(tree, weights, predictions, dtypes) equal between two dumps."""
    with np.load(path_a) as fa, np.load(path_b) as fb:
        a, b = dict(fa), dict(fb)
    tree, tree_dt = _arrays_equal(a, b, [f"tree.{k}" for k in TREE_KEYS])
    coef_keys = sorted({k for k in (*a, *b) if k.startswith("coef")})
    weights = int(a["n_coef_levels"]) == int(b["n_coef_levels"])
    w_values, w_dt = _arrays_equal(a, b, coef_keys)
    pred, pred_dt = _arrays_equal(a, b, ["pred.labels", "pred.scores"])
    return tree, weights and w_values, pred, tree_dt and w_dt and pred_dt


def run_tree(label, tree_dir, dataset, settings, out_dir, timeout):
    out = Path(out_dir) / label
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(tree_dir).resolve())}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree_dir),
           dataset, str(out), *settings]
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{label} on {dataset} failed:\n{proc.stderr[-3000:]}")
    result = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    print(f"# {label}: {dataset}: skxmr {result['version']} from {result['skxmr']}; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items()),
          flush=True)
    return out


def yes(flag):
    return "yes" if flag else "**NO**"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="skxmr checkout with built kernels")
    parser.add_argument("--after", help="skxmr checkout with built kernels")
    parser.add_argument("--skip", nargs="+", default=[], choices=DATASETS,
                        help="datasets to leave out")
    parser.add_argument("--no-dask-on", nargs="+", default=[], choices=DATASETS,
                        metavar="DATASET", help="datasets without the LocalCluster fit")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(),
                                                      "skxmr_equivalence"),
                        help="folder for the .npz dumps (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds per tree and dataset (default 1800)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tree_dir, dataset, out_dir, *settings = args.worker
        worker(tree_dir, dataset, settings, out_dir)
        return
    if not (args.before and args.after):
        parser.error("--before and --after are required")
    # Absolute: the workers run in a temporary working directory.
    args.before, args.after = (str(Path(d).resolve()) for d in (args.before, args.after))
    start = time.perf_counter()
    rows, ok = [], True
    for dataset in (d for d in DATASETS if d not in args.skip):
        settings = [s for s in SETTINGS
                    if not (s == "dask" and dataset in args.no_dask_on)]
        settings += list(EXTRA.get(dataset, ()))
        dirs = {label: run_tree(label, tree, dataset, settings, args.out, args.timeout)
                for label, tree in (("before", args.before), ("after", args.after))}
        base = dirs["after"] / f"{dataset}__n_jobs=1.npz"
        for setting in settings:
            name = f"{dataset}__{setting}.npz"
            tree, weights, pred, dtypes = compare(dirs["before"] / name,
                                                  dirs["after"] / name)
            if setting in SETTINGS and setting != "n_jobs=1":
                agree = yes(all(compare(base, dirs["after"] / name)[:3]))
            else:
                agree = "-"
            ok = ok and tree and weights and pred and dtypes
            rows.append(f"| {dataset} | {setting} | {yes(tree)} | {yes(weights)} | "
                        f"{yes(pred)} | {yes(dtypes)} | {agree} |")
    print("\n| dataset | setting | tree equal | weights equal | predictions equal | "
          "dtypes equal | after: same as n_jobs=1 |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    skipped = [*(f"{d} (skipped)" for d in args.skip),
               *(f"dask on {d} (skipped)" for d in args.no_dask_on if d not in args.skip)]
    if skipped:
        print("\nnot run: " + ", ".join(skipped))
    print(f"\nbefore={args.before} after={args.after}; dumps in {args.out}; "
          f"{time.perf_counter() - start:.0f} s; "
          f"{'ALL EQUAL' if ok else 'DIFFERENCES FOUND'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
