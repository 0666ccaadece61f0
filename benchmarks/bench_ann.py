"""HNSW (faiss) against the exact neighbour search on random clustered unit
vectors (issue 24):

    python -m benchmarks.bench_ann [--n 50000] [--dim 384] [--threads 2]

Prints the graph's build time, the time of 1,000 queries against the exact
search, one query's latency and the recall of the 20 nearest neighbours.
"""

import argparse
import time

import numpy as np

from skxmr._xtransformer._ann import build_hnsw, hnsw_search
from skxmr._xtransformer._neighbors import nearest_neighbors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    n, d = args.n, args.dim
    centres = rng.standard_normal((2000, d)).astype(np.float32)
    X = centres[rng.randint(2000, size=n + 1000)] + 0.7 * rng.standard_normal(
        (n + 1000, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    bank, queries = X[:n], X[n:]
    start = time.perf_counter()
    index = build_hnsw(bank, n_threads=args.threads)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    approx, _ = hnsw_search(index, queries, bank, 20, n_threads=args.threads)
    hnsw_s = time.perf_counter() - start
    start = time.perf_counter()
    exact, _ = nearest_neighbors(queries, bank, 20)
    exact_s = time.perf_counter() - start
    start = time.perf_counter()
    hnsw_search(index, queries[:1], bank, 20, n_threads=1)
    one_ms = 1000 * (time.perf_counter() - start)
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    print(f"bank {n}x{d}: build {build_s:.1f} s; 1000 queries hnsw {hnsw_s:.3f} s vs "
          f"exact {exact_s:.3f} s; one query {one_ms:.2f} ms; recall@20 {recall:.3f}")


if __name__ == "__main__":
    main()
