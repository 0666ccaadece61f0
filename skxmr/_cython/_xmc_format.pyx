"""Parser and writer kernels for the Extreme Classification Repository text format.

File layout::

    n_samples n_features n_labels
    l1,l2,... f:v f:v ...          <- one line per sample, 0-based ids
     f:v f:v ...                   <- a line that starts with a blank has no labels

Reading takes two passes over the raw bytes, both without the GIL:

1. ``_scan`` parses the header and counts the lines, ``:`` and ``,`` of the body, which
   bound the number of stored features and labels. Python checks the row count and
   allocates the CSR buffers from these bounds.
2. ``_fill`` parses every row into the buffers, sorts each row's ids (stable, so
   duplicate feature values are summed in file order) and merges duplicates.

Both kernels report problems as ``(code, 1-based line number, byte offset)`` in a
small ``int64`` status array; the Python wrapper turns them into ``ValueError``.
The byte buffer must end with one extra NUL byte (not part of the data): ``strtod``
then never reads past the buffer.

Values are decoded exactly like ``strtod`` followed by a cast to ``float``: short
decimals (at most 15 significant digits, decimal exponent within [-22, 22]) take
Clinger's fast path, ``m * 10**e`` or ``m / 10**-e`` with ``m`` and ``10**|e|`` exact
doubles, which IEEE arithmetic rounds correctly, i.e. to the same double as ``strtod``;
anything else calls ``strtod``. Float32 values written with ``%.9g`` therefore read
back bit for bit.
"""

from cython cimport floating
from libc.stdint cimport int64_t, uint64_t
from libc.stdio cimport snprintf
from libc.stdlib cimport strtod, realloc, free
from libc.string cimport memcpy
from libc.math cimport isfinite

from skxmr._cython._typedefs cimport intp_t, index_t


# Status codes shared with skxmr/datasets/_xmc_format.py.
cdef enum:
    XMC_OK = 0
    XMC_EMPTY = 1            # empty file
    XMC_HEADER = 2           # header is not three non-negative integers
    XMC_HEADER_NEG = 3       # negative number in the header
    XMC_HEADER_BIG = 4       # header number too large
    XMC_FEW_ROWS = 5         # end of file before n_samples rows
    XMC_MANY_ROWS = 6        # non-blank line after n_samples rows
    XMC_LABEL_BAD = 7        # label id is not a non-negative integer
    XMC_LABEL_NEG = 8        # negative label id
    XMC_LABEL_RANGE = 9      # label id >= n_labels
    XMC_NO_COLON = 10        # feature token without ':'
    XMC_FEAT_BAD = 11        # feature id is not a non-negative integer
    XMC_FEAT_NEG = 12        # negative feature id
    XMC_FEAT_RANGE = 13      # feature id >= n_features
    XMC_VALUE_BAD = 14       # value is not a number
    XMC_VALUE_NONFINITE = 15  # NaN, inf, or outside the float32 range
    XMC_JUNK = 16            # control or non-ASCII byte
    XMC_NO_MEMORY = 17       # malloc failed
    XMC_SUM_NONFINITE = 18   # duplicate feature values sum to inf
    XMC_NO_COLON_LEAD = 19   # first token without ':' on a line that starts blank

OK = XMC_OK
EMPTY = XMC_EMPTY
HEADER = XMC_HEADER
HEADER_NEG = XMC_HEADER_NEG
HEADER_BIG = XMC_HEADER_BIG
FEW_ROWS = XMC_FEW_ROWS
MANY_ROWS = XMC_MANY_ROWS
LABEL_BAD = XMC_LABEL_BAD
LABEL_NEG = XMC_LABEL_NEG
LABEL_RANGE = XMC_LABEL_RANGE
NO_COLON = XMC_NO_COLON
FEAT_BAD = XMC_FEAT_BAD
FEAT_NEG = XMC_FEAT_NEG
FEAT_RANGE = XMC_FEAT_RANGE
VALUE_BAD = XMC_VALUE_BAD
VALUE_NONFINITE = XMC_VALUE_NONFINITE
JUNK = XMC_JUNK
NO_MEMORY = XMC_NO_MEMORY
SUM_NONFINITE = XMC_SUM_NONFINITE
NO_COLON_LEAD = XMC_NO_COLON_LEAD

