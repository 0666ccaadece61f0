"""Beam search over a label tree (OpenMP over queries), on chunked weights.

The model has one weight matrix per tree level below the root, ``W_t`` of shape
``(n_features + 1, n_nodes_t)`` (the last row multiplies a constant feature of value
``bias``). Nodes are numbered level by level as in
:class:`skxmr._label_tree.LabelTree`, and the children of a node are contiguous.

Chunked layout (built by :func:`skxmr._beam.chunk_level`): the columns of ``W_t``
are cut into *chunks*, one per node of level ``t - 1`` (its children). A chunk is
stored row-major over the features it uses: the sorted feature ids ``row_feat`` of
its nonzero rows, for each row its entries ``(child offset, value)``, and an
open-addressing hash table from feature id to row. Scoring all children of a beam
node is one sparse-sparse intersection between the query's nonzeros and the chunk's
rows: a hash lookup per query nonzero, or, when the query has more nonzeros than
the chunk has rows, a walk over the rows galloping through the sorted query. A query
thus touches only the weights of its own features (a CSC column walk touches every
weight of every scored column instead).

For each query, the kernel:

1. copies the row's nonzeros, sorted by feature (duplicates summed), followed by the
   constant feature ``(n_features, bias)``;
2. starts from the root with the combiner's identity, then at every level scores the
   children of every kept node (accumulated in double), combines the transformed
   score with the parent's path score, and offers (path score, node) to a
   fixed-capacity top-k heap;
3. keeps ``beam`` nodes per level (``top_k`` at the last level), ties broken by the
   smaller node index; at the last level the heap holds original label ids
   (``label_perm``), so ties are broken by the smaller label id, the ranking rule of
   every skxmr top-k output;
4. writes the labels best first, padding with label -1 and score 0 when fewer than
   ``top_k`` labels were reached.

A path score that is NaN (only possible with non-finite weights) counts as -inf.
Column indices of X outside their range are skipped and counted; the Python wrapper
turns the count into a ``ValueError``.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log1p, INFINITY
from libc.stdlib cimport malloc, free, qsort
from libc.string cimport memset

cimport numpy as cnp
import numpy as np

from libc.stdint cimport uint32_t, uint64_t

from skxmr._cython._typedefs cimport intp_t, index_t, int32_t, int64_t
from skxmr._cython._heap cimport heap_push, heap_sort_best_first
from skxmr._cython._radix cimport sort_by_feature

cnp.import_array()

# Post-processor codes (keep in sync with skxmr._postprocess).
cdef enum:
    PP_NOOP = 0
    PP_HINGE = 1
    PP_SIGMOID = 2
    PP_LOG_SIGMOID = 3


cdef struct ChunkLevel:
    const int64_t* chunk_ptr    # (n_chunks + 1,) into the rows
    const int32_t* row_feat     # (n_rows_total,) feature id of each row, sorted per chunk
    const int64_t* row_ptr      # (n_rows_total + 1,) into the entries
    const Entry* entries        # (nnz,) (child offset within the chunk, weight)
    const int64_t* slot_ptr     # (n_chunks + 1,) into the slots; power-of-2 sizes
    const Slot* slots           # per chunk, an open-addressing table feature -> row
    intp_t n_chunks


cdef struct Entry:
    int32_t child
    float val


# The numpy dtype of Entry.
ENTRY_DTYPE = np.dtype([("child", np.int32), ("val", np.float32)])


cdef struct Hit:
    intp_t row                  # a chunk row that matched a query item
    double val                  # the item's value


cdef struct Slot:
    int32_t feat                # -1: empty
    int32_t row                 # row index relative to the chunk's first row


cdef struct QueryItem:
    int32_t idx
    double val


cdef class ChunkedWeights:
    """The chunked weight arrays of a model, as a C table the kernels read without
    the GIL. Holds references to the arrays, so nothing is copied.

    Parameters
    ----------
    levels : list of tuple
        Per tree level, ``(chunk_ptr, row_feat, row_ptr, entries, slot_ptr,
        slots)`` as built by :func:`skxmr._beam.chunk_level` (int64, int32, int64,
        ``ENTRY_DTYPE``, int64, int32 pairs; contiguous). They are
        trusted to be consistent (the builder guarantees it); only their dtypes and
        lengths are checked here.
    n_rows : int
        ``n_features + 1`` (the bias row is the last one).
    max_width : int
        The largest number of children of one chunk.
    """

    cdef ChunkLevel* levels
    cdef readonly intp_t n_levels
    cdef readonly intp_t n_rows
    cdef readonly intp_t max_width
    cdef object _arrays

    def __cinit__(self, list levels, intp_t n_rows, intp_t max_width):
        cdef intp_t t, n = len(levels)
        self.levels = NULL
        if n < 1:
            raise ValueError("need at least one level")
        if n_rows < 1 or n_rows > 2147483647:
            raise ValueError(f"invalid number of weight rows: {n_rows}")
        if max_width < 1:
            raise ValueError(f"invalid chunk width: {max_width}")
        kinds = (np.int64, np.int32, np.int64, ENTRY_DTYPE, np.int64, np.int32)
        for t in range(n):
            arrays = levels[t]
            if len(arrays) != 6:
                raise ValueError(f"level {t + 1}: expected 6 arrays")
            for a, kind in zip(arrays, kinds):
                if (not isinstance(a, np.ndarray) or a.dtype != kind
                        or not a.flags.c_contiguous):
                    raise ValueError(f"level {t + 1}: arrays must be contiguous "
                                     "int64, int32, int64, entries, int64, int32")
            chunk_ptr, row_feat, row_ptr, entries, slot_ptr, slots = arrays
            if (slot_ptr.shape[0] != chunk_ptr.shape[0] or slot_ptr[0] != 0
                    or slots.ndim != 2 or slots.shape[1] != 2
                    or slot_ptr[slot_ptr.shape[0] - 1] != slots.shape[0]
                    or any(a.ndim != 1 for a in arrays[:5])):
                raise ValueError(f"level {t + 1}: inconsistent slot arrays")
            if (chunk_ptr.shape[0] < 2 or row_ptr.shape[0] != row_feat.shape[0] + 1
                    or chunk_ptr[0] != 0
                    or chunk_ptr[chunk_ptr.shape[0] - 1] != row_feat.shape[0]
                    or row_ptr[0] != 0
                    or row_ptr[row_ptr.shape[0] - 1] != entries.shape[0]):
                raise ValueError(f"level {t + 1}: inconsistent chunk arrays")
        self.levels = <ChunkLevel*> malloc(n * sizeof(ChunkLevel))
        if self.levels == NULL:
            raise MemoryError()
        for t in range(n):
            arrays = levels[t]
            self.levels[t].chunk_ptr = <const int64_t*> cnp.PyArray_DATA(arrays[0])
            self.levels[t].row_feat = <const int32_t*> cnp.PyArray_DATA(arrays[1])
            self.levels[t].row_ptr = <const int64_t*> cnp.PyArray_DATA(arrays[2])
            self.levels[t].entries = <const Entry*> cnp.PyArray_DATA(arrays[3])
            self.levels[t].slot_ptr = <const int64_t*> cnp.PyArray_DATA(arrays[4])
            self.levels[t].slots = <const Slot*> cnp.PyArray_DATA(arrays[5])
            self.levels[t].n_chunks = arrays[0].shape[0] - 1
        self.n_levels = n
        self.n_rows = n_rows
        self.max_width = max_width
        self._arrays = [tuple(a) for a in levels]

    def __dealloc__(self):
        free(self.levels)

    def __reduce__(self):
        return (ChunkedWeights, (self._arrays, self.n_rows, self.max_width))

    @property
    def n_chunks(self):
        return [self.levels[t].n_chunks for t in range(self.n_levels)]


# ---------------------------------------------------------------- scoring helpers
cdef inline intp_t _gallop_query(const QueryItem* q, intp_t lo, intp_t end,
                                 int32_t target) noexcept nogil:
    """First position in [lo, end) with q[pos].idx >= target (end if none); the
    query is sorted. Exponential then binary search: O(log(distance))."""
    cdef intp_t step = 1, hi
    if lo >= end or q[lo].idx >= target:
        return lo
    hi = lo + 1
    while hi < end and q[hi].idx < target:
        lo = hi
        step <<= 1
        hi = lo + step
    if hi > end:
        hi = end
    lo += 1
    while lo < hi:
        step = lo + (hi - lo) // 2
        if q[step].idx < target:
            lo = step + 1
        else:
            hi = step
    return lo


cdef inline void _add_row(const ChunkLevel* L, intp_t r, double v,
                          double* acc) noexcept nogil:
    cdef int64_t e
    cdef const Entry* entry
    for e in range(L.row_ptr[r], L.row_ptr[r + 1]):
        entry = &L.entries[e]
        acc[entry.child] += v * entry.val


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define SKXMR_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define SKXMR_PREFETCH(p) ((void)0)
    #endif
    """
    void _prefetch "SKXMR_PREFETCH"(const void* p) noexcept nogil


