#!/usr/bin/env python
"""Run one libpecos job in its own process and print a JSON result (last stdout line).

Meant to be run from the repository root with the pecos venv's interpreter
(``benchmarks/references/.pecos/bin/python -m benchmarks.references.pecos_runner``, see
``make_pecos_env.sh``) so that a benchmark harness living in another venv can call
libpecos through ``subprocess`` and parse ``json.loads(stdout.splitlines()[-1])``.

Subcommands
-----------
index    Hierarchical k-means label indexing of a label-feature matrix Z (L x d),
         timed alone; the cluster chain is written to an ``.npz``.
xlinear  PIFA + hierarchical k-means + XR-Linear training, batch prediction,
         single-query latency, model size and P@1/3/5 on a data folder holding
         ``X.trn.npz, Y.trn.npz, X.tst.npz, Y.tst.npz`` (scipy sparse npz);
         ``--save-dir`` keeps the saved model.
load     Memory of a saved model in this (fresh) process: resident memory before
         and after ``XLinearModel.load`` (Python-side or ``--predict-only 1``) and
         after one batch prediction of the test split, the nbytes of the loaded
         matrices (Python-side only), the load time and P@1/3/5.
versions Print the installed libpecos, numpy, scipy and torch versions (JSON).

Cluster-chain npz layout (written by ``index``; read back with :func:`load_chain`,
which needs only numpy/scipy)::

    n_levels            int, number of matrices in the chain
    C{i}_indptr, C{i}_indices, C{i}_data, C{i}_shape
                        level i matrix in scipy CSC format (PECOS's own format)
    parent{i}           int64 (C{i}.shape[0],): column (parent) index of each row (child)
    leaf_of_label       int64 (L,): leaf cluster of each label (= parent{n_levels-1})

PECOS's chain is root first: C0 has shape (n_1, 1) (root -> its n_1 children), and
C{i} has shape (n_{i+1}, n_i): rows are the nodes of level i+1 (children), columns
the nodes of level i (parents), one 1.0 per row. The last matrix is (L, n_leaves),
mapping labels to leaf clusters. Consecutive matrices satisfy
``C[i].shape[0] == C[i+1].shape[1]``.
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import scipy.sparse as sp

# Shared with the other reference runners (importable from every venv: numpy/scipy only).
from benchmarks._common import current_rss_mb, row_latencies, timed
from benchmarks.references.refs_runner import (
    dir_size_bytes,
    emit,
    load_csr,
    package_versions,
    peak_rss_mb,
)


# ----------------------------------------------------------------------------- helpers
def save_chain(path, chain):
    """Save a PECOS ClusterChain (list of CSC matrices) as a flat npz."""
    out = {"n_levels": np.int64(len(chain))}
    for i, C in enumerate(chain):
        C = sp.csc_matrix(C)
        out[f"C{i}_indptr"] = C.indptr
        out[f"C{i}_indices"] = C.indices
        out[f"C{i}_data"] = C.data
        out[f"C{i}_shape"] = np.asarray(C.shape, dtype=np.int64)
        out[f"parent{i}"] = parent_of_rows(C)
    out["leaf_of_label"] = parent_of_rows(chain[-1])
    np.savez(path, **out)


def parent_of_rows(C):
    """For a child x parent assignment matrix, the parent column of each row."""
    R = sp.csr_matrix(C)
    counts = np.diff(R.indptr)
    if not np.all(counts == 1):
        raise ValueError(f"chain matrix rows have {counts.min()}..{counts.max()} parents, expected 1")
    return R.indices.astype(np.int64)


def load_chain(path):
    """Inverse of :func:`save_chain`: list of scipy CSC matrices, root level first."""
    with np.load(path) as f:
        n = int(f["n_levels"])
        return [
            sp.csc_matrix(
                (f[f"C{i}_data"], f[f"C{i}_indices"], f[f"C{i}_indptr"]),
                shape=tuple(int(s) for s in f[f"C{i}_shape"]),
            )
            for i in range(n)
        ]


def chain_summary(chain):
    shapes = [list(map(int, C.shape)) for C in chain]
    # nodes per level, root (1) first, labels last
    level_sizes = [int(chain[0].shape[1])] + [int(C.shape[0]) for C in chain]
    leaf_sizes = np.bincount(parent_of_rows(chain[-1]), minlength=chain[-1].shape[1])
    return {
        "n_levels": len(chain),
        "chain_shapes": shapes,
        "level_sizes": level_sizes,
        "leaf_size_min": int(leaf_sizes.min()),
        "leaf_size_max": int(leaf_sizes.max()),
    }


def precision_at_k(Y_true, Y_pred, ks=(1, 3, 5)):
    """P@k for sparse score matrix Y_pred vs binary Y_true (both n x L).

    Top-k by score descending, ties broken by smaller label index; rows with no
    true labels count as 0; denominator k (fewer than k predictions count as misses).
    """
    Y_true = sp.csr_matrix(Y_true)
    P = sp.coo_matrix(Y_pred)
    n, L = Y_true.shape
    rows, cols, scores = P.row.astype(np.int64), P.col.astype(np.int64), P.data
    order = np.lexsort((cols, -scores, rows))
    rows, cols = rows[order], cols[order]
    row_start = np.searchsorted(rows, np.arange(n))
    rank = np.arange(len(rows)) - row_start[rows]
    # membership test via sorted keys row * L + col
    t = Y_true.tocoo()
    nz = t.data != 0
    true_keys = np.unique(t.row[nz].astype(np.int64) * L + t.col[nz].astype(np.int64))
    keys = rows * L + cols
    pos = np.minimum(np.searchsorted(true_keys, keys), max(len(true_keys) - 1, 0))
    hit = (true_keys[pos] == keys) if len(true_keys) else np.zeros(len(keys), dtype=bool)
    return {f"P@{k}": float(100.0 * hit[rank < k].sum() / (n * k)) for k in ks}


def extra_metrics(Y_trn, Y_tst, Y_pred, k=5):
    """nDCG@1/3/5 and PSP@1/3/5 (training-label propensities) with refs_runner's helpers.

    Returned as fractions under the keys "nDCG@k", "PSP@k" (P@k above stays in percent).
    """
    from benchmarks.references.refs_runner import label_propensity, ranking_metrics

    P = sp.csr_matrix(Y_pred)
    ranked = -np.ones((P.shape[0], k), dtype=np.int64)
    for i in range(P.shape[0]):
        cols, vals = P.indices[P.indptr[i]:P.indptr[i + 1]], P.data[P.indptr[i]:P.indptr[i + 1]]
        top = np.lexsort((cols, -vals))[:k]  # score descending, ties by label index
        ranked[i, : len(top)] = cols[top]
    m = ranking_metrics(Y_tst, ranked, label_propensity(Y_trn))
    return {key: v for key, v in m.items() if not key.startswith("P@")}




# ----------------------------------------------------------------------------- jobs
def hierarchical_kmeans(Z, a, **extra):
    """PECOS's hierarchical k-means cluster chain of the label features ``Z``."""
    from pecos.xmc import Indexer

    return Indexer.gen(Z, indexer_type="hierarchicalkmeans", nr_splits=a.nr_splits,
                       max_leaf_size=a.max_leaf_size, threads=a.threads, seed=a.seed,
                       spherical=bool(a.spherical), **extra)