# Ids and header numbers stop growing once they reach ID_CAP while being read (so
# ``10 * v + 9`` never overflows int64); anything this large is an error: out of range,
# or too large for the header.
cdef int64_t ID_CAP = (<int64_t> 1) << 59

# Exact powers of ten for the fast path (10**22 is the largest exact double power).
cdef double POW10[23]
POW10[:] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
            1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]


# ---------------------------------------------------------------------------
# Character classes
# ---------------------------------------------------------------------------

cdef inline bint _is_blank(unsigned char c) noexcept nogil:
    """Separator inside a line: space, tab, CR, VT, FF."""
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


cdef inline bint _is_end(unsigned char c) noexcept nogil:
    """Ends a token: a separator, a newline, or the NUL sentinel."""
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12 or c == 10 or c == 0


cdef inline bint _is_digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint _is_junk(unsigned char c) noexcept nogil:
    """A byte that never belongs in the format: controls (bar blanks, LF), non-ASCII."""
    return (c < 32 and not (9 <= c <= 13)) or c >= 127


cdef inline intp_t _token_end(const unsigned char* buf, intp_t p,
                              intp_t n) noexcept nogil:
    while p < n and not _is_end(buf[p]):
        p += 1
    return p


cdef intp_t _find_junk(const unsigned char* buf, intp_t p, intp_t end) noexcept nogil:
    """Offset of the first junk byte in ``buf[p:end]``, or -1."""
    while p < end:
        if _is_junk(buf[p]):
            return p
        p += 1
    return -1


cdef inline intp_t _read_id(const unsigned char* buf, intp_t p,
                            int64_t* out) noexcept nogil:
    """Read decimal digits at ``p`` (saturating at ID_CAP); return the offset after."""
    cdef int64_t v = 0
    while _is_digit(buf[p]):
        if v < ID_CAP:
            v = v * 10 + (buf[p] - 48)
        p += 1
    out[0] = v
    return p


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

cdef inline bint _is_value_char(unsigned char c) noexcept nogil:
    # digits + - . E e
    return _is_digit(c) or c == 43 or c == 45 or c == 46 or c == 69 or c == 101


cdef bint _word_is(const unsigned char* buf, intp_t p, intp_t length,
                   const char* word) noexcept nogil:
    """Whether ``buf[p:p + length]`` equals the lower-case ``word`` ignoring case."""
    cdef intp_t k = 0
    while k < length and word[k] != 0 and (buf[p + k] | 32) == <unsigned char> word[k]:
        k += 1
    return k == length and word[k] == 0


cdef bint _is_nonfinite_word(const unsigned char* buf, intp_t p,
                             intp_t end) noexcept nogil:
    """Whether ``buf[p:end]`` spells nan / inf / infinity (any case, optional sign)."""
    if p < end and (buf[p] == 43 or buf[p] == 45):
        p += 1
    return (_word_is(buf, p, end - p, b"nan") or _word_is(buf, p, end - p, b"inf")
            or _word_is(buf, p, end - p, b"infinity"))


