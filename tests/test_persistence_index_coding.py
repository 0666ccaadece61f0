"""skxmr.save(..., index_coding="varint"): the weights' indices as LEB128 varints.

The kernel (``skxmr._cython._varint``) and the container are checked on random
matrices (empty columns, one column, indices near 2**31 and 2**62, CSC and CSR,
float32 and float64 values) for exact round trips, and on corrupt streams
(truncated, overlong varints, gaps past the last row, wrong counts, random bytes)
for a clean error; the models for predictions equal to those of plain indices, in
every precision and for ensembles; and directories written by the skxmr before
this coding (format version 2) for loading as before."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from _helpers import is_memmapped
import skxmr
from skxmr import LabelIndexer, ModelFormatError, XRLinearClassifier
from skxmr._cython import _varint
from skxmr._persistence import _container
from skxmr._persistence._container import Reader, Writer, write_model_dir
from skxmr.datasets import make_xmc_classification

DATA = Path(__file__).parent / "data"


# ================================================================== kernel
def _encode(M):
    stream, status = _varint.encode_index_stream(M.indptr, M.indices)
    assert status == (0, 0)
    return stream


def _decode(stream, n_rows, n_cols, nnz, dtype=np.int32):
    indptr = np.empty(n_cols + 1, dtype=dtype)
    indices = np.empty(nnz, dtype=dtype)
    code, where = _varint.decode_index_stream(np.asarray(stream, dtype=np.uint8),
                                              n_rows, indptr, indices)
    return code, where, indptr, indices


def _leb128(values):
    out = []
    for v in values:
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return np.array(out, dtype=np.uint8)


def _random_csc(rng, n_rows, n_cols, density, dtype=np.float32):
    M = sp.random(n_rows, n_cols, density=density, format="csc", random_state=rng,
                  dtype=dtype)
    M.data += 1  # no explicit zeros to lose
    if n_cols > 2:  # some empty columns
        M = M @ sp.diags((rng.random(n_cols) > 0.3).astype(dtype)).tocsc()
        M.eliminate_zeros()
    M.sort_indices()
    return M


@pytest.mark.parametrize("n_rows, n_cols", [(1, 1), (50, 1), (1, 30), (300, 40),
                                            (20_000, 7)])
def test_kernel_round_trip(n_rows, n_cols):
    rng = np.random.default_rng(n_rows * 31 + n_cols)
    for density in (0.0, 0.05, 0.5, 1.0):
        M = _random_csc(rng, n_rows, n_cols, density)
        stream = _encode(M)
        expected = [_leb128([M.indptr[j + 1] - M.indptr[j]]) for j in range(n_cols)]
        for j in range(n_cols):  # each column: its count, then its gaps
            rows = M.indices[M.indptr[j]:M.indptr[j + 1]].astype(np.int64)
            expected[j] = np.append(expected[j], _leb128(np.diff(rows, prepend=-1) - 1))
        np.testing.assert_array_equal(stream, np.concatenate(expected))
        code, where, indptr, indices = _decode(stream, n_rows, n_cols, M.nnz)
        assert (code, where) == (0, stream.size)
        np.testing.assert_array_equal(indptr, M.indptr)
        np.testing.assert_array_equal(indices, M.indices)


def test_kernel_matches_a_reference_coding():
    # column 0: rows 0, 1, 129 (gaps 0, 0, 127); column 1: empty; column 2: row
    # 20000 (gap 20000: three bytes); column 3: rows 5 and 16389 (gaps 5, 16383)
    M = sp.csc_matrix((np.ones(6, np.float32), [0, 1, 129, 20000, 5, 16389],
                       [0, 3, 3, 4, 6]), shape=(30000, 4))
    expected = _leb128([3, 0, 0, 127, 0, 1, 20000, 2, 5, 16383])
    np.testing.assert_array_equal(_encode(M), expected)
    assert expected.size == 1 + 3 + 1 + 1 + 3 + 1 + 1 + 2


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_kernel_huge_indices(dtype):
    n_rows = 2**31 - 1 if dtype == np.int32 else 2**62 + 3
    rows = np.array([0, 1, 2**20, n_rows // 2, n_rows - 2, n_rows - 1], dtype=dtype)
    indptr = np.array([0, 0, 1, 6, 6], dtype=dtype)
    indices = np.concatenate([rows[:1], rows[1:]]).astype(dtype)
    stream, status = _varint.encode_index_stream(indptr, indices)
    assert status == (0, 0)
    code, where, out_ptr, out_idx = _decode(stream, n_rows, 4, 6, dtype)
    assert (code, where) == (0, stream.size)
    np.testing.assert_array_equal(out_ptr, indptr)
    np.testing.assert_array_equal(out_idx, indices)
    # one row fewer: the last index is out of range
    code, _, _, _ = _decode(stream, n_rows - 1, 4, 6, dtype)
    assert _varint.VARINT_ERRORS[code].startswith("an index gap leads past")


def test_kernel_checks_its_buffers():
    stream = _leb128([1, 0])
    for indptr, n_rows in ((np.empty(0, np.int32), 5),
                           (np.empty(2, np.int32), 2**31 + 1),
                           (np.empty(2, np.int32), -1)):
        with pytest.raises(ValueError):
            _varint.decode_index_stream(stream, n_rows, indptr,
                                        np.empty(1, np.int32))
    code, _, _, indices = _decode(stream, 2**31, 1, 1)  # row 2**31 - 1 fits int32
    assert code == 0 and indices.tolist() == [0]


def test_kernel_refuses_unsorted_indices():
    indptr = np.array([0, 3], dtype=np.int32)
    for bad in ([0, 2, 2], [3, 1, 5], [-1, 0, 1]):
        _, (code, entry) = _varint.encode_index_stream(indptr,
                                                       np.array(bad, np.int32))
        assert "unsorted or repeated" in _varint.VARINT_ERRORS[code]
    with pytest.raises(ValueError, match="unsorted or repeated"):
        M = sp.csc_matrix((np.ones(2), [3, 1], [0, 2]), shape=(5, 1))
        Writer().add_sparse("m", M, index_coding="varint")
    indices = np.array([0, 1, 2], np.int32)
    for bad in ([1, 3], [0, 4], [0, 2, 1, 3], [0, 2]):  # never read past indices
        _, (code, _) = _varint.encode_index_stream(np.array(bad, np.int32), indices)
        assert "pointers do not run" in _varint.VARINT_ERRORS[code]


def _error(stream, n_rows=100, n_cols=2, nnz=3):
    code, where, _, _ = _decode(stream, n_rows, n_cols, nnz)
    assert code != 0, "the stream should be refused"
    assert 0 <= where <= len(stream)
    return _varint.VARINT_ERRORS[code]


def test_kernel_corrupt_streams():
    good = _leb128([2, 4, 90, 1, 0])  # rows 4 and 95 | row 0, of 100
    code, where, indptr, indices = _decode(good, 100, 2, 3)
    assert code == 0 and indices.tolist() == [4, 95, 0] and indptr.tolist() == [0, 2, 3]
    for cut in range(len(good)):
        assert "ends inside a varint" in _error(good[:cut])
    assert "ends inside a varint" in _error(np.array([2, 4, 0x80], np.uint8))
    assert "longer than 64 bits" in _error(np.full(20, 0xFF, np.uint8))
    assert "longer than 64 bits" in _error(
        np.array([0xFF] * 9 + [0x02], np.uint8))  # 65 bits
    assert "past the last row" in _error(_leb128([2, 4, 95, 1, 0]))  # row 100
    assert "past the last row" in _error(_leb128([2, 4, 2**64 - 1, 1, 0]))
    assert "past the last row" in _error(_leb128([1, 100, 2, 0, 0]))
    assert "more entries than the matrix" in _error(_leb128([4, 0, 0, 0, 0]))
    assert "more entries than the matrix" in _error(_leb128([2**63, 0]))
    assert "bytes left after" in _error(np.append(good, 0))
    assert "fewer entries" in _error(_leb128([1, 4, 1, 0]))
    assert "fewer entries" in _error(good, nnz=4)


def test_kernel_random_bytes_never_escape():
    # Random and mutated streams: every one is either refused or decodes to
    # strictly increasing in-range indices; the outputs are never overrun.
    rng = np.random.default_rng(0)
    M = _random_csc(rng, 500, 12, 0.2)
    good = _encode(M)
    accepted = 0
    for trial in range(3000):
        if trial % 2:
            stream = good.copy()
            for _ in range(rng.integers(1, 4)):
                stream[rng.integers(stream.size)] = rng.integers(256)
            stream = stream[:rng.integers(stream.size - 3, stream.size + 1)]
        else:
            stream = rng.integers(0, 256, size=rng.integers(0, 40), dtype=np.uint8)
        n_cols = int(rng.integers(1, 13)) if trial % 2 == 0 else 12
        nnz = int(rng.integers(0, 30)) if trial % 2 == 0 else M.nnz
        guard = np.full(nnz + 8, -7, dtype=np.int32)  # 8 guard entries after
        ptr_guard = np.full(n_cols + 9, -7, dtype=np.int32)
        code, where = _varint.decode_index_stream(stream, 500, ptr_guard[:n_cols + 1],
                                                  guard[:nnz])
        assert (guard[nnz:] == -7).all() and (ptr_guard[n_cols + 1:] == -7).all()
        assert 0 <= where <= stream.size
        if code == 0:
            accepted += 1
            M2 = sp.csc_matrix((np.ones(nnz), guard[:nnz], ptr_guard[:n_cols + 1]),
                               shape=(500, n_cols))
            M2.check_format(full_check=True)
            assert M2.has_sorted_indices
            assert (np.diff(M2.indptr) >= 0).all()
    assert accepted > 0


# =============================================================== container
def _write_matrices(path, matrices, index_coding="varint"):
    writer = Writer()
    for name, M in matrices.items():
        writer.add_sparse(name, M, index_coding=index_coding)
    write_model_dir(path, writer, {"class": "Thing", "params": {}, "attributes": {}})


@pytest.mark.parametrize("fmt", ["csc", "csr"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_container_round_trip(tmp_path, fmt, dtype):
    rng = np.random.default_rng(0)
    matrices = {
        "empty": sp.csc_matrix((7, 5), dtype=dtype),
        "one.column": _random_csc(rng, 60, 1, 0.3, dtype),
        "wide": _random_csc(rng, 40, 300, 0.05, dtype),
        "dense": _random_csc(rng, 30, 20, 1.0, dtype),
        # feature indices near 2**31 (the largest int32 matrix)
        "huge": sp.csc_matrix((np.arange(1, 5, dtype=dtype),
                               [0, 2**31 - 3, 2**20, 2**31 - 2], [0, 2, 2, 4]),
                              shape=(2**31 - 1, 3)),
    }
    if fmt == "csr":  # the transposes: the same arrays, read as rows
        matrices = {k: M.T.tocsr(copy=False) for k, M in matrices.items()}
    path = tmp_path / "m"
    _write_matrices(path, matrices)
    reader = Reader(str(path))
    assert reader.meta["format_version"] == 3
    assert not any(name.endswith((".indices", ".indptr")) for name in reader.table)
    for name, M in matrices.items():
        out = reader.sparse(name, fmt, M.shape, (np.dtype(dtype),), canonical=True)
        assert out.format == fmt and out.shape == M.shape and out.dtype == dtype
        assert out.indices.dtype == out.indptr.dtype == np.int32
        np.testing.assert_array_equal(out.indptr, M.indptr)
        np.testing.assert_array_equal(out.indices, M.indices)
        np.testing.assert_array_equal(out.data, M.data)
    reader.check_all_used()


def test_container_int64_shape(tmp_path):
    # more rows than int32 holds: decoded into int64 arrays, as scipy would
    M = sp.csc_matrix((np.ones(3, np.float32), np.array([5, 2**31 + 7, 2**32], np.int64),
                       np.array([0, 1, 3], np.int64)), shape=(2**32 + 1, 2))
    _write_matrices(tmp_path / "m", {"m": M})
    out = Reader(str(tmp_path / "m")).sparse("m", "csc", M.shape,
                                             (np.dtype(np.float32),))
    assert out.indices.dtype == np.int64
    np.testing.assert_array_equal(out.indices, M.indices)
    np.testing.assert_array_equal(out.indptr, M.indptr)


def test_container_plain_stays_version_2(tmp_path):
    M = sp.random(20, 6, density=0.3, format="csc", random_state=0, dtype=np.float32)
    _write_matrices(tmp_path / "m", {"m": M}, index_coding="plain")
    assert Reader(str(tmp_path / "m")).meta["format_version"] == 2
    with pytest.raises(ValueError, match="index_coding must be one of"):
        Writer().add_sparse("m", M, index_coding="zstd")


# =================================================================== models
def _size(path):
    return sum(f.stat().st_size for f in Path(path).iterdir())


def _same_coef(A, B):
    for W, V in zip(A.coef_, B.coef_):
        assert V.format == "csc" and V.dtype == np.float32 and V.shape == W.shape
        np.testing.assert_array_equal(V.indptr, W.indptr)
        np.testing.assert_array_equal(V.indices, W.indices)
        np.testing.assert_array_equal(V.data, W.data)


def _same_predictions(a, b, X):
    la, sa = a.predict_topk(X, k=5)
    lb, sb = b.predict_topk(X, k=5)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(sa, sb)


@pytest.mark.parametrize("weights", ["float32", "float16", "int8"])
def test_varint_model_equals_plain(small_xrlinear, weights, tmp_path):
    model, X = small_xrlinear
    plain, varint = tmp_path / "plain", tmp_path / "varint"
    skxmr.save(model, plain, weights=weights, index_coding="plain")
    skxmr.save(model, varint, weights=weights, index_coding="varint")
    names = os.listdir(varint)
    assert not any(n.endswith((".indices.npy", ".indptr.npy")) for n in names)
    assert sum(n.endswith(".indices_varint.npy") for n in names) == len(model.coef_)
    assert _size(varint) < 0.8 * _size(plain)
    a, b = skxmr.load(plain), skxmr.load(varint)
    _same_coef(a, b)
    _same_predictions(a, b, X)
    if weights == "float32":
        _same_coef(model, b)
        _same_predictions(model, b, X)
    meta = json.loads((varint / "skxmr_model.json").read_text())
    assert meta["format_version"] == 3


def test_auto_coding(small_xrlinear, tmp_path):
    model, _ = small_xrlinear
    for weights, coding in (("float32", "plain"), ("float16", "varint"),
                            ("int8", "varint")):
        path = tmp_path / weights
        skxmr.save(model, path, weights=weights)  # index_coding="auto"
        names = os.listdir(path)
        assert ("coef.1.indices_varint.npy" in names) == (coding == "varint")
        assert ("coef.1.indices.npy" in names) == (coding == "plain")
        version = json.loads((path / "skxmr_model.json").read_text())["format_version"]
        assert version == (3 if coding == "varint" else 2)
    # a varint directory is a complete model: a later save replaces it
    skxmr.save(model, tmp_path / "int8", weights="float16", index_coding="plain")
    assert "coef.1.indices.npy" in os.listdir(tmp_path / "int8")


def test_varint_with_mmap(small_xrlinear, tmp_path):
    model, X = small_xrlinear
    path = tmp_path / "m"
    skxmr.save(model, path, index_coding="varint")
    for mode in ("r", "c"):
        loaded = skxmr.load(path, mmap_mode=mode)
        W = loaded.coef_[-1]
        assert is_memmapped(W.data)  # float32 values: mapped in place
        assert not is_memmapped(W.indices) and not is_memmapped(W.indptr)  # decoded
        _same_predictions(model, loaded, X)
        # a mapped model (read-only arrays) saves again in either coding
        for coding in ("varint", "plain"):
            skxmr.save(loaded, tmp_path / f"again_{mode}_{coding}",
                       index_coding=coding)
            _same_coef(model, skxmr.load(tmp_path / f"again_{mode}_{coding}"))
        del loaded, W


def test_varint_ensemble(tmp_path):
    X, Y = make_xmc_classification(500, 200, 40, random_state=1)
    model = XRLinearClassifier(random_state=0, n_jobs=1, n_estimators=2).fit(X, Y)
    for weights in ("float32", "int8"):
        plain, varint = tmp_path / f"p{weights}", tmp_path / f"v{weights}"
        skxmr.save(model, plain, weights=weights, index_coding="plain")
        skxmr.save(model, varint, weights=weights, index_coding="varint")
        assert "member.1.coef.1.indices_varint.npy" in os.listdir(varint)
        a, b = skxmr.load(plain), skxmr.load(varint)
        for ma, mb in zip(a.estimators_, b.estimators_):
            _same_coef(ma, mb)
        _same_predictions(a, b, X)


def test_index_coding_errors(small_xrlinear, tmp_path):
    model, _ = small_xrlinear
    for bad in ("zstd", None, True, "VARINT"):
        with pytest.raises(ValueError, match="index_coding must be one of"):
            skxmr.save(model, tmp_path / "bad", index_coding=bad)
    X, Y = make_xmc_classification(200, 100, 20, random_state=0)
    indexer = LabelIndexer(random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match="index_coding='varint' is supported for "
                                         "XRLinearClassifier only"):
        skxmr.save(indexer, tmp_path / "ix", index_coding="varint")
    assert not os.path.exists(tmp_path / "bad")
    assert not os.path.exists(tmp_path / "ix")
    for coding in ("auto", "plain"):
        skxmr.save(indexer, tmp_path / coding, index_coding=coding)


# ========================================================= corrupt on disk
def _resign(path, name, array):
    """Replace the array ``name`` and, like an attacker, fix the manifest."""
    file = path / f"{name}.npy"
    np.save(file, array, allow_pickle=False)
    meta = json.loads((path / "skxmr_model.json").read_text())
    meta["arrays"][name] = {"dtype": array.dtype.str, "shape": list(array.shape),
                            "sha256": _container.file_digest(str(file))}
    meta["digest"] = _container.manifest_digest(meta)
    (path / "skxmr_model.json").write_text(json.dumps(meta))


def _end(stream, i):
    """The position after the varint that starts at ``i``."""
    while stream[i] & 0x80:
        i += 1
    return i + 1


def _first_gap(stream, new):
    """The stream with its first column's first gap replaced by ``new`` bytes."""
    start = _end(stream, 0)
    return np.concatenate([stream[:start], np.asarray(new, np.uint8),
                           stream[_end(stream, start):]])


