"""Beam search over a label tree (OpenMP over queries).

The model has one weight matrix per tree level below the root, ``W_t`` of shape
``(n_features + 1, n_nodes_t)`` (CSC, float32; the last row multiplies a constant
feature of value ``bias``). Nodes are numbered level by level as in
:class:`skxmr._label_tree.LabelTree`: node ``c`` of level ``t`` is column
``c - level_ptr[t]`` of ``W_t``, and the children of a node are contiguous, so the
weights of a node's children are contiguous columns.

For each query, the kernel:

1. puts ``[x; bias]`` in a dense per-thread vector (sparse rows are scattered, and
   only the touched entries are zeroed afterwards; dense rows are copied);
2. starts from the root with the combiner's identity, then at every level scores the
   children of every kept node, ``s = W_t[:, c] . [x; bias]`` (accumulated in double,
   four partial sums), combines the transformed score with the parent's path score,
   and offers (path score, node) to a fixed-capacity top-k heap;
3. keeps ``beam`` nodes per level (``top_k`` at the last level), ties broken by the
   smaller node index; at the last level the heap holds original label ids
   (``label_perm``), so ties are broken by the smaller label id, the ranking rule of
   every skxmr top-k output;
4. writes the labels best first, padding with label -1 and score 0 when fewer than
   ``top_k`` labels were reached.

A path score that is NaN (only possible with non-finite weights) counts as -inf.
Row indices outside their range (in ``X`` or in the weights) are skipped and
counted; the Python wrapper turns those counts into a ``ValueError``.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log1p, INFINITY
from libc.stdlib cimport malloc, calloc, free

cimport numpy as cnp
import numpy as np

from skxmr._cython._typedefs cimport intp_t, index_t, int32_t, int64_t
from skxmr._cython._heap cimport heap_push, heap_sort_best_first

cnp.import_array()

# Post-processor codes (keep in sync with skxmr._postprocess).
cdef enum:
    PP_NOOP = 0
    PP_HINGE = 1
    PP_SIGMOID = 2
    PP_LOG_SIGMOID = 3


cdef struct LevelWeights:
    const float* data
    const void* indices
    const void* indptr
    intp_t nnz
    intp_t n_cols
    bint idx64
    bint ptr64


cdef class WeightTable:
    """The per-level CSC arrays of a model, as a C table the kernels read without
    the GIL. Holds references to the arrays, so nothing is copied.

    Parameters
    ----------
    data : list of ndarray of float32
    indices : list of ndarray of int32 or int64
    indptr : list of ndarray of int32 or int64
    n_rows : int
        ``n_features + 1`` (the bias row is the last one).
    """

    cdef LevelWeights* levels
    cdef readonly intp_t n_levels
    cdef readonly intp_t n_rows
    cdef object _arrays

    def __cinit__(self, list data, list indices, list indptr, intp_t n_rows):
        cdef intp_t t, n = len(data)
        cdef cnp.ndarray d, i, p
        self.levels = NULL
        if len(indices) != n or len(indptr) != n or n < 1:
            raise ValueError(
                "data, indices and indptr must be lists of equal length >= 1")
        if n_rows < 1 or n_rows > 2147483647:
            raise ValueError(f"invalid number of weight rows: {n_rows}")
        for t in range(n):
            d, i, p = data[t], indices[t], indptr[t]
            if d.dtype != np.float32 or d.ndim != 1 or not d.flags.c_contiguous:
                raise ValueError(f"level {t + 1}: weights must be contiguous float32")
            for a in (i, p):
                if (a.dtype != np.int32 and a.dtype != np.int64) or a.ndim != 1 \
                        or not a.flags.c_contiguous:
                    raise ValueError(
                        f"level {t + 1}: indices/indptr must be contiguous int32/int64")
            if i.shape[0] != d.shape[0] or p.shape[0] < 2:
                raise ValueError(f"level {t + 1}: inconsistent CSC arrays")
        self.levels = <LevelWeights*> malloc(n * sizeof(LevelWeights))
        if self.levels == NULL:
            raise MemoryError()
        for t in range(n):
            d, i, p = data[t], indices[t], indptr[t]
            self.levels[t].data = <const float*> cnp.PyArray_DATA(d)
            self.levels[t].indices = <const void*> cnp.PyArray_DATA(i)
            self.levels[t].indptr = <const void*> cnp.PyArray_DATA(p)
            self.levels[t].nnz = d.shape[0]
            self.levels[t].n_cols = p.shape[0] - 1
            self.levels[t].idx64 = i.dtype == np.int64
            self.levels[t].ptr64 = p.dtype == np.int64
        self.n_levels = n
        self.n_rows = n_rows
        self._arrays = (list(data), list(indices), list(indptr))

    def __dealloc__(self):
        free(self.levels)

    def __reduce__(self):
        return (WeightTable, self._arrays + (self.n_rows,))

    @property
    def n_cols(self):
        return [self.levels[t].n_cols for t in range(self.n_levels)]


# ---------------------------------------------------------------- scoring helpers
cdef inline double _dot_range(const float* data, const index_t* ind, intp_t start,
                              intp_t end, const floating* x, size_t n_rows,
                              intp_t* n_bad) noexcept nogil:
    """sum_k data[k] * x[ind[k]] over [start, end), four partial sums."""
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef intp_t k = start
    cdef index_t r0, r1, r2, r3
    while k + 4 <= end:
        r0 = ind[k]
        r1 = ind[k + 1]
        r2 = ind[k + 2]
        r3 = ind[k + 3]
        if ((<size_t> r0 >= n_rows) | (<size_t> r1 >= n_rows)
                | (<size_t> r2 >= n_rows) | (<size_t> r3 >= n_rows)):
            break  # the tail loop checks one by one
        a0 += <double> data[k] * x[r0]
        a1 += <double> data[k + 1] * x[r1]
        a2 += <double> data[k + 2] * x[r2]
        a3 += <double> data[k + 3] * x[r3]
        k += 4
    while k < end:
        r0 = ind[k]
        if <size_t> r0 < n_rows:
            a0 += <double> data[k] * x[r0]
        else:
            n_bad[0] += 1
        k += 1
    return (a0 + a1) + (a2 + a3)


cdef inline double _score(const LevelWeights* w, intp_t col, const floating* x,
                          size_t n_rows, intp_t* n_bad) noexcept nogil:
    """Raw score of column ``col`` of one level: W[:, col] . x."""
    cdef intp_t start, end
    if w.ptr64:
        start = (<const int64_t*> w.indptr)[col]
        end = (<const int64_t*> w.indptr)[col + 1]
    else:
        start = (<const int32_t*> w.indptr)[col]
        end = (<const int32_t*> w.indptr)[col + 1]
    if start < 0 or end > w.nnz:
        n_bad[0] += 1
        return 0
    if w.idx64:
        return _dot_range(w.data, <const int64_t*> w.indices, start, end, x, n_rows,
                          n_bad)
    return _dot_range(w.data, <const int32_t*> w.indices, start, end, x, n_rows,
                      n_bad)


cdef inline double _path_score(double parent, double s, int code,
                               int power) noexcept nogil:
    """Combine a parent's path score with a child's transformed raw score."""
    cdef double t, tp, e
    cdef int i
    if code == PP_HINGE:
        t = 1.0 - s if s < 1.0 else 0.0
        tp = t
        for i in range(1, power):
            tp = tp * t
        return parent * exp(-tp)
    if code == PP_SIGMOID:
        if s >= 0:
            return parent * (1.0 / (1.0 + exp(-s)))
        e = exp(s)
        return parent * (e / (1.0 + e))
    if code == PP_LOG_SIGMOID:
        if s >= 0:
            return parent - log1p(exp(-s))
        return parent + (s - log1p(exp(s)))
    return s


cdef inline void _sort_by_node(double* vals, intp_t* ids, intp_t n) noexcept nogil:
    """Insertion sort of the kept nodes by node index (weights are then read in
    memory order at the next level; the result does not depend on this order)."""
    cdef intp_t i, j, ti
    cdef double tv
    for i in range(1, n):
        ti = ids[i]
        tv = vals[i]
        j = i - 1
        while j >= 0 and ids[j] > ti:
            ids[j + 1] = ids[j]
            vals[j + 1] = vals[j]
            j -= 1
        ids[j + 1] = ti
        vals[j + 1] = tv


cdef intp_t _search_one(const floating* x,             # IN  [x; bias], n_rows entries
                        const LevelWeights* W,          # IN  per-level weights
                        intp_t n_levels, size_t n_rows,
                        const int64_t* level_ptr,       # IN  tree
                        const int64_t* child_ptr,
                        const int64_t* label_perm,
                        intp_t beam, intp_t top_k, int code, int power,
                        double init,
                        double* cur_s, intp_t* cur_n,   # scratch, >= max(beam, top_k)
                        double* nxt_s, intp_t* nxt_n,
                        int64_t* out_labels,            # OUT top_k labels
                        float* out_scores               # OUT top_k scores
                        ) noexcept nogil:
    """Beam search for one query; returns the number of out-of-range indices met."""
    cdef intp_t n_bad = 0
    cdef intp_t n_cur = 1, size, cap, t, j, c, c_end, base, parent
    cdef double ps, v
    cdef double* ts
    cdef intp_t* tn
    cdef bint last
    cdef const LevelWeights* w
    cur_n[0] = 0
    cur_s[0] = init
    for t in range(1, n_levels + 1):
        w = &W[t - 1]
        base = level_ptr[t]
        last = t == n_levels
        cap = top_k if last else beam
        size = 0
        for j in range(n_cur):
            parent = cur_n[j]
            ps = cur_s[j]
            c_end = child_ptr[parent + 1]
            for c in range(child_ptr[parent], c_end):
                v = _path_score(ps, _score(w, c - base, x, n_rows, &n_bad), code, power)
                if v != v:
                    v = -INFINITY
                if last:
                    size = heap_push(nxt_s, nxt_n, size, cap, v,
                                     <intp_t> label_perm[c - base])
                else:
                    size = heap_push(nxt_s, nxt_n, size, cap, v, c)
        if last:
            heap_sort_best_first(nxt_s, nxt_n, size)
        else:
            _sort_by_node(nxt_s, nxt_n, size)
        ts = cur_s
        cur_s = nxt_s
        nxt_s = ts
        tn = cur_n
        cur_n = nxt_n
        nxt_n = tn
        n_cur = size
    for j in range(n_cur):
        out_labels[j] = cur_n[j]
        out_scores[j] = <float> cur_s[j]
    for j in range(n_cur, top_k):
        out_labels[j] = -1
        out_scores[j] = 0
    return n_bad


cdef inline double _initial(int code) noexcept nogil:
    return 1.0 if (code == PP_HINGE or code == PP_SIGMOID) else 0.0


def _check_tree_args(WeightTable weights, const int64_t[::1] level_ptr,
                     const int64_t[::1] child_ptr, const int64_t[::1] label_perm,
                     intp_t beam, intp_t top_k, int code, int power,
                     out_labels, out_scores, intp_t n_queries):
    """Cheap consistency checks guarding the nogil code (O(n_levels))."""
    cdef intp_t t, n_levels = level_ptr.shape[0] - 2
    if n_levels < 1 or n_levels != weights.n_levels:
        raise ValueError("the weights and the tree have different numbers of levels")
    if child_ptr.shape[0] != level_ptr[n_levels] + 1:
        raise ValueError("child_ptr does not match level_ptr")
    if label_perm.shape[0] != level_ptr[n_levels + 1] - level_ptr[n_levels]:
        raise ValueError("label_perm does not match level_ptr")
    for t in range(n_levels):
        if weights.levels[t].n_cols != level_ptr[t + 2] - level_ptr[t + 1]:
            raise ValueError(f"level {t + 1}: weight columns do not match the tree")
    if beam < 1 or top_k < 1:
        raise ValueError("beam and top_k must be >= 1")
    if code < PP_NOOP or code > PP_LOG_SIGMOID or (code == PP_HINGE and power < 1):
        raise ValueError(f"unknown post-processor code {code} (power {power})")
    if out_labels.shape[0] != n_queries or out_scores.shape[0] != n_queries \
            or out_labels.shape[1] != top_k or out_scores.shape[1] != top_k:
        raise ValueError("output arrays must have shape (n_queries, top_k)")


def _beam_search_csr(const floating[::1] X_data,      # IN  CSR values
                     const index_t[::1] X_indices,    # IN  CSR column indices
                     const index_t[::1] X_indptr,     # IN  CSR row pointers
                     WeightTable weights,             # IN  per-level CSC weights
                     const int64_t[::1] level_ptr,    # IN  tree (LabelTree arrays)
                     const int64_t[::1] child_ptr,    # IN
                     const int64_t[::1] label_perm,   # IN
                     double bias,
                     intp_t beam, int code, int power,
                     int64_t[:, ::1] out_labels,      # OUT (n_queries, top_k) label ids
                     float[:, ::1] out_scores,        # OUT (n_queries, top_k) scores
                     int n_threads):
    """Beam search for every row of a CSR matrix.

    The tree must be valid (a :class:`LabelTree`) and the weight columns must match
    its levels. Returns ``(n_bad_x, n_bad_w, n_failed)``: the numbers of
    out-of-range indices met in X and in the weights, and of queries skipped for
    lack of memory.
    """
    cdef intp_t n_q = X_indptr.shape[0] - 1
    cdef intp_t top_k = out_labels.shape[1]
    cdef intp_t n_rows = weights.n_rows
    cdef intp_t n_feat = n_rows - 1
    cdef intp_t n_levels = level_ptr.shape[0] - 2
    cdef intp_t cap, q, p, start, end
    cdef intp_t n_bad_x = 0, n_bad_w = 0, n_failed = 0
    cdef index_t col
    cdef double init = _initial(code)
    cdef floating* x
    cdef double* buf_s
    cdef intp_t* buf_n
    cdef const LevelWeights* W = weights.levels
    cdef const int64_t* lp
    cdef const int64_t* cp
    cdef const int64_t* perm
    _check_tree_args(weights, level_ptr, child_ptr, label_perm, beam, top_k, code,
                     power, out_labels, out_scores, n_q)
    if X_indices.shape[0] != X_data.shape[0]:
        raise ValueError("X: indices and data have different lengths")
    if n_q <= 0:
        return 0, 0, 0
    if X_indptr[0] < 0 or X_indptr[n_q] > X_data.shape[0]:
        raise ValueError("X: invalid indptr")
    lp = &level_ptr[0]
    cp = &child_ptr[0]
    perm = &label_perm[0]
    cap = beam if beam > top_k else top_k
    n_threads = max(1, min(n_threads, n_q))
    x = NULL
    buf_s = NULL
    buf_n = NULL
    with nogil, parallel(num_threads=n_threads):
        x = <floating*> calloc(n_rows, sizeof(floating))
        buf_s = <double*> malloc(2 * cap * sizeof(double))
        buf_n = <intp_t*> malloc(2 * cap * sizeof(intp_t))
        if x != NULL:
            x[n_feat] = <floating> bias
        for q in prange(n_q, schedule="dynamic"):
            if x == NULL or buf_s == NULL or buf_n == NULL:
                n_failed += 1
                continue
            start = X_indptr[q]
            end = X_indptr[q + 1]
            if start < 0 or end > X_data.shape[0]:
                start = end  # malformed indptr: treat the row as empty
                n_bad_x += 1
            for p in range(start, end):
                col = X_indices[p]
                if 0 <= col < n_feat:
                    x[col] += X_data[p]
                else:
                    n_bad_x += 1
            n_bad_w += _search_one(x, W, n_levels, n_rows, lp, cp, perm, beam, top_k,
                                   code, power, init, buf_s, buf_n, buf_s + cap,
                                   buf_n + cap, &out_labels[q, 0], &out_scores[q, 0])
            for p in range(start, end):
                col = X_indices[p]
                if 0 <= col < n_feat:
                    x[col] = 0
        free(x)
        free(buf_s)
        free(buf_n)
    return n_bad_x, n_bad_w, n_failed


def _beam_search_dense(const floating[:, ::1] X,       # IN  (n_queries, n_features)
                       WeightTable weights,            # IN  per-level CSC weights
                       const int64_t[::1] level_ptr,   # IN  tree (LabelTree arrays)
                       const int64_t[::1] child_ptr,   # IN
                       const int64_t[::1] label_perm,  # IN
                       double bias,
                       intp_t beam, int code, int power,
                       int64_t[:, ::1] out_labels,     # OUT (n_queries, top_k) labels
                       float[:, ::1] out_scores,       # OUT (n_queries, top_k) scores
                       int n_threads):
    """Beam search for every row of a C-contiguous dense matrix; see
    :func:`_beam_search_csr` (same results, same return value)."""
    cdef intp_t n_q = X.shape[0]
    cdef intp_t top_k = out_labels.shape[1]
    cdef intp_t n_rows = weights.n_rows
    cdef intp_t n_feat = n_rows - 1
    cdef intp_t n_levels = level_ptr.shape[0] - 2
    cdef intp_t cap, q, j
    cdef intp_t n_bad_w = 0, n_failed = 0
    cdef double init = _initial(code)
    cdef floating* x
    cdef double* buf_s
    cdef intp_t* buf_n
    cdef const LevelWeights* W = weights.levels
    cdef const int64_t* lp
    cdef const int64_t* cp
    cdef const int64_t* perm
    _check_tree_args(weights, level_ptr, child_ptr, label_perm, beam, top_k, code,
                     power, out_labels, out_scores, n_q)
    if X.shape[1] != n_feat:
        raise ValueError(f"X has {X.shape[1]} features, the weights {n_feat}")
    if n_q <= 0:
        return 0, 0, 0
    lp = &level_ptr[0]
    cp = &child_ptr[0]
    perm = &label_perm[0]
    cap = beam if beam > top_k else top_k
    n_threads = max(1, min(n_threads, n_q))
    x = NULL
    buf_s = NULL
    buf_n = NULL
    with nogil, parallel(num_threads=n_threads):
        x = <floating*> malloc(n_rows * sizeof(floating))
        buf_s = <double*> malloc(2 * cap * sizeof(double))
        buf_n = <intp_t*> malloc(2 * cap * sizeof(intp_t))
        if x != NULL:
            x[n_feat] = <floating> bias
        for q in prange(n_q, schedule="dynamic"):
            if x == NULL or buf_s == NULL or buf_n == NULL:
                n_failed += 1
                continue
            for j in range(n_feat):
                x[j] = X[q, j]
            n_bad_w += _search_one(x, W, n_levels, n_rows, lp, cp, perm, beam, top_k,
                                   code, power, init, buf_s, buf_n, buf_s + cap,
                                   buf_n + cap, &out_labels[q, 0], &out_scores[q, 0])
        free(x)
        free(buf_s)
        free(buf_n)
    return 0, n_bad_w, n_failed
