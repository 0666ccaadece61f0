"""Reader and writer of the Extreme Classification Repository text format.

The compiled parser is checked against a plain-Python reference parser (below) on
random valid files and, inside a subprocess so that a crash cannot kill pytest, on
random bytes and randomly mutated files (hypothesis): every input must either parse
to the reference's matrices or raise ValueError naming the reference's line.
"""

import io
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr.datasets import dump_xmc_file, load_xmc_file

# ---------------------------------------------------------------------------
# Reference parser: straight from the format description, one token at a time.
# ---------------------------------------------------------------------------

_INT = re.compile(rb"[0-9]+\Z")
_VALUE = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_HEADER_CAP = 2**59  # header numbers must stay below it


class RefError(Exception):
    def __init__(self, line, why):
        super().__init__(f"line {line}: {why}")
        self.line = line


def _to_int(digits):
    digits = digits.lstrip(b"0") or b"0"
    return 2**100 if len(digits) > 30 else int(digits)


def reference_parse(data):
    """Parse ``data`` (bytes) into ``(X, Y)`` CSR float32, or raise RefError(line)."""
    if not data:
        raise RefError(1, "empty")
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    head = lines[0].split()  # bytes.split() splits on b" \t\r\v\f" (and \n)
    if len(head) != 3 or not all(_INT.match(t) for t in head):
        raise RefError(1, "header")
    n, d, n_labels = (_to_int(t) for t in head)
    if max(n, d, n_labels) >= _HEADER_CAP:
        raise RefError(1, "header too large")
    body = lines[1:]
    if len(body) < n:
        raise RefError(len(body) + 2, "too few rows")
    x_rows, y_rows = [], []
    for i in range(n):
        line = i + 2
        tokens = body[i].split()
        labels = set()
        # a line that starts with a blank has no labels: its first token is a feature
        if tokens and b":" not in tokens[0] and not body[i][:1].isspace():
            for item in tokens[0].split(b","):
                if not _INT.match(item) or _to_int(item) >= n_labels:
                    raise RefError(line, "label")
                labels.add(_to_int(item))
            tokens = tokens[1:]
        feats = {}
        for tok in tokens:
            if b":" not in tok:
                raise RefError(line, "no colon")
            fid, val = tok.split(b":", 1)
            if not _INT.match(fid) or _to_int(fid) >= d or not _VALUE.match(val):
                raise RefError(line, "feature")
            with np.errstate(over="ignore"):
                v = np.float32(float(val))
            if not np.isfinite(v):
                raise RefError(line, "non-finite")
            fid = _to_int(fid)
            if fid in feats:
                with np.errstate(over="ignore"):
                    v = np.float32(feats[fid] + v)
                if not np.isfinite(v):
                    raise RefError(line, "sum overflow")
            feats[fid] = v
        x_rows.append(sorted(feats.items()))
        y_rows.append(sorted(labels))
    for j, rest in enumerate(body[n:]):
        if rest.split():
            raise RefError(n + 2 + j, "extra row")
    return _rows_to_csr(x_rows, d), _rows_to_csr([[(c, 1) for c in r] for r in y_rows],
                                                 n_labels)


def _rows_to_csr(rows, n_cols):
    indptr = np.cumsum([0] + [len(r) for r in rows])
    indices = np.array([c for r in rows for c, _ in r], dtype=np.int64)
    data = np.array([v for r in rows for _, v in r], dtype=np.float32)
    return indptr, indices, data, (len(rows), n_cols)


def assert_same_csr(A, ref):
    """Exact (bitwise) equality with a reference ``(indptr, indices, data, shape)``."""
    indptr, indices, data, shape = ref
    assert A.shape == shape
    assert A.dtype == np.float32
    np.testing.assert_array_equal(A.indptr, indptr)
    np.testing.assert_array_equal(A.indices, indices)
    np.testing.assert_array_equal(A.data.view(np.uint32), data.view(np.uint32))


def check_against_reference(data):
    """The compiled parser and the reference agree: same matrices or same error line."""
    try:
        got = load_xmc_file(io.BytesIO(bytes(data)))
    except ValueError as exc:
        got = exc
    try:
        ref = reference_parse(bytes(data))
    except RefError as exc:
        assert isinstance(got, ValueError), (data, exc, got)
        assert str(got).startswith(f"line {exc.line}:"), (data, str(exc), str(got))
        return
    assert not isinstance(got, ValueError), (data, got)
    X, Y = got
    assert_same_csr(X, ref[0])
    assert_same_csr(Y, ref[1])
    assert X.has_canonical_format and Y.has_canonical_format


