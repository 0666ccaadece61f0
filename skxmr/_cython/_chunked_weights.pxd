# The chunked weight layout of beam search (built by _chunked_weights.pyx, read by
# the kernels without the GIL): per tree level, the columns of W_t cut into one
# chunk per node of level t - 1 (its children), each stored row-major over the
# features it uses, with an open-addressing hash table feature -> row. See
# skxmr/_cython/_chunked_weights.pyx for the layout and skxmr._beam.chunk_level
# for the arrays.
from libc.stdint cimport uint32_t

from skxmr._cython._typedefs cimport intp_t, int32_t, int64_t


cdef struct ChunkLevel:
    const int64_t* chunk_ptr    # (n_chunks + 1,) into the rows
    const int32_t* row_feat     # (n_rows_total,) row feature ids, sorted per chunk
    const int64_t* row_ptr      # (n_rows_total + 1,) into the entries
    const Entry* entries        # (nnz,) (child offset within the chunk, weight)
    const int64_t* slot_ptr     # (n_chunks + 1,) into the slots; power-of-2 sizes
    const Slot* slots           # per chunk, an open-addressing table feature -> row
    intp_t n_chunks


cdef struct Entry:              # numpy: ENTRY_DTYPE
    int32_t child
    float val


cdef struct Hit:
    intp_t row                  # a chunk row that matched a query item
    double val                  # the item's value


cdef struct Slot:
    int32_t feat                # -1: empty
    int32_t row                 # row index relative to the chunk's first row


cdef struct QueryItem:          # one nonzero of a query (queries sorted by idx)
    int32_t idx
    double val


cdef class ChunkedWeights:
    cdef ChunkLevel* levels
    cdef readonly intp_t n_levels
    cdef readonly intp_t n_rows
    cdef readonly intp_t max_width
    cdef object _arrays


# ---------------------------------------------------------------- scoring helpers
cdef inline intp_t gallop_query(const QueryItem* q, intp_t lo, intp_t end,
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


cdef inline void add_row(const ChunkLevel* L, intp_t r, double v,
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
    void prefetch "SKXMR_PREFETCH"(const void* p) noexcept nogil


cdef inline uint32_t hash_feature(int32_t key) noexcept nogil:
    """Murmur3's 32-bit finaliser: a cheap, well-mixed hash of a feature id."""
    cdef uint32_t h = <uint32_t> key
    h ^= h >> 16
    h *= 0x85ebca6bU
    h ^= h >> 13
    h *= 0xc2b2ae35U
    h ^= h >> 16
    return h


cdef inline void chunk_scores(const ChunkLevel* L, intp_t chunk, const QueryItem* q,
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
            prefetch(&table[hash_feature(q[i].idx) & mask])
        for i in range(m):
            f = q[i].idx
            pos = hash_feature(f) & mask
            while True:
                if table[pos].feat == f:
                    r = r0 + table[pos].row
                    prefetch(&L.row_ptr[r])
                    hits[n_hits].row = r
                    hits[n_hits].val = q[i].val
                    n_hits += 1
                    break
                if table[pos].feat == -1:
                    break
                pos = (pos + 1) & mask
        for h in range(n_hits):
            prefetch(&L.entries[L.row_ptr[hits[h].row]])
        for h in range(n_hits):
            add_row(L, hits[h].row, hits[h].val, acc)
    else:
        i = 0
        for r in range(r0, r1):
            i = gallop_query(q, i, m, L.row_feat[r])
            if i >= m:
                return
            if q[i].idx == L.row_feat[r]:
                add_row(L, r, q[i].val, acc)
                i += 1

