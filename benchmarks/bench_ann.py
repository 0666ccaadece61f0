"""HNSW (faiss) against the exact neighbour search on random clustered unit vectors:

    python -m benchmarks.bench_ann
"""
import time, numpy as np
from skxmr._xtransformer._ann import build_hnsw, hnsw_search
from skxmr._xtransformer._neighbors import nearest_neighbors
rng = np.random.RandomState(0)
n, d = 50000, 384
centres = rng.standard_normal((2000, d)).astype(np.float32)
X = centres[rng.randint(2000, size=n + 1000)] + 0.7 * rng.standard_normal((n + 1000, d)).astype(np.float32)
X /= np.linalg.norm(X, axis=1, keepdims=True)
bank, q = X[:n], X[n:]
t = time.perf_counter(); idx = build_hnsw(bank, n_threads=2); tb = time.perf_counter() - t
t = time.perf_counter(); a, _ = hnsw_search(idx, q, bank, 20, n_threads=2); ta = time.perf_counter() - t
t = time.perf_counter(); e, _ = nearest_neighbors(q, bank, 20); te = time.perf_counter() - t
t = time.perf_counter(); hnsw_search(idx, q[:1], bank, 20, n_threads=1); t1 = time.perf_counter() - t
rec = np.mean([len(set(x) & set(y)) / 20 for x, y in zip(a, e)])
print(f"bank {n}x{d}: build {tb:.1f} s; 1000 queries hnsw {ta:.3f} s vs exact {te:.3f} s; one query {1000*t1:.2f} ms; recall@20 {rec:.3f}; index bytes {idx.ntotal * (d*4 + 32*2*4)/1e6:.0f} MB approx")
