"""The row-wise top-k kernel against NumPy, across dtypes and thread counts."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr._cython._topk import _csr_row_topk, _dense_row_topk


def reference_topk(dense_scores, stored, k):
    n = dense_scores.shape[0]
    idx = np.full((n, k), -1, dtype=np.intp)
    val = np.zeros((n, k), dtype=dense_scores.dtype)
    for i in range(n):
        cols = np.flatnonzero(stored[i])
        order = np.lexsort((cols, -dense_scores[i, cols]))[:k]  # score desc, index asc
        idx[i, : len(order)] = cols[order]
        val[i, : len(order)] = dense_scores[i, cols[order]]
    return idx, val


def random_scores(seed, n=60, L=25, dtype=np.float32):
    rng = np.random.default_rng(seed)
    scores = (rng.integers(-3, 4, size=(n, L)) / 3).astype(dtype)  # many ties
    stored = rng.random((n, L)) < 0.3
    stored[0] = False  # an empty row
    return scores, stored


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("k", [1, 4, 30])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_csr_row_topk(dtype, index_dtype, k, n_threads):
    scores, stored = random_scores(k, dtype=dtype)
    rows, cols = np.nonzero(stored)
    # Store entries in a shuffled order within each row: the kernel must not care.
    rng = np.random.default_rng(0)
    perm = np.lexsort((rng.random(rows.size), rows))
    rows, cols = rows[perm], cols[perm]
    indptr = np.searchsorted(rows, np.arange(scores.shape[0] + 1)).astype(index_dtype)
    out_idx = np.empty((scores.shape[0], k), dtype=np.intp)
    out_val = np.empty((scores.shape[0], k), dtype=dtype)
    _csr_row_topk(scores[rows, cols], cols.astype(index_dtype), indptr, out_val,
                  out_idx, n_threads)
    ref_idx, ref_val = reference_topk(scores, stored, k)
    np.testing.assert_array_equal(out_idx, ref_idx)
    np.testing.assert_array_equal(out_val, ref_val)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 5, 25, 40])
def test_dense_row_topk_equal_across_threads(dtype, k):
    scores, _ = random_scores(3, n=200, dtype=dtype)
    results = []
    for n_threads in (1, 2):
        out_idx = np.empty((scores.shape[0], k), dtype=np.intp)
        out_val = np.empty((scores.shape[0], k), dtype=dtype)
        _dense_row_topk(scores, out_val, out_idx, n_threads)
        results.append((out_idx, out_val))
    ref_idx, ref_val = reference_topk(scores, np.ones_like(scores, dtype=bool), k)
    for out_idx, out_val in results:
        np.testing.assert_array_equal(out_idx, ref_idx)
        np.testing.assert_array_equal(out_val, ref_val)


def test_empty_inputs():
    out_idx = np.empty((0, 3), dtype=np.intp)
    out_val = np.empty((0, 3), dtype=np.float32)
    _dense_row_topk(np.empty((0, 4), dtype=np.float32), out_val, out_idx, 2)
    S = sp.csr_matrix((0, 4), dtype=np.float32)
    _csr_row_topk(S.data, S.indices, S.indptr, out_val, out_idx, 2)
    assert out_idx.shape == (0, 3)


def test_read_only_inputs():
    scores, _ = random_scores(1)
    scores.setflags(write=False)
    out_idx = np.empty((scores.shape[0], 2), dtype=np.intp)
    out_val = np.empty((scores.shape[0], 2), dtype=scores.dtype)
    _dense_row_topk(scores, out_val, out_idx, 1)
    assert (out_idx >= 0).all()
