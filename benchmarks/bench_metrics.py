"""Time every metric at k=5 on 1,000,000 rows (sparse top-10 scores).

    python -m benchmarks.bench_metrics [--rows 1000000] [--labels 100000]

Also times a per-row Python loop on 20,000 rows and extrapolates, to show what the
vectorised version saves. Prints a markdown table.
"""

import time

import numpy as np
import scipy.sparse as sp

from benchmarks._common import parser_for
from skxmr.metrics import (
    coverage_at_k,
    ndcg_at_k,
    precision_at_k,
    psprecision_at_k,
    recall_at_k,
    topk_report,
)


def random_rows(rng, n, L, m, values):
    cols = np.sort(rng.integers(0, L, size=(n, m)), axis=1)
    M = sp.csr_matrix((values, cols.ravel(), np.arange(0, n * m + 1, m)), (n, L))
    M.sum_duplicates()
    return M


def python_loop_precision(Y, S, k):
    total = 0.0
    for i in range(Y.shape[0]):
        true = set(Y.indices[Y.indptr[i]:Y.indptr[i + 1]])
        lo, hi = S.indptr[i], S.indptr[i + 1]
        order = sorted(range(lo, hi), key=lambda p: (-S.data[p], S.indices[p]))[:k]
        total += sum(S.indices[p] in true for p in order) / k
    return total / Y.shape[0]


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, L, k = args.rows, args.labels, 5
    Y = random_rows(rng, n, L, 5, np.ones(n * 5, dtype=np.float32))
    S = random_rows(rng, n, L, 10, rng.random(n * 10).astype(np.float32))
    # Make the scores informative: add the true labels with high scores to half the rows.
    S = (S + 2 * Y.multiply(rng.random((n, 1)) < 0.5)).tocsr()
    print(f"rows={n} labels={L} y_true nnz={Y.nnz} y_score nnz={S.nnz} k={k}\n")
    print("| metric | seconds | value |\n|---|---|---|")
    for name, fn in (
        ("precision_at_k", precision_at_k),
        ("recall_at_k", recall_at_k),
        ("ndcg_at_k", ndcg_at_k),
        ("psprecision_at_k", psprecision_at_k),
        ("coverage_at_k", coverage_at_k),
    ):
        start = time.perf_counter()
        value = fn(Y, S, k=k)
        print(f"| {name} | {time.perf_counter() - start:.2f} | {value:.4f} |")
    start = time.perf_counter()
    topk_report(Y, S, ks=(1, 3, 5))
    print(f"| topk_report (all five at k=1,3,5) | {time.perf_counter() - start:.2f} | |")
    m = min(20_000, n)
    start = time.perf_counter()
    python_loop_precision(Y[:m], S[:m], k)
    loop = (time.perf_counter() - start) * n / m
    print(f"| per-row Python loop, precision only (extrapolated from {m} rows) "
          f"| {loop:.1f} | |")


if __name__ == "__main__":
    main()
