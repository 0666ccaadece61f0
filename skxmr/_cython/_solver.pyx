"""Dual coordinate descent for a batch of small L2-regularised binary linear problems.

Each problem ("node") ``k`` owns the instances ``rows[node_ptr[k]:node_ptr[k + 1]]`` of a
CSR matrix X, with labels ``y_i`` in {-1, +1} and costs ``C_i > 0``, and minimises

    0.5 |w|^2 + sum_i C_i loss(y_i w.x_i),      x_i = [row of X, bias]

(the last coordinate of w is the weight of a constant feature of value ``bias``).
Nodes are independent and run in parallel (``prange`` over groups of consecutive
nodes, dynamic schedule; a group is a run of nodes with identical row lists, by
default one node per group); everything a node computes depends only on its own
data and its seed, so the result depends neither on the number of threads nor on
the grouping.

Per group, then per node of the group:

1. local copy (once per group, then shared read-only by its nodes): the group's
   rows are copied into a local CSR whose features are renumbered
   ``0..n_local-1`` in increasing global order (by a table over the rows'
   feature range when that range is at most twice its nonzeros, else by a
   radix sort of (feature, position) pairs).
   All working memory is proportional to the node (its nonzeros, rows and
   distinct features), never to ``n_samples`` or ``n_features``.
2. solver (w, the dual variables, dot products and updates in float64: a float32
   w is ~15% faster on nodes whose w outgrows the L2 cache, but its rounding drifts
   away from ``sum_i a_i y_i x_i`` over long runs and stalls tight tolerances):

   - ``squared_hinge`` / ``hinge``: dual coordinate descent with shrinking (Hsieh et
     al., ICML 2008, Algorithm 3). Dual: ``min 0.5 a'Qa + 0.5 sum D_ii a_i^2 - sum a_i``
     subject to ``0 <= a_i <= U_i``; squared hinge: ``D_ii = 1/(2 C_i)``, ``U_i = inf``;
     hinge: ``D_ii = 0``, ``U_i = C_i``. One outer iteration visits the active
     variables in a random order; a variable at a bound whose gradient points
     outwards beyond the previous iteration's extreme projected gradients
     (``G > PGmax_old`` at 0, ``G < PGmin_old`` at ``U_i``) is removed from the
     active set. Stop when ``PGmax - PGmin <= tol`` (absolute, as liblinear's
     ``eps``) over the active set; if variables were shrunk, re-check once with all
     variables active before stopping. At most ``max_iter`` outer iterations.
   - ``log``: dual coordinate descent for logistic regression (Yu, Huang and Lin,
     2011). Dual: ``min 0.5 a'Qa + sum a_i log a_i + (C_i - a_i) log(C_i - a_i)``,
     ``0 < a_i < C_i``; ``a_i`` and ``C_i - a_i`` are both stored (no cancellation
     near ``C_i``). Each one-variable problem is solved by Newton's method on the
     side of ``C_i / 2`` where its root lies, in the variable that is at most
     ``C_i / 2`` (``a_i`` or ``C_i - a_i``), where the derivative is increasing and
     concave, so Newton converges monotonically once below the root; a step that
     leaves the domain is replaced by shrinking the variable tenfold. Start:
     ``a_i = min(1e-3 C_i, 1e-8)``. Stop when ``max_i |grad_i| <= tol`` over one
     outer iteration (gradient taken before each update), or after ``max_iter``
     outer iterations. No shrinking (no variable sits at a bound).

   Visiting orders: per outer iteration a Fisher-Yates shuffle driven by a
   splitmix64 stream seeded from ``seed`` and the node's index, of the node's
   active variables; except for (squared) hinge groups whose rows use at least
   LOCKSTEP_MIN_FEATURES features: there outer iteration ``t`` visits the
   active rows in the ``t``-th order of one stream seeded from ``seed`` alone,
   the same for every node, so that the group's nodes are solved in lockstep,
   in chunks of up to LOCKSTEP_MAX_NODES nodes whose weights are stored
   row-major side by side (``W[j * K + k]``). At each row, the row's entries are
   read once and multiply the K contiguous weights of feature ``j`` (a loop
   the compiler vectorises) instead of K scattered ones, then every node that
   moved updates its column. A node's arithmetic is the same as alone (same
   order, same partial sums), so its weights do not depend on the chunk, the
   grouping or the threads. (Narrow groups keep a node's weights in the L1
   cache node by node: lockstep does not pay there, measured.)

3. output: weights kept where ``w_j != 0 and |w_j| >= threshold`` (compared in
   float32; the bias weight follows the same rule), written in increasing global
   feature order (bias last, row ``n_features``) into a per-node malloc'ed buffer;
   after the parallel loop the buffers are concatenated into the CSC arrays.
"""

from cython.parallel cimport prange
from libc.math cimport fabs, log, INFINITY
from libc.stdint cimport int8_t, uint64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy

from skxmr._cython._radix cimport sort_by_feature
from skxmr._cython._random cimport _node_seed, _splitmix64
from skxmr._cython._typedefs cimport intp_t, int32_t, int64_t, index_t

import numpy as np

cdef enum:
    LOSS_SQUARED_HINGE = 0
    LOSS_HINGE = 1
    LOSS_LOG = 2
    NEWTON_MAX_ITER = 100
    # (Squared) hinge nodes that share their rows are solved in lockstep chunks
    # of at most this many nodes, whose weights take at most LOCKSTEP_MAX_BYTES.
    LOCKSTEP_MAX_NODES = 32
    # Groups whose rows use fewer features run one node at a time, each node
    # with its own stream (as the log loss).
    LOCKSTEP_MIN_FEATURES = 4096
    # Chunks of fewer nodes than this take the nodes one at a time through a row.
    BLOCK_MIN_NODES = 4


