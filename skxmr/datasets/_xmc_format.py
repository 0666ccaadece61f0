"""Reader and writer for the Extreme Classification Repository text format.

The format (used by the datasets of the Extreme Classification Repository,
http://manikvarma.org/downloads/XC/XMLRepository.html) is a header line
``n_samples n_features n_labels`` followed by one line per sample::

    l1,l2,... f:v f:v ...

with 0-based label ids (comma separated) and 0-based ``feature_id:value`` pairs (space
separated). Parsing and formatting run in the compiled kernels of
``skxmr._cython._xmc_format``; this module validates, allocates and reports errors.
"""

import io
import os

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from skxmr._cython import _xmc_format as _kernel

_INT32_MAX = np.iinfo(np.int32).max

# Writer buffer: rows are formatted into chunks of about this many bytes.
_CHUNK_BYTES = 1 << 22


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


def _is_text_file(f):
    """Whether the file object ``f`` reads or writes ``str`` (text mode)."""
    mode = getattr(f, "mode", None)  # an int for gzip.GzipFile
    return isinstance(f, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode)


def _text_mode_error(func, f, mode):
    return TypeError(
        f"{func} needs a file object opened in binary mode ({mode!r}), got the "
        f"text-mode file {f!r}; open it with open(path, {mode!r}) or pass the path"
    )


def _read_bytes(path):
    """Return the file content as a uint8 array with one extra NUL byte at the end."""
    if hasattr(path, "read"):
        # Text mode is refused before reading: decoding would fail on non-UTF-8
        # bytes (UnicodeDecodeError) or depend on the locale and translate newlines.
        if _is_text_file(path):
            raise _text_mode_error("load_xmc_file", path, "rb")
        try:
            raw = path.read()
        except UnicodeDecodeError as exc:  # a text reader of another kind
            raise _text_mode_error("load_xmc_file", path, "rb") from exc
        if isinstance(raw, str):
            raise _text_mode_error("load_xmc_file", path, "rb")
        raw = memoryview(raw).cast("B")
        buf = np.empty(len(raw) + 1, dtype=np.uint8)
        buf[:-1] = np.frombuffer(raw, dtype=np.uint8)
        buf[-1] = 0
        return buf
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = np.empty(size + 1, dtype=np.uint8)
        view = memoryview(buf)
        n_read = 0
        while n_read < size:
            got = f.readinto(view[n_read:size])
            if not got:
                break
            n_read += got
        rest = f.read()  # files whose size stat does not tell (pipes, /proc, growing)
    if n_read < size or rest:
        raw = buf[:n_read].tobytes() + rest
        buf = np.empty(len(raw) + 1, dtype=np.uint8)
        buf[:-1] = np.frombuffer(raw, dtype=np.uint8)
    buf[-1] = 0
    return buf


def _token_at(buf, pos, stop_at_comma=False):
    """The token of ``buf`` starting at ``pos`` (for messages), as a short string."""
    n = len(buf) - 1
    end = pos
    stops = b" \t\r\v\f\n\0" + (b"," if stop_at_comma else b"")
    while end < n and end - pos < 40 and buf[end] not in stops:
        end += 1
    text = bytes(buf[pos:end]).decode("latin-1")
    if end < n and buf[end] not in stops:
        text += "..."
    return repr(text)


def _line_at(buf, pos):
    """The line of ``buf`` that holds ``pos`` (for header messages)."""
    data = bytes(buf[:-1])
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    end = len(data) if end < 0 else end
    text = data[start : min(end, start + 60)].decode("latin-1").rstrip("\r")
    return repr(text) + ("..." if end > start + 60 else "")