# ---------------------------------------------------------------------------
# Random valid files with varied (but legal) spelling
# ---------------------------------------------------------------------------


def _spell_value(rng, v):
    kind = rng.integers(9)
    if kind == 0:
        return repr(float(v))
    if kind == 1:
        return "%.3e" % v
    if kind == 2:
        return "%E" % v
    if kind == 3:
        return "%d" % round(v * 100)
    if kind == 4:
        return "+%.4f" % abs(v) if v >= 0 else "%.4f" % v
    if kind == 5:
        return ("%.2f" % v).replace("0.", ".", 1) if 0 <= v < 1 else "%.2f" % v
    if kind == 6:
        return "%d." % round(v)
    if kind == 7:
        return "0000%.25f" % abs(v)  # many digits: strtod path
    return "%.9g" % np.float32(v)


def random_valid_file(rng):
    n = int(rng.integers(0, 12))
    d = int(rng.integers(1, 60))
    n_labels = int(rng.integers(1, 30))
    seps = [" ", "\t", "  ", " \t "]
    eol = "\r\n" if rng.random() < 0.3 else "\n"
    lines = [rng.choice(["", " "]) + f"{n}{rng.choice(seps)}{d}{rng.choice(seps)}"
             + f"{n_labels:03d}" + rng.choice(["", " ", "\t"])]
    for _ in range(n):
        parts = []
        if rng.random() < 0.7:
            k = int(rng.integers(1, 6))
            parts.append(",".join(str(x) for x in rng.integers(0, n_labels, size=k)))
        long_row = rng.random() < 0.15
        n_feat = int(rng.integers(33, 120)) if long_row else int(rng.integers(0, 8))
        ids = rng.integers(0, d, size=n_feat)
        for fid in ids:
            v = float(rng.normal() * 10.0 ** rng.integers(-3, 3))
            parts.append(f"{fid}:{_spell_value(rng, v)}")
        has_labels = bool(parts) and ":" not in parts[0]
        text = ""
        for j, part in enumerate(parts):
            # a leading blank only where the row has no labels (it means "no labels")
            lead = not has_labels and rng.random() < 0.3
            text += (rng.choice(seps) if j or lead else "") + part
        if not parts and rng.random() < 0.3:
            text = " \t"
        if rng.random() < 0.2:
            text += rng.choice(seps)
        lines.append(text)
    text = eol.join(lines)
    if rng.random() < 0.8:
        text += eol
    if rng.random() < 0.2:
        text += eol + "  " + eol
    return text.encode()


# ---------------------------------------------------------------------------
# Hand-written files
# ---------------------------------------------------------------------------

SMALL = (
    b"5 6 4\n"
    b"0,2 1:0.5 3:-2e1\n"  # labels + features
    b" 0:1.25 5:3\n"  # no labels
    b"3,1,3\n"  # labels only, unsorted, repeated
    b"\n"  # empty row
    b"2\t4:1 4:2 0:.5  \n"  # tab, repeated feature (summed), unsorted, trailing blanks
)
SMALL_X = np.array(
    [
        [0, 0.5, 0, -20, 0, 0],
        [1.25, 0, 0, 0, 0, 3],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0.5, 0, 0, 0, 3, 0],
    ],
    dtype=np.float32,
)
SMALL_Y = np.array(
    [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]],
    dtype=np.float32,
)


