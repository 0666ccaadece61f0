"""Beam search over a label tree (OpenMP over queries), on chunked weights.

The weights are in the chunked layout of :mod:`skxmr._cython._chunked_weights`
(one chunk per node: its children's weights, row-major over the features they
use); the post-processor is one of the codes of ``_postprocess.pxd``. This module
holds the search drivers only.

For each query, the kernel:

1. copies the row's nonzeros, sorted by feature (duplicates summed), followed by the
   constant feature ``(n_features, bias)``;
2. starts from the root with the combiner's identity, then at every level runs the
   *expand step* (``_expand``) on every kept node -- score its children
   (accumulated in double), combine each transformed score with the node's path
   score -- and offers the candidates (path score, node) to a fixed-capacity top-k
   heap (``_keep_best``);
3. keeps ``beam`` nodes per level (``top_k`` at the last level), ties broken by the
   smaller node index; at the last level the candidates carry original label ids
   (``label_perm``), so ties are broken by the smaller label id, the ranking rule of
   every skxmr top-k output;
4. writes the labels best first, padding with label -1 and score 0 when fewer than
   ``top_k`` labels were reached (``_write_top``).

Two drivers share these steps: one query at a time (``_search_one``, for fewer
than ``SMALL_BATCH`` rows: no workspace to set up), and blocks of queries level by
level (``_search_block``), where the (query, kept node) pairs of a block are sorted
by chunk so that the threads score one chunk for many queries in a row while its
rows and bucket directory are in cache. Both give the same results.

A path score that is NaN (only possible with non-finite weights) counts as -inf.
Column indices of X outside their range are skipped and counted; the Python wrapper
turns the count into a ``ValueError``.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport malloc, free, qsort
from libc.string cimport memset

cimport numpy as cnp
import numpy as np

from skxmr._cython._typedefs cimport intp_t, index_t, int32_t, int64_t
from skxmr._cython._heap cimport heap_push, heap_sort_best_first
from skxmr._cython._chunked_weights cimport (
    ChunkLevel, ChunkedWeights as _ChunkedWeights, Hit, QueryItem, chunk_scores)
from skxmr._cython._postprocess cimport pp_initial, pp_path_score, pp_valid

# Re-exported: the layout used to live here (other modules import it from here).
from skxmr._cython._chunked_weights import (  # noqa: F401
    ChunkedWeights, _build_chunks)

cnp.import_array()


cdef enum:
    # Below this many queries, each query is searched on its own (no workspace).
    SMALL_BATCH = 4
    # Candidate scores per block (bounds the workspace: 16 bytes each, 16 MiB in
    # all; 4x as many cost batch prediction 40-60 MB more memory for no speed-up).
    BLOCK_CANDIDATES = 1048576


# ------------------------------------------------------------ shared search steps
cdef struct LevelView:
    const ChunkLevel* chunks    # the level's chunked weights (chunk = node - up)
    const int64_t* child_ptr    # tree: children of node n are child_ptr[n]:[n + 1]
    const int64_t* label_ids    # last level: label_perm (node base + i is label
                                #   label_perm[i]); NULL above
    intp_t up                   # first node of the level above (the kept nodes)
    intp_t base                 # first node of the level


cdef inline LevelView _level_view(const ChunkLevel* W, const int64_t* level_ptr,
                                  const int64_t* child_ptr, const int64_t* label_perm,
                                  intp_t t, intp_t n_levels) noexcept nogil:
    """The expand step's view of tree level ``t`` (1 .. n_levels)."""
    cdef LevelView lv
    lv.chunks = &W[t - 1]
    lv.child_ptr = child_ptr
    lv.label_ids = label_perm if t == n_levels else NULL
    lv.up = level_ptr[t - 1]
    lv.base = level_ptr[t]
    return lv