@pytest.fixture
def varint_copy(small_xrlinear, tmp_path):
    model, _ = small_xrlinear
    path = tmp_path / "m"
    skxmr.save(model, path, weights="int8")
    return path


def _stream(path, t=2):
    return np.load(path / f"coef.{t}.indices_varint.npy")


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_stream_file(varint_copy, verify):
    file = varint_copy / "coef.2.indices_varint.npy"
    file.write_bytes(file.read_bytes()[:-3])  # manifest untouched
    with pytest.raises(ModelFormatError, match=r"indices_varint\.npy: truncated"):
        skxmr.load(varint_copy, verify=verify)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s[:-1], "corrupt index stream: the stream ends inside"),
    (lambda s: s[: s.size // 2], "cannot hold"),
    (lambda s: np.append(s, np.uint8(0)), "bytes left after the last column"),
    (lambda s: _first_gap(s, np.full(12, 0xFF)), "longer than 64 bits"),
    (lambda s: _first_gap(s, _leb128([2**40])), "past the last row"),
    (lambda s: np.concatenate([_leb128([10**9]), s[_end(s, 0):]]), "more entries"),
])
def test_corrupt_stream_raises(varint_copy, damage, message):
    stream = _stream(varint_copy)
    _resign(varint_copy, "coef.2.indices_varint", damage(stream))
    for verify in (True, False):  # the checksums match: the decoder must refuse
        with pytest.raises(ModelFormatError,
                           match=rf"coef\.2\.indices_varint\.npy: .*({message})"):
            skxmr.load(varint_copy, verify=verify)