def _write(tmp_path, content, name="data.txt"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _check_small(X, Y):
    assert isinstance(X, sp.csr_matrix) and isinstance(Y, sp.csr_matrix)
    assert X.dtype == np.float32 and Y.dtype == np.float32
    assert X.indices.dtype == np.int32 and Y.indices.dtype == np.int32
    assert X.has_sorted_indices and Y.has_sorted_indices
    np.testing.assert_array_equal(X.toarray(), SMALL_X)
    np.testing.assert_array_equal(Y.toarray(), SMALL_Y)
    for A in (X, Y):
        for i in range(A.shape[0]):
            row = A.indices[A.indptr[i] : A.indptr[i + 1]]
            assert np.all(np.diff(row) > 0)


def test_load_small_file(tmp_path):
    X, Y = load_xmc_file(_write(tmp_path, SMALL))
    _check_small(X, Y)
    check_against_reference(SMALL)


@pytest.mark.parametrize(
    "variant",
    [
        lambda s: s.replace(b"\n", b"\r\n"),  # CRLF
        lambda s: s.rstrip(b"\n"),  # no final newline (last row is not empty)
        lambda s: s + b"\n",  # trailing empty line
        lambda s: s + b"\r\n \t\n\n",  # trailing blank lines
        lambda s: s.replace(b" ", b"\t"),  # tabs everywhere
        lambda s: s.replace(b"\n", b" \r\n", 1),  # header with trailing blank
    ],
    ids=["crlf", "no-final-newline", "trailing-empty", "trailing-blanks", "tabs",
         "header-blank"],
)
def test_load_small_file_variants(tmp_path, variant):
    content = variant(SMALL)
    X, Y = load_xmc_file(_write(tmp_path, content))
    _check_small(X, Y)
    check_against_reference(content)


def test_load_path_kinds(tmp_path):
    path = _write(tmp_path, SMALL)
    _check_small(*load_xmc_file(str(path)))
    _check_small(*load_xmc_file(path))  # PathLike
    with open(path, "rb") as f:
        _check_small(*load_xmc_file(f))
    _check_small(*load_xmc_file(io.BytesIO(SMALL)))
    with open(path, "r") as f, pytest.raises(TypeError, match="binary"):
        load_xmc_file(f)


@pytest.mark.parametrize("opener", [
    lambda p: open(p, "r", encoding="utf-8"),
    lambda p: open(p, "r", encoding="latin-1"),
    lambda p: io.StringIO(p.read_bytes().decode("latin-1")),
    lambda p: io.TextIOWrapper(io.BytesIO(p.read_bytes()), encoding="ascii"),
], ids=["utf8", "latin1", "stringio", "wrapper"])
def test_load_text_mode_file_is_a_type_error(tmp_path, opener):
    """Non-UTF-8 bytes in a text-mode file gave UnicodeDecodeError (or a decoding that
    depends on the locale); any text-mode file object is refused before reading."""
    path = _write(tmp_path, b"2 4 3\n0 1:0.5\n\xe9\xff 2:1\n")
    with opener(path) as f:
        with pytest.raises(TypeError, match=r"binary mode \('rb'\)"):
            load_xmc_file(f)
        assert f.tell() == 0  # nothing was read
    with pytest.raises(ValueError, match="^line 3: unexpected character"):
        load_xmc_file(path)  # the same bytes in binary mode: a clear parse error


def test_load_other_binary_readers(tmp_path):
    import gzip

    with gzip.open(tmp_path / "d.gz", "wb") as f:  # its .mode is an int
        f.write(SMALL)
    with gzip.open(tmp_path / "d.gz", "rb") as f:
        _check_small(*load_xmc_file(f))
    with open(_write(tmp_path, SMALL), "rb", buffering=0) as f:  # raw FileIO
        _check_small(*load_xmc_file(f))


def test_dump_text_mode_file_is_a_type_error(tmp_path):
    X, Y = SMALL_X, SMALL_Y
    with open(tmp_path / "t.txt", "w") as f:
        with pytest.raises(TypeError, match=r"binary mode \('wb'\)"):
            dump_xmc_file(X, Y, f)
    assert (tmp_path / "t.txt").read_bytes() == b""  # nothing written
    with pytest.raises(TypeError, match="binary mode"):
        dump_xmc_file(X, Y, io.StringIO())


@pytest.mark.parametrize("row, what", [
    (b" 3", "feature token '3' has no ':'"),
    (b"\t3", "feature token '3' has no ':'"),
    (b"  3,1 0:1", "feature token '3,1' has no ':'"),
    (b" 2 0:1", "feature token '2' has no ':'"),
])
def test_leading_blank_means_no_labels(tmp_path, row, what):
    """A line that starts with a blank has no labels (the documented format): ' 3' was
    read as label 3; now it is a feature token without ':', a ValueError naming the
    line and the reason."""
    content = b"2 4 5\n1 0:1\n" + row + b"\n"
    with pytest.raises(ValueError, match=rf"^line 3: {re.escape(what)}.*starts with a "
                                         r"blank.*no labels"):
        load_xmc_file(_write(tmp_path, content))
    check_against_reference(content)


def test_leading_blank_rows_without_labels(tmp_path):
    content = b"4 4 5\n 0:1 3:2\n\t1:0.5\n \t\n3 2:1\n"
    X, Y = load_xmc_file(_write(tmp_path, content))
    np.testing.assert_array_equal(X.toarray(), [[1, 0, 0, 2], [0, 0.5, 0, 0],
                                                [0, 0, 0, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(Y.toarray()[:, 3], [0, 0, 0, 1])
    assert Y.nnz == 1
    check_against_reference(content)
    # a later token without ':' keeps the plain message
    with pytest.raises(ValueError, match=r"^line 2: feature token '3' has no ':' "
                                         r"\(expected 'feature_id:value'\)$"):
        load_xmc_file(io.BytesIO(b"1 4 5\n 0:1 3\n"))


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_xmc_file(tmp_path / "nope.txt")


def test_zero_samples(tmp_path):
    X, Y = load_xmc_file(_write(tmp_path, b"0 7 3\n"))
    assert X.shape == (0, 7) and Y.shape == (0, 3) and X.nnz == 0
    X, Y = load_xmc_file(_write(tmp_path, b"0 7 3"))
    assert X.shape == (0, 7)
    dump_xmc_file(sp.csr_matrix((0, 4)), np.zeros((0, 2)), tmp_path / "e.txt")
    assert (tmp_path / "e.txt").read_bytes() == b"0 4 2\n"


@pytest.mark.parametrize(
    "token",
    [
        "0.1", "1e-45", "1.4e-45", "7e-46", "1e-40", "3.4028235e38", "3.40282356e38",
        "123456789012345678901234567890", "0.30000000000000004", "9007199254740993",
        "1e22", "1e23", "4.35e-23", "-0", "+.5", "5.", "0e999999",
        "0.000000000000000001",
        "1.00000005960464477539062499", "1.000000059604644775390625", "16777217",
        "0000000000000000000000000.5", "2.5E+3", "-7.5e-3",
    ],
)
def test_values_decode_like_strtod(token):
    X, _ = load_xmc_file(io.BytesIO(f"1 1 1\n 0:{token}\n".encode()))
    expected = np.float32(float(token))
    assert X.data.view(np.uint32)[0] == np.array([expected]).view(np.uint32)[0]


def test_int64_dimensions(tmp_path):
    big = 3_000_000_000
    content = f"2 {big} 5\n0,4 {big - 1}:1.5 7:2\n\n".encode()
    X, Y = load_xmc_file(_write(tmp_path, content))
    assert X.shape == (2, big) and Y.shape == (2, 5)
    assert X.indices.dtype == np.int64 and X.indptr.dtype == np.int64
    np.testing.assert_array_equal(X.indices, [7, big - 1])
    np.testing.assert_array_equal(X.data, [2, 1.5])

    path = tmp_path / "back.txt"
    dump_xmc_file(X, Y, path)
    assert path.read_bytes() == f"2 {big} 5\n0,4 7:2 {big - 1}:1.5\n\n".encode()
    X2, Y2 = load_xmc_file(path)
    assert (X2 != X).nnz == 0 and (Y2 != Y).nnz == 0


# ---------------------------------------------------------------------------
# Malformed input: ValueError naming the 1-based line
# ---------------------------------------------------------------------------

MALFORMED = [
    (b"", 1, "empty file"),
    (b"\n", 1, "bad header"),
    (b"3 4\n", 1, "bad header"),
    (b"3 4 5 6\n", 1, "bad header"),
    (b"a b c\n", 1, "bad header"),
    (b"2.0 4 5\n", 1, "bad header"),
    (b"-1 4 5\n", 1, "negative number in header"),
    (b"1 -4 5\n0 1:1\n", 1, "negative number in header"),
    (b"1 99999999999999999999 5\n\n", 1, "too large"),
    (b"3 4 5\n0 1:1\n1 2:1\n", 4, "unexpected end of file"),
    (b"3 4 5\n", 2, "unexpected end of file"),
    (b"2 4 5\n0 1:1\n1 2:1\n2 3:1\n", 4, "extra row"),
    (b"2 4 5\n0 1:1\n1 2:1\n\n \n4\n", 6, "extra row"),
    (b"3 4 5\n0 1:1\n1 2:1\n5 3:1\n", 4, "label id '5' out of range"),
    (b"3 4 5\n0 1:1\n1 2:1\n1,-2 3:1\n", 4, "negative label id '-2'"),
    (b"3 4 5\n0 1:1\n1 2:1\n17557487171305474760175 3:1\n", 4, "out of range"),
    (b"3 4 5\n0 1:1\n99999999999999999999:1\n\n", 3, "out of range"),
    (b"3 4 5\n0 1:1\n1 2:1\n1.5 3:1\n", 4, "label id '1.5' is not"),
    (b"3 4 5\n0 1:1\n1 2:1\nx 3:1\n", 4, "label id 'x' is not"),
    (b"3 4 5\n0 1:1\n1,,2 2:1\n\n", 3, "label id '' is not"),
    (b"3 4 5\n0 1:1\n1, 2:1\n\n", 3, "label id '' is not"),
    (b"3 4 5\n0 1:1\n1 2:1\n1 3:1 2\n", 4, "has no ':'"),
    (b"3 4 5\n0 1:1\n1 2:1\n1 3:1 2,3\n", 4, "has no ':'"),
    (b"3 4 5\n0 1:1\n1 4:1\n\n", 3, "feature id in '4:1' out of range"),
    (b"3 4 5\n0 1:1\n1 -1:1\n\n", 3, "negative feature id"),
    (b"3 4 5\n0 1:1\n1 a:1\n\n", 3, "feature id in 'a:1' is not"),
    (b"3 4 5\n0 1:1\n1 1.0:1\n\n", 3, "feature id in '1.0:1' is not"),
    (b"3 4 5\n0 1:1\n1 1:abc\n\n", 3, "not a number"),
    (b"3 4 5\n0 1:1\n1 1:\n\n", 3, "not a number"),
    (b"3 4 5\n0 1:1\n1 1:1:2\n\n", 3, "not a number"),
    (b"3 4 5\n0 1:1\n1 1:0x10\n\n", 3, "not a number"),
    (b"3 4 5\n0 1:1\n1 1:1e\n\n", 3, "not a number"),
    (b"3 4 5\n0 1:1\n1 1:1,5\n\n", 3, "not a number"),
    (b"3 4 5\n0 1:1\n1 1:nan\n\n", 3, "NaN, infinite"),
    (b"3 4 5\n0 1:1\n1 1:-Infinity\n\n", 3, "NaN, infinite"),
    (b"3 4 5\n0 1:1\n1 1:inf\n\n", 3, "NaN, infinite"),
    (b"3 4 5\n0 1:1\n1 1:1e39\n\n", 3, "outside the float32 range"),
    (b"3 4 5\n0 1:1\n1 1:1e400\n\n", 3, "outside the float32 range"),
    (b"3 4 5\n0 1:1\n1 1:3e38 1:3e38\n\n", 3, "sum beyond the float32 range"),
    (b"3 4 5\n0 1:1\n1 1:1\x00\n\n", 3, "unexpected character"),
    (b"3 4 5\n0 1:1\n1 1:1 \x07\n\n", 3, "unexpected character"),
    (b"3 4 5\n0 1:1\n\xc3\xa9 1:1\n\n", 3, "unexpected character"),
    (b"\xef\xbb\xbf3 4 5\n", 1, "unexpected character"),
]


@pytest.mark.parametrize("content, line, what", MALFORMED)
def test_malformed(tmp_path, content, line, what):
    with pytest.raises(ValueError, match=rf"^line {line}: .*{re.escape(what)}"):
        load_xmc_file(_write(tmp_path, content))
    check_against_reference(content)


def test_malformed_crlf_line_numbers(tmp_path):
    content = b"3 4 5\r\n0 1:1\r\n1 2:1\r\n1 3:x\r\n"
    with pytest.raises(ValueError, match=r"^line 4: value in '3:x' is not a number"):
        load_xmc_file(_write(tmp_path, content))


# ---------------------------------------------------------------------------
# Round trips and the writer
# ---------------------------------------------------------------------------


def _random_xy(rng, n, d, n_labels, dtype=np.float32):
    X = sp.random(n, d, density=0.3, format="csr", random_state=rng, dtype=np.float64)
    X.data = (rng.normal(size=X.nnz) * 10.0 ** rng.integers(-40, 30, size=X.nnz))
    X.data = X.data.astype(dtype)
    X.data[X.data == 0] = 1  # underflow: keep every stored entry non-zero
    Y = sp.random(n, n_labels, density=0.2, format="csr", random_state=rng)
    Y.data[:] = 1
    X, Y = X.tolil(), Y.tolil()
    X[0, :] = 0  # row without features (row 0)
    Y[1, :] = 0  # row without labels (row 1)
    X[2, :] = 0  # empty row (row 2)
    Y[2, :] = 0
    return X.tocsr(), Y.tocsr()


@pytest.mark.parametrize("seed", range(4))
def test_roundtrip_float32_exact(tmp_path, seed):
    rng = np.random.default_rng(seed)
    X, Y = _random_xy(rng, 60, 80, 25)
    X.data[:5] = [np.float32(0.1), np.float32(1e-45), np.float32(3.4028235e38),
                  np.float32(-1 / 3), np.float32(16777217)]
    path = tmp_path / "rt.txt"
    dump_xmc_file(X, Y, path)
    lines = path.read_bytes().split(b"\n")
    assert b":" not in lines[1]  # row 0: no features
    assert lines[2].startswith(b" ") or lines[2] == b""  # row 1: no labels
    assert lines[3] == b""  # row 2: empty
    X2, Y2 = load_xmc_file(path)
    assert X2.shape == X.shape and Y2.shape == Y.shape
    assert X2.indices.dtype == np.int32
    np.testing.assert_array_equal(X2.indptr, X.indptr)
    np.testing.assert_array_equal(X2.indices, X.indices)
    np.testing.assert_array_equal(X2.data.view(np.uint32), X.data.view(np.uint32))
    assert (Y2 != Y).nnz == 0 and np.all(Y2.data == 1)


def test_roundtrip_float64_and_dense(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 7)) * (rng.random((20, 7)) < 0.4)
    X[0, :3] = [0.1, 1 / 3, 1e-300]  # 1e-300 underflows to 0 in float32
    Y = (rng.random((20, 5)) < 0.3).astype(int)
    path = tmp_path / "f64.txt"
    dump_xmc_file(X, Y, path)
    text = path.read_bytes()
    assert b" 0:0.1 1:0.3333333333333333 2:1e-300" in text  # shortest round-trip digits
    X2, Y2 = load_xmc_file(path)
    expected = X.astype(np.float32) + np.float32(0)  # -0.0 entries are not stored
    np.testing.assert_array_equal(X2.toarray().view(np.uint32),
                                  expected.view(np.uint32))
    np.testing.assert_array_equal(Y2.toarray(), Y)


def test_dump_canonicalises_without_touching_input(tmp_path):
    # unsorted, duplicated and explicitly zero entries
    data = np.array([2.0, 0.0, 1.5, 0.5, 3.0], dtype=np.float32)
    indices = np.array([3, 1, 0, 3, 2])
    indptr = np.array([0, 5, 5])
    X = sp.csr_matrix((data, indices, indptr), shape=(2, 4))
    Y = sp.csr_matrix((np.ones(3), [2, 0, 2], [0, 0, 3]), shape=(2, 3))
    before = (X.data.copy(), X.indices.copy(), Y.indices.copy())
    path = tmp_path / "c.txt"
    dump_xmc_file(X, Y, path)
    assert path.read_bytes() == b"2 4 3\n 0:1.5 2:3 3:2.5\n0,2\n"
    np.testing.assert_array_equal(X.data, before[0])
    np.testing.assert_array_equal(X.indices, before[1])
    np.testing.assert_array_equal(Y.indices, before[2])


def test_dump_file_object_and_long_rows(tmp_path):
    # rows longer than the writer's chunk force several chunks and an enlarged buffer
    rng = np.random.default_rng(1)
    X = sp.random(3, 200_000, density=0.5, format="csr", random_state=rng,
                  dtype=np.float32)
    Y = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]]))
    buf = io.BytesIO()
    dump_xmc_file(X, Y, buf)
    X2, Y2 = load_xmc_file(io.BytesIO(buf.getvalue()))
    np.testing.assert_array_equal(X2.data.view(np.uint32), X.data.view(np.uint32))
    np.testing.assert_array_equal(X2.indices, X.indices)
    assert (Y2 != Y).nnz == 0