cdef int _parse_value(const unsigned char* buf, intp_t p, intp_t n,
                      double* out, intp_t* end) noexcept nogil:
    """Decode the number starting at ``p`` (it must end at a token end).

    Returns XMC_OK, XMC_VALUE_BAD or XMC_VALUE_NONFINITE (textual nan/inf); ``end``
    receives the offset after the token. The range check against float32 is left to
    the caller.
    """
    cdef intp_t q = p, e
    cdef bint neg = False, any_digit = False, exact = True
    cdef uint64_t m = 0
    cdef int nd = 0
    cdef int64_t exp10 = 0, ev = 0
    cdef bint eneg = False
    cdef unsigned char c
    cdef char* endp
    cdef double v
    # -- fast path: [+-]digits[.digits][(e|E)[+-]digits] --
    c = buf[q]
    if c == 45:
        neg = True
        q += 1
    elif c == 43:
        q += 1
    while _is_digit(buf[q]):
        any_digit = True
        c = buf[q] - 48
        if m == 0 and c == 0:
            pass                      # leading zero
        elif nd < 19:
            m = m * 10 + c
            nd += 1
        else:
            exact = False             # digits beyond 19 are dropped: not exact
            exp10 += 1
        q += 1
    if buf[q] == 46:
        q += 1
        while _is_digit(buf[q]):
            any_digit = True
            c = buf[q] - 48
            if m == 0 and c == 0:
                exp10 -= 1
            elif nd < 19:
                m = m * 10 + c
                nd += 1
                exp10 -= 1
            else:
                exact = False
            q += 1
    if any_digit and (buf[q] == 101 or buf[q] == 69):
        q += 1
        if buf[q] == 45:
            eneg = True
            q += 1
        elif buf[q] == 43:
            q += 1
        if not _is_digit(buf[q]):
            exact = False             # "1e", "1e+": let strtod reject it
        while _is_digit(buf[q]):
            if ev < 100000:
                ev = ev * 10 + (buf[q] - 48)
            q += 1
        exp10 += -ev if eneg else ev
    if any_digit and exact and _is_end(buf[q]) and nd <= 15:
        if m == 0:
            out[0] = -0.0 if neg else 0.0
            end[0] = q
            return XMC_OK
        if -22 <= exp10 <= 22:
            v = <double> m
            if exp10 >= 0:
                v = v * POW10[exp10]
            else:
                v = v / POW10[-exp10]
            out[0] = -v if neg else v
            end[0] = q
            return XMC_OK
    # -- slow path: strtod on a token made of number characters only --
    e = _token_end(buf, p, n)
    end[0] = e
    q = p
    while q < e and _is_value_char(buf[q]):
        q += 1
    if q < e or e == p:
        if _is_nonfinite_word(buf, p, e):
            return XMC_VALUE_NONFINITE
        return XMC_VALUE_BAD
    v = strtod(<const char*> (buf + p), &endp)
    if <intp_t> (<const unsigned char*> endp - buf) != e:
        return XMC_VALUE_BAD
    out[0] = v
    return XMC_OK


# ---------------------------------------------------------------------------
# Stable sort of one row (ids with optional values) and duplicate merging
# ---------------------------------------------------------------------------

cdef void _insertion_sort(index_t* ind, float* val, intp_t n) noexcept nogil:
    cdef intp_t i, j
    cdef index_t key
    cdef float kv = 0
    for i in range(1, n):
        key = ind[i]
        if val != NULL:
            kv = val[i]
        j = i
        while j > 0 and ind[j - 1] > key:
            ind[j] = ind[j - 1]
            if val != NULL:
                val[j] = val[j - 1]
            j -= 1
        ind[j] = key
        if val != NULL:
            val[j] = kv


cdef void _merge_sort(index_t* ind, float* val, intp_t n,
                      index_t* tmp_ind, float* tmp_val) noexcept nogil:
    """Bottom-up stable merge sort; ``tmp_*`` hold ``n`` items (``val`` may be NULL)."""
    cdef intp_t width, lo, mid, hi, a, b, k, run = 16
    cdef index_t* src_i = ind
    cdef index_t* dst_i = tmp_ind
    cdef float* src_v = val
    cdef float* dst_v = tmp_val
    cdef index_t* swap_i
    cdef float* swap_v
    lo = 0
    while lo < n:
        hi = lo + run if lo + run < n else n
        _insertion_sort(ind + lo, (val + lo) if val != NULL else NULL, hi - lo)
        lo = hi
    width = run
    while width < n:
        lo = 0
        while lo < n:
            mid = lo + width if lo + width < n else n
            hi = lo + 2 * width if lo + 2 * width < n else n
            a = lo
            b = mid
            k = lo
            while a < mid and b < hi:
                if src_i[b] < src_i[a]:
                    dst_i[k] = src_i[b]
                    if val != NULL:
                        dst_v[k] = src_v[b]
                    b += 1
                else:
                    dst_i[k] = src_i[a]
                    if val != NULL:
                        dst_v[k] = src_v[a]
                    a += 1
                k += 1
            while a < mid:
                dst_i[k] = src_i[a]
                if val != NULL:
                    dst_v[k] = src_v[a]
                a += 1
                k += 1
            while b < hi:
                dst_i[k] = src_i[b]
                if val != NULL:
                    dst_v[k] = src_v[b]
                b += 1
                k += 1
            lo = hi
        swap_i = src_i
        src_i = dst_i
        dst_i = swap_i
        swap_v = src_v
        src_v = dst_v
        dst_v = swap_v
        width *= 2
    if src_i != ind:
        memcpy(ind, src_i, n * sizeof(index_t))
        if val != NULL:
            memcpy(val, src_v, n * sizeof(float))


