"""The chunked weight layout of beam search (one level = one set of arrays).

The model has one weight matrix per tree level below the root, ``W_t`` of shape
``(n_features + 1, n_nodes_t)`` (the last row multiplies a constant feature of value
``bias``). Nodes are numbered level by level as in
:class:`skxmr._label_tree.LabelTree`, and the children of a node are contiguous.

Chunked layout (built by :func:`skxmr._beam.chunk_level` with the builders below):
the columns of ``W_t`` are cut into *chunks*, one per node of level ``t - 1`` (its
children). A chunk is stored row-major over the features it uses: the sorted
feature ids ``row_feat`` of its nonzero rows, for each row its entries ``(child
offset, value)``, and an open-addressing hash table from feature id to row.
Scoring all children of a beam node (``chunk_scores`` in ``_chunked_weights.pxd``)
is one sparse-sparse intersection between the query's nonzeros and the chunk's
rows: a hash lookup per query nonzero, or, when the query has more nonzeros than
the chunk has rows, a walk over the rows galloping through the sorted query. A
query thus touches only the weights of its own features (a CSC column walk touches
every weight of every scored column instead).

This module holds the builder (``_build_chunks``; the directory is built in
NumPy by :func:`skxmr._beam.chunk_level`) and :class:`ChunkedWeights`, the C
table of the arrays that the search kernels (``_beam_search``) read without the
GIL.
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport malloc, free

cimport numpy as cnp
import numpy as np

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from skxmr._cython._radix cimport sort_by_feature

cnp.import_array()


# The dtypes of one level's arrays (see skxmr._beam.chunk_level); the child
# offsets take one of CHILD_DTYPES.
LEVEL_DTYPES = (np.int64, np.int32, np.uint16, np.int64, np.int32, np.int64,
                np.float32, None, np.int64, np.int32, np.uint32)
CHILD_DTYPES = (np.uint8, np.uint16, np.int32)


def child_dtype(intp_t max_width):
    """The narrowest child-offset dtype for chunks of up to ``max_width``."""
    if max_width <= 256:
        return np.uint8
    if max_width <= 65536:
        return np.uint16
    return np.int32


cdef class ChunkedWeights:
    """The chunked weight arrays of a model, as a C table the kernels read without
    the GIL. Holds references to the arrays, so nothing is copied.

    Parameters
    ----------
    levels : list of tuple
        Per tree level, the 11 arrays of :func:`skxmr._beam.chunk_level`
        (``LEVEL_DTYPES``, contiguous). They are trusted to be consistent (the
        builder guarantees it); only their dtypes and lengths are checked here.
    n_rows : int
        ``n_features + 1`` (the bias row is the last one).
    max_width : int
        The largest number of children of one chunk.
    """

    def __cinit__(self, list levels, intp_t n_rows, intp_t max_width):
        cdef intp_t t, n = len(levels)
        self.levels = NULL
        if n < 1:
            raise ValueError("need at least one level")
        if n_rows < 1 or n_rows > 2147483647:
            raise ValueError(f"invalid number of weight rows: {n_rows}")
        if max_width < 1:
            raise ValueError(f"invalid chunk width: {max_width}")
        for t in range(n):
            arrays = levels[t]
            if len(arrays) != 11:
                raise ValueError(f"level {t + 1}: expected 11 arrays")
            for a, kind in zip(arrays, LEVEL_DTYPES):
                if (not isinstance(a, np.ndarray) or a.ndim != 1
                        or not a.flags.c_contiguous
                        or (a.dtype not in CHILD_DTYPES if kind is None
                            else a.dtype != kind)):
                    raise ValueError(f"level {t + 1}: arrays must be contiguous 1-D "
                                     "arrays of the layout's dtypes")
            (chunk_ptr, row_feat, row_off, row_base, row_shift, entry_ptr, vals,
             child, dir_ptr, dir_shift, dirs) = arrays
            n_chunks = chunk_ptr.shape[0] - 1
            if (n_chunks < 1 or chunk_ptr[0] != 0
                    or chunk_ptr[n_chunks] != row_feat.shape[0]
                    or row_off.shape[0] != row_feat.shape[0] + 1
                    or row_shift.shape[0] != 1 or not 0 <= row_shift[0] < 31
                    or row_base.shape[0] != (row_feat.shape[0] >> row_shift[0]) + 1
                    or entry_ptr.shape[0] != n_chunks + 1 or entry_ptr[0] != 0
                    or entry_ptr[n_chunks] != vals.shape[0]
                    or child.shape[0] != vals.shape[0]):
                raise ValueError(f"level {t + 1}: inconsistent chunk arrays")
            # Each level's child offsets have the dtype of that level's widest
            # chunk (at most max_width): only a dtype wider than the whole
            # tree needs is suspicious.
            if child.dtype.itemsize > np.dtype(child_dtype(max_width)).itemsize:
                raise ValueError(f"level {t + 1}: child offsets wider than the tree")
            if (dir_ptr.shape[0] != n_chunks + 1 or dir_ptr[0] != 0
                    or dir_ptr[n_chunks] != dirs.shape[0]
                    or dir_shift.shape[0] != n_chunks):
                raise ValueError(f"level {t + 1}: inconsistent directory arrays")
        self.levels = <ChunkLevel*> malloc(n * sizeof(ChunkLevel))
        if self.levels == NULL:
            raise MemoryError()
        for t in range(n):
            arrays = levels[t]
            self.levels[t].chunk_ptr = <const int64_t*> cnp.PyArray_DATA(arrays[0])
            self.levels[t].row_feat = <const int32_t*> cnp.PyArray_DATA(arrays[1])
            self.levels[t].row_off = <const uint16_t*> cnp.PyArray_DATA(arrays[2])
            self.levels[t].row_base = <const int64_t*> cnp.PyArray_DATA(arrays[3])
            self.levels[t].row_shift = int(arrays[4][0])
            self.levels[t].vals = <const float*> cnp.PyArray_DATA(arrays[6])
            self.levels[t].child = <const void*> cnp.PyArray_DATA(arrays[7])
            self.levels[t].child_bytes = arrays[7].dtype.itemsize
            self.levels[t].dir_ptr = <const int64_t*> cnp.PyArray_DATA(arrays[8])
            self.levels[t].dir_shift = <const int32_t*> cnp.PyArray_DATA(arrays[9])
            self.levels[t].dir = <const uint32_t*> cnp.PyArray_DATA(arrays[10])
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



def _build_chunks(const int64_t[::1] col_ptr,     # IN  (n_chunks + 1,) first column
                  const int64_t[::1] W_indptr,    # IN  CSC column pointers
                  const int32_t[::1] W_indices,   # IN  CSC row (feature) indices
                  const float[::1] W_data,        # IN  CSC values
                  intp_t n_rows, intp_t max_width, int n_threads):
    """Chunk rows and entries of one level from its CSC weights (see
    :func:`skxmr._beam.chunk_level`); explicit zeros are dropped.

    Each chunk's entries are radix-sorted by feature (stable, so the children of
    a row stay in column order) in per-thread scratch of the largest chunk's
    size; a first pass counts rows, a second writes them. Returns ``(chunk_ptr,
    row_feat, row_ptr, entry_ptr, vals, child)`` (``child`` of
    ``child_dtype(max_width)``; ``max_width`` must bound the chunk widths).
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
    cdef uint32_t[::1] row_ptr
    cdef float* out_val
    cdef uint8_t* c8 = NULL
    cdef uint16_t* c16 = NULL
    cdef int32_t* c32 = NULL
    cdef intp_t width_c
    for c in range(n_chunks):
        n = W_indptr[col_ptr[c + 1]] - W_indptr[col_ptr[c]]
        if n > max_nnz:
            max_nnz = n
    if max_nnz >= 4294967296:
        raise ValueError("a node's children have 2**32 weights or more")
    for c in range(n_chunks):
        if col_ptr[c + 1] - col_ptr[c] > max_width:
            raise ValueError("a chunk is wider than max_width")
    n_threads = max(1, min(n_threads, n_chunks))
    for stage in range(2):
        if stage == 1:
            chunk_ptr = np.zeros(n_chunks + 1, dtype=np.int64)
            entry_base = np.zeros(n_chunks + 1, dtype=np.int64)
            np.cumsum(n_rows_of, out=np.asarray(chunk_ptr)[1:])
            np.cumsum(n_entries_of, out=np.asarray(entry_base)[1:])
            row_feat = np.empty(chunk_ptr[n_chunks], dtype=np.int32)
            row_ptr = np.empty(chunk_ptr[n_chunks], dtype=np.uint32)
            vals = np.empty(entry_base[n_chunks], dtype=np.float32)
            child = np.empty(entry_base[n_chunks], dtype=child_dtype(max_width))
            out_val = <float*> cnp.PyArray_DATA(vals)
            if child.dtype == np.uint8:
                c8 = <uint8_t*> cnp.PyArray_DATA(child)
            elif child.dtype == np.uint16:
                c16 = <uint16_t*> cnp.PyArray_DATA(child)
            else:
                c32 = <int32_t*> cnp.PyArray_DATA(child)
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
                            row_ptr[r] = <uint32_t> (e - entry_base[c])
                        prev = f
                        width_c = pos_col[key & <uint64_t> 0xFFFFFFFF]
                        if c8 != NULL:
                            c8[e] = <uint8_t> width_c
                        elif c16 != NULL:
                            c16[e] = <uint16_t> width_c
                        else:
                            c32[e] = <int32_t> width_c
                        out_val[e] = W_data[p0 + <int64_t> (key & <uint64_t> 0xFFFFFFFF)]
                        e = e + 1
            free(keys)
            free(tmp)
            free(pos_col)
        if failed:
            raise MemoryError("could not allocate the chunk-building scratch")
    return (np.asarray(chunk_ptr), np.asarray(row_feat), np.asarray(row_ptr),
            np.asarray(entry_base), vals, child)


cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(__GLIBC__)
    #include <malloc.h>
    static int skxmr_release_free_heap(void) { return malloc_trim(0); }
    #else
    static int skxmr_release_free_heap(void) { return 0; }
    #endif
    """
    int skxmr_release_free_heap() noexcept nogil


def _release_free_heap():
    """Give the heap's free pages back to the system (glibc ``malloc_trim``; a
    no-op elsewhere). Building the layout and the batch workspace free tens of MB
    that glibc would otherwise keep in the process."""
    with nogil:
        skxmr_release_free_heap()