cdef inline intp_t _expand(const LevelView* lv,
                           intp_t node, double node_score,  # IN  a kept node
                           const QueryItem* q, intp_t m,    # IN  sorted query items
                           int code, int power,
                           double* acc,                     # scratch, >= chunk width
                           Hit* hits,                       # scratch, >= m
                           double* cand_s,                  # OUT its children's path
                           intp_t* cand_id                  #     scores and ids
                           ) noexcept nogil:
    """The expand step: score the children of one kept node, combine each with the
    node's path score; write the candidates (label ids at the last level) and
    return their number."""
    cdef intp_t first = lv.child_ptr[node]
    cdef intp_t width = lv.child_ptr[node + 1] - first
    cdef intp_t o
    cdef double v
    memset(acc, 0, width * sizeof(double))
    chunk_scores(lv.chunks, node - lv.up, q, m, acc, hits)
    for o in range(width):
        v = pp_path_score(code, power, node_score, acc[o])
        if v != v:
            v = -INFINITY
        cand_s[o] = v
        if lv.label_ids != NULL:
            cand_id[o] = <intp_t> lv.label_ids[first + o - lv.base]
        else:
            cand_id[o] = first + o
    return width


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


cdef inline intp_t _keep_best(const double* cand_s, const intp_t* cand_id,  # IN
                              int64_t n_cand, intp_t cap, bint last,
                              double* vals, intp_t* ids  # OUT kept (>= cap)
                              ) noexcept nogil:
    """Keep the ``cap`` best candidates: best first at the last level, else by node
    index. Returns their number."""
    cdef intp_t size = 0
    cdef int64_t e
    for e in range(n_cand):
        size = heap_push(vals, ids, size, cap, cand_s[e], cand_id[e])
    if last:
        heap_sort_best_first(vals, ids, size)
    else:
        _sort_by_node(vals, ids, size)
    return size


cdef inline void _write_top(const double* vals, const intp_t* ids, intp_t size,
                            intp_t top_k,
                            int64_t* out_labels,      # OUT top_k labels
                            float* out_scores         # OUT top_k scores
                            ) noexcept nogil:
    """The kept labels, best first, padded with label -1 and score 0."""
    cdef intp_t j
    for j in range(size):
        out_labels[j] = ids[j]
        out_scores[j] = <float> vals[j]
    for j in range(size, top_k):
        out_labels[j] = -1
        out_scores[j] = 0


# ------------------------------------------------------------------------ queries
cdef int _compare_items(const void* a, const void* b) noexcept nogil:
    cdef int32_t i = (<const QueryItem*> a).idx, j = (<const QueryItem*> b).idx
    return (i > j) - (i < j)


cdef intp_t _load_sparse_query(const floating* data, const index_t* indices,
                               intp_t start, intp_t end, intp_t n_feat, double bias,
                               QueryItem* q, intp_t* n_bad) noexcept nogil:
    """Copy one CSR row into ``q`` sorted by feature, duplicates summed, then the
    constant feature; return the number of items. Out-of-range columns are
    skipped and counted in ``n_bad``."""
    cdef intp_t p, m = 0, k
    cdef index_t col
    cdef bint ordered = True
    for p in range(start, end):
        col = indices[p]
        if col < 0 or col >= n_feat:
            n_bad[0] += 1
            continue
        if m > 0 and q[m - 1].idx >= col:
            ordered = False
        q[m].idx = <int32_t> col
        q[m].val = data[p]
        m += 1
    if not ordered:
        qsort(q, m, sizeof(QueryItem), _compare_items)
        k = 0
        for p in range(1, m):
            if q[p].idx == q[k].idx:
                q[k].val += q[p].val
            else:
                k += 1
                q[k] = q[p]
        if m > 0:
            m = k + 1
    q[m].idx = <int32_t> n_feat
    q[m].val = bias
    return m + 1


cdef intp_t _load_dense_query(const floating* x, intp_t n_feat, double bias,
                              QueryItem* q) noexcept nogil:
    """Copy the nonzeros of one dense row into ``q``, then the constant feature;
    return the number of items."""
    cdef intp_t j, m = 0
    for j in range(n_feat):
        if x[j] != 0:
            q[m].idx = <int32_t> j
            q[m].val = x[j]
            m = m + 1
    q[m].idx = <int32_t> n_feat
    q[m].val = bias
    return m + 1