cdef intp_t _canonical_row(index_t* ind, float* val, intp_t n,
                           void** scratch, intp_t* scratch_len) noexcept nogil:
    """Sort ``ind`` (with ``val``), merge duplicates (sum ``val``); return the length.

    Returns -1 when scratch memory cannot be allocated, -2 when a sum overflows.
    """
    cdef intp_t k, w
    cdef bint ordered = True
    cdef void* grown
    for k in range(1, n):
        if ind[k] <= ind[k - 1]:
            ordered = False
            break
    if ordered:
        return n
    if n <= 32:
        _insertion_sort(ind, val, n)
    else:
        if scratch_len[0] < n:
            grown = realloc(scratch[0], n * (sizeof(int64_t) + sizeof(float)))
            if grown == NULL:
                return -1
            scratch[0] = grown
            scratch_len[0] = n
        _merge_sort(ind, val, n, <index_t*> scratch[0],
                    <float*> ((<char*> scratch[0]) + n * sizeof(int64_t)))
    w = 1
    for k in range(1, n):
        if ind[k] == ind[w - 1]:
            if val != NULL:
                val[w - 1] += val[k]
                if not isfinite(val[w - 1]):
                    return -2
        else:
            ind[w] = ind[k]
            if val != NULL:
                val[w] = val[k]
            w += 1
    return w


# ---------------------------------------------------------------------------
# Pass 1: header and counts
# ---------------------------------------------------------------------------

cdef int _header_error(const unsigned char* buf, intp_t start, intp_t p, intp_t n,
                       int code, int64_t* status) noexcept nogil:
    cdef intp_t line_end = start, junk
    while line_end < n and buf[line_end] != 10:
        line_end += 1
    junk = _find_junk(buf, start, line_end)
    if junk >= 0:
        code = XMC_JUNK
        p = junk
    status[0] = code
    status[1] = 1
    status[2] = p
    return code


cdef void _scan_impl(const unsigned char* buf, intp_t n,
                     int64_t* status) noexcept nogil:
    cdef intp_t p = 0, k, tok
    cdef int64_t v
    cdef int64_t head[3]
    cdef int64_t n_lines = 0, n_colons = 0, n_commas = 0
    cdef unsigned char c
    if n == 0:
        status[0] = XMC_EMPTY
        status[1] = 1
        return
    for k in range(3):
        while p < n and _is_blank(buf[p]):
            p += 1
        tok = p
        if buf[p] == 45 and _is_digit(buf[p + 1]):
            _header_error(buf, 0, p, n, XMC_HEADER_NEG, status)
            return
        if not _is_digit(buf[p]):
            _header_error(buf, 0, p, n, XMC_HEADER, status)
            return
        p = _read_id(buf, p, &v)
        if not _is_end(buf[p]):
            _header_error(buf, 0, tok, n, XMC_HEADER, status)
            return
        if v >= ID_CAP:
            _header_error(buf, 0, tok, n, XMC_HEADER_BIG, status)
            return
        head[k] = v
    while p < n and _is_blank(buf[p]):
        p += 1
    if p < n and buf[p] != 10:
        _header_error(buf, 0, p, n, XMC_HEADER, status)
        return
    if p < n:
        p += 1                       # the header's newline
    status[3] = head[0]
    status[4] = head[1]
    status[5] = head[2]
    status[6] = p
    for k in range(p, n):
        c = buf[k]
        n_lines += c == 10
        n_colons += c == 58
        n_commas += c == 44
    if n > p and buf[n - 1] != 10:
        n_lines += 1                 # last line without a newline
    status[7] = n_lines
    status[8] = n_colons
    status[9] = n_commas