cdef inline uint32_t _hash(int32_t key) noexcept nogil:
    """Murmur3's 32-bit finaliser: a cheap, well-mixed hash of a feature id."""
    cdef uint32_t h = <uint32_t> key
    h ^= h >> 16
    h *= 0x85ebca6bU
    h ^= h >> 13
    h *= 0xc2b2ae35U
    h ^= h >> 16
    return h


def _fill_slots(const int64_t[::1] chunk_ptr, const int32_t[::1] row_feat,
                const int64_t[::1] slot_ptr, int32_t[:, ::1] slots, int n_threads=1):
    """Insert every chunk's rows into its open-addressing table (linear probing).

    ``slots`` must be filled with -1; each chunk's table size must be a power of
    two larger than its number of rows (so that every probe sequence ends)."""
    cdef intp_t c, r, n_chunks = chunk_ptr.shape[0] - 1
    cdef int64_t base, mask, pos
    with nogil:
        for c in prange(n_chunks, schedule="dynamic", num_threads=max(1, n_threads)):
            base = slot_ptr[c]
            mask = slot_ptr[c + 1] - base - 1
            for r in range(chunk_ptr[c], chunk_ptr[c + 1]):
                pos = _hash(row_feat[r]) & mask
                while slots[base + pos, 0] != -1:
                    pos = (pos + 1) & mask
                slots[base + pos, 0] = row_feat[r]
                slots[base + pos, 1] = <int32_t> (r - chunk_ptr[c])


