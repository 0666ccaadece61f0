"""Golden outputs of beam search, to prove a refactor of the kernels bit-identical.

Not a test: run it with the code before a change (``save``), then after it
(``compare``); every array must be exactly equal (``np.array_equal``: same labels,
same float32 scores, same order, same chunked layout).

    PYTHONPATH=. python tools/beam_golden.py save /tmp/beam_golden_before.npz
    PYTHONPATH=. python tools/beam_golden.py compare /tmp/beam_golden_before.npz
    PYTHONPATH=. python tools/beam_golden.py time [--repeat 7]

It fits small XR-Linear models (synthetic ``make_xmc_classification`` data and the
bundled Debian debtags set with TF-IDF features; float32 and float64; a
``tfn+man`` model, whose training itself runs beam search) and records, for every
post-processor and several (beam_size, top_k) pairs -- a beam of 1, a beam larger
than any tree level, top_k larger than the number of labels -- the
``predict_topk`` output of CSR input (sorted and unsorted indices), dense input,
float32 and float64 queries, 1 and 2 threads, the one-row fast path, the small
batch path (< 4 rows) and the block driver with small blocks. ``time`` prints the
median batch-predict time and one-row latency. Outputs go outside the repository.
"""

import argparse
import sys
import time

import numpy as np
import scipy.sparse as sp

from skxmr import LabelIndexer, XRLinearClassifier
from skxmr.datasets import load_debian_debtags, make_xmc_classification

POST_PROCESSORS = ["l3-hinge", "l1-hinge", "sigmoid", "log-sigmoid", "noop"]
# (beam_size, top_k): beam 1; ordinary; beam larger than every level; k larger than
# the number of labels.
BEAM_K = [(1, 1), (1, 5), (3, 7), (10, 10), (10**6, 20), (5, 10**5)]


def _synthetic(dtype):
    X, Y = make_xmc_classification(n_samples=1200, n_features=1500, n_labels=250,
                                   avg_features_per_sample=30, dtype=dtype,
                                   random_state=0)
    return X[:900], Y[:900], X[900:], Y[900:]


def _debtags(dtype, n_train=3000, n_test=600):
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, labels = load_debian_debtags(subset="train", return_X_y=True)
    test_texts, _ = load_debian_debtags(subset="test", return_X_y=True)
    vec = TfidfVectorizer(min_df=2, max_features=5000, dtype=dtype)
    X = vec.fit_transform(texts[:n_train])
    return X, labels[:n_train], vec.transform(test_texts[:n_test]), None


def models():
    """(name, fitted model, test X CSR)."""
    out = []
    for dtype in (np.float32, np.float64):
        tag = np.dtype(dtype).name
        X, Y, Xt, _ = _synthetic(dtype)
        model = XRLinearClassifier(
            indexer=LabelIndexer(branching_factor=4, max_leaf_size=8, random_state=0),
            random_state=0).fit(X, Y)
        out.append((f"synth_{tag}", model, Xt))
        X, y, Xt, _ = _debtags(dtype)
        model = XRLinearClassifier(
            indexer=LabelIndexer(branching_factor=8, max_leaf_size=20, random_state=0),
            random_state=0).fit(X, y)
        out.append((f"debtags_{tag}", model, Xt))
    X, Y, Xt, _ = _synthetic(np.float32)
    model = XRLinearClassifier(
        indexer=LabelIndexer(branching_factor=2, max_leaf_size=10, random_state=0),
        negative_sampling="tfn+man", beam_size=3, random_state=0).fit(X, Y)
    out.append(("synth_man", model, Xt))
    return out


def _unsorted(X):
    """The same matrix with the indices of every row reversed (unsorted CSR)."""
    X = X.copy()
    for i in range(X.shape[0]):
        a, b = X.indptr[i], X.indptr[i + 1]
        X.indices[a:b] = X.indices[a:b][::-1].copy()
        X.data[a:b] = X.data[a:b][::-1].copy()
    X.has_sorted_indices = False
    return X