@pytest.mark.parametrize(
    "X, Y, match",
    [
        (np.ones((3, 2)), np.ones((4, 2)), "same number of samples"),
        (np.array([[1.0, np.nan]]), np.ones((1, 2)), "NaN"),
        (sp.csr_matrix(np.array([[1.0, np.inf]])), np.ones((1, 2)), "infinity"),
        (np.ones((1, 2)), np.array([[0, 2]]), "0/1"),
        (np.ones((1, 2)), sp.csr_matrix(np.array([[0.5, 1]])), "0/1"),
    ],
)
def test_dump_validation(tmp_path, X, Y, match):
    with pytest.raises(ValueError, match=match):
        dump_xmc_file(X, Y, tmp_path / "bad.txt")


# ---------------------------------------------------------------------------
# Against the reference parser
# ---------------------------------------------------------------------------


def test_matches_reference_on_random_valid_files():
    rng = np.random.default_rng(12345)
    for _ in range(150):
        data = random_valid_file(rng)
        reference_parse(data)  # the generator writes valid files only
        check_against_reference(data)


def test_matches_reference_on_dumped_files(tmp_path):
    rng = np.random.default_rng(7)
    for k in range(5):
        X, Y = _random_xy(rng, 30, 40, 12, dtype=np.float64 if k % 2 else np.float32)
        buf = io.BytesIO()
        dump_xmc_file(X, Y, buf)
        check_against_reference(buf.getvalue())


