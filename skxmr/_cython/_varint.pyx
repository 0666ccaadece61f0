"""Varint coding of the index structure of a CSC (or CSR) matrix.

The stream holds, for each column (each major slot) in order, LEB128 varints::

    count  gap_1  gap_2 ... gap_count

``count`` is the number of stored entries of the column and ``gap_k`` is
``index_k - index_{k-1} - 1`` (``index_0 = -1``), so the indices of a column are
strictly increasing by construction. A LEB128 varint stores 7 bits per byte, low
bits first, the high bit of each byte set when another byte follows: gaps below
128 take one byte, below 16384 two. Nothing else is stored: the number of
columns, of rows and of entries come from the caller.

Decoding trusts nothing in the stream: every byte read is bounds-checked, a
varint may not exceed 64 bits, a count may not exceed the entries left, an index
must stay below the number of rows, and the stream must end exactly after the
last column. A violation is reported as ``(code, byte offset)``; the Python
wrapper (``skxmr._persistence._container``) turns it into an exception.
"""

import numpy as np

from libc.stdint cimport int64_t, uint8_t, uint64_t

from skxmr._cython._typedefs cimport intp_t, index_t


# Status codes, mirrored by VARINT_ERRORS below.
cdef enum:
    VARINT_OK = 0
    VARINT_TRUNCATED = 1   # the stream ends inside a varint or before the last column
    VARINT_OVERFLOW = 2    # a varint longer than 64 bits
    VARINT_COUNT = 3       # a column count above the entries left
    VARINT_RANGE = 4       # an index at or above the number of rows
    VARINT_TRAILING = 5    # bytes left after the last column
    VARINT_SHORT = 6       # fewer entries than announced
    VARINT_UNSORTED = 7    # (encoding) indices not strictly increasing, or negative
    VARINT_POINTERS = 8    # (encoding) pointers not from 0 to nnz, or decreasing

VARINT_ERRORS = {
    VARINT_TRUNCATED: "the stream ends inside a varint or before the last column",
    VARINT_OVERFLOW: "a varint longer than 64 bits",
    VARINT_COUNT: "a column announces more entries than the matrix has left",
    VARINT_RANGE: "an index gap leads past the last row",
    VARINT_TRAILING: "bytes left after the last column",
    VARINT_SHORT: "the columns hold fewer entries than the matrix",
    VARINT_UNSORTED: "indices are negative, unsorted or repeated within a column",
    VARINT_POINTERS: "the pointers do not run from 0 to the number of entries",
}


# ----------------------------------------------------------------- encoding
cdef inline intp_t _varint_size(uint64_t v) noexcept nogil:
    cdef intp_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline intp_t _put(uint8_t* out, intp_t pos, uint64_t v) noexcept nogil:
    while v >= 0x80:
        out[pos] = <uint8_t> ((v & 0x7F) | 0x80)
        v >>= 7
        pos += 1
    out[pos] = <uint8_t> v
    return pos + 1


cdef int _encoded_size(const index_t[::1] indptr,  # IN  column pointers
                       const index_t[::1] indices,  # IN  row indices
                       intp_t* size,                # OUT stream bytes
                       intp_t* where) noexcept nogil:  # OUT first bad entry
    """Count the stream's bytes; VARINT_POINTERS for pointers that do not
    run from 0 to nnz without decreasing, VARINT_UNSORTED for a column whose
    indices are not strictly increasing and non-negative."""
    cdef intp_t j, p, total = 0
    cdef int64_t prev, idx
    if indptr.shape[0] < 1 or indptr[0] != 0 or (
            indptr[indptr.shape[0] - 1] != indices.shape[0]):
        where[0] = 0
        return VARINT_POINTERS
    for j in range(indptr.shape[0] - 1):
        if indptr[j + 1] < indptr[j]:
            where[0] = j
            return VARINT_POINTERS
        total += _varint_size(<uint64_t> (indptr[j + 1] - indptr[j]))
        prev = -1
        for p in range(indptr[j], indptr[j + 1]):
            idx = indices[p]
            if idx <= prev:
                where[0] = p
                return VARINT_UNSORTED
            total += _varint_size(<uint64_t> (idx - prev - 1))
            prev = idx
    size[0] = total
    return VARINT_OK


cdef void _encode(const index_t[::1] indptr,  # IN  column pointers
                  const index_t[::1] indices,  # IN  row indices (checked)
                  uint8_t[::1] out) noexcept nogil:  # OUT the stream
    cdef intp_t j, p, pos = 0
    cdef int64_t prev
    cdef uint8_t* buf = &out[0] if out.shape[0] else NULL
    for j in range(indptr.shape[0] - 1):
        pos = _put(buf, pos, <uint64_t> (indptr[j + 1] - indptr[j]))
        prev = -1
        for p in range(indptr[j], indptr[j + 1]):
            pos = _put(buf, pos, <uint64_t> (indices[p] - prev - 1))
            prev = indices[p]


