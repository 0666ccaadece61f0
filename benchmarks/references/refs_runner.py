#!/usr/bin/env python
"""Run one Omikuji or napkinXC job in its own process; JSON result on the last stdout line.

Meant to be run from the repository root with the refs venv's interpreter
(``benchmarks/references/.refs/bin/python``, see ``make_refs_env.sh``), like
``pecos_runner.py`` for libpecos:

    benchmarks/references/.refs/bin/python -m benchmarks.references.refs_runner omikuji-parabel \\
        --data-dir /work/shared/data/debian-debtags --threads 2

Subcommands (each: fit, batch top-10 prediction of the test set, single-query latency,
peak RSS, model size on disk, P@1/3/5, nDCG@1/3/5, PSP@1/3/5; ``versions`` prints this
venv's package versions instead):

omikuji-parabel  Omikuji with its default hyper-parameters, which are Parabel's: 3 trees,
                 balanced 2-means (cluster.k=2), max depth 20, leaves of <= 100 labels,
                 hinge loss, C=1, weight pruning 0.1; beam 10.
omikuji-bonsai   Omikuji's Bonsai-like setting as published in its README: regular
                 (unbalanced) k-means, cluster.k=100, max depth 3; all else as above.
napkinxc-plt     napkinXC's PLT with its defaults: 1 tree, balanced hierarchical 2-means,
                 <= 100 labels per leaf, logistic loss (L2R_LR_DUAL), C=10, weight
                 pruning 0.1, exact (uniform-cost) top-k search.

API notes (they shape what is timed):

- Omikuji's Python binding trains only from a file in the Extreme Classification
  Repository text format. The file is written to a temp dir first (``write_seconds``, not
  part of ``fit_seconds``); ``fit_seconds`` is ``Model.train_on_data``, which parses that
  file and trains. Its prediction API takes one row at a time as ``(feature, value)``
  pairs: "batch" prediction is one call per test row from ``--threads`` Python threads
  (cffi releases the GIL), with rows converted to pairs outside the timed region.
- napkinXC's ``fit`` writes the model to its ``output`` directory, which is then loaded
  for prediction (``load_seconds``, not part of ``predict_seconds``).
- Single-query latency: median of ``--latency-queries`` one-row predict calls from Python,
  with prediction limited to one thread where the library allows it (as pecos_runner.py).

The metric helpers (:func:`label_propensity`, :func:`ranking_metrics`) need only numpy and
scipy, so other runners can import them.
"""
import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp


# ----------------------------------------------------------------------------- helpers
def peak_rss_mb():
    # Linux: ru_maxrss is in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_csr(path, normalize=False):
    M = sp.csr_matrix(sp.load_npz(path), dtype=np.float32)
    M.sum_duplicates()
    M.sort_indices()
    if normalize:
        norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        M = sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ M, dtype=np.float32)
        M.sort_indices()
    return M


def load_data(folder, normalize):
    X = load_csr(os.path.join(folder, "X.trn.npz"), normalize)
    Y = load_csr(os.path.join(folder, "Y.trn.npz"))
    Xt = load_csr(os.path.join(folder, "X.tst.npz"), normalize)
    Yt = load_csr(os.path.join(folder, "Y.tst.npz"))
    return X, Y, Xt, Yt


def dir_size_bytes(folder):
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def emit(result):
    sys.stdout.flush()
    print(json.dumps(result))
    sys.stdout.flush()