# Weights of one lockstep chunk at most (bytes; a chunk has at least one node).
cdef intp_t LOCKSTEP_MAX_BYTES = 64 << 20

# Test hook: the node whose allocation is made to fail (-1: none).
cdef intp_t _FAIL_NODE = -1


def _set_fail_node(intp_t node):
    """Test only: pretend that memory runs out while training node ``node``."""
    global _FAIL_NODE
    _FAIL_NODE = node


def _set_lockstep_max_bytes(intp_t max_bytes):
    """Test only: cap the weights of a lockstep chunk; return the previous cap."""
    global LOCKSTEP_MAX_BYTES
    previous = LOCKSTEP_MAX_BYTES
    LOCKSTEP_MAX_BYTES = max_bytes
    return previous


LOSSES = {"squared_hinge": LOSS_SQUARED_HINGE, "hinge": LOSS_HINGE, "log": LOSS_LOG}


cdef struct LocalProblem:
    intp_t n_rows
    intp_t n_local       # distinct features used by the rows
    intp_t* ptr          # (n_rows + 1,) local CSR row pointers
    int32_t* cols        # local feature ids
    float* vals
    int32_t* features    # (n_local,) global feature ids, increasing


cdef inline void _shuffle(intp_t* index, intp_t n, uint64_t* state) noexcept nogil:
    """Fisher-Yates shuffle. The position in ``[0, n - j)`` is the high half of
    a 32 x 32-bit product (Lemire's multiply-shift; no division, bias below
    n / 2**32, nil for the visiting order); rows beyond 2**32 use a modulo."""
    cdef intp_t j, r, tmp
    cdef uint64_t m
    for j in range(n - 1):
        m = <uint64_t> (n - j)
        if m <= <uint64_t> 0xFFFFFFFF:
            r = j + <intp_t> (((_splitmix64(state) >> 32) * m) >> 32)
        else:
            r = j + <intp_t> (_splitmix64(state) % m)
        tmp = index[j]
        index[j] = index[r]
        index[r] = tmp


cdef int _build_local(const float* data, const index_t* indices, const index_t* indptr,
                      const intp_t* rows, intp_t n_rows,
                      LocalProblem* lp) noexcept nogil:
    """Copy the rows into ``lp`` with compact feature ids. 0, or -1 out of memory.

    Two ways to rank the features, with the same result: when the node's feature
    range ``max - min + 1`` is at most twice its nonzeros, a table over that range
    (mark, prefix count, look up); otherwise a radix sort of (feature, position)
    pairs. Either way the scratch is O(nonzeros of the node). On failure the caller
    still frees ``lp``'s buffers (NULL or allocated).
    """
    cdef intp_t r, p, q = 0, nnz = 0, j, n_local = 0
    cdef uint64_t feature, prev = 0, max_feature = 0, min_feature = <uint64_t> -1
    cdef uint64_t span
    cdef uint64_t* keys = NULL
    cdef uint64_t* tmp = NULL
    cdef uint64_t* ordered
    cdef int32_t* seen
    cdef int32_t* table
    for r in range(n_rows):
        for p in range(indptr[rows[r]], indptr[rows[r] + 1]):
            feature = <uint64_t> indices[p]
            if feature > max_feature:
                max_feature = feature
            if feature < min_feature:
                min_feature = feature
        nnz += indptr[rows[r] + 1] - indptr[rows[r]]
    lp.n_rows = n_rows
    lp.ptr = <intp_t*> malloc((n_rows + 1) * sizeof(intp_t))
    lp.cols = <int32_t*> malloc((nnz + 1) * sizeof(int32_t))
    lp.vals = <float*> malloc((nnz + 1) * sizeof(float))
    if lp.ptr == NULL or lp.cols == NULL or lp.vals == NULL:
        return -1
    if nnz == 0:
        lp.ptr[0] = 0
        for r in range(n_rows):
            lp.ptr[r + 1] = 0
        lp.n_local = 0
        lp.features = <int32_t*> malloc(sizeof(int32_t))
        return 0 if lp.features != NULL else -1
    span = max_feature - min_feature + 1
    if span <= <uint64_t> (2 * nnz):
        table = <int32_t*> calloc(span, sizeof(int32_t))
        if table == NULL:
            return -1
        for r in range(n_rows):
            lp.ptr[r] = q
            for p in range(indptr[rows[r]], indptr[rows[r] + 1]):
                table[<uint64_t> indices[p] - min_feature] = 1
                lp.vals[q] = data[p]
                q += 1
        lp.ptr[n_rows] = q
        for j in range(<intp_t> span):
            if table[j]:
                n_local += 1
        lp.n_local = n_local
        lp.features = <int32_t*> malloc((n_local + 1) * sizeof(int32_t))
        if lp.features == NULL:
            free(table)
            return -1
        n_local = 0
        for j in range(<intp_t> span):
            if table[j]:
                lp.features[n_local] = <int32_t> (j + min_feature)
                table[j] = <int32_t> n_local
                n_local += 1
        q = 0
        for r in range(n_rows):
            for p in range(indptr[rows[r]], indptr[rows[r] + 1]):
                lp.cols[q] = table[<uint64_t> indices[p] - min_feature]
                q += 1
        free(table)
        return 0
    keys = <uint64_t*> malloc((nnz + 1) * sizeof(uint64_t))
    tmp = <uint64_t*> malloc((nnz + 1) * sizeof(uint64_t))
    if keys == NULL or tmp == NULL:
        free(keys)
        free(tmp)
        return -1
    for r in range(n_rows):
        lp.ptr[r] = q
        for p in range(indptr[rows[r]], indptr[rows[r] + 1]):
            keys[q] = (<uint64_t> indices[p] << 32) | <uint64_t> q
            lp.vals[q] = data[p]
            q += 1
    lp.ptr[n_rows] = q
    ordered = sort_by_feature(keys, tmp, nnz, max_feature)
    # The buffer not holding the sorted keys collects the distinct features.
    seen = <int32_t*> (tmp if ordered == keys else keys)
    for j in range(nnz):
        feature = ordered[j] >> 32
        if n_local == 0 or feature != prev:
            seen[n_local] = <int32_t> feature
            n_local += 1
            prev = feature
        lp.cols[ordered[j] & <uint64_t> 0xFFFFFFFF] = <int32_t> (n_local - 1)
    lp.n_local = n_local
    lp.features = <int32_t*> malloc((n_local + 1) * sizeof(int32_t))
    if lp.features != NULL:
        memcpy(lp.features, seen, n_local * sizeof(int32_t))
    free(keys)
    free(tmp)
    return 0 if lp.features != NULL else -1