# ------------------------------------------------------------------------ drivers
cdef void _search_one(const QueryItem* q, intp_t m,  # IN  sorted query items
                      const ChunkLevel* W,            # IN  per-level chunks
                      intp_t n_levels,
                      const int64_t* level_ptr,       # IN  tree
                      const int64_t* child_ptr,
                      const int64_t* label_perm,
                      intp_t beam, intp_t top_k, int code, int power,
                      double* acc,                    # scratch, >= max chunk width
                      Hit* hits,                      # scratch, >= m
                      double* cand_s,                 # scratch, >= beam * max width
                      intp_t* cand_id,
                      double* cur_s,                  # scratch, >= max(beam, top_k)
                      intp_t* cur_n,
                      int64_t* out_labels,            # OUT top_k labels
                      float* out_scores               # OUT top_k scores
                      ) noexcept nogil:
    """Beam search for one query."""
    cdef intp_t n_cur = 1, t, j
    cdef int64_t n_cand
    cdef bint last
    cdef LevelView lv
    cur_n[0] = 0
    cur_s[0] = pp_initial(code)
    for t in range(1, n_levels + 1):
        last = t == n_levels
        lv = _level_view(W, level_ptr, child_ptr, label_perm, t, n_levels)
        n_cand = 0
        for j in range(n_cur):
            n_cand += _expand(&lv, cur_n[j], cur_s[j], q, m, code, power, acc, hits,
                              cand_s + n_cand, cand_id + n_cand)
        n_cur = _keep_best(cand_s, cand_id, n_cand, top_k if last else beam, last,
                           cur_s, cur_n)
    _write_top(cur_s, cur_n, n_cur, top_k, out_labels, out_scores)


# Batch search: queries go level by level in blocks; at each level the (query, beam
# node) pairs of a block are sorted by chunk, so the threads score one chunk for many
# queries in a row while its rows and directory are in cache.
cdef struct Workspace:
    intp_t block          # queries per block
    intp_t capq           # max(beam, top_k): kept nodes per query
    int64_t* items_ptr    # (block + 1,) item ranges of the block's queries
    intp_t* items_len     # (block,) items used
    intp_t* cur_id        # (block, capq) kept nodes (labels at the end)
    double* cur_s         # (block, capq) their path scores
    intp_t* cur_n         # (block,) number kept
    intp_t* chunk_count   # (max_chunks + 1,)
    intp_t* pair_q        # (block * beam,) pairs sorted by chunk: query,
    intp_t* pair_j        #   its beam slot,
    int64_t* pair_off     #   and the offset of its children's candidates
    int64_t* cand_ptr     # (block + 1,)
    double* cand_s        # (block * beam * max_width,) candidate path scores
    intp_t* cand_id       #   and node (or label) ids


cdef void _free_workspace(Workspace* ws) noexcept nogil:
    free(ws.items_ptr)
    free(ws.items_len)
    free(ws.cur_id)
    free(ws.cur_s)
    free(ws.cur_n)
    free(ws.chunk_count)
    free(ws.pair_q)
    free(ws.pair_j)
    free(ws.pair_off)
    free(ws.cand_ptr)
    free(ws.cand_s)
    free(ws.cand_id)