def package_versions(names):
    """Installed versions (package metadata, nothing imported) plus Python's; None if absent."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ----------------------------------------------------------------------------- metrics
def label_propensity(Y_train, A=0.55, B=1.5):
    """Jain, Prabhu and Varma (KDD 2016) propensities from the training label matrix.

    p_l = 1 / (1 + C (n_l + B)^-A), C = (ln N - 1) (B + 1)^A, N training rows, n_l the
    rows carrying label l.
    """
    Y_train = sp.csr_matrix(Y_train)
    N = Y_train.shape[0]
    n_l = np.bincount(Y_train.indices, minlength=Y_train.shape[1]).astype(np.float64)
    C = (np.log(N) - 1.0) * (B + 1.0) ** A
    return 1.0 / (1.0 + C * (n_l + B) ** (-A))


def ranking_metrics(Y_true, ranked, propensity, ks=(1, 3, 5)):
    """P@k, nDCG@k and normalised PSP@k of ranked label lists.

    ranked : int array (n, >= max(ks)), best label first, -1 where a row has fewer labels.
    Averages over all test rows (rows without labels count as 0 for P and nDCG). PSP@k is
    a ratio of sums: sum over rows of 1/p of the hits in the top k, over the same sum for
    the best possible top k (each row's true labels by decreasing 1/p).
    """
    Y_true = sp.csr_matrix(Y_true)
    Y_true.sort_indices()
    n = Y_true.shape[0]
    kmax = max(ks)
    ranked = np.asarray(ranked, dtype=np.int64)[:, :kmax]
    if ranked.shape[1] < kmax:
        ranked = np.hstack([ranked, -np.ones((n, kmax - ranked.shape[1]), dtype=np.int64)])
    # Hit test: is (row, label) a stored entry of Y_true? Binary search in sorted row*L+col.
    L = Y_true.shape[1]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(Y_true.indptr))
    keys = rows * L + Y_true.indices.astype(np.int64)
    query = np.arange(n, dtype=np.int64)[:, None] * L + np.maximum(ranked, 0)
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    hits = (keys[pos] == query) & (ranked >= 0) if len(keys) else np.zeros(ranked.shape, bool)

    inv = 1.0 / np.asarray(propensity, dtype=np.float64)
    n_true = np.diff(Y_true.indptr)
    # Best achievable PSP gain per row and cut-off: the row's inverse propensities, sorted.
    best_sorted = np.zeros((n, kmax))
    for i in range(n):
        w = np.sort(inv[Y_true.indices[Y_true.indptr[i]:Y_true.indptr[i + 1]]])[::-1][:kmax]
        best_sorted[i, : len(w)] = w
    gain = np.where(hits, inv[np.maximum(ranked, 0)], 0.0)
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))
    out = {}
    for k in ks:
        out[f"P@{k}"] = float(hits[:, :k].sum() / (k * n))
        dcg = hits[:, :k] @ discount[:k]
        ideal = np.concatenate([[0.0], np.cumsum(discount[:k])])[np.minimum(n_true, k)]
        out[f"nDCG@{k}"] = float(np.divide(dcg, ideal, out=np.zeros(n), where=ideal > 0).mean())
        best = best_sorted[:, :k].sum()
        out[f"PSP@{k}"] = float(gain[:, :k].sum() / best) if best > 0 else 0.0
    return out


def pad_ranked(lists, k):
    out = -np.ones((len(lists), k), dtype=np.int64)
    for i, labels in enumerate(lists):
        labels = list(labels)[:k]
        out[i, : len(labels)] = labels
    return out


# ----------------------------------------------------------------------------- Omikuji
def write_xmc_file(path, X, Y):
    """Extreme Classification Repository text format (0-based ids), as Omikuji reads it."""
    with open(path, "w") as f:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n")
        for i in range(X.shape[0]):
            labels = ",".join(map(str, Y.indices[Y.indptr[i]:Y.indptr[i + 1]]))
            lo, hi = X.indptr[i], X.indptr[i + 1]
            feats = " ".join(f"{j}:{v:.7g}" for j, v in zip(X.indices[lo:hi].tolist(),
                                                              X.data[lo:hi].tolist()))
            # A row without features is just its labels: Omikuji's parser rejects a
            # trailing space (enron and reuters21578-modapte have such rows).
            f.write(f"{labels} {feats}\n" if feats else f"{labels}\n")


def run_omikuji(a, bonsai):
    from concurrent.futures import ThreadPoolExecutor

    import omikuji

    X, Y, Xt, Yt = load_data(a.data_dir, a.normalize)
    propensity = label_propensity(Y)
    rss_after_load = peak_rss_mb()
    tmp = tempfile.mkdtemp(prefix="omikuji_")
    try:
        train_path = os.path.join(tmp, "train.txt")
        t0 = time.perf_counter()
        write_xmc_file(train_path, X, Y)
        write_seconds = time.perf_counter() - t0

        hp = omikuji.Model.default_hyper_param()
        if bonsai:
            hp.cluster_k = 100
            hp.cluster_balanced = False
            hp.max_depth = 3
        params = {name: getattr(hp, name) for name in dir(hp) if not name.startswith("_")}
        params = {k: (v if isinstance(v, (int, float, bool)) else str(v))
                  for k, v in params.items()}
        t0 = time.perf_counter()
        model = omikuji.Model.train_on_data(train_path, hp, n_threads=a.threads)
        fit_seconds = time.perf_counter() - t0
        os.remove(train_path)
        rss_after_fit = peak_rss_mb()

        model_dir = os.path.join(tmp, "model")
        os.makedirs(model_dir)
        model.save(model_dir)
        size = dir_size_bytes(model_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def pairs(i):
        lo, hi = Xt.indptr[i], Xt.indptr[i + 1]
        return list(zip(Xt.indices[lo:hi].tolist(), Xt.data[lo:hi].tolist()))

    queries = [pairs(i) for i in range(Xt.shape[0])]  # converted outside the timed region
    k = a.only_topk

    def predict_chunk(chunk):
        return [[label for label, _ in model.predict(q, beam_size=a.beam_size, top_k=k)]
                for q in chunk]

    model.init_prediction_thread_pool(a.threads)
    predict_chunk(queries[:20])  # warm-up
    n_chunks = 8 * a.threads
    bounds = np.linspace(0, len(queries), n_chunks + 1).astype(int)
    chunks = [queries[bounds[j]:bounds[j + 1]] for j in range(n_chunks)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=a.threads) as pool:
        parts = list(pool.map(predict_chunk, chunks))
    predict_seconds = time.perf_counter() - t0
    ranked = pad_ranked([r for part in parts for r in part], k)

    model.init_prediction_thread_pool(1)
    nq = min(a.latency_queries, len(queries))
    predict_chunk(queries[:20])
    lat = np.empty(nq)
    for i in range(nq):
        s = time.perf_counter()
        model.predict(queries[i], beam_size=a.beam_size, top_k=k)
        lat[i] = time.perf_counter() - s

    res = {
        "job": "omikuji-bonsai" if bonsai else "omikuji-parabel",
        "write_seconds": write_seconds,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "model_size_mb": size / 2**20,
        "n_trees": int(model.n_trees),
        "params": params,
        "peak_rss_mb_after_load": rss_after_load,
        "peak_rss_mb_after_fit": rss_after_fit,
    }
    return finish(res, a, X, Xt, Yt, ranked, propensity, lat)


# ----------------------------------------------------------------------------- napkinXC
def run_napkinxc_plt(a):
    from napkinxc.models import PLT

    X, Y, Xt, Yt = load_data(a.data_dir, a.normalize)
    propensity = label_propensity(Y)
    rss_after_load = peak_rss_mb()
    # napkinXC takes labels as lists of ints (a csr label matrix is read as label weights).
    labels = [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(Y.shape[0])]
    tmp = tempfile.mkdtemp(prefix="napkinxc_")
    try:
        out_dir = os.path.join(tmp, "model")
        model = PLT(out_dir, threads=a.threads, seed=a.seed)
        t0 = time.perf_counter()
        model.fit(X, labels)
        fit_seconds = time.perf_counter() - t0
        rss_after_fit = peak_rss_mb()
        size = dir_size_bytes(out_dir)

        t0 = time.perf_counter()
        model.load()
        load_seconds = time.perf_counter() - t0
        k = a.only_topk
        model.predict(Xt[:20], top_k=k)  # warm-up
        t0 = time.perf_counter()
        predicted = model.predict(Xt, top_k=k)
        predict_seconds = time.perf_counter() - t0
        ranked = pad_ranked(predicted, k)

        params = {key: (v if isinstance(v, (int, float, bool, str, type(None))) else str(v))
                  for key, v in model.get_params().items()}
        model.set_params(threads=1)  # latency: one thread, as pecos_runner.py
        nq = min(a.latency_queries, Xt.shape[0])
        rows = [Xt[i] for i in range(nq)]  # sliced outside the timed region
        for r in rows[:20]:
            model.predict(r, top_k=k)
        lat = np.empty(nq)
        for i, r in enumerate(rows):
            s = time.perf_counter()
            model.predict(r, top_k=k)
            lat[i] = time.perf_counter() - s
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    res = {
        "job": "napkinxc-plt",
        "fit_seconds": fit_seconds,
        "load_seconds": load_seconds,
        "predict_seconds": predict_seconds,
        "model_size_mb": size / 2**20,
        "params": params,
        "peak_rss_mb_after_load": rss_after_load,
        "peak_rss_mb_after_fit": rss_after_fit,
    }
    return finish(res, a, X, Xt, Yt, ranked, propensity, lat)


def finish(res, a, X, Xt, Yt, ranked, propensity, lat):
    res.update({
        "data_dir": a.data_dir,
        "normalize": bool(a.normalize),
        "threads": a.threads,
        "n_train": int(X.shape[0]),
        "n_test": int(Xt.shape[0]),
        "n_features": int(X.shape[1]),
        "n_labels": int(Yt.shape[1]),
        "latency_ms_median": float(np.median(lat) * 1e3),
        "latency_ms_p90": float(np.percentile(lat, 90) * 1e3),
        "latency_queries": len(lat),
        "peak_rss_mb": peak_rss_mb(),
    })
    res.update(ranking_metrics(Yt, ranked, propensity))
    emit(res)


# ----------------------------------------------------------------------------- CLI
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("omikuji-parabel", "omikuji-bonsai", "napkinxc-plt"):
        q = sub.add_parser(name)
        q.add_argument("--data-dir", required=True,
                       help="folder with X.trn.npz, Y.trn.npz, X.tst.npz, Y.tst.npz")
        q.add_argument("--normalize", action="store_true", help="L2-normalise rows of X")
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--beam-size", type=int, default=10, help="(Omikuji)")
        q.add_argument("--only-topk", type=int, default=10)
        q.add_argument("--latency-queries", type=int, default=300)
    sub.add_parser("versions", help="print the versions of this venv's packages as JSON")
    a = p.parse_args(argv)
    if a.cmd == "versions":
        emit(package_versions(["omikuji", "napkinxc", "numpy", "scipy"]))
    elif a.cmd == "napkinxc-plt":
        run_napkinxc_plt(a)
    else:
        run_omikuji(a, bonsai=a.cmd == "omikuji-bonsai")


if __name__ == "__main__":
    main()