# ---------------------------------------------------------------------------
# Fuzzing (hypothesis), in a subprocess: a crash or hang fails the test, not pytest
# ---------------------------------------------------------------------------

_ALPHABET = [b"0", b"1", b"9", b":", b",", b" ", b"\t", b"\r", b"\n", b"-", b"+", b".",
             b"e", b"E", b"x", b"n", b"a", b"i", b"f", b"\x00", b"\xff", b"\x0b",
             b"nan", b"inf", b"e999", b"e-999", b"9" * 25, b"0" * 30, b"\r\n", b"1e39"]


def _fuzz_main(max_examples):
    """Run by the subprocess of ``test_fuzz``: hypothesis over bytes and mutations."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    config = settings(max_examples=max_examples, deadline=None, database=None,
                      derandomize=True, suppress_health_check=list(HealthCheck))
    header = st.sampled_from([b"", b"0 0 0\n", b"2 5 3\n", b"3 10 10\n", b"1 1 1\n"])

    @config
    @given(header, st.binary(max_size=200))
    def fuzz_bytes(head, data):
        check_against_reference(head + data)

    @config
    @given(header, st.lists(st.sampled_from(_ALPHABET), max_size=40))
    def fuzz_tokens(head, parts):
        check_against_reference(head + b"".join(parts))

    @st.composite
    def mutated(draw):
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        data = bytearray(random_valid_file(rng))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["replace", "insert", "delete", "cut", "copy"]))
            pos = draw(st.integers(0, len(data)))
            piece = draw(st.sampled_from(_ALPHABET) | st.binary(min_size=1, max_size=3))
            if op == "replace" and pos < len(data):
                data[pos : pos + 1] = piece
            elif op == "insert":
                data[pos:pos] = piece
            elif op == "delete":
                del data[pos : pos + draw(st.integers(1, 5))]
            elif op == "cut":
                del data[pos:]
            else:
                data[pos:pos] = data[max(0, pos - 12) : pos]
        return bytes(data)

    @config
    @given(mutated())
    def fuzz_mutations(data):
        check_against_reference(data)

    fuzz_bytes()
    fuzz_tokens()
    fuzz_mutations()


def test_fuzz_random_and_mutated_inputs():
    n = int(os.environ.get("SKXMR_FUZZ_EXAMPLES", "300"))
    here = os.path.dirname(os.path.abspath(__file__))
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {here!r})
        import test_xmc_format
        test_xmc_format._fuzz_main({n})
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