cdef bint _alloc_workspace(Workspace* ws, intp_t block, intp_t beam, intp_t top_k,
                           intp_t max_chunks, intp_t max_width) noexcept nogil:
    """Allocate every buffer (False if one failed; free with _free_workspace)."""
    cdef intp_t capq = beam if beam > top_k else top_k
    cdef size_t n_cand = <size_t> block * capq * max_width
    ws.block = block
    ws.capq = capq
    ws.items_ptr = <int64_t*> malloc((block + 1) * sizeof(int64_t))
    ws.items_len = <intp_t*> malloc(block * sizeof(intp_t))
    ws.cur_id = <intp_t*> malloc(block * capq * sizeof(intp_t))
    ws.cur_s = <double*> malloc(block * capq * sizeof(double))
    ws.cur_n = <intp_t*> malloc(block * sizeof(intp_t))
    ws.chunk_count = <intp_t*> malloc((max_chunks + 1) * sizeof(intp_t))
    ws.pair_q = <intp_t*> malloc(block * capq * sizeof(intp_t))
    ws.pair_j = <intp_t*> malloc(block * capq * sizeof(intp_t))
    ws.pair_off = <int64_t*> malloc(block * capq * sizeof(int64_t))
    ws.cand_ptr = <int64_t*> malloc((block + 1) * sizeof(int64_t))
    ws.cand_s = <double*> malloc(n_cand * sizeof(double))
    ws.cand_id = <intp_t*> malloc(n_cand * sizeof(intp_t))
    return (ws.items_ptr != NULL and ws.items_len != NULL
            and ws.cur_id != NULL and ws.cur_s != NULL and ws.cur_n != NULL
            and ws.chunk_count != NULL and ws.pair_q != NULL and ws.pair_j != NULL
            and ws.pair_off != NULL and ws.cand_ptr != NULL and ws.cand_s != NULL
            and ws.cand_id != NULL)


cdef intp_t _search_block(const QueryItem* items,      # IN  sorted query items
                          intp_t nb,                   #     (ws.items_ptr/_len)
                          const ChunkLevel* W, intp_t n_levels,
                          const int64_t* lp, const int64_t* cp, const int64_t* perm,
                          intp_t beam, intp_t top_k, int code, int power,
                          intp_t max_width, intp_t max_items, Workspace* ws,
                          int64_t* out_labels,          # OUT (nb, top_k)
                          float* out_scores,            # OUT (nb, top_k)
                          int n_threads) noexcept nogil:
    """Beam search for a block of queries; returns the number of queries that
    could not get scratch memory (their outputs are left unset)."""
    cdef intp_t capq = ws.capq
    cdef const int64_t* items_ptr = ws.items_ptr
    cdef const intp_t* items_len = ws.items_len
    cdef intp_t q, j, t, o, c, node, width, size, cap, n_pairs, p, up
    cdef intp_t n_chunks, n_failed = 0
    cdef int64_t total, off
    cdef bint last
    cdef LevelView lv
    cdef double* acc
    cdef Hit* hits
    cdef intp_t* ids
    cdef double* vals
    for q in range(nb):
        ws.cur_n[q] = 1
        ws.cur_id[q * capq] = 0
        ws.cur_s[q * capq] = pp_initial(code)
    for t in range(1, n_levels + 1):
        last = t == n_levels
        lv = _level_view(W, lp, cp, perm, t, n_levels)
        up = lp[t - 1]
        n_chunks = lp[t] - up
        cap = top_k if last else beam
        # Candidate ranges and pairs sorted by chunk (a counting sort).
        memset(ws.chunk_count, 0, (n_chunks + 1) * sizeof(intp_t))
        total = 0
        for q in range(nb):
            ws.cand_ptr[q] = total
            for j in range(ws.cur_n[q]):
                node = ws.cur_id[q * capq + j]
                total += cp[node + 1] - cp[node]
                ws.chunk_count[node - up + 1] += 1
        ws.cand_ptr[nb] = total
        for c in range(n_chunks):
            ws.chunk_count[c + 1] += ws.chunk_count[c]
        for q in range(nb):
            off = ws.cand_ptr[q]
            for j in range(ws.cur_n[q]):
                node = ws.cur_id[q * capq + j]
                p = ws.chunk_count[node - up]
                ws.chunk_count[node - up] += 1
                ws.pair_q[p] = q
                ws.pair_j[p] = j
                ws.pair_off[p] = off
                off += cp[node + 1] - cp[node]
        n_pairs = ws.chunk_count[n_chunks - 1] if n_chunks > 0 else 0
        # The expand step of every pair.
        with parallel(num_threads=n_threads):
            acc = <double*> malloc(max_width * sizeof(double))
            hits = <Hit*> malloc(max_items * sizeof(Hit))
            for p in prange(n_pairs, schedule="dynamic", chunksize=8):
                q = ws.pair_q[p]
                j = ws.pair_j[p]
                off = ws.pair_off[p]
                if acc == NULL or hits == NULL:
                    node = ws.cur_id[q * capq + j]
                    width = cp[node + 1] - cp[node]
                    for o in range(width):
                        ws.cand_s[off + o] = -INFINITY
                        ws.cand_id[off + o] = -1
                    n_failed += 1
                    continue
                _expand(&lv, ws.cur_id[q * capq + j], ws.cur_s[q * capq + j],
                        items + items_ptr[q], items_len[q], code, power, acc, hits,
                        ws.cand_s + off, ws.cand_id + off)
            free(acc)
            free(hits)
        # Keep the best candidates of every query.
        for q in prange(nb, schedule="static", num_threads=n_threads):
            ids = ws.cur_id + q * capq
            vals = ws.cur_s + q * capq
            size = _keep_best(ws.cand_s + ws.cand_ptr[q], ws.cand_id + ws.cand_ptr[q],
                              ws.cand_ptr[q + 1] - ws.cand_ptr[q], cap, last, vals,
                              ids)
            if last:
                _write_top(vals, ids, size, top_k, out_labels + q * top_k,
                           out_scores + q * top_k)
            ws.cur_n[q] = size
    return n_failed