def _raise_parse_error(buf, code, line, pos, header=None):
    """Raise the ValueError that describes a kernel status."""
    k = _kernel
    expected = (
        "expected a header 'n_samples n_features n_labels' of non-negative integers"
    )
    if code == k.EMPTY:
        msg = f"empty file: {expected}"
    elif code == k.HEADER:
        msg = f"bad header {_line_at(buf, pos)}: {expected}"
    elif code == k.HEADER_NEG:
        msg = f"negative number in header {_line_at(buf, pos)}: {expected}"
    elif code == k.HEADER_BIG:
        msg = f"header number {_token_at(buf, pos)} is too large"
    elif code == k.FEW_ROWS:
        msg = (
            f"unexpected end of file: the header announces n_samples={header[0]} rows "
            f"but the file has only {line - 2}"
        )
    elif code == k.MANY_ROWS:
        msg = (
            f"extra row {_line_at(buf, pos)}: the header announces "
            f"n_samples={header[0]} rows"
        )
    elif code == k.LABEL_BAD:
        msg = (
            f"label id {_token_at(buf, pos, stop_at_comma=True)} is not a non-negative "
            "integer (labels are written 'l1,l2,...')"
        )
    elif code == k.LABEL_NEG:
        msg = f"negative label id {_token_at(buf, pos, stop_at_comma=True)}"
    elif code == k.LABEL_RANGE:
        msg = (
            f"label id {_token_at(buf, pos, stop_at_comma=True)} out of range: "
            f"the header says n_labels={header[2]}"
        )
    elif code == k.NO_COLON:
        msg = (
            f"feature token {_token_at(buf, pos)} has no ':' "
            "(expected 'feature_id:value')"
        )
    elif code == k.NO_COLON_LEAD:
        msg = (
            f"feature token {_token_at(buf, pos)} has no ':' (expected "
            "'feature_id:value'); the line starts with a blank, which means it has no "
            "labels: labels 'l1,l2,...' must start the line"
        )
    elif code == k.FEAT_BAD:
        msg = f"feature id in {_token_at(buf, pos)} is not a non-negative integer"
    elif code == k.FEAT_NEG:
        msg = f"negative feature id in {_token_at(buf, pos)}"
    elif code == k.FEAT_RANGE:
        msg = (
            f"feature id in {_token_at(buf, pos)} out of range: the header says "
            f"n_features={header[1]}"
        )
    elif code == k.VALUE_BAD:
        msg = f"value in {_token_at(buf, pos)} is not a number"
    elif code == k.VALUE_NONFINITE:
        msg = (
            f"value in {_token_at(buf, pos)} is NaN, infinite or outside the float32 "
            "range"
        )
    elif code == k.JUNK:
        byte = int(buf[pos])
        msg = f"unexpected character {chr(byte)!r} (byte 0x{byte:02x})"
    elif code == k.SUM_NONFINITE:
        msg = "a repeated feature id has values that sum beyond the float32 range"
    elif code == k.NO_MEMORY:
        raise MemoryError(f"line {line}: out of memory while parsing")
    else:  # pragma: no cover
        msg = f"parse error {code}"
    raise ValueError(f"line {line}: {msg}")