def run_index(a):
    Z = load_csr(a.Z)
    chain, seconds = timed(hierarchical_kmeans, Z, a, kmeans_max_iter=a.kmeans_max_iter)
    chain = list(chain)
    save_chain(a.out, chain)
    res = {"job": "index", "seconds": seconds, "n_labels": int(Z.shape[0]), "n_features": int(Z.shape[1])}
    res.update(chain_summary(chain))
    res["peak_rss_mb"] = peak_rss_mb()
    emit(res)


def run_xlinear(a):
    from pecos.xmc import LabelEmbeddingFactory
    from pecos.xmc.xlinear.model import XLinearModel

    d = a.data_dir
    X_trn = load_csr(os.path.join(d, "X.trn.npz"), a.normalize)
    Y_trn = sp.load_npz(os.path.join(d, "Y.trn.npz")).tocsc().astype(np.float32)  # PECOS trains on CSC Y
    X_tst = load_csr(os.path.join(d, "X.tst.npz"), a.normalize)
    Y_tst = sp.load_npz(os.path.join(d, "Y.tst.npz")).tocsr().astype(np.float32)
    rss_after_load = peak_rss_mb()

    # --- fit: PIFA label features + hierarchical k-means + XR-Linear training
    t0 = time.perf_counter()
    Z = LabelEmbeddingFactory.create(Y_trn, X_trn, method="pifa", threads=a.threads)
    t1 = time.perf_counter()
    chain = hierarchical_kmeans(Z, a)
    t2 = time.perf_counter()
    model = XLinearModel.train(
        X_trn,
        Y_trn,
        C=chain,
        threads=a.threads,
        threshold=a.threshold,
        Cp=a.Cp,
        Cn=a.Cn,
        bias=a.bias,
        solver_type="L2R_L2LOSS_SVC_DUAL",  # squared hinge (PECOS default)
        negative_sampling_scheme=a.negative_sampling,
        nr_splits=a.nr_splits,
        pred_kwargs={"beam_size": a.beam_size, "only_topk": a.only_topk, "post_processor": a.post_processor},
    )
    t3 = time.perf_counter()
    del Z
    rss_after_fit = peak_rss_mb()

    pred_kw = {"beam_size": a.beam_size, "only_topk": a.only_topk,
               "post_processor": a.post_processor}

    # --- batch prediction
    t4 = time.perf_counter()
    Y_pred = model.predict(X_tst, threads=a.threads, **pred_kw)
    t5 = time.perf_counter()
    scores = precision_at_k(Y_tst, Y_pred)
    scores.update(extra_metrics(Y_trn, Y_tst, Y_pred))

    # --- single-query latency (one-row predict calls from Python, threads=1)
    def one_query(model):
        return lambda row: model.predict(row, threads=1, **pred_kw)

    lat = row_latencies(one_query(model), X_tst, a.latency_queries, warmup=20)
    nq = len(lat)

    # --- model size on disk, and latency of the C++ predict-only loaded model
    tmp = a.save_dir or tempfile.mkdtemp(prefix="pecos_xlm_")
    try:
        model.save(tmp)
        size = dir_size_bytes(tmp)
        lat_po = None
        if a.predict_only:
            # The C++ "predict-only" model (XLinearModel.load(..., is_predict_only=True)): weights
            # converted once to chunked format, whole beam search in C++. The Python-side model
            # above hands its scipy W/C to C++ layer by layer on every call (measured ~10x slower).
            po = XLinearModel.load(tmp, is_predict_only=True)
            Y_pred_po, po_seconds = timed(po.predict, X_tst, threads=a.threads, **pred_kw)
            same = bool(abs(Y_pred_po - Y_pred).max() < 1e-5)
            lat_po = row_latencies(one_query(po), X_tst, a.latency_queries, warmup=20)
            del po, Y_pred_po
    finally:
        if not a.save_dir:
            shutil.rmtree(tmp, ignore_errors=True)

    res = {
        "job": "xlinear",
        "data_dir": d,
        "n_train": int(X_trn.shape[0]),
        "n_test": int(X_tst.shape[0]),
        "n_features": int(X_trn.shape[1]),
        "n_labels": int(Y_trn.shape[1]),
        "pifa_seconds": t1 - t0,
        "index_seconds": t2 - t1,
        "train_seconds": t3 - t2,
        "fit_seconds": t3 - t0,  # PIFA + indexing + training
        "predict_seconds": t5 - t4,
        "latency_ms_median": float(np.median(lat) * 1e3),
        "latency_ms_p90": float(np.percentile(lat, 90) * 1e3),
        "latency_queries": int(nq),
        "model_size_mb": size / 2**20,
        "model_nnz": int(sum(m.W.nnz for m in model.model.model_chain)),
        "peak_rss_mb_after_load": rss_after_load,
        "peak_rss_mb_after_fit": rss_after_fit,
        "peak_rss_mb": peak_rss_mb(),
    }
    if lat_po is not None:
        res["predict_only_seconds"] = po_seconds
        res["latency_predict_only_ms_median"] = float(np.median(lat_po) * 1e3)
        res["latency_predict_only_ms_p90"] = float(np.percentile(lat_po, 90) * 1e3)
        res["predict_only_matches"] = same
    res.update(chain_summary([level.C for level in model.model.model_chain]))
    res.update(scores)
    res["params"] = {k: v for k, v in vars(a).items() if k not in ("func",)}
    emit(res)


