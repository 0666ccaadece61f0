"""skxmr.save(..., weights="float16" | "int8"): low-precision weights for serving.

The loaded ``coef_`` is checked entry by entry against a brute-force rounding of
the float32 weights, the stored data files against their exact sizes, and the
predictions against the float32 model's."""

import os

import numpy as np
import pytest
import scipy.sparse as sp

import skxmr
from skxmr import LabelIndexer, ModelFormatError, XRLinearClassifier
from skxmr.datasets import make_xmc_classification


def _data_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
               if f.startswith("coef.") and f.endswith(".data.npy"))


def _int8_reference(W):
    """Per column: s = max |w|, w -> round(127 w / s) * s / 127, zeros dropped."""
    W = W.tocsc()
    out = W.astype(np.float64).tolil(copy=True).T  # rows of out = columns of W
    for j in range(W.shape[1]):
        col = W.data[W.indptr[j]:W.indptr[j + 1]].astype(np.float64)
        if col.size:
            s = np.float32(np.abs(col).max())
            out.data[j] = list(np.rint(col / s * 127) * (np.float64(s) / 127))
    return sp.csr_matrix(out.T)


@pytest.mark.parametrize("weights", ["float16", "int8"])
def test_low_precision_round_trip(small_xrlinear, weights, tmp_path):
    model, X = small_xrlinear
    full, low = tmp_path / "full", tmp_path / "low"
    skxmr.save(model, full)
    skxmr.save(model, low, weights=weights)
    loaded = skxmr.load(low)
    nnz = sum(W.nnz for W in model.coef_)
    itemsize = np.dtype(weights).itemsize
    header = _data_bytes(full) - 4 * nnz  # the .npy headers
    assert _data_bytes(low) <= header + itemsize * nnz
    assert _data_bytes(low) < _data_bytes(full)
    for W, V in zip(model.coef_, loaded.coef_):
        assert V.dtype == np.float32 and V.format == "csc" and V.shape == W.shape
        if weights == "float16":
            np.testing.assert_array_equal(V.indptr, W.indptr)
            np.testing.assert_array_equal(V.indices, W.indices)
            np.testing.assert_array_equal(
                V.data, W.data.astype(np.float16).astype(np.float32))
        else:
            expected = _int8_reference(W)
            np.testing.assert_allclose(V.toarray(), expected.toarray(), rtol=1e-6,
                                       atol=1e-7)
            assert V.nnz == expected.count_nonzero()
    # Rounding moves a score by far less than the gap between most top-2
    # scores: on this data float32 and float16 agree on every top-1 label and
    # int8 on over 99%; 0.97 leaves room for other BLAS/compilers, a real
    # mistake (a wrong scale, a shifted column) drops the rate far below it.
    top = model.predict_topk(X, k=5)[0]
    top_low = loaded.predict_topk(X, k=5)[0]
    assert np.mean(top[:, 0] == top_low[:, 0]) >= 0.97
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top, top_low)]) >= 0.95
    # A low-precision model saved again as float32 keeps its rounded weights.
    skxmr.save(loaded, tmp_path / "again")
    again = skxmr.load(tmp_path / "again")
    assert all((A != B).nnz == 0 for A, B in zip(again.coef_, loaded.coef_))


def test_weights_errors(small_xrlinear, tmp_path):
    model, _ = small_xrlinear
    for bad in ("float64", "fp16", None, 8):
        with pytest.raises(ValueError, match="weights must be one of"):
            skxmr.save(model, tmp_path / "bad", weights=bad)
    with pytest.raises(ValueError, match="XRLinearClassifier only"):
        X, Y = make_xmc_classification(200, 100, 20, random_state=0)
        skxmr.save(LabelIndexer(random_state=0).fit(X, Y), tmp_path / "ix",
                   weights="int8")
    assert not os.path.exists(tmp_path / "bad")


def test_float16_overflow_raises(small_xrlinear, tmp_path):
    model, _ = small_xrlinear
    import copy
    big = copy.deepcopy(model)
    big.coef_[0] = big.coef_[0].copy()
    big.coef_[0].data[0] = 1e6
    with pytest.raises(ValueError, match="overflow float16"):
        skxmr.save(big, tmp_path / "big", weights="float16")
    skxmr.save(big, tmp_path / "big8", weights="int8")  # int8 scales per column


def test_int8_without_scale_is_a_format_error(small_xrlinear, tmp_path):
    model, _ = small_xrlinear
    path = tmp_path / "low"
    skxmr.save(model, path, weights="int8")
    os.remove(path / "coef.1.scale.npy")
    with pytest.raises(ModelFormatError):
        skxmr.load(path, verify=False)