def _build_chunks(const int64_t[::1] col_ptr,     # IN  (n_chunks + 1,) first column
                  const int64_t[::1] W_indptr,    # IN  CSC column pointers
                  const int32_t[::1] W_indices,   # IN  CSC row (feature) indices
                  const float[::1] W_data,        # IN  CSC values
                  intp_t n_rows, int n_threads):
    """Chunk rows and entries of one level from its CSC weights (see
    :func:`skxmr._beam.chunk_level`); explicit zeros are dropped.

    Each chunk's entries are radix-sorted by feature (stable, so the children of
    a row stay in column order) in per-thread scratch of the largest chunk's
    size; a first pass counts rows, a second writes them. Returns ``(chunk_ptr,
    row_feat, row_ptr, entries)``.
    """
    cdef intp_t n_chunks = col_ptr.shape[0] - 1
    cdef intp_t c, max_nnz = 0, n, k, j, col
    cdef int stage
    cdef int64_t p, p0, r, e
    cdef uint64_t key, f, prev
    cdef uint64_t* keys
    cdef uint64_t* tmp
    cdef uint64_t* ordered
    cdef int32_t* pos_col
    cdef intp_t failed = 0
    cdef int64_t[::1] n_rows_of = np.zeros(n_chunks, dtype=np.int64)
    cdef int64_t[::1] n_entries_of = np.zeros(n_chunks, dtype=np.int64)
    cdef int64_t[::1] chunk_ptr
    cdef int64_t[::1] entry_base
    cdef int32_t[::1] row_feat
    cdef int64_t[::1] row_ptr
    cdef Entry* out
    for c in range(n_chunks):
        n = W_indptr[col_ptr[c + 1]] - W_indptr[col_ptr[c]]
        if n > max_nnz:
            max_nnz = n
    if max_nnz >= 4294967296:
        raise ValueError("a node's children have 2**32 weights or more")
    n_threads = max(1, min(n_threads, n_chunks))
    for stage in range(2):
        if stage == 1:
            chunk_ptr = np.zeros(n_chunks + 1, dtype=np.int64)
            entry_base = np.zeros(n_chunks + 1, dtype=np.int64)
            np.cumsum(n_rows_of, out=np.asarray(chunk_ptr)[1:])
            np.cumsum(n_entries_of, out=np.asarray(entry_base)[1:])
            row_feat = np.empty(chunk_ptr[n_chunks], dtype=np.int32)
            row_ptr = np.empty(chunk_ptr[n_chunks] + 1, dtype=np.int64)
            row_ptr[chunk_ptr[n_chunks]] = entry_base[n_chunks]
            entries = np.empty(entry_base[n_chunks], dtype=ENTRY_DTYPE)
            out = <Entry*> cnp.PyArray_DATA(entries)
        with nogil, parallel(num_threads=n_threads):
            keys = <uint64_t*> malloc((max_nnz + 1) * sizeof(uint64_t))
            tmp = <uint64_t*> malloc((max_nnz + 1) * sizeof(uint64_t))
            pos_col = <int32_t*> malloc((max_nnz + 1) * sizeof(int32_t))
            for c in prange(n_chunks, schedule="dynamic"):
                if keys == NULL or tmp == NULL or pos_col == NULL:
                    failed += 1
                    continue
                p0 = W_indptr[col_ptr[c]]
                k = 0
                for col in range(col_ptr[c], col_ptr[c + 1]):
                    for p in range(W_indptr[col], W_indptr[col + 1]):
                        pos_col[p - p0] = <int32_t> (col - col_ptr[c])
                        if W_data[p] != 0:
                            keys[k] = ((<uint64_t> W_indices[p]) << 32) | <uint64_t> (p - p0)
                            k = k + 1
                ordered = sort_by_feature(keys, tmp, k, <uint64_t> n_rows)
                if stage == 0:
                    n_entries_of[c] = k
                    prev = 0
                    for j in range(k):
                        f = ordered[j] >> 32
                        if j == 0 or f != prev:
                            n_rows_of[c] += 1
                        prev = f
                else:
                    r = chunk_ptr[c] - 1
                    e = entry_base[c]
                    prev = 0
                    for j in range(k):
                        key = ordered[j]
                        f = key >> 32
                        if j == 0 or f != prev:
                            r = r + 1
                            row_feat[r] = <int32_t> f
                            row_ptr[r] = e
                        prev = f
                        out[e].child = pos_col[key & <uint64_t> 0xFFFFFFFF]
                        out[e].val = W_data[p0 + <int64_t> (key & <uint64_t> 0xFFFFFFFF)]
                        e = e + 1
            free(keys)
            free(tmp)
            free(pos_col)
        if failed:
            raise MemoryError("could not allocate the chunk-building scratch")
    return (np.asarray(chunk_ptr), np.asarray(row_feat), np.asarray(row_ptr),
            entries)