cdef inline double _dot(const LocalProblem* lp, intp_t i, const double* w,
                        intp_t stride, double bias) noexcept nogil:
    """``w . x_i`` (bias included) for ``w[j * stride]``, j = 0..n_local.

    Four partial sums: the loop is bound by the latency of the additions, not by
    the loads. The order is fixed, and :func:`_dot_block` does the very same
    arithmetic, so a node's result does not depend on which of the two runs."""
    cdef intp_t p = lp.ptr[i], end = lp.ptr[i + 1]
    cdef const int32_t* cols = lp.cols
    cdef const float* vals = lp.vals
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    while p + 4 <= end:
        s0 += w[cols[p] * stride] * vals[p]
        s1 += w[cols[p + 1] * stride] * vals[p + 1]
        s2 += w[cols[p + 2] * stride] * vals[p + 2]
        s3 += w[cols[p + 3] * stride] * vals[p + 3]
        p += 4
    while p < end:
        s0 += w[cols[p] * stride] * vals[p]
        p += 1
    return ((s0 + s1) + (s2 + s3)) + w[lp.n_local * stride] * bias


cdef inline void _axpy(const LocalProblem* lp, intp_t i, double d, double* w,
                       intp_t stride, double bias) noexcept nogil:
    """``w += d x_i`` for ``w[j * stride]``."""
    cdef intp_t p
    for p in range(lp.ptr[i], lp.ptr[i + 1]):
        w[lp.cols[p] * stride] += d * lp.vals[p]
    w[lp.n_local * stride] += d * bias


cdef void _dot_block(const LocalProblem* lp, intp_t i, const double* W, intp_t K,
                     double bias, double* acc, double* out) noexcept nogil:
    """``out[k] = W[:, k] . x_i`` for the ``K`` columns of the row-major ``W``
    (``W[j * K + k]``), with :func:`_dot`'s arithmetic for each column: a row's
    entries are read once and each multiplies ``K`` contiguous weights (a loop
    the compiler vectorises) instead of ``K`` scattered ones. ``acc``: 4 K doubles."""
    cdef intp_t p = lp.ptr[i], end = lp.ptr[i + 1], k
    cdef const int32_t* cols = lp.cols
    cdef const float* vals = lp.vals
    cdef double* s0 = acc
    cdef double* s1 = acc + K
    cdef double* s2 = acc + 2 * K
    cdef double* s3 = acc + 3 * K
    cdef const double* w0
    cdef const double* w1
    cdef const double* w2
    cdef const double* w3
    cdef double v0, v1, v2, v3
    memset(acc, 0, 4 * K * sizeof(double))
    while p + 4 <= end:
        w0 = W + cols[p] * K
        w1 = W + cols[p + 1] * K
        w2 = W + cols[p + 2] * K
        w3 = W + cols[p + 3] * K
        v0 = vals[p]
        v1 = vals[p + 1]
        v2 = vals[p + 2]
        v3 = vals[p + 3]
        for k in range(K):
            s0[k] += w0[k] * v0
            s1[k] += w1[k] * v1
            s2[k] += w2[k] * v2
            s3[k] += w3[k] * v3
        p += 4
    while p < end:
        w0 = W + cols[p] * K
        v0 = vals[p]
        for k in range(K):
            s0[k] += w0[k] * v0
        p += 1
    w0 = W + lp.n_local * K
    for k in range(K):
        out[k] = ((s0[k] + s1[k]) + (s2[k] + s3[k])) + w0[k] * bias


cdef void _axpy_block(const LocalProblem* lp, intp_t i, double* W, intp_t K,
                      const double* d, double bias) noexcept nogil:
    """``W[:, k] += d[k] x_i`` for all ``K`` columns (``d[k] = 0``: unchanged)."""
    cdef intp_t p, k
    cdef double* w0
    cdef double v0
    for p in range(lp.ptr[i], lp.ptr[i + 1]):
        w0 = W + lp.cols[p] * K
        v0 = lp.vals[p]
        for k in range(K):
            w0[k] += d[k] * v0
    w0 = W + lp.n_local * K
    for k in range(K):
        w0[k] += d[k] * bias