def _matrix_nbytes(M):
    return sum(getattr(M, part).nbytes for part in ("data", "indices", "indptr"))


def run_load(a):
    from pecos.xmc.xlinear.model import XLinearModel

    X_tst = load_csr(os.path.join(a.data_dir, "X.tst.npz"), a.normalize)
    Y_tst = sp.load_npz(os.path.join(a.data_dir, "Y.tst.npz")).tocsr().astype(np.float32)
    before = current_rss_mb()
    model, seconds = timed(XLinearModel.load, a.model_dir,
                           is_predict_only=bool(a.predict_only))
    after_load = current_rss_mb()
    nbytes = None
    if not a.predict_only:  # the scipy matrices of every level: W and the chain C
        nbytes = sum(_matrix_nbytes(level.W) + _matrix_nbytes(level.C)
                     for level in model.model.model_chain)
    Y_pred = model.predict(X_tst, threads=a.threads, beam_size=a.beam_size,
                           only_topk=a.only_topk, post_processor=a.post_processor)
    after_predict = current_rss_mb()
    res = {"job": "load", "predict_only": bool(a.predict_only), "load_seconds": seconds,
           "rss_mb_before": before, "rss_mb_after_load": after_load,
           "rss_mb_after_predict": after_predict, "model_nbytes": nbytes}
    res.update(precision_at_k(Y_tst, Y_pred))
    emit(res)


