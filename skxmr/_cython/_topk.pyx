"""Row-wise top-k selection for CSR and dense score matrices (OpenMP over rows).

Ranking rule (used by every skxmr metric and predictor): higher score first; equal
scores are broken by the smaller column index. Rows with fewer than ``k`` candidates
are padded with index -1 and score 0.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

import numpy as np

from libc.stdint cimport uint64_t

from skxmr._cython._radix cimport sort_by_feature
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


def _merge_row_lists(const intp_t[:, ::1] labels,     # IN  (n_rows, w) lists side by side, -1 = none
                     const double[:, ::1] values,     # IN  (n_rows, w) each entry's value
                     double scale,                    # IN  factor of every sum (1 / n_lists)
                     double[:, ::1] out_val,          # OUT (n_rows, k) summed values, best first
                     intp_t[:, ::1] out_idx,          # OUT (n_rows, k) labels, -1 = none
                     int n_threads):
    """Per row: sum the values of each label over the lists (in list order, so
    the sums do not depend on the threads), scale them, keep the top k (ties:
    smaller label). Labels must be below 2**32."""
    cdef intp_t n_rows = labels.shape[0]
    cdef intp_t width = labels.shape[1]
    cdef intp_t k = out_idx.shape[1]
    cdef intp_t row, j, n, size, label, pos
    cdef uint64_t max_label
    cdef uint64_t* keys
    cdef uint64_t* tmp
    cdef uint64_t* ordered
    cdef double total
    cdef double* vals
    cdef intp_t* ids
    cdef uint64_t low_mask = (<uint64_t> 1 << 32) - 1
    if n_rows == 0 or k == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        keys = <uint64_t*> malloc((width + 1) * sizeof(uint64_t))
        tmp = <uint64_t*> malloc((width + 1) * sizeof(uint64_t))
        vals = <double*> malloc(k * sizeof(double))
        ids = <intp_t*> malloc(k * sizeof(intp_t))
        for row in prange(n_rows, schedule="static"):
            n = 0
            max_label = 0
            for j in range(width):
                if labels[row, j] >= 0:
                    keys[n] = ((<uint64_t> labels[row, j]) << 32) | (<uint64_t> j)
                    if <uint64_t> labels[row, j] > max_label:
                        max_label = <uint64_t> labels[row, j]
                    n = n + 1
            ordered = sort_by_feature(keys, tmp, n, max_label)
            size = 0
            j = 0
            while j < n:
                label = <intp_t> (ordered[j] >> 32)
                total = 0
                while j < n and <intp_t> (ordered[j] >> 32) == label:
                    pos = <intp_t> (ordered[j] & low_mask)
                    total = total + values[row, pos]
                    j = j + 1
                size = heap_push(vals, ids, size, k, total * scale, label)
            _write_row(row, vals, ids, size, k, out_val, out_idx)
        free(keys)
        free(tmp)
        free(vals)
        free(ids)
