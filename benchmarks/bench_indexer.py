"""LabelIndexer vs libpecos's hierarchical k-means, on the same label vectors.

    python -m benchmarks.bench_indexer [--data debian-deps] [--repeat 3]
    python -m benchmarks.bench_indexer --synthetic 1000000   # 1M labels, skxmr only
                                                             # (add --with-pecos)

Label vectors: PIFA of the training set (computed once with scipy, the formula of
DESIGN.md and of PECOS), cached under benchmarks/_cache/. Each run is a fresh process (peak RSS from
ru_maxrss); the libpecos runs use the virtual environment that
benchmarks/references/make_pecos_env.sh creates (numpy<2, scipy<1.14, CPU torch). Settings:
B=16, max leaf size 100, spherical, 20 k-means iterations, seed 0, 2 threads.
Quality: the mean cosine similarity between each label vector and its leaf centroid.
"""

import argparse
import json
import time

import numpy as np
import scipy.sparse as sp

from benchmarks._common import (
    CACHE,
    PECOS_PYTHON,
    add_threads_argument,
    data_folder,
    ensure_env,
    module_command,
    parser_for,
    peak_rss_mb,
    pifa,
    run_json,
)
from benchmarks.references.pecos_runner import load_chain


def label_vectors(args):
    if args.synthetic:
        path = CACHE / f"synthetic_{args.synthetic}_Z.npz"
        if not path.exists():
            from skxmr.datasets import make_xmc_classification

            X, Y = make_xmc_classification(
                n_samples=args.synthetic, n_features=100_000, n_labels=args.synthetic,
                avg_features_per_sample=20, power_law_exponent=0.5, random_state=0,
            )
            Z = pifa(X, Y)
            sp.save_npz(path, Z, compressed=False)
        return path
    folder = data_folder(args.data)
    path = CACHE / f"{folder.name}_Z.npz"
    if not path.exists():
        X = sp.load_npz(folder / "X.trn.npz")
        Y = sp.load_npz(folder / "Y.trn.npz")
        sp.save_npz(path, pifa(X, Y), compressed=False)
    return path


def run_skxmr(z_path, out_path, threads, clustering):
    """Worker: index in this process, print JSON."""
    from skxmr import LabelIndexer

    Z = sp.load_npz(z_path).tocsr()
    start = time.perf_counter()
    indexer = LabelIndexer("precomputed", branching_factor=16, max_leaf_size=100,
                           clustering=clustering, n_jobs=threads, random_state=0).fit(Z)
    seconds = time.perf_counter() - start
    tree = indexer.tree_
    np.save(out_path, tree.label_to_cluster(tree.n_levels - 1))
    print(json.dumps({
        "seconds": seconds,
        "level_sizes": tree.level_sizes.tolist(),
        "peak_rss_mb": peak_rss_mb(),
    }))


def mean_leaf_cosine(Z, leaf):
    """Mean cosine of unit label vectors to their leaf's normalised centroid.

    For a leaf with vectors z_i and sum S, sum_i z_i . S / |S| = |S|, so the mean is
    sum over leaves of |S_leaf|, divided by the number of labels.
    """
    M = sp.csr_matrix((np.ones(leaf.size), leaf, np.arange(leaf.size + 1)))
    sums = (M.T @ Z).tocsr()
    norms = np.sqrt(np.asarray(sums.multiply(sums).sum(axis=1)).ravel())
    return float(norms.sum() / leaf.size)


def check_chain_exchange(chain_path, leaf_of_label):
    """PECOS's saved cluster chain loads as a LabelTree with the same leaves."""
    from skxmr import LabelTree

    tree = LabelTree.from_chain(load_chain(chain_path))
    ours = tree.label_to_cluster(tree.n_levels - 1)
    pairs = set(zip(ours.tolist(), np.asarray(leaf_of_label).tolist()))
    assert len(pairs) == tree.level_sizes[-2], "leaf partitions differ"


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--data", default="debian-deps",
                        help="dataset name under shared/data or folder (default debian-deps)")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="use make_xmc_classification with this many labels")
    parser.add_argument("--with-pecos", action="store_true",
                        help="also run libpecos on the synthetic set")
    add_threads_argument(parser)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        z_path, out_path, clustering = args.worker
        run_skxmr(z_path, out_path, args.threads, clustering)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    z_path = label_vectors(args)
    Z = sp.load_npz(z_path).tocsr()
    print(f"label vectors: {z_path.name}, {Z.shape[0]} labels x {Z.shape[1]} dims, "
          f"nnz={Z.nnz}; {args.threads} threads, best of {args.repeat}\n")
    use_pecos = not args.synthetic or args.with_pecos
    if use_pecos:
        ensure_env(PECOS_PYTHON)
    runs = {"skxmr kmeans (B-way)": [], "skxmr binary (PECOS's way)": []}
    if use_pecos:
        runs["libpecos"] = []
    leaves = {}
    for _ in range(args.repeat):  # alternate libraries so load hits both alike
        for name in runs:
            slug = "".join(ch if ch.isalnum() else "_" for ch in name)
            leaf_path = CACHE / f"leaf_{slug}.npy"
            if name == "libpecos":
                chain_path = CACHE / "pecos_chain.npz"
                result = run_json([
                    *module_command("benchmarks.references.pecos_runner",
                                    python=PECOS_PYTHON), "index",
                    "--Z", str(z_path), "--out", str(chain_path), "--nr-splits", "16",
                    "--max-leaf-size", "100", "--threads", str(args.threads),
                    "--seed", "0", "--spherical", "1",
                ])
                leaves[name] = np.load(chain_path)["leaf_of_label"]
                check_chain_exchange(chain_path, leaves[name])
            else:
                clustering = "kmeans" if "kmeans" in name else "binary"
                result = run_json(module_command(
                    "benchmarks.bench_indexer", "--threads", args.threads,
                    "--worker", z_path, leaf_path, clustering))
                leaves[name] = np.load(leaf_path)
            runs[name].append(result)
    print("| indexer | level sizes | seconds (best) | peak RSS (MB) | leaf sizes | "
          "mean cosine to leaf centroid |")
    print("|---|---|---:|---:|---|---:|")
    for name, results in runs.items():
        best = min(r["seconds"] for r in results)
        rss = max(r["peak_rss_mb"] for r in results)
        sizes = np.bincount(leaves[name])
        levels = results[0]["level_sizes"]
        print(f"| {name} | {levels} | {best:.2f} | {rss:.0f} | "
              f"{sizes.min()}-{sizes.max()} | {mean_leaf_cosine(Z, leaves[name]):.4f} |")


if __name__ == "__main__":
    main()