cdef void _chunk_scores(const ChunkLevel* L, intp_t chunk, const QueryItem* q,
                        intp_t m, double* acc, Hit* hits) noexcept nogil:
    """acc[j] += W[:, child j of the chunk] . query, for every child j.

    ``hits`` is scratch for ``m`` items."""
    cdef intp_t r0 = L.chunk_ptr[chunk], r1 = L.chunk_ptr[chunk + 1]
    cdef intp_t i, r, h, n_hits = 0
    cdef const Slot* table
    cdef int64_t mask, pos
    cdef int32_t f
    if m <= r1 - r0:
        # Fewer query nonzeros than chunk rows: look each one up in the table. The
        # passes touch the slots, then the matched rows' pointers, then their
        # entries, each pass prefetching for the next, so the cache misses overlap.
        table = L.slots + L.slot_ptr[chunk]
        mask = L.slot_ptr[chunk + 1] - L.slot_ptr[chunk] - 1
        for i in range(m):
            _prefetch(&table[_hash(q[i].idx) & mask])
        for i in range(m):
            f = q[i].idx
            pos = _hash(f) & mask
            while True:
                if table[pos].feat == f:
                    r = r0 + table[pos].row
                    _prefetch(&L.row_ptr[r])
                    hits[n_hits].row = r
                    hits[n_hits].val = q[i].val
                    n_hits += 1
                    break
                if table[pos].feat == -1:
                    break
                pos = (pos + 1) & mask
        for h in range(n_hits):
            _prefetch(&L.entries[L.row_ptr[hits[h].row]])
        for h in range(n_hits):
            _add_row(L, hits[h].row, hits[h].val, acc)
    else:
        i = 0
        for r in range(r0, r1):
            i = _gallop_query(q, i, m, L.row_feat[r])
            if i >= m:
                return
            if q[i].idx == L.row_feat[r]:
                _add_row(L, r, q[i].val, acc)
                i += 1


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