# ----------------------------------------------------------------------------- CLI
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(q):
        q.add_argument("--nr-splits", type=int, default=16)
        q.add_argument("--max-leaf-size", type=int, default=100)
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--spherical", type=int, default=1)

    q = sub.add_parser("index", help="hierarchical k-means on label features Z")
    q.add_argument("--Z", required=True, help="scipy CSR npz, L x d float32, rows L2-normalised")
    q.add_argument("--out", required=True, help="output npz for the cluster chain")
    q.add_argument("--kmeans-max-iter", type=int, default=20)
    common(q)
    q.set_defaults(func=run_index)

    q = sub.add_parser("xlinear", help="PIFA + HKM + XR-Linear fit/predict/evaluate")
    q.add_argument("--data-dir", required=True)
    q.add_argument("--normalize", action="store_true", help="L2-normalise rows of X")
    q.add_argument("--beam-size", type=int, default=10)
    q.add_argument("--only-topk", type=int, default=10)
    q.add_argument("--post-processor", default="l3-hinge")
    q.add_argument("--threshold", type=float, default=0.1)
    q.add_argument("--Cp", type=float, default=1.0)
    q.add_argument("--Cn", type=float, default=1.0)
    q.add_argument("--bias", type=float, default=1.0)
    q.add_argument("--negative-sampling", default="tfn")
    q.add_argument("--latency-queries", type=int, default=300)
    q.add_argument("--predict-only", type=int, default=1,
                   help="also time batch and one-row predict with the C++ predict-only loaded model")
    q.add_argument("--save-dir", help="save the model there (kept; default: a temporary folder)")
    common(q)
    q.set_defaults(func=run_xlinear)

    q = sub.add_parser("load", help="memory of a saved model after loading and one prediction")
    q.add_argument("--model-dir", required=True)
    q.add_argument("--data-dir", required=True)
    q.add_argument("--normalize", action="store_true", help="L2-normalise rows of X")
    q.add_argument("--predict-only", type=int, default=0,
                   help="load the C++ predict-only model (default: the Python-side model)")
    q.add_argument("--beam-size", type=int, default=10)
    q.add_argument("--only-topk", type=int, default=10)
    q.add_argument("--post-processor", default="l3-hinge")
    q.add_argument("--threads", type=int, default=2)
    q.set_defaults(func=run_load)

    q = sub.add_parser("versions", help="print the versions of this venv's packages as JSON")
    q.set_defaults(func=lambda a: emit(package_versions(["libpecos", "numpy", "scipy", "torch"])))

    a = p.parse_args(argv)
    a.func(a)


if __name__ == "__main__":
    main()