cdef inline double _sq_norm(const LocalProblem* lp, intp_t i, double bias) noexcept nogil:
    cdef intp_t p
    cdef double s = bias * bias
    for p in range(lp.ptr[i], lp.ptr[i + 1]):
        s += <double> lp.vals[p] * lp.vals[p]
    return s


cdef struct SvmScratch:
    # Per row (n_rows): the visiting order and |x_i|^2 (bias included).
    intp_t* order
    double* sq_norm
    # Per (row, node) of a chunk, row-major: dual variables, active flags, and
    # the nodes' labels and costs (gathered from the entries once per chunk).
    double* alpha
    unsigned char* active
    int8_t* y
    double* cost
    # Per node of a chunk.
    double* pg_max
    double* pg_min
    double* pg_max_old
    double* pg_min_old
    intp_t* n_active
    unsigned char* done
    intp_t* listed     # the nodes active at the current row
    double* dots
    double* steps      # the update of each node at the current row (0: none)
    double* acc        # 4 K partial sums of _dot_block


cdef int _svm_scratch(SvmScratch* sc, intp_t n, intp_t K) noexcept nogil:
    """Allocate ``sc`` for ``n`` rows and chunks of up to ``K`` nodes: 0 or -1."""
    memset(sc, 0, sizeof(SvmScratch))
    sc.order = <intp_t*> malloc(n * sizeof(intp_t))
    sc.sq_norm = <double*> malloc(n * sizeof(double))
    sc.alpha = <double*> malloc(n * K * sizeof(double))
    sc.active = <unsigned char*> malloc(n * K)
    sc.y = <int8_t*> malloc(n * K)
    sc.cost = <double*> malloc(n * K * sizeof(double))
    sc.pg_max = <double*> malloc(4 * K * sizeof(double))
    sc.n_active = <intp_t*> malloc(K * sizeof(intp_t))
    sc.done = <unsigned char*> malloc(K)
    sc.listed = <intp_t*> malloc(K * sizeof(intp_t))
    sc.dots = <double*> calloc(2 * K, sizeof(double))
    sc.acc = <double*> malloc(4 * K * sizeof(double))
    if (sc.order == NULL or sc.sq_norm == NULL or sc.alpha == NULL
            or sc.active == NULL or sc.y == NULL or sc.cost == NULL
            or sc.pg_max == NULL or sc.n_active == NULL
            or sc.done == NULL or sc.listed == NULL or sc.dots == NULL
            or sc.acc == NULL):
        return -1
    sc.pg_min = sc.pg_max + K
    sc.pg_max_old = sc.pg_max + 2 * K
    sc.pg_min_old = sc.pg_max + 3 * K
    sc.steps = sc.dots + K
    return 0


cdef void _free_svm_scratch(SvmScratch* sc) noexcept nogil:
    free(sc.order)
    free(sc.sq_norm)
    free(sc.alpha)
    free(sc.active)
    free(sc.y)
    free(sc.cost)
    free(sc.pg_max)
    free(sc.n_active)
    free(sc.done)
    free(sc.listed)
    free(sc.dots)
    free(sc.acc)


cdef inline bint _svm_step(double G, double old, double upper, double qbar,
                           double pg_max_old, double pg_min_old, double* PG,
                           double* a) noexcept nogil:
    """One coordinate of Hsieh et al.'s dual CD, at gradient ``G`` of a variable
    of value ``old`` in ``[0, upper]`` (``qbar``: its diagonal). True: shrink
    it. Else its projected gradient ``PG`` and new value ``a`` (``old``: no move)."""
    PG[0] = 0
    a[0] = old
    if old == 0:
        if G > pg_max_old:
            return True
        if G < 0:
            PG[0] = G
    elif old >= upper:
        if G < pg_min_old:
            return True
        if G > 0:
            PG[0] = G
    else:
        PG[0] = G
    if fabs(PG[0]) > 1e-12:
        if qbar > 0:
            a[0] = old - G / qbar
            if a[0] < 0:
                a[0] = 0
            elif a[0] > upper:
                a[0] = upper
        else:
            # Hinge loss, empty row, no bias: the dual is linear in a_i.
            a[0] = upper if G < 0 else 0
    return False


cdef void _solve_svm_node(const LocalProblem* lp, const int8_t* y, const double* cost,
                          double bias, bint hinge, double tol, int max_iter,
                          uint64_t* state, double* w, int* n_iter, double* alpha,
                          intp_t* index) noexcept nogil:
    """Hsieh et al. (2008) dual CD with shrinking for one node, visiting its
    active variables in the orders of its own stream ``state``; ``w`` zero on
    entry. Scratch: ``alpha`` (4 n_rows doubles) and ``index`` (n_rows)."""
    cdef intp_t n = lp.n_rows, i, s, active = n, tmp
    cdef double* diag = alpha + n
    cdef double* qbar = alpha + 2 * n
    cdef double* upper = alpha + 3 * n
    cdef double G, PG, pg_max, pg_min, a, d
    cdef double pg_max_old = INFINITY, pg_min_old = -INFINITY
    cdef int it = 0
    for i in range(n):
        alpha[i] = 0
        index[i] = i
        diag[i] = 0 if hinge else 0.5 / cost[i]
        upper[i] = cost[i] if hinge else INFINITY
        qbar[i] = _sq_norm(lp, i, bias) + diag[i]
    while it < max_iter:
        it += 1
        _shuffle(index, active, state)
        pg_max = -INFINITY
        pg_min = INFINITY
        s = 0
        while s < active:
            i = index[s]
            G = y[i] * _dot(lp, i, w, 1, bias) - 1 + diag[i] * alpha[i]
            if _svm_step(G, alpha[i], upper[i], qbar[i], pg_max_old, pg_min_old,
                         &PG, &a):
                # Shrink: swap with the last active variable, revisit slot s.
                active -= 1
                tmp = index[s]
                index[s] = index[active]
                index[active] = tmp
                continue
            if PG > pg_max:
                pg_max = PG
            if PG < pg_min:
                pg_min = PG
            d = (a - alpha[i]) * y[i]
            alpha[i] = a
            if d != 0:
                _axpy(lp, i, d, w, 1, bias)
            s += 1
        if pg_max - pg_min <= tol:
            if active == n:
                break
            # Converged on the shrunk problem: check again with every variable.
            active = n
            pg_max_old = INFINITY
            pg_min_old = -INFINITY
            continue
        pg_max_old = pg_max if pg_max > 0 else INFINITY
        pg_min_old = pg_min if pg_min < 0 else -INFINITY
    n_iter[0] = it


