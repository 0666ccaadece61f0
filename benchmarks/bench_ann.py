"""HNSW (faiss) against the exact neighbour search on random clustered unit
vectors (issue 24):

    python -m benchmarks.bench_ann [--n 100000 1000000] [--dim 384] [--threads 2]
        [--queries 1000] [--exact-only]

For each bank size: the graph's build time and the memory it adds (resident
set growth, and its serialised size: what ``skxmr.save`` stores beside the
bank), the time of ``--queries`` queries by HNSW and by the exact search, the
median one-query latency of each (one thread for HNSW, as a single request),
and the recall of the 20 nearest neighbours (the exact ones as truth). Vectors:
2,000 random centres in ``--dim`` dimensions plus noise, L2-normalised, float32
(drawn in chunks: a 10^6 bank is 1.5 GB). ``--exact-only`` skips the graph.
"""

import argparse
import time

import numpy as np

from skxmr._xtransformer._ann import build_hnsw, hnsw_search, hnsw_to_bytes
from skxmr._xtransformer._neighbors import nearest_neighbors


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def clustered_unit_vectors(n, d, rng, n_centres=2000, chunk=100_000):
    centres = rng.standard_normal((n_centres, d)).astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        X[start:stop] = centres[rng.randint(n_centres, size=stop - start)]
        X[start:stop] += 0.7 * rng.standard_normal((stop - start, d)).astype(np.float32)
        X[start:stop] /= np.linalg.norm(X[start:stop], axis=1, keepdims=True)
    return X


def measure_exact(n, d, n_queries):
    """The exact search alone (no graph): its time and the memory of the bank."""
    rng = np.random.RandomState(0)
    X = clustered_unit_vectors(n + n_queries, d, rng)
    bank, queries = X[:n], np.ascontiguousarray(X[n:])
    start = time.perf_counter()
    nearest_neighbors(queries, bank, 20)
    exact_s = time.perf_counter() - start
    one = []
    for i in range(5):
        start = time.perf_counter()
        nearest_neighbors(queries[i:i + 1], bank, 20)
        one.append(time.perf_counter() - start)
    return {"n": n, "bank_mb": bank.nbytes / 2**20, "exact_s": exact_s,
            "one_exact_ms": 1000 * float(np.median(one)), "peak_rss_mb": _peak_rss_mb()}


def measure(n, d, n_queries, threads):
    rng = np.random.RandomState(0)
    X = clustered_unit_vectors(n + n_queries, d, rng)
    bank, queries = X[:n], np.ascontiguousarray(X[n:])
    before = rss_mb()
    start = time.perf_counter()
    index = build_hnsw(bank, n_threads=threads)
    build_s = time.perf_counter() - start
    graph_mb = rss_mb() - before
    stored_mb = hnsw_to_bytes(index).nbytes / 2**20
    start = time.perf_counter()
    approx, _ = hnsw_search(index, queries, bank, 20, n_threads=threads)
    hnsw_s = time.perf_counter() - start
    start = time.perf_counter()
    exact, _ = nearest_neighbors(queries, bank, 20)
    exact_s = time.perf_counter() - start
    one_hnsw, one_exact = [], []
    for i in range(20):
        q = queries[i:i + 1]
        start = time.perf_counter()
        hnsw_search(index, q, bank, 20, n_threads=1)
        one_hnsw.append(time.perf_counter() - start)
        start = time.perf_counter()
        nearest_neighbors(q, bank, 20)
        one_exact.append(time.perf_counter() - start)
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    return {"n": n, "dim": d, "bank_mb": bank.nbytes / 2**20, "build_s": build_s,
            "graph_rss_mb": graph_mb, "index_stored_mb": stored_mb,
            "queries": n_queries, "hnsw_s": hnsw_s, "exact_s": exact_s,
            "one_hnsw_ms": 1000 * float(np.median(one_hnsw)),
            "one_exact_ms": 1000 * float(np.median(one_exact)), "recall@20": recall,
            "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[100_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-only", action="store_true",
                        help="time the exact search only (no graph is built)")
    args = parser.parse_args()
    for n in args.n:
        if args.exact_only:
            r = measure_exact(n, args.dim, args.queries)
            print(f"bank {n}x{args.dim} ({r['bank_mb']:.0f} MB): {args.queries} queries "
                  f"exact {r['exact_s']:.2f} s; one query {r['one_exact_ms']:.1f} ms; "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
            continue
        r = measure(n, args.dim, args.queries, args.threads)
        print(f"bank {n}x{args.dim} ({r['bank_mb']:.0f} MB): build {r['build_s']:.1f} s, "
              f"graph +{r['graph_rss_mb']:.0f} MB RSS, stored index "
              f"{r['index_stored_mb']:.0f} MB; {args.queries} queries hnsw "
              f"{r['hnsw_s']:.2f} s vs exact {r['exact_s']:.2f} s; one query hnsw "
              f"{r['one_hnsw_ms']:.2f} ms vs exact {r['one_exact_ms']:.1f} ms; recall@20 "
              f"{r['recall@20']:.3f}; peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