def collect():
    res = {}
    for name, model, Xt in models():
        searcher = model._searcher()
        for t, level in enumerate(searcher.chunked_levels):
            for j, a in enumerate(level):
                res[f"{name}/layout/{t}/{j}"] = np.asarray(a).view(np.uint8)
        for t, W in enumerate(model.coef_):
            res[f"{name}/coef/{t}/data"] = W.data
            res[f"{name}/coef/{t}/indices"] = W.indices
            res[f"{name}/coef/{t}/indptr"] = W.indptr
        X = sp.csr_matrix(Xt)
        X_other = X.astype(np.float64 if X.dtype == np.float32 else np.float32)
        X_dense = X[:150].toarray()
        X_uns = _unsorted(X)
        for pp in POST_PROCESSORS:
            model.post_processor = pp
            for beam, k in BEAM_K:
                model.beam_size, model.top_k = beam, k
                key = f"{name}/{pp}/b{beam}/k{k}"

                def put(suffix, result):
                    res[f"{key}/{suffix}/labels"] = result[0]
                    res[f"{key}/{suffix}/scores"] = result[1]

                for n_jobs in (1, 2):
                    model.n_jobs = n_jobs
                    put(f"csr/j{n_jobs}", model.predict_topk(X))
                    put(f"dense/j{n_jobs}", model.predict_topk(X_dense))
                model.n_jobs = 1
                put("csr_other_dtype", model.predict_topk(X_other))
                put("dense_other_dtype", model.predict_topk(X_dense.astype(
                    X_other.dtype)))
                put("csr_unsorted", model.predict_topk(X_uns))
                put("small_batch", model.predict_topk(X[:3]))
                rows = [model.predict_topk(X[i]) for i in range(40)]
                put("one_row", (np.vstack([r[0] for r in rows]),
                                np.vstack([r[1] for r in rows])))
                # The block driver with small blocks (many block boundaries).
                searcher._block = 7
                try:
                    put("csr_block7", model.predict_topk(X))
                    put("dense_block7", model.predict_topk(X_dense))
                finally:
                    searcher._block = 0
        model.post_processor, model.beam_size, model.top_k = "l3-hinge", 10, 10
    return res


def timing(repeat):
    X, y, Xt, _ = _debtags(np.float32, n_train=8000, n_test=3000)
    model = XRLinearClassifier(
        indexer=LabelIndexer(branching_factor=8, max_leaf_size=20, random_state=0),
        random_state=0, n_jobs=1).fit(X, y)
    Xt = sp.csr_matrix(Xt)
    model.predict_topk(Xt)
    batch = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.predict_topk(Xt)
        batch.append(time.perf_counter() - t0)
    rows = [Xt[i] for i in range(500)]
    one = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for r in rows:
            model.predict_topk(r)
        one.append((time.perf_counter() - t0) / len(rows))
    # The searcher alone (less Python around the kernels).
    searcher = model._searcher()
    kernel = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        searcher._search(Xt, 10, 10, 1, 3, 1)  # l3-hinge
        kernel.append(time.perf_counter() - t0)
    fast = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for r in rows:
            searcher._predict_one_fast(r.indices, r.data)
        fast.append((time.perf_counter() - t0) / len(rows))
    for what, times, unit, scale in (
            (f"batch predict_topk, {Xt.shape[0]} rows, 1 thread", batch, "ms", 1e3),
            ("one-row predict_topk", one, "us/query", 1e6),
            (f"BeamSearcher._search, {Xt.shape[0]} rows, 1 thread", kernel, "ms",
             1e3),
            ("BeamSearcher._predict_one_fast", fast, "us/query", 1e6)):
        print(f"{what}: median {scale * np.median(times):.1f} {unit} "
              f"(min {scale * min(times):.1f})")


def main(argv=None):
    import skxmr

    print(f"skxmr from {skxmr.__file__}")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["save", "compare", "time"])
    parser.add_argument("path", nargs="?", default="/tmp/beam_golden_before.npz")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.mode == "time":
        timing(args.repeat)
        return 0
    res = collect()
    if args.mode == "save":
        np.savez_compressed(args.path, **res)
        print(f"saved {len(res)} arrays to {args.path}")
        return 0
    ref = np.load(args.path)
    missing = sorted(set(ref.files) ^ set(res))
    bad = [k for k in ref.files if k in res and not (
        ref[k].dtype == res[k].dtype and np.array_equal(ref[k], res[k]))]
    print(f"compared {len(ref.files)} arrays: {len(bad)} differ, "
          f"{len(missing)} missing on one side")
    for k in (bad + missing)[:20]:
        print("  ", k)
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