cdef void _solve_svm(const LocalProblem* lp, intp_t K, const int8_t* y,
                     const double* cost, const intp_t* entry, double bias, bint hinge,
                     double tol, int max_iter, uint64_t seed, double* W, int* n_iter,
                     SvmScratch* sc) noexcept nogil:
    """Hsieh et al. (2008) dual CD with shrinking for ``K`` nodes that share the
    rows of ``lp``, run in lockstep; node ``k``'s labels and costs are
    ``y[entry[k] + i]``, ``cost[entry[k] + i]``. ``W`` (zero on entry) holds the
    weights row-major, ``W[j * K + k]``.

    Outer iteration ``t`` visits the rows in one order (a shuffle of the
    previous order, driven by a stream seeded by ``seed`` alone) and, at each
    row, every node for which the row is still active; nodes stop on their own
    criterion. A node's updates depend only on the order and its own variables
    (:func:`_dot_block` and :func:`_dot` do the same arithmetic), so its weights
    are the same whichever nodes share its chunk. ``sc.sq_norm`` must hold the rows'
    squared norms.
    """
    cdef intp_t n = lp.n_rows, i, s, k, j, n_listed, n_moved, n_done = 0
    cdef uint64_t state = _node_seed(seed, 0)
    cdef double G, PG, a, old, d, diag, upper
    cdef int it = 0
    cdef int8_t yi
    for s in range(n):
        sc.order[s] = s
    memset(sc.alpha, 0, n * K * sizeof(double))
    memset(sc.active, 1, n * K)
    memset(sc.done, 0, K)
    memset(sc.steps, 0, K * sizeof(double))
    for i in range(n):
        for k in range(K):
            sc.y[i * K + k] = y[entry[k] + i]
            sc.cost[i * K + k] = cost[entry[k] + i]
    for k in range(K):
        sc.n_active[k] = n
        sc.pg_max_old[k] = INFINITY
        sc.pg_min_old[k] = -INFINITY
        n_iter[k] = 0
    while n_done < K and it < max_iter:
        it += 1
        _shuffle(sc.order, n, &state)
        for k in range(K):
            sc.pg_max[k] = -INFINITY
            sc.pg_min[k] = INFINITY
        for s in range(n):
            i = sc.order[s]
            n_listed = 0
            for k in range(K):
                if not sc.done[k] and sc.active[i * K + k]:
                    sc.listed[n_listed] = k
                    n_listed += 1
            if n_listed == 0:
                continue
            if K >= BLOCK_MIN_NODES and 8 * n_listed >= K:
                _dot_block(lp, i, W, K, bias, sc.acc, sc.dots)
            else:
                for j in range(n_listed):
                    k = sc.listed[j]
                    sc.dots[k] = _dot(lp, i, W + k, K, bias)
            n_moved = 0
            for j in range(n_listed):
                k = sc.listed[j]
                yi = sc.y[i * K + k]
                if hinge:
                    diag = 0
                    upper = sc.cost[i * K + k]
                else:
                    diag = 0.5 / sc.cost[i * K + k]
                    upper = INFINITY
                old = sc.alpha[i * K + k]
                G = yi * sc.dots[k] - 1 + diag * old
                if _svm_step(G, old, upper, sc.sq_norm[i] + diag, sc.pg_max_old[k],
                             sc.pg_min_old[k], &PG, &a):
                    sc.active[i * K + k] = 0  # shrink
                    sc.n_active[k] -= 1
                    continue
                if PG > sc.pg_max[k]:
                    sc.pg_max[k] = PG
                if PG < sc.pg_min[k]:
                    sc.pg_min[k] = PG
                d = (a - old) * yi
                sc.alpha[i * K + k] = a
                if d != 0:
                    sc.steps[k] = d
                    n_moved += 1
            if n_moved == 0:
                continue
            if K >= BLOCK_MIN_NODES and 8 * n_moved >= K:
                _axpy_block(lp, i, W, K, sc.steps, bias)
            else:
                for j in range(n_listed):
                    k = sc.listed[j]
                    if sc.steps[k] != 0:
                        _axpy(lp, i, sc.steps[k], W + k, K, bias)
            for j in range(n_listed):
                sc.steps[sc.listed[j]] = 0
        for k in range(K):
            if sc.done[k]:
                continue
            n_iter[k] = it
            if sc.pg_max[k] - sc.pg_min[k] <= tol:
                if sc.n_active[k] == n:
                    sc.done[k] = 1
                    n_done += 1
                    continue
                # Converged on the shrunk problem: check again with every variable.
                for i in range(n):
                    sc.active[i * K + k] = 1
                sc.n_active[k] = n
                sc.pg_max_old[k] = INFINITY
                sc.pg_min_old[k] = -INFINITY
                continue
            sc.pg_max_old[k] = sc.pg_max[k] if sc.pg_max[k] > 0 else INFINITY
            sc.pg_min_old[k] = sc.pg_min[k] if sc.pg_min[k] < 0 else -INFINITY