cdef void _search_one(const QueryItem* q, intp_t m,  # IN  sorted query items
                      const ChunkLevel* W,            # IN  per-level chunks
                      intp_t n_levels,
                      const int64_t* level_ptr,       # IN  tree
                      const int64_t* child_ptr,
                      const int64_t* label_perm,
                      intp_t beam, intp_t top_k, int code, int power,
                      double init,
                      double* acc,                    # scratch, >= max chunk width
                      Hit* hits,                      # scratch, >= m
                      double* cur_s, intp_t* cur_n,   # scratch, >= max(beam, top_k)
                      double* nxt_s, intp_t* nxt_n,
                      int64_t* out_labels,            # OUT top_k labels
                      float* out_scores               # OUT top_k scores
                      ) noexcept nogil:
    """Beam search for one query."""
    cdef intp_t n_cur = 1, size, cap, t, j, o, width, first, base, parent
    cdef double ps, v
    cdef double* ts
    cdef intp_t* tn
    cdef bint last
    cur_n[0] = 0
    cur_s[0] = init
    for t in range(1, n_levels + 1):
        base = level_ptr[t]
        last = t == n_levels
        cap = top_k if last else beam
        size = 0
        for j in range(n_cur):
            parent = cur_n[j]
            ps = cur_s[j]
            first = child_ptr[parent]
            width = child_ptr[parent + 1] - first
            memset(acc, 0, width * sizeof(double))
            _chunk_scores(&W[t - 1], parent - level_ptr[t - 1], q, m, acc, hits)
            for o in range(width):
                v = _path_score(ps, acc[o], code, power)
                if v != v:
                    v = -INFINITY
                if last:
                    size = heap_push(nxt_s, nxt_n, size, cap, v,
                                     <intp_t> label_perm[first + o - base])
                else:
                    size = heap_push(nxt_s, nxt_n, size, cap, v, first + o)
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


cdef inline double _initial(int code) noexcept nogil:
    return 1.0 if (code == PP_HINGE or code == PP_SIGMOID) else 0.0