def load_xmc_file(path):
    """Load a dataset in the Extreme Classification Repository text format.

    The first line is the header ``n_samples n_features n_labels``. Each of the next
    ``n_samples`` lines holds one sample: a comma-separated list of 0-based label ids,
    then space-separated ``feature_id:value`` pairs with 0-based feature ids, e.g.
    ``3,17 0:0.5 12:1``. A sample may have no labels, no features, or neither (an empty
    line). A line without labels starts with a blank (space or tab, as
    :func:`dump_xmc_file` writes it) or directly with a feature; after a leading blank
    the first token is always a feature, so a line `` 3`` is an error (a feature token
    without ``:``), never label 3: labels must start the line. Tabs, ``\\r\\n`` line
    endings, trailing blanks, a missing final newline and trailing blank lines are
    accepted.

    Parameters
    ----------
    path : str, path-like or binary file object
        File to read. A file object must be opened in binary mode (``'rb'``); a
        text-mode file object raises ``TypeError`` (decoding would fail on non-UTF-8
        bytes, depend on the locale and translate line endings).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features), dtype float32
        Feature values, with sorted indices; a feature repeated within a row is summed.
        Values are decoded like C ``strtod`` followed by a cast to float32, so float32
        values written with ``%.9g`` (as :func:`dump_xmc_file` does) read back exactly.
        Zeros written in the file are kept as stored entries.
    Y : scipy.sparse.csr_matrix of shape (n_samples, n_labels), dtype float32
        Label indicator matrix: 1 where the sample has the label (a repeated label id
        counts once), with sorted indices.

    The index arrays of both matrices are int32, or int64 when a dimension or the
    number of stored entries does not fit into int32.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    TypeError
        If ``path`` is a file object opened in text mode.
    ValueError
        If the file is empty or malformed. The message starts with ``line N:``, the
        1-based line of the file, and says what is wrong: bad or negative header,
        fewer or more rows than the header says, a label or feature id that is not a
        non-negative integer or is out of range, a feature token without ``:``, a value
        that is not a number or is NaN/infinite/outside the float32 range, a first
        token without ``:`` on a line that starts with a blank (labels after a leading
        blank), or an unexpected (control or non-ASCII) character.

    See Also
    --------
    dump_xmc_file : Write matrices in this format.

    Examples
    --------
    >>> import tempfile, os
    >>> from skxmr.datasets import load_xmc_file
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("3 4 5\\n0,2 1:0.5 3:2\\n 0:1\\n4\\n")
    >>> X, Y = load_xmc_file(path)
    >>> X.toarray()
    array([[0. , 0.5, 0. , 2. ],
           [1. , 0. , 0. , 0. ],
           [0. , 0. , 0. , 0. ]], dtype=float32)
    >>> Y.toarray()
    array([[1., 0., 1., 0., 0.],
           [0., 0., 0., 0., 0.],
           [0., 0., 0., 0., 1.]], dtype=float32)
    """
    buf = _read_bytes(path)
    status = np.zeros(10, dtype=np.int64)
    _kernel._scan(buf, status)
    code, line, pos = (int(v) for v in status[:3])
    if code != _kernel.OK:
        _raise_parse_error(buf, code, line, pos)
    n_samples, n_features, n_labels, body_start, n_lines, n_colons, n_commas = (
        int(v) for v in status[3:]
    )
    header = (n_samples, n_features, n_labels)
    if n_lines < n_samples:
        # checked before allocating: a corrupt header must not ask for huge buffers
        _raise_parse_error(buf, _kernel.FEW_ROWS, n_lines + 2, len(buf) - 1, header)

    x_cap = n_colons
    y_cap = n_commas + n_samples
    big = max(n_samples, n_features, n_labels, x_cap, y_cap) > _INT32_MAX
    index_dtype = np.int64 if big else np.int32
    x_data = np.empty(x_cap, dtype=np.float32)
    x_indices = np.empty(x_cap, dtype=index_dtype)
    x_indptr = np.empty(n_samples + 1, dtype=index_dtype)
    y_indices = np.empty(y_cap, dtype=index_dtype)
    y_indptr = np.empty(n_samples + 1, dtype=index_dtype)
    status = np.zeros(5, dtype=np.int64)
    _kernel._fill(
        buf, body_start, n_samples, n_features, n_labels,
        x_data, x_indices, x_indptr, y_indices, y_indptr, status,
    )  # fmt: skip
    code, line, pos, x_nnz, y_nnz = (int(v) for v in status)
    if code != _kernel.OK:
        _raise_parse_error(buf, code, line, pos, header)
    del buf

    x_data, x_indices = _trim(x_data, x_nnz), _trim(x_indices, x_nnz)
    y_indices = _trim(y_indices, y_nnz)
    if big and max(n_samples, n_features, n_labels, x_nnz, y_nnz) <= _INT32_MAX:
        x_indices, x_indptr, y_indices, y_indptr = (
            a.astype(np.int32) for a in (x_indices, x_indptr, y_indices, y_indptr)
        )
    X = _csr(x_data, x_indices, x_indptr, (n_samples, n_features))
    y_data = np.ones(y_nnz, dtype=np.float32)
    Y = _csr(y_data, y_indices, y_indptr, (n_samples, n_labels))
    return X, Y


def _trim(array, n):
    """``array[:n]``, copied when that frees a noticeable amount of memory."""
    if n < array.shape[0] - max(1024, array.shape[0] // 16):
        return array[:n].copy()
    return array[:n]


def _csr(data, indices, indptr, shape):
    """A canonical CSR matrix that keeps the given index dtype (no validation pass)."""
    X = sp.csr_matrix(shape, dtype=np.float32)
    X.data, X.indices, X.indptr = data, indices, indptr
    X.has_sorted_indices = True
    X.has_canonical_format = True
    return X


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def _check_xy(X, Y):
    """Validate and convert to canonical CSR (sorted ids, no duplicates, no zeros)."""
    X = check_array(
        X,
        accept_sparse="csr",
        dtype=[np.float32, np.float64],
        ensure_all_finite=True,
        ensure_min_samples=0,
        ensure_min_features=0,
        input_name="X",
    )
    Y = check_array(
        Y,
        accept_sparse="csr",
        dtype=None,
        ensure_all_finite=True,
        ensure_min_samples=0,
        ensure_min_features=0,
        input_name="Y",
    )
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of samples, got X.shape={X.shape} and "
            f"Y.shape={Y.shape}"
        )
    y_values = Y.data if sp.issparse(Y) else Y
    binary = y_values.dtype.kind in "biuf" and np.all((y_values == 0) | (y_values == 1))
    if not binary:
        raise ValueError("Y must be a 0/1 label indicator matrix")
    X = _canonical(X)
    Y = _canonical(Y)
    return X, Y