cdef inline double _newton_small(double Q, double b, double u0, double C,
                                 double u) noexcept nogil:
    """Root in ``(0, C/2]`` of ``F(u) = Q (u - u0) + b + log(u) - log(C - u)``.

    ``F`` is increasing and concave there; start from ``u`` in ``(0, C/2]``.
    """
    cdef double F, dF, u_new
    cdef int k
    for k in range(NEWTON_MAX_ITER):
        F = Q * (u - u0) + b + log(u) - log(C - u)
        if F == 0:
            break
        dF = Q + C / (u * (C - u))
        u_new = u - F / dF
        if not (u_new > 0):
            u_new = 0.1 * u
        if u_new > 0.5 * C:
            u_new = 0.5 * C
        if fabs(u_new - u) <= 1e-13 * u or not (u_new > 1e-300):
            u = u_new if u_new > 1e-300 else u
            break
        u = u_new
    return u


cdef int _solve_log(const LocalProblem* lp, const int8_t* y, const double* cost,
                    double bias, double tol, int max_iter, uint64_t* state, double* w,
                    int* n_iter, double* alpha, intp_t* index) noexcept nogil:
    """Yu, Huang and Lin (2011) dual CD for logistic regression; scratch as
    :func:`_solve_svm` (3 n_rows doubles used). Returns 0."""
    cdef intp_t n = lp.n_rows, i, s
    cdef double* beta
    cdef double* qdiag
    cdef double b, G, g_max, C, a, c, u, delta
    cdef int it = 0
    beta = alpha + n
    qdiag = alpha + 2 * n
    for i in range(n):
        index[i] = i
        qdiag[i] = _sq_norm(lp, i, bias)
        alpha[i] = 1e-3 * cost[i] if 1e-3 * cost[i] < 1e-8 else 1e-8
        beta[i] = cost[i] - alpha[i]
        _axpy(lp, i, alpha[i] * y[i], w, 1, bias)
    while it < max_iter:
        it += 1
        _shuffle(index, n, state)
        g_max = 0
        for s in range(n):
            i = index[s]
            b = y[i] * _dot(lp, i, w, 1, bias)
            G = b + log(alpha[i] / beta[i])
            if fabs(G) > g_max:
                g_max = fabs(G)
            C = cost[i]
            a = alpha[i]
            c = beta[i]
            # The derivative in the new alpha, at alpha = C/2, is Q (C/2 - a) + b.
            if qdiag[i] * 0.5 * (c - a) + b >= 0:
                u = _newton_small(qdiag[i], b, a, C, a if a < 0.5 * C else 0.5 * C)
                delta = u - a
                alpha[i] = u
                beta[i] = C - u
            else:
                u = _newton_small(qdiag[i], -b, c, C, c if c < 0.5 * C else 0.5 * C)
                delta = c - u
                beta[i] = u
                alpha[i] = C - u
            if delta != 0:
                _axpy(lp, i, delta * y[i], w, 1, bias)
        if g_max <= tol:
            break
    n_iter[0] = it
    return 0


cdef int _keep_weights(const LocalProblem* lp, const double* w, intp_t stride,
                       double bias, double threshold, int32_t n_features,
                       int32_t** out_idx, float** out_val,
                       intp_t* out_cnt) noexcept nogil:
    """Write the kept weights of ``w[j * stride]`` to new buffers, in increasing
    global feature order (bias last, row ``n_features``). 0, or -1 out of memory."""
    cdef intp_t j, count = 0
    cdef intp_t n_w = lp.n_local + 1 if bias != 0 else lp.n_local
    cdef float v
    for j in range(n_w):
        v = <float> w[j * stride]
        if v != 0 and fabs(v) >= threshold:
            count += 1
    out_idx[0] = <int32_t*> malloc((count + 1) * sizeof(int32_t))
    out_val[0] = <float*> malloc((count + 1) * sizeof(float))
    if out_idx[0] == NULL or out_val[0] == NULL:
        return -1
    count = 0
    for j in range(n_w):
        v = <float> w[j * stride]
        if v != 0 and fabs(v) >= threshold:
            out_idx[0][count] = lp.features[j] if j < lp.n_local else n_features
            out_val[0][count] = v
            count += 1
    out_cnt[0] = count
    return 0