def _scan(const unsigned char[::1] data,   # IN  file bytes followed by one NUL byte
          int64_t[::1] status):            # OUT see below
    """Parse the header and count the body's lines, colons and commas.

    ``status`` (length 10) receives: error code, line, byte offset, n_samples,
    n_features, n_labels, offset of the body, number of body lines, colons, commas.
    """
    status[:] = 0
    with nogil:
        _scan_impl(&data[0], data.shape[0] - 1, &status[0])


# ---------------------------------------------------------------------------
# Pass 2: fill the CSR buffers
# ---------------------------------------------------------------------------

cdef inline void _set_error(int64_t* status, int code, int64_t line,
                            intp_t pos) noexcept nogil:
    status[0] = code
    status[1] = line
    status[2] = pos


cdef int _token_error(const unsigned char* buf, intp_t tok, intp_t n, int code,
                      intp_t pos, int64_t line, int64_t* status) noexcept nogil:
    """Report ``code`` at ``pos``, or a junk byte of the token if it holds one."""
    cdef intp_t q = tok
    while q < n and not _is_blank(buf[q]) and buf[q] != 10:
        if _is_junk(buf[q]):
            _set_error(status, XMC_JUNK, line, q)
            return XMC_JUNK
        q += 1
    _set_error(status, code, line, pos)
    return code