# Batch search: queries go level by level in blocks; at each level the (query, beam
# node) pairs of a block are sorted by chunk, so the threads score one chunk for many
# queries in a row while its rows and table are in cache.
cdef struct Workspace:
    intp_t block          # queries per block
    intp_t capq           # max(beam, top_k): kept nodes per query
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
    cdef intp_t capq = beam if beam > top_k else top_k
    cdef size_t n_cand = <size_t> block * capq * max_width
    ws.block = block
    ws.capq = capq
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
    return (ws.cur_id != NULL and ws.cur_s != NULL and ws.cur_n != NULL
            and ws.chunk_count != NULL and ws.pair_q != NULL and ws.pair_j != NULL
            and ws.pair_off != NULL and ws.cand_ptr != NULL and ws.cand_s != NULL
            and ws.cand_id != NULL)


cdef intp_t _search_block(const QueryItem* items,      # IN  sorted query items
                          const int64_t* items_ptr,    # IN  (nb + 1,) item ranges
                          const intp_t* items_len,     # IN  (nb,) items used
                          intp_t nb,
                          const ChunkLevel* W, intp_t n_levels,
                          const int64_t* lp, const int64_t* cp, const int64_t* perm,
                          intp_t beam, intp_t top_k, int code, int power, double init,
                          intp_t max_width, intp_t max_items, Workspace* ws,
                          int64_t* out_labels,          # OUT (nb, top_k)
                          float* out_scores,            # OUT (nb, top_k)
                          int n_threads) noexcept nogil:
    """Beam search for a block of queries; returns the number of queries that
    could not get scratch memory (their outputs are left unset)."""
    cdef intp_t capq = ws.capq
    cdef intp_t q, j, t, o, c, node, first, width, size, cap, n_pairs, p, up, base
    cdef intp_t n_chunks, n_failed = 0
    cdef int64_t total, off, e
    cdef double ps, v
    cdef bint last
    cdef double* acc
    cdef Hit* hits
    cdef intp_t* ids
    cdef double* vals
    for q in range(nb):
        ws.cur_n[q] = 1
        ws.cur_id[q * capq] = 0
        ws.cur_s[q * capq] = init
    for t in range(1, n_levels + 1):
        last = t == n_levels
        base = lp[t]
        up = lp[t - 1]
        n_chunks = base - up
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
        # Score every pair's children.
        with parallel(num_threads=n_threads):
            acc = <double*> malloc(max_width * sizeof(double))
            hits = <Hit*> malloc(max_items * sizeof(Hit))
            for p in prange(n_pairs, schedule="dynamic", chunksize=8):
                q = ws.pair_q[p]
                j = ws.pair_j[p]
                node = ws.cur_id[q * capq + j]
                ps = ws.cur_s[q * capq + j]
                first = cp[node]
                width = cp[node + 1] - first
                off = ws.pair_off[p]
                if acc == NULL or hits == NULL:
                    for o in range(width):
                        ws.cand_s[off + o] = -INFINITY
                        ws.cand_id[off + o] = -1
                    n_failed += 1
                    continue
                memset(acc, 0, width * sizeof(double))
                _chunk_scores(&W[t - 1], node - up, items + items_ptr[q], items_len[q],
                              acc, hits)
                for o in range(width):
                    v = _path_score(ps, acc[o], code, power)
                    if v != v:
                        v = -INFINITY
                    ws.cand_s[off + o] = v
                    if last:
                        ws.cand_id[off + o] = perm[first + o - base]
                    else:
                        ws.cand_id[off + o] = first + o
            free(acc)
            free(hits)
        # Keep the best candidates of every query.
        for q in prange(nb, schedule="static", num_threads=n_threads):
            ids = ws.cur_id + q * capq
            vals = ws.cur_s + q * capq
            size = 0
            for e in range(ws.cand_ptr[q], ws.cand_ptr[q + 1]):
                size = heap_push(vals, ids, size, cap, ws.cand_s[e], ws.cand_id[e])
            if last:
                heap_sort_best_first(vals, ids, size)
                for j in range(size):
                    out_labels[q * top_k + j] = ids[j]
                    out_scores[q * top_k + j] = <float> vals[j]
                for j in range(size, top_k):
                    out_labels[q * top_k + j] = -1
                    out_scores[q * top_k + j] = 0
            else:
                _sort_by_node(vals, ids, size)
            ws.cur_n[q] = size
    return n_failed


