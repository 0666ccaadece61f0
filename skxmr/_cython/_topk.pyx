"""Row-wise top-k selection for CSR and dense score matrices (OpenMP over rows).

Ranking rule (used by every skxmr metric and predictor): higher score first; equal
scores are broken by the smaller column index. Rows with fewer than ``k`` candidates
are padded with index -1 and score 0.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

import numpy as np

from skxmr._cython._typedefs cimport intp_t, index_t
from skxmr._cython._heap cimport heap_push, heap_sort_best_first


cdef void _write_row(intp_t row, floating* vals, intp_t* ids, intp_t size, intp_t k,
                     floating[:, ::1] out_val, intp_t[:, ::1] out_idx) noexcept nogil:
    cdef intp_t j
    heap_sort_best_first(vals, ids, size)
    for j in range(size):
        out_idx[row, j] = ids[j]
        out_val[row, j] = vals[j]
    for j in range(size, k):
        out_idx[row, j] = -1
        out_val[row, j] = 0


def _csr_row_topk(const floating[::1] data,          # IN  CSR values
                  const index_t[::1] indices,        # IN  CSR column indices
                  const index_t[::1] indptr,         # IN  CSR row pointers
                  floating[:, ::1] out_val,          # OUT (n_rows, k) scores
                  intp_t[:, ::1] out_idx,            # OUT (n_rows, k) columns, -1 = none
                  int n_threads):
    cdef intp_t n_rows = indptr.shape[0] - 1
    cdef intp_t k = out_idx.shape[1]
    cdef intp_t row, p, size
    cdef floating* vals
    cdef intp_t* ids
    if n_rows == 0 or k == 0:
        return
    vals = NULL
    ids = NULL
    with nogil, parallel(num_threads=n_threads):
        vals = <floating*> malloc(k * sizeof(floating))
        ids = <intp_t*> malloc(k * sizeof(intp_t))
        for row in prange(n_rows, schedule="static"):
            size = 0
            for p in range(indptr[row], indptr[row + 1]):
                size = heap_push(vals, ids, size, k, data[p], indices[p])
            _write_row(row, vals, ids, size, k, out_val, out_idx)
        free(vals)
        free(ids)


def _dense_row_topk(const floating[:, ::1] scores,   # IN  (n_rows, n_cols)
                    floating[:, ::1] out_val,        # OUT (n_rows, k)
                    intp_t[:, ::1] out_idx,          # OUT (n_rows, k)
                    int n_threads):
    cdef intp_t n_rows = scores.shape[0]
    cdef intp_t n_cols = scores.shape[1]
    cdef intp_t k = out_idx.shape[1]
    cdef intp_t row, col, size
    cdef floating* vals
    cdef intp_t* ids
    if n_rows == 0 or k == 0:
        return
    vals = NULL
    ids = NULL
    with nogil, parallel(num_threads=n_threads):
        vals = <floating*> malloc(k * sizeof(floating))
        ids = <intp_t*> malloc(k * sizeof(intp_t))
        for row in prange(n_rows, schedule="static"):
            size = 0
            for col in range(n_cols):
                size = heap_push(vals, ids, size, k, scores[row, col], col)
            _write_row(row, vals, ids, size, k, out_val, out_idx)
        free(vals)
        free(ids)