def _check_tree_args(_ChunkedWeights weights, const int64_t[::1] level_ptr,
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
        if weights.levels[t].n_chunks != level_ptr[t + 1] - level_ptr[t]:
            raise ValueError(f"level {t + 1}: weight chunks do not match the tree")
    if beam < 1 or top_k < 1:
        raise ValueError("beam and top_k must be >= 1")
    if not pp_valid(code, power):
        raise ValueError(f"unknown post-processor code {code} (power {power})")
    if out_labels.shape[0] != n_queries or out_scores.shape[0] != n_queries \
            or out_labels.shape[1] != top_k or out_scores.shape[1] != top_k:
        raise ValueError("output arrays must have shape (n_queries, top_k)")


cdef intp_t _block_size(intp_t n_q, intp_t capq, intp_t max_width):
    cdef intp_t per_query = capq * max_width
    cdef intp_t block = BLOCK_CANDIDATES // per_query if per_query > 0 else n_q
    return max(1, min(n_q, block))


cdef intp_t _max_chunks(const int64_t[::1] level_ptr):
    cdef intp_t t, best = 1
    for t in range(1, level_ptr.shape[0] - 1):
        best = max(best, level_ptr[t] - level_ptr[t - 1])
    return best


cdef Workspace _new_workspace(intp_t nb, intp_t beam, intp_t top_k,
                              const int64_t[::1] level_ptr, intp_t max_width) except *:
    cdef Workspace ws
    if not _alloc_workspace(&ws, nb, beam, top_k, _max_chunks(level_ptr), max_width):
        _free_workspace(&ws)
        raise MemoryError("beam search: cannot allocate the block workspace")
    return ws


def _beam_search_csr(const floating[::1] X_data,      # IN  CSR values
                     const index_t[::1] X_indices,    # IN  CSR column indices
                     const index_t[::1] X_indptr,     # IN  CSR row pointers
                     _ChunkedWeights weights,         # IN  per-level chunked weights
                     const int64_t[::1] level_ptr,    # IN  tree (LabelTree arrays)
                     const int64_t[::1] child_ptr,    # IN
                     const int64_t[::1] label_perm,   # IN
                     double bias,
                     intp_t beam, int code, int power,
                     int64_t[:, ::1] out_labels,      # OUT (n_queries, top_k) label ids
                     float[:, ::1] out_scores,        # OUT (n_queries, top_k) scores
                     int n_threads, intp_t block=0):
    """Beam search for every row of a CSR matrix (indices sorted or not,
    duplicates allowed). ``block``: queries per block (0: automatic; results do
    not depend on it).

    The tree must be valid (a :class:`LabelTree`) and the chunks built for it.
    Returns ``(n_bad_x, n_failed)``: the number of out-of-range indices met in X
    and of queries skipped for lack of memory.
    """
    cdef intp_t n_q = X_indptr.shape[0] - 1
    cdef intp_t top_k = out_labels.shape[1]
    cdef intp_t n_feat = weights.n_rows - 1
    cdef intp_t n_levels = level_ptr.shape[0] - 2
    cdef intp_t cap, q, i, m, nb, b0, start, end, max_nnz = 0
    cdef intp_t n_bad_x = 0, n_failed = 0, n_bad_here
    cdef QueryItem* items
    cdef double* acc
    cdef Hit* hits
    cdef double* cand_s
    cdef intp_t* cand_id
    cdef double* cur_s
    cdef intp_t* cur_n
    cdef const floating* xd = NULL
    cdef const index_t* xi = NULL
    cdef const ChunkLevel* W = weights.levels
    cdef const int64_t* lp
    cdef const int64_t* cp
    cdef const int64_t* perm
    cdef Workspace ws
    _check_tree_args(weights, level_ptr, child_ptr, label_perm, beam, top_k, code,
                     power, out_labels, out_scores, n_q)
    if X_indices.shape[0] != X_data.shape[0]:
        raise ValueError("X: indices and data have different lengths")
    if n_q <= 0:
        return 0, 0
    for q in range(n_q):
        start = X_indptr[q]
        end = X_indptr[q + 1]
        if start < 0 or end < start or end > X_data.shape[0]:
            raise ValueError("X: invalid indptr")
        if end - start > max_nnz:
            max_nnz = end - start
    if X_data.shape[0] > 0:
        xd = &X_data[0]
        xi = &X_indices[0]
    lp = &level_ptr[0]
    cp = &child_ptr[0]
    perm = &label_perm[0]
    cap = beam if beam > top_k else top_k
    n_threads = max(1, min(n_threads, n_q))
    if n_q < SMALL_BATCH:
        items = <QueryItem*> malloc((max_nnz + 1) * sizeof(QueryItem))
        acc = <double*> malloc(weights.max_width * sizeof(double))
        hits = <Hit*> malloc((max_nnz + 1) * sizeof(Hit))
        cand_s = <double*> malloc(beam * weights.max_width * sizeof(double))
        cand_id = <intp_t*> malloc(beam * weights.max_width * sizeof(intp_t))
        cur_s = <double*> malloc(cap * sizeof(double))
        cur_n = <intp_t*> malloc(cap * sizeof(intp_t))
        try:
            if (items == NULL or acc == NULL or hits == NULL or cand_s == NULL
                    or cand_id == NULL or cur_s == NULL or cur_n == NULL):
                raise MemoryError()
            with nogil:
                for q in range(n_q):
                    m = _load_sparse_query(xd, xi, X_indptr[q], X_indptr[q + 1],
                                           n_feat, bias, items, &n_bad_x)
                    _search_one(items, m, W, n_levels, lp, cp, perm, beam, top_k,
                                code, power, acc, hits, cand_s, cand_id, cur_s, cur_n,
                                &out_labels[q, 0], &out_scores[q, 0])
        finally:
            free(items)
            free(acc)
            free(hits)
            free(cand_s)
            free(cand_id)
            free(cur_s)
            free(cur_n)
        return n_bad_x, 0
    nb = block if block > 0 else _block_size(n_q, cap, weights.max_width)
    ws = _new_workspace(min(nb, n_q), beam, top_k, level_ptr, weights.max_width)
    try:
        for b0 in range(0, n_q, ws.block):
            nb = min(ws.block, n_q - b0)
            for i in range(nb + 1):
                ws.items_ptr[i] = X_indptr[b0 + i] - X_indptr[b0] + i
            items = <QueryItem*> malloc((ws.items_ptr[nb] + 1) * sizeof(QueryItem))
            if items == NULL:
                raise MemoryError("beam search: cannot allocate the queries")
            with nogil:
                for i in prange(nb, schedule="static", num_threads=n_threads):
                    n_bad_here = 0
                    ws.items_len[i] = _load_sparse_query(
                        xd, xi, X_indptr[b0 + i], X_indptr[b0 + i + 1], n_feat, bias,
                        items + ws.items_ptr[i], &n_bad_here)
                    n_bad_x += n_bad_here
                n_failed += _search_block(items, nb, W, n_levels, lp, cp, perm, beam,
                                          top_k, code, power, weights.max_width,
                                          max_nnz + 1, &ws, &out_labels[b0, 0],
                                          &out_scores[b0, 0], n_threads)
            free(items)
    finally:
        _free_workspace(&ws)
    return n_bad_x, n_failed


def _beam_search_dense(const floating[:, ::1] X,       # IN  (n_queries, n_features)
                       _ChunkedWeights weights,        # IN  per-level chunked weights
                       const int64_t[::1] level_ptr,   # IN  tree (LabelTree arrays)
                       const int64_t[::1] child_ptr,   # IN
                       const int64_t[::1] label_perm,  # IN
                       double bias,
                       intp_t beam, int code, int power,
                       int64_t[:, ::1] out_labels,     # OUT (n_queries, top_k) labels
                       float[:, ::1] out_scores,       # OUT (n_queries, top_k) scores
                       int n_threads, intp_t block=0):
    """Beam search for every row of a C-contiguous dense matrix; see
    :func:`_beam_search_csr` (same results, same return value)."""
    cdef intp_t n_q = X.shape[0]
    cdef intp_t top_k = out_labels.shape[1]
    cdef intp_t n_feat = weights.n_rows - 1
    cdef intp_t n_levels = level_ptr.shape[0] - 2
    cdef intp_t cap, i, m, nb, b0
    cdef intp_t n_failed = 0
    cdef QueryItem* items
    cdef const floating* x0 = NULL
    cdef const ChunkLevel* W = weights.levels
    cdef const int64_t* lp
    cdef const int64_t* cp
    cdef const int64_t* perm
    cdef Workspace ws
    _check_tree_args(weights, level_ptr, child_ptr, label_perm, beam, top_k, code,
                     power, out_labels, out_scores, n_q)
    if X.shape[1] != n_feat:
        raise ValueError(f"X has {X.shape[1]} features, the weights {n_feat}")
    if n_q <= 0:
        return 0, 0
    if n_feat > 0:
        x0 = &X[0, 0]
    lp = &level_ptr[0]
    cp = &child_ptr[0]
    perm = &label_perm[0]
    cap = beam if beam > top_k else top_k
    n_threads = max(1, min(n_threads, n_q))
    nb = block if block > 0 else _block_size(n_q, cap, weights.max_width)
    nb = max(1, min(nb, n_q, (1 << 24) // (n_feat + 1)))  # dense rows: bound copies
    ws = _new_workspace(nb, beam, top_k, level_ptr, weights.max_width)
    items = <QueryItem*> malloc(nb * (n_feat + 1) * sizeof(QueryItem))
    if items == NULL:
        _free_workspace(&ws)
        raise MemoryError("beam search: cannot allocate the block workspace")
    for i in range(nb + 1):
        ws.items_ptr[i] = i * (n_feat + 1)
    b0 = 0
    with nogil:
        while b0 < n_q:
            m = min(nb, n_q - b0)
            for i in prange(m, schedule="static", num_threads=n_threads):
                ws.items_len[i] = _load_dense_query(x0 + (b0 + i) * n_feat, n_feat,
                                                    bias, items + ws.items_ptr[i])
            n_failed += _search_block(items, m, W, n_levels, lp, cp, perm, beam, top_k,
                                      code, power, weights.max_width, n_feat + 1, &ws,
                                      &out_labels[b0, 0], &out_scores[b0, 0],
                                      n_threads)
            b0 += m
    _free_workspace(&ws)
    free(items)
    return 0, n_failed