def test_stream_of_another_dtype_or_shape(varint_copy):
    stream = _stream(varint_copy)
    _resign(varint_copy, "coef.2.indices_varint", stream.astype(np.int32))
    with pytest.raises(ModelFormatError, match="dtype <i4 is not allowed"):
        skxmr.load(varint_copy)
    _resign(varint_copy, "coef.2.indices_varint", stream.reshape(1, -1))
    with pytest.raises(ModelFormatError, match="1-D shape"):
        skxmr.load(varint_copy)


def test_varint_needs_version_3(varint_copy):
    meta = json.loads((varint_copy / "skxmr_model.json").read_text())
    meta["format_version"] = 2
    meta["digest"] = _container.manifest_digest(meta)
    (varint_copy / "skxmr_model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="need format version 3"):
        skxmr.load(varint_copy)


def test_changed_stream_fails_the_checksum(varint_copy):
    file = varint_copy / "coef.1.indices_varint.npy"
    raw = bytearray(file.read_bytes())
    raw[-1] ^= 0x01
    file.write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        skxmr.load(varint_copy)


# =================================================== backward compatibility
@pytest.mark.parametrize("name", ["xrlinear", "xrlinear_float16", "ensemble_int8"])
def test_format_version_2_directories_load(name, tmp_path):
    # tests/data/format_v2_* were written by skxmr at commit 42f1d39 (format
    # version 2, plain indices), with their predictions in format_v2_expected.npz
    folder = DATA / f"format_v2_{name}"
    assert json.loads((folder / "skxmr_model.json").read_text())["format_version"] == 2
    with np.load(DATA / "format_v2_expected.npz") as f:
        X = sp.csr_matrix((f["X_data"], f["X_indices"], f["X_indptr"]),
                          shape=tuple(f["X_shape"]))
        labels, scores = f[f"{name}_labels"], f[f"{name}_scores"]
    for mmap_mode in (None, "r"):
        model = skxmr.load(folder, mmap_mode=mmap_mode)
        got_labels, got_scores = model.predict_topk(X, k=3)
        np.testing.assert_array_equal(got_labels, labels)
        np.testing.assert_array_equal(got_scores, scores)
    # and saved again with varint indices, it predicts the same
    skxmr.save(model, tmp_path / "again", index_coding="varint")
    again = skxmr.load(tmp_path / "again")
    _same_predictions(model, again, X)