def _fill(const unsigned char[::1] data,     # IN  file bytes followed by one NUL byte
          intp_t body_start,                 # IN  offset after the header line
          int64_t n_samples, int64_t n_features, int64_t n_labels,   # IN header
          float[::1] x_data,                 # OUT X values (capacity >= colons)
          index_t[::1] x_indices,            # OUT X column ids
          index_t[::1] x_indptr,             # OUT (n_samples + 1,)
          index_t[::1] y_indices,            # OUT Y label ids (cap. >= commas + rows)
          index_t[::1] y_indptr,             # OUT (n_samples + 1,)
          int64_t[::1] status):              # OUT code, line, offset, nnz X, nnz Y
    """Parse the body rows into CSR buffers: sorted ids, duplicates merged."""
    cdef intp_t n = data.shape[0] - 1
    cdef const unsigned char* buf = &data[0]
    cdef intp_t x_cap = x_data.shape[0], y_cap = y_indices.shape[0]
    cdef intp_t p = body_start, tok, q, row_start, kept
    cdef int64_t row, line, v
    cdef intp_t x_nnz = 0, y_nnz = 0
    cdef double value
    cdef float fvalue
    cdef int code, no_colon
    cdef bint first, at_start, no_labels
    cdef void* scratch = NULL
    cdef intp_t scratch_len = 0
    status[:] = 0
    with nogil:
        x_indptr[0] = 0
        y_indptr[0] = 0
        for row in range(n_samples):
            line = row + 2
            if p >= n:
                _set_error(&status[0], XMC_FEW_ROWS, line, p)
                break
            # A line that starts with a blank has no labels: its first token is a
            # feature (the writer puts a space before the features of such a row).
            no_labels = _is_blank(buf[p])
            while _is_blank(buf[p]):
                p += 1
            first = True
            while p < n and buf[p] != 10:
                tok = p
                at_start = first
                first = False
                # a first token without ':' after a leading blank is no label list
                no_colon = XMC_NO_COLON_LEAD if at_start and no_labels else XMC_NO_COLON
                if at_start and not no_labels:
                    q = p
                    while not _is_end(buf[q]) and buf[q] != 58:
                        q += 1
                    if buf[q] != 58:
                        # -- label list: id(,id)* --
                        row_start = y_nnz
                        while True:
                            if not _is_digit(buf[p]):
                                if buf[p] == 45 and _is_digit(buf[p + 1]):
                                    code = XMC_LABEL_NEG
                                else:
                                    code = XMC_LABEL_BAD
                                _token_error(buf, tok, n, code, p, line, &status[0])
                                break
                            q = _read_id(buf, p, &v)
                            if buf[q] != 44 and not _is_end(buf[q]):
                                _token_error(buf, tok, n, XMC_LABEL_BAD, p, line,
                                             &status[0])
                                break
                            if v >= n_labels:
                                _set_error(&status[0], XMC_LABEL_RANGE, line, p)
                                break
                            if y_nnz >= y_cap:     # cannot happen: capacity is a bound
                                _set_error(&status[0], XMC_NO_MEMORY, line, p)
                                break
                            y_indices[y_nnz] = <index_t> v
                            y_nnz += 1
                            p = q
                            if buf[p] != 44:
                                break
                            p += 1
                        if status[0] != XMC_OK:
                            break
                        kept = _canonical_row(&y_indices[row_start], NULL,
                                              y_nnz - row_start, &scratch, &scratch_len)
                        if kept < 0:
                            _set_error(&status[0], XMC_NO_MEMORY, line, tok)
                            break
                        y_nnz = row_start + kept
                        while _is_blank(buf[p]):
                            p += 1
                        continue
                # -- feature token: id:value --
                if not _is_digit(buf[p]):
                    q = p
                    while not _is_end(buf[q]) and buf[q] != 58:
                        q += 1
                    if buf[q] != 58:
                        code = no_colon
                    elif buf[p] == 45 and _is_digit(buf[p + 1]):
                        code = XMC_FEAT_NEG
                    else:
                        code = XMC_FEAT_BAD
                    _token_error(buf, tok, n, code, tok, line, &status[0])
                    break
                q = _read_id(buf, p, &v)
                if buf[q] != 58:
                    while not _is_end(buf[q]) and buf[q] != 58:
                        q += 1
                    if buf[q] == 58:
                        code = XMC_FEAT_BAD
                    else:
                        code = no_colon
                    _token_error(buf, tok, n, code, tok, line, &status[0])
                    break
                if v >= n_features:
                    _token_error(buf, tok, n, XMC_FEAT_RANGE, tok, line, &status[0])
                    break
                code = _parse_value(buf, q + 1, n, &value, &p)
                if code == XMC_OK:
                    fvalue = <float> value
                    if not isfinite(fvalue):
                        code = XMC_VALUE_NONFINITE
                if code != XMC_OK:
                    _token_error(buf, tok, n, code, tok, line, &status[0])
                    break
                if x_nnz >= x_cap:             # cannot happen: capacity is a bound
                    _set_error(&status[0], XMC_NO_MEMORY, line, tok)
                    break
                x_indices[x_nnz] = <index_t> v
                x_data[x_nnz] = fvalue
                x_nnz += 1
                while _is_blank(buf[p]):
                    p += 1
            if status[0] != XMC_OK:
                break
            # sort and merge this row's features
            row_start = x_indptr[row]
            kept = _canonical_row(&x_indices[row_start], &x_data[row_start],
                                  x_nnz - row_start, &scratch, &scratch_len)
            if kept < 0:
                code = XMC_NO_MEMORY if kept == -1 else XMC_SUM_NONFINITE
                _set_error(&status[0], code, line, p)
                break
            x_nnz = row_start + kept
            x_indptr[row + 1] = <index_t> x_nnz
            y_indptr[row + 1] = <index_t> y_nnz
            if p < n:
                p += 1                         # the newline
        free(scratch)
        if status[0] == XMC_OK:
            # after the rows: only blank lines may follow
            line = n_samples + 2
            while p < n:
                if buf[p] == 10:
                    line += 1
                elif not _is_blank(buf[p]):
                    if _is_junk(buf[p]):
                        _set_error(&status[0], XMC_JUNK, line, p)
                    else:
                        _set_error(&status[0], XMC_MANY_ROWS, line, p)
                    break
                p += 1
        status[3] = x_nnz
        status[4] = y_nnz