cdef intp_t _train_svm_group(intp_t first, intp_t last, const intp_t* node_ptr,
                             const LocalProblem* lp, const int8_t* y,
                             const double* cost, bint hinge, double bias, double tol,
                             int max_iter, double threshold, uint64_t seed,
                             int32_t n_features, int32_t** out_idx, float** out_val,
                             intp_t* out_cnt, int* n_iter) noexcept nogil:
    """Train the (squared) hinge nodes ``first..last-1`` on their shared local
    copy ``lp`` (at least one row) in lockstep chunks of up to
    ``LOCKSTEP_MAX_NODES`` nodes (fewer when the chunk's weights would pass
    ``LOCKSTEP_MAX_BYTES``). Return the number of nodes that ran out of memory."""
    cdef SvmScratch sc
    cdef intp_t n = lp.n_rows, c0, c1, k, i, node, failed = 0
    cdef intp_t per_node = (lp.n_local + 1) * sizeof(double) + n * (sizeof(double) + 10)
    cdef intp_t K = last - first
    cdef double* W = NULL
    cdef intp_t* entry = NULL
    if K > LOCKSTEP_MAX_NODES:
        K = LOCKSTEP_MAX_NODES
    if K * per_node > LOCKSTEP_MAX_BYTES:
        K = LOCKSTEP_MAX_BYTES // per_node
        if K < 1:
            K = 1
    if (_svm_scratch(&sc, n, K) != 0
            or (W := <double*> malloc((lp.n_local + 1) * K * sizeof(double))) == NULL
            or (entry := <intp_t*> malloc(K * sizeof(intp_t))) == NULL):
        for node in range(first, last):
            n_iter[node] = 0
            out_cnt[node] = 0
        _free_svm_scratch(&sc)
        free(W)
        free(entry)
        return last - first
    for i in range(n):
        sc.sq_norm[i] = _sq_norm(lp, i, bias)
    c0 = first
    while c0 < last:
        c1 = c0 + K if c0 + K < last else last
        for k in range(c1 - c0):
            entry[k] = node_ptr[c0 + k]
        memset(W, 0, (lp.n_local + 1) * (c1 - c0) * sizeof(double))
        _solve_svm(lp, c1 - c0, y, cost, entry, bias, hinge, tol, max_iter, seed, W,
                   &n_iter[c0], &sc)
        for k in range(c1 - c0):
            node = c0 + k
            out_cnt[node] = 0
            if node == _FAIL_NODE or _keep_weights(
                    lp, W + k, c1 - c0, bias, threshold, n_features, &out_idx[node],
                    &out_val[node], &out_cnt[node]) != 0:
                n_iter[node] = 0
                failed += 1
        c0 = c1
    _free_svm_scratch(&sc)
    free(W)
    free(entry)
    return failed


cdef intp_t _train_one_by_one(intp_t first, intp_t last, const intp_t* node_ptr,
                              const LocalProblem* lp, const int8_t* y,
                              const double* cost, int loss, double bias, double tol,
                              int max_iter, double threshold, uint64_t seed,
                              int32_t n_features, int32_t** out_idx, float** out_val,
                              intp_t* out_cnt, int* n_iter,
                              intp_t node_offset) noexcept nogil:
    """Train nodes ``first..last-1`` one after the other on their shared local
    copy ``lp`` (at least one row); node ``node`` draws the random stream of node
    ``node_offset + node``. Return the number that ran out of memory."""
    cdef intp_t n = lp.n_rows, node, start, failed = 0
    cdef uint64_t state
    cdef double* w = <double*> malloc((lp.n_local + 1) * sizeof(double))
    cdef double* alpha = <double*> malloc(4 * n * sizeof(double))
    cdef intp_t* index = <intp_t*> malloc(n * sizeof(intp_t))
    for node in range(first, last):
        start = node_ptr[node]
        n_iter[node] = 0
        out_cnt[node] = 0
        if w == NULL or alpha == NULL or index == NULL or node == _FAIL_NODE:
            failed += 1
            continue
        state = _node_seed(seed, node_offset + node)
        memset(w, 0, (lp.n_local + 1) * sizeof(double))
        if loss == LOSS_LOG:
            _solve_log(lp, y + start, cost + start, bias, tol, max_iter, &state, w,
                       &n_iter[node], alpha, index)
        else:
            _solve_svm_node(lp, y + start, cost + start, bias, loss == LOSS_HINGE, tol,
                            max_iter, &state, w, &n_iter[node], alpha, index)
        if _keep_weights(lp, w, 1, bias, threshold, n_features, &out_idx[node],
                         &out_val[node], &out_cnt[node]) != 0:
            failed += 1
    free(w)
    free(alpha)
    free(index)
    return failed


cdef intp_t _train_group(intp_t first, intp_t last, const intp_t* node_ptr,
                         const float* data, const index_t* indices,
                         const index_t* indptr, const intp_t* rows,
                         const int8_t* y, const double* cost, int loss, double bias,
                         double tol, int max_iter, double threshold, uint64_t seed,
                         int32_t n_features, int32_t** out_idx, float** out_val,
                         intp_t* out_cnt, int* n_iter,
                         intp_t node_offset) noexcept nogil:
    """Train nodes ``first..last-1``, which share the same row list (that of node
    ``first``): build the local copy once, then solve the nodes on it.
    Return the number of nodes that ran out of memory."""
    cdef LocalProblem lp
    cdef intp_t node, failed = 0
    cdef intp_t n_rows = node_ptr[first + 1] - node_ptr[first]
    memset(&lp, 0, sizeof(LocalProblem))
    if n_rows == 0:
        for node in range(first, last):
            n_iter[node] = 0
            out_cnt[node] = 0
            if node == _FAIL_NODE:
                failed += 1
        return failed
    if _build_local(data, indices, indptr, rows + node_ptr[first], n_rows, &lp) != 0:
        for node in range(first, last):
            n_iter[node] = 0
            out_cnt[node] = 0
        failed = last - first
    elif loss == LOSS_LOG or lp.n_local < LOCKSTEP_MIN_FEATURES:
        # Weights that stay in the L1 cache one node at a time: lockstep does
        # not pay (measured).
        failed = _train_one_by_one(first, last, node_ptr, &lp, y, cost, loss, bias,
                                   tol, max_iter, threshold, seed, n_features,
                                   out_idx, out_val, out_cnt, n_iter, node_offset)
    else:
        failed = _train_svm_group(first, last, node_ptr, &lp, y, cost,
                                  loss == LOSS_HINGE, bias, tol, max_iter, threshold,
                                  seed, n_features, out_idx, out_val, out_cnt, n_iter)
    free(lp.ptr)
    free(lp.cols)
    free(lp.vals)
    free(lp.features)
    return failed