def _check_tree_args(ChunkedWeights weights, const int64_t[::1] level_ptr,
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
    if code < PP_NOOP or code > PP_LOG_SIGMOID or (code == PP_HINGE and power < 1):
        raise ValueError(f"unknown post-processor code {code} (power {power})")
    if out_labels.shape[0] != n_queries or out_scores.shape[0] != n_queries \
            or out_labels.shape[1] != top_k or out_scores.shape[1] != top_k:
        raise ValueError("output arrays must have shape (n_queries, top_k)")


# Below this many queries, each query is searched on its own (no workspace setup).
DEF SMALL_BATCH = 4
# Candidate scores per block (bounds the workspace: 16 bytes each, 16 MiB in all;
# 4x as many cost batch prediction 40-60 MB more memory for no speed-up).
DEF BLOCK_CANDIDATES = 1048576


cdef intp_t _block_size(intp_t n_q, intp_t capq, intp_t max_width):
    cdef intp_t per_query = capq * max_width
    cdef intp_t block = BLOCK_CANDIDATES // per_query if per_query > 0 else n_q
    return max(1, min(n_q, block))


cdef intp_t _max_chunks(const int64_t[::1] level_ptr):
    cdef intp_t t, best = 1
    for t in range(1, level_ptr.shape[0] - 1):
        best = max(best, level_ptr[t] - level_ptr[t - 1])
    return best


def _beam_search_csr(const floating[::1] X_data,      # IN  CSR values
                     const index_t[::1] X_indices,    # IN  CSR column indices
                     const index_t[::1] X_indptr,     # IN  CSR row pointers
                     ChunkedWeights weights,          # IN  per-level chunked weights
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
    cdef double init = _initial(code)
    cdef QueryItem* items
    cdef int64_t* items_ptr
    cdef intp_t* items_len
    cdef double* acc
    cdef Hit* hits
    cdef double* buf_s
    cdef intp_t* buf_n
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
        buf_s = <double*> malloc(2 * cap * sizeof(double))
        buf_n = <intp_t*> malloc(2 * cap * sizeof(intp_t))
        if (items == NULL or acc == NULL or hits == NULL or buf_s == NULL
                or buf_n == NULL):
            free(items)
            free(acc)
            free(hits)
            free(buf_s)
            free(buf_n)
            raise MemoryError()
        with nogil:
            for q in range(n_q):
                m = _load_sparse_query(xd, xi, X_indptr[q], X_indptr[q + 1], n_feat,
                                       bias, items, &n_bad_x)
                _search_one(items, m, W, n_levels, lp, cp, perm, beam, top_k, code,
                            power, init, acc, hits, buf_s, buf_n, buf_s + cap,
                            buf_n + cap, &out_labels[q, 0], &out_scores[q, 0])
        free(items)
        free(acc)
        free(hits)
        free(buf_s)
        free(buf_n)
        return n_bad_x, 0
    nb = block if block > 0 else _block_size(n_q, cap, weights.max_width)
    nb = min(nb, n_q)
    items_ptr = <int64_t*> malloc((nb + 1) * sizeof(int64_t))
    items_len = <intp_t*> malloc(nb * sizeof(intp_t))
    if (not _alloc_workspace(&ws, nb, beam, top_k, _max_chunks(level_ptr),
                             weights.max_width)
            or items_ptr == NULL or items_len == NULL):
        _free_workspace(&ws)
        free(items_ptr)
        free(items_len)
        raise MemoryError("beam search: cannot allocate the block workspace")
    try:
        for b0 in range(0, n_q, ws.block):
            nb = min(ws.block, n_q - b0)
            for i in range(nb + 1):
                items_ptr[i] = X_indptr[b0 + i] - X_indptr[b0] + i
            items = <QueryItem*> malloc((items_ptr[nb] + 1) * sizeof(QueryItem))
            if items == NULL:
                raise MemoryError("beam search: cannot allocate the queries")
            with nogil:
                for i in prange(nb, schedule="static", num_threads=n_threads):
                    n_bad_here = 0
                    items_len[i] = _load_sparse_query(
                        xd, xi, X_indptr[b0 + i], X_indptr[b0 + i + 1], n_feat, bias,
                        items + items_ptr[i], &n_bad_here)
                    n_bad_x += n_bad_here
                n_failed += _search_block(items, items_ptr, items_len, nb, W, n_levels,
                                          lp, cp, perm, beam, top_k, code, power, init,
                                          weights.max_width, max_nnz + 1, &ws,
                                          &out_labels[b0, 0],
                                          &out_scores[b0, 0], n_threads)
            free(items)
    finally:
        _free_workspace(&ws)
        free(items_ptr)
        free(items_len)
    return n_bad_x, n_failed


def _beam_search_dense(const floating[:, ::1] X,       # IN  (n_queries, n_features)
                       ChunkedWeights weights,         # IN  per-level chunked weights
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
    cdef intp_t cap, q, i, j, m, nb, b0
    cdef intp_t n_failed = 0
    cdef double init = _initial(code)
    cdef QueryItem* items
    cdef QueryItem* row
    cdef int64_t* items_ptr
    cdef intp_t* items_len
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
    lp = &level_ptr[0]
    cp = &child_ptr[0]
    perm = &label_perm[0]
    cap = beam if beam > top_k else top_k
    n_threads = max(1, min(n_threads, n_q))
    nb = block if block > 0 else _block_size(n_q, cap, weights.max_width)
    nb = max(1, min(nb, n_q, (1 << 24) // (n_feat + 1)))  # dense rows: bound copies
    items_ptr = <int64_t*> malloc((nb + 1) * sizeof(int64_t))
    items_len = <intp_t*> malloc(nb * sizeof(intp_t))
    items = <QueryItem*> malloc(nb * (n_feat + 1) * sizeof(QueryItem))
    if (not _alloc_workspace(&ws, nb, beam, top_k, _max_chunks(level_ptr),
                             weights.max_width)
            or items_ptr == NULL or items_len == NULL or items == NULL):
        _free_workspace(&ws)
        free(items_ptr)
        free(items_len)
        free(items)
        raise MemoryError("beam search: cannot allocate the block workspace")
    for i in range(nb + 1):
        items_ptr[i] = i * (n_feat + 1)
    b0 = 0
    with nogil:
        while b0 < n_q:
            m = min(nb, n_q - b0)
            for i in prange(m, schedule="static", num_threads=n_threads):
                row = items + items_ptr[i]
                q = 0
                for j in range(n_feat):
                    if X[b0 + i, j] != 0:
                        row[q].idx = <int32_t> j
                        row[q].val = X[b0 + i, j]
                        q = q + 1
                row[q].idx = <int32_t> n_feat
                row[q].val = bias
                items_len[i] = q + 1
            n_failed += _search_block(items, items_ptr, items_len, m, W, n_levels,
                                      lp, cp, perm, beam, top_k, code, power, init,
                                      weights.max_width, n_feat + 1, &ws,
                                      &out_labels[b0, 0],
                                      &out_scores[b0, 0], n_threads)
            b0 += m
    _free_workspace(&ws)
    free(items_ptr)
    free(items_len)
    free(items)
    return 0, n_failed
