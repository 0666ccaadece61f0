# The chunked weight layout of beam search (built by _chunked_weights.pyx, read by
# the kernels without the GIL): per tree level, the columns of W_t cut into one
# chunk per node of level t - 1 (its children), each stored row-major over the
# features it uses, with a bucket directory feature -> rows. See
# skxmr/_cython/_chunked_weights.pyx for the layout and skxmr._beam.chunk_level
# for the arrays.
from libc.stdint cimport uint8_t, uint16_t, uint32_t

from skxmr._cython._typedefs cimport intp_t, int32_t, int64_t


cdef struct ChunkLevel:
    const int64_t* chunk_ptr    # (n_chunks + 1,) into the rows
    const int32_t* row_feat     # (n_rows_total,) row feature ids, sorted per chunk
    const uint16_t* row_off     # (n_rows_total + 1,) row r's entries start at
    const int64_t* row_base     #   row_base[r >> row_shift] + row_off[r] and end
    int row_shift               #   where row r + 1's start (groups of 2**row_shift)
    const float* vals           # (nnz,) weights
    const void* child           # (nnz,) child offsets within the chunk: uint8,
    int child_bytes             #   uint16 or int32 (1, 2 or 4 bytes)
    const int64_t* dir_ptr      # (n_chunks + 1,) into dir; chunk c has
                                #   dir_ptr[c + 1] - dir_ptr[c] - 1 buckets
    const int32_t* dir_shift    # (n_chunks,) bucket of feature f: (f - first) >> s
    const uint32_t* dir         # rows (relative to the chunk) where buckets start
    intp_t n_chunks


cdef struct Hit:
    intp_t row                  # a chunk row that matched a query item (while
    intp_t end                  #   looking up: the bucket's rows row:end)
    double val                  # the item's value
    int32_t feat                # the item's feature (while looking up)


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


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define SKXMR_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define SKXMR_PREFETCH(p) ((void)0)
    #endif
    """
    void prefetch "SKXMR_PREFETCH"(const void* p) noexcept nogil


cdef inline void add_row(const ChunkLevel* L, intp_t chunk, intp_t r, double v,
                          double* acc) noexcept nogil:
    """acc[child] += v * weight for the entries of row ``r`` of ``chunk``."""
    cdef int64_t e, start = L.row_base[r >> L.row_shift] + L.row_off[r]
    cdef int64_t end = L.row_base[(r + 1) >> L.row_shift] + L.row_off[r + 1]
    cdef const float* vals = L.vals
    cdef const uint8_t* c8
    cdef const uint16_t* c16
    cdef const int32_t* c32
    if L.child_bytes == 1:
        c8 = <const uint8_t*> L.child
        for e in range(start, end):
            acc[c8[e]] += v * vals[e]
    elif L.child_bytes == 2:
        c16 = <const uint16_t*> L.child
        for e in range(start, end):
            acc[c16[e]] += v * vals[e]
    else:
        c32 = <const int32_t*> L.child
        for e in range(start, end):
            acc[c32[e]] += v * vals[e]


cdef inline void prefetch_row(const ChunkLevel* L, intp_t chunk,
                              intp_t r) noexcept nogil:
    cdef int64_t e = L.row_base[r >> L.row_shift] + L.row_off[r]
    prefetch(&L.vals[e])
    prefetch(<const char*> L.child + e * L.child_bytes)


cdef inline void chunk_scores(const ChunkLevel* L, intp_t chunk, const QueryItem* q,
                              intp_t m, double* acc, Hit* hits) noexcept nogil:
    """acc[j] += W[:, child j of the chunk] . query, for every child j, in
    increasing feature order for every child.

    ``hits`` is scratch for ``m`` items."""
    cdef intp_t r0 = L.chunk_ptr[chunk], r1 = L.chunk_ptr[chunk + 1]
    cdef intp_t i, r, h, n_hits = 0, n_found
    cdef int64_t d = L.dir_ptr[chunk], n_buckets, b
    cdef int32_t f0, f, shift
    if m <= r1 - r0:
        # Fewer query nonzeros than chunk rows: look each one up in the bucket
        # directory. The passes touch the buckets, the buckets' rows, the matched
        # rows' pointers, then their entries, each pass prefetching for the next,
        # so the cache misses overlap.
        f0 = L.row_feat[r0]
        shift = L.dir_shift[chunk]
        n_buckets = L.dir_ptr[chunk + 1] - d - 1
        for i in range(m):
            f = q[i].idx
            if f >= f0:
                b = (<int64_t> (f - f0)) >> shift
                if b < n_buckets:
                    prefetch(&L.dir[d + b])
        for i in range(m):
            f = q[i].idx
            if f < f0:
                continue
            b = (<int64_t> (f - f0)) >> shift
            if b >= n_buckets:
                continue
            hits[n_hits].row = r0 + L.dir[d + b]
            hits[n_hits].end = r0 + L.dir[d + b + 1]
            hits[n_hits].val = q[i].val
            hits[n_hits].feat = f
            if hits[n_hits].row < hits[n_hits].end:
                prefetch(&L.row_feat[hits[n_hits].row])
                n_hits += 1
        n_found = 0
        for h in range(n_hits):
            f = hits[h].feat
            r = hits[h].row
            while r < hits[h].end and L.row_feat[r] < f:
                r += 1
            if r < hits[h].end and L.row_feat[r] == f:
                prefetch(&L.row_off[r])
                hits[n_found].row = r
                hits[n_found].val = hits[h].val
                n_found += 1
        for h in range(n_found):
            prefetch_row(L, chunk, hits[h].row)
        for h in range(n_found):
            add_row(L, chunk, hits[h].row, hits[h].val, acc)
    else:
        i = 0
        for r in range(r0, r1):
            i = gallop_query(q, i, m, L.row_feat[r])
            if i >= m:
                return
            if q[i].idx == L.row_feat[r]:
                add_row(L, chunk, r, q[i].val, acc)
                i += 1