def _groups_share_rows(const intp_t[::1] node_ptr, const intp_t[::1] group_ptr,
                       const intp_t[::1] rows):
    """Whether every node of each group has the same row list as the group's
    first node (O(entries) time, no allocation)."""
    cdef intp_t g, node, first, k, n, n_groups = group_ptr.shape[0] - 1
    cdef bint same = True
    with nogil:
        for g in range(n_groups):
            first = group_ptr[g]
            n = node_ptr[first + 1] - node_ptr[first]
            for node in range(first + 1, group_ptr[g + 1]):
                if node_ptr[node + 1] - node_ptr[node] != n:
                    same = False
                    break
                for k in range(n):
                    if rows[node_ptr[node] + k] != rows[node_ptr[first] + k]:
                        same = False
                        break
                if not same:
                    break
            if not same:
                break
    return same


def _train_nodes(const float[::1] data,        # IN  X values (CSR, no duplicate entries)
                 const index_t[::1] indices,   # IN  X column indices (any order per row)
                 const index_t[::1] indptr,    # IN  X row pointers
                 int32_t n_features,           # IN  columns of X (< 2**31 - 1)
                 const intp_t[::1] node_ptr,   # IN  (n_nodes + 1,) node k owns [node_ptr[k], node_ptr[k+1])
                 const intp_t[::1] group_ptr,  # IN  (n_groups + 1,) nodes [group_ptr[g], group_ptr[g+1]) share their rows
                 const intp_t[::1] rows,       # IN  instance (row of X) of each entry
                 const int8_t[::1] y,          # IN  +1 / -1 per entry
                 const double[::1] cost,       # IN  C_i > 0 per entry
                 int loss,                     # IN  LOSSES[name]
                 double bias, double tol, int max_iter, double threshold,
                 uint64_t seed,
                 int[::1] n_iter,              # OUT (n_nodes,) outer iterations run (np.intc)
                 int n_threads, intp_t node_offset=0):
    """Train every node; return the CSC arrays ``(indptr, indices, data)`` of W.

    W has ``n_features + 1`` rows (the bias weight in the last) and one column per
    node. The nodes of one group have identical row lists (checked by the caller);
    groups run in parallel and each builds its local copy once. Nodes have at most ``2**32`` nonzeros each (checked by the caller).
    Raises MemoryError when a node's buffers cannot be allocated.
    """
    cdef intp_t n_nodes = node_ptr.shape[0] - 1
    cdef intp_t n_groups = group_ptr.shape[0] - 1
    cdef intp_t node, g, total = 0
    cdef intp_t failed = 0
    cdef const float* data_p = &data[0] if data.shape[0] > 0 else NULL
    cdef const index_t* indices_p = &indices[0] if indices.shape[0] > 0 else NULL
    cdef const intp_t* rows_p = &rows[0] if rows.shape[0] > 0 else NULL
    cdef const int8_t* y_p = &y[0] if y.shape[0] > 0 else NULL
    cdef const double* cost_p = &cost[0] if cost.shape[0] > 0 else NULL
    cdef int* n_iter_p = &n_iter[0] if n_iter.shape[0] > 0 else NULL
    cdef int32_t** out_idx = <int32_t**> calloc(n_nodes + 1, sizeof(int32_t*))
    cdef float** out_val = <float**> calloc(n_nodes + 1, sizeof(float*))
    cdef intp_t* out_cnt = <intp_t*> calloc(n_nodes + 1, sizeof(intp_t))
    cdef int32_t[::1] W_indices
    cdef float[::1] W_data
    cdef int64_t[::1] W_indptr
    try:
        if out_idx == NULL or out_val == NULL or out_cnt == NULL:
            raise MemoryError("could not allocate the output buffers")
        for g in prange(n_groups, nogil=True, schedule="dynamic",
                        num_threads=max(1, min(n_threads, n_groups))):
            failed += _train_group(group_ptr[g], group_ptr[g + 1], &node_ptr[0], data_p,
                                   indices_p, &indptr[0], rows_p, y_p, cost_p, loss,
                                   bias, tol, max_iter, threshold, seed, n_features,
                                   out_idx, out_val, out_cnt, n_iter_p, node_offset)
        if failed > 0:
            raise MemoryError(
                f"out of memory while training {failed} of {n_nodes} linear models")
        W_indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        for node in range(n_nodes):
            total += out_cnt[node]
            W_indptr[node + 1] = total
        W_indices = np.empty(total, dtype=np.int32)
        W_data = np.empty(total, dtype=np.float32)
        with nogil:
            for node in range(n_nodes):
                if out_cnt[node] > 0:
                    memcpy(&W_indices[W_indptr[node]], out_idx[node],
                           out_cnt[node] * sizeof(int32_t))
                    memcpy(&W_data[W_indptr[node]], out_val[node],
                           out_cnt[node] * sizeof(float))
        return np.asarray(W_indptr), np.asarray(W_indices), np.asarray(W_data)
    finally:
        if out_idx != NULL:
            for node in range(n_nodes):
                free(out_idx[node])
        if out_val != NULL:
            for node in range(n_nodes):
                free(out_val[node])
        free(out_idx)
        free(out_val)
        free(out_cnt)