def encode_index_stream(const index_t[::1] indptr,    # IN column pointers
                        const index_t[::1] indices):  # IN row indices
    """``(stream, status)``: the uint8 stream of a canonical CSC matrix's
    ``indptr`` and ``indices``, and ``(code, where)``: code 0, VARINT_POINTERS
    (``where``: the column) or VARINT_UNSORTED (``where``: the entry)."""
    cdef intp_t size = 0, where = 0
    cdef int code
    with nogil:
        code = _encoded_size(indptr, indices, &size, &where)
    if code != VARINT_OK:
        return np.empty(0, dtype=np.uint8), (code, where)
    out = np.empty(size, dtype=np.uint8)
    cdef uint8_t[::1] view = out
    with nogil:
        _encode(indptr, indices, view)
    return out, (VARINT_OK, 0)


# ----------------------------------------------------------------- decoding
cdef inline int _get(const uint8_t* s, intp_t n, intp_t* pos,
                     uint64_t* out) noexcept nogil:
    """Read one varint at ``pos[0]``; advance ``pos`` past it."""
    cdef intp_t p = pos[0]
    cdef uint64_t v = 0, b
    cdef int shift = 0
    while True:
        if p >= n:
            return VARINT_TRUNCATED
        b = s[p]
        if shift == 63 and b > 1:  # the 10th byte holds one bit, no continuation
            return VARINT_OVERFLOW
        v |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            break
        shift += 7
    pos[0] = p
    out[0] = v
    return VARINT_OK


cdef int _decode(const uint8_t[::1] stream,  # IN  the varint stream
                 int64_t n_rows,             # IN  indices lie in [0, n_rows)
                 index_t[::1] indptr,        # OUT column pointers (n_cols + 1)
                 index_t[::1] indices,       # OUT row indices (nnz)
                 intp_t* where) noexcept nogil:  # OUT byte offset of an error
    cdef const uint8_t* s = &stream[0] if stream.shape[0] else NULL
    cdef intp_t n = stream.shape[0], pos = 0, j, p, end
    cdef intp_t nnz = indices.shape[0], filled = 0
    cdef uint64_t count, gap, b0, b1, two
    cdef int64_t prev
    cdef int code
    indptr[0] = 0
    for j in range(indptr.shape[0] - 1):
        code = _get(s, n, &pos, &count)
        if code != VARINT_OK:
            where[0] = pos
            return code
        if count > <uint64_t> (nnz - filled):
            where[0] = pos
            return VARINT_COUNT
        end = filled + <intp_t> count
        prev = -1
        for p in range(filled, end):
            if pos + 1 < n:  # one or two bytes, without a branch on which
                b0 = s[pos]
                b1 = s[pos + 1]
                two = b0 >> 7
                if (b1 >> 7) & two:
                    code = _get(s, n, &pos, &gap)
                    if code != VARINT_OK:
                        where[0] = pos
                        return code
                else:
                    gap = (b0 & 0x7F) | ((b1 << 7) & (0 - two))
                    pos += 1 + <intp_t> two
            else:
                code = _get(s, n, &pos, &gap)
                if code != VARINT_OK:
                    where[0] = pos
                    return code
            if gap >= <uint64_t> (n_rows - prev - 1):
                where[0] = pos
                return VARINT_RANGE
            prev = prev + 1 + <int64_t> gap
            indices[p] = <index_t> prev
        filled = end
        indptr[j + 1] = <index_t> filled
    where[0] = pos
    if filled != nnz:
        return VARINT_SHORT
    if pos != n:
        return VARINT_TRAILING
    return VARINT_OK


def decode_index_stream(const uint8_t[::1] stream,  # IN  the varint stream
                        int64_t n_rows,             # IN  number of rows
                        index_t[::1] indptr,        # OUT column pointers
                        index_t[::1] indices):      # OUT row indices
    """Fill ``indptr`` (n_cols + 1) and ``indices`` (nnz) from ``stream``;
    returns ``(code, byte offset)``, code 0 when the stream is valid (then the
    indices of every column are strictly increasing and below ``n_rows``).
    ``ValueError`` when ``indptr`` is empty or the dtype cannot hold ``n_rows``
    or the number of entries."""
    cdef intp_t where = 0
    cdef int code
    cdef int64_t largest = 2147483647 if sizeof(index_t) == 4 else 9223372036854775807
    if indptr.shape[0] < 1:
        raise ValueError("indptr must hold at least one pointer.")
    if n_rows < 0 or n_rows - 1 > largest or indices.shape[0] > largest:
        raise ValueError(f"{n_rows} rows or {indices.shape[0]} entries do not fit "
                         "the index dtype.")
    with nogil:
        code = _decode(stream, n_rows, indptr, indices, &where)
    return code, where