# ---------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------

# Upper bounds on the bytes one stored entry takes in a row.
cdef enum:
    XMC_LABEL_BYTES = 21       # 20 digits + ','
    XMC_FEATURE_BYTES = 48     # ' ' + 20 digits + ':' + up to 25 characters of value
    XMC_ROW_BYTES = 1          # '\n'

LABEL_BYTES = XMC_LABEL_BYTES
FEATURE_BYTES = XMC_FEATURE_BYTES
ROW_BYTES = XMC_ROW_BYTES


cdef inline intp_t _write_uint(unsigned char* out, uint64_t v) noexcept nogil:
    """Write ``v`` in decimal at ``out``; return the number of bytes."""
    cdef unsigned char tmp[24]
    cdef intp_t k = 0, j
    while True:
        tmp[k] = 48 + <unsigned char> (v % 10)
        v //= 10
        k += 1
        if v == 0:
            break
    for j in range(k):
        out[j] = tmp[k - 1 - j]
    return k


cdef inline intp_t _write_value(unsigned char* out, floating v) noexcept nogil:
    """Shortest of a few ``%.Ng`` forms that reads back as ``v`` (see _write_rows)."""
    cdef int written, prec
    cdef char* endp
    if floating is float:
        # %.9g always round-trips a float32 through strtod + cast.
        return snprintf(<char*> out, 32, "%.9g", <double> v)
    else:
        for prec in range(15, 18):
            written = snprintf(<char*> out, 32, "%.*g", prec, v)
            if prec == 17 or strtod(<const char*> out, &endp) == v:
                return written
        return written


def _write_rows(const floating[::1] x_data,      # IN  X values (no NaN/inf, no zeros)
                const index_t[::1] x_indices,    # IN  X column ids, sorted per row
                const index_t[::1] x_indptr,     # IN
                const index_t[::1] y_indices,    # IN  Y label ids, sorted per row
                const index_t[::1] y_indptr,     # IN
                intp_t row,                      # IN  first row to write
                unsigned char[::1] out,          # OUT text buffer
                int64_t[::1] status):            # OUT next row, bytes written
    """Format rows from ``row`` on into ``out`` while each row surely fits.

    The caller makes ``out`` at least as large as the bound of the longest row
    (``ROW_BYTES + LABEL_BYTES * n_labels + FEATURE_BYTES * n_features``), so at least
    one row is written per call. Float32 values use ``%.9g``; float64 values use the
    first of ``%.15g``, ``%.16g``, ``%.17g`` that ``strtod`` reads back exactly.
    """
    cdef intp_t n_rows = x_indptr.shape[0] - 1
    cdef intp_t cap = out.shape[0]
    cdef intp_t w = 0, k, bound
    cdef unsigned char* o
    if cap == 0:
        status[0] = row
        status[1] = 0
        return
    o = &out[0]
    with nogil:
        while row < n_rows:
            bound = (XMC_ROW_BYTES
                     + XMC_LABEL_BYTES * (y_indptr[row + 1] - y_indptr[row])
                     + XMC_FEATURE_BYTES * (x_indptr[row + 1] - x_indptr[row]))
            if w + bound > cap:
                break
            for k in range(y_indptr[row], y_indptr[row + 1]):
                if k > y_indptr[row]:
                    o[w] = 44
                    w += 1
                w += _write_uint(o + w, <uint64_t> y_indices[k])
            for k in range(x_indptr[row], x_indptr[row + 1]):
                o[w] = 32
                w += 1
                w += _write_uint(o + w, <uint64_t> x_indices[k])
                o[w] = 58
                w += 1
                w += _write_value(o + w, x_data[k])
            o[w] = 10
            w += 1
            row += 1
        status[0] = row
        status[1] = w