def _canonical(A):
    """CSR ``A``, copied when needed, with sorted unique indices and no stored zeros."""
    A = sp.csr_matrix(A)
    copied = False
    if not A.has_canonical_format:
        A = A.copy()
        copied = True
        A.sum_duplicates()
    if A.nnz and not np.all(A.data):
        if not copied:
            A = A.copy()
        A.eliminate_zeros()
    return A


def dump_xmc_file(X, Y, path):
    """Write a dataset in the Extreme Classification Repository text format.

    The file starts with the header ``n_samples n_features n_labels``, then one line per
    sample: its label ids in ascending order, comma separated, then `` id:value`` for
    its non-zero features in ascending id order (a sample without labels gives a line
    that starts with a space, one without labels nor features an empty line). Explicitly
    stored zeros are not written; duplicate entries of a sparse ``X`` are summed.

    Float32 ``X`` values are written with ``%.9g``, which :func:`load_xmc_file` reads
    back bit for bit. Float64 values are written with the first of ``%.15g``, ``%.16g``,
    ``%.17g`` that reads back as the same double (as short as ``repr`` in most cases),
    so the file keeps full double precision; :func:`load_xmc_file` then returns
    ``X.astype(np.float32)`` exactly. Other numeric dtypes are converted to float64.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Feature values; must be finite.
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Label indicator matrix with values 0 and 1.
    path : str, path-like or binary file object
        Destination; a file object must be opened in binary mode (``'wb'``).

    Raises
    ------
    TypeError
        If ``path`` is a file object opened in text mode (nothing is written).
    ValueError
        If X and Y have different numbers of samples, X holds NaN or infinity, or Y
        holds values other than 0 and 1.

    See Also
    --------
    load_xmc_file : Read this format.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skxmr.datasets import dump_xmc_file, load_xmc_file
    >>> X = np.array([[0, 0.5, 0], [1.25, 0, 3]], dtype=np.float32)
    >>> Y = np.array([[1, 0, 1, 0], [0, 0, 0, 0]])
    >>> path = os.path.join(tempfile.mkdtemp(), "data.txt")
    >>> dump_xmc_file(X, Y, path)
    >>> print(open(path).read(), end="")
    2 3 4
    0,2 1:0.5
     0:1.25 2:3
    >>> X2, Y2 = load_xmc_file(path)
    >>> bool(np.array_equal(X2.toarray(), X) and np.array_equal(Y2.toarray(), Y))
    True
    """
    X, Y = _check_xy(X, Y)
    n_samples, n_features = X.shape
    n_labels = Y.shape[1]

    index_dtype = np.int32
    if any(a.dtype != np.int32 for a in (X.indices, X.indptr, Y.indices, Y.indptr)):
        index_dtype = np.int64
    x_indices, x_indptr, y_indices, y_indptr = (
        np.ascontiguousarray(a, dtype=index_dtype)
        for a in (X.indices, X.indptr, Y.indices, Y.indptr)
    )
    x_data = np.ascontiguousarray(X.data)

    row_bytes = (
        _kernel.ROW_BYTES
        + _kernel.LABEL_BYTES * np.diff(y_indptr).astype(np.int64)
        + _kernel.FEATURE_BYTES * np.diff(x_indptr).astype(np.int64)
    )
    longest = int(row_bytes.max()) if n_samples else 0
    out = np.empty(max(_CHUNK_BYTES, longest), dtype=np.uint8)
    status = np.zeros(2, dtype=np.int64)
    header = f"{n_samples} {n_features} {n_labels}\n".encode("ascii")

    def write_all(f):
        f.write(header)
        row = 0
        while row < n_samples:
            _kernel._write_rows(
                x_data, x_indices, x_indptr, y_indices, y_indptr, row, out, status
            )
            row, n_bytes = int(status[0]), int(status[1])
            f.write(out[:n_bytes].data)

    if hasattr(path, "write"):
        if _is_text_file(path):
            raise _text_mode_error("dump_xmc_file", path, "wb")
        write_all(path)
    else:
        with open(path, "wb") as f:
            write_all(f)
