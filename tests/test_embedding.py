"""Label representations (PIFA, PII, spectral, label features) against dense
NumPy references written straight from the definitions."""

import numpy as np
import pytest
import scipy.sparse as sp

import skxmr._embedding as emb
from skxmr._embedding import (
    check_precomputed,
    combine_label_features,
    compute_label_representation,
    pifa,
    pii,
    spectral,
)

# ---------------------------------------------------------------------------
# Helpers and dense references
# ---------------------------------------------------------------------------


def dense(M):
    return M.toarray() if sp.issparse(M) else np.asarray(M)


def ref_rownorm(M):
    M = np.asarray(M, dtype=np.float64)
    norms = np.linalg.norm(M, axis=1)
    out = np.zeros_like(M)
    nz = norms > 0
    out[nz] = M[nz] / norms[nz, None]
    return out


def ref_pifa(X, Y):
    Yb = (dense(Y) != 0).astype(np.float64)
    return ref_rownorm(ref_rownorm(Yb).T @ dense(X).astype(np.float64))


def ref_pii(Y):
    return ref_rownorm((dense(Y) != 0).astype(np.float64).T)


def ref_spectral(Y, k):
    """Dhillon: singular vectors 2..k+1 of D1^-1/2 Y D2^-1/2, scaled by D2^-1/2."""
    Yb = (dense(Y) != 0).astype(np.float64)
    d1, d2 = Yb.sum(1), Yb.sum(0)
    r1 = np.where(d1 > 0, 1 / np.sqrt(np.maximum(d1, 1)), 0)
    r2 = np.where(d2 > 0, 1 / np.sqrt(np.maximum(d2, 1)), 0)
    A = r1[:, None] * Yb * r2[None, :]
    _, s, Vt = np.linalg.svd(A)
    return ref_rownorm(r2[:, None] * Vt[1 : k + 1].T), s[1 : k + 1]


def make_data(n=40, d=25, L=12, seed=0, empty_labels=(3, 7)):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.3, random_state=rng, format="csr")
    X.data = rng.standard_normal(X.nnz)  # signed features
    Y = (rng.random((n, L)) < 0.25).astype(np.float64)
    Y[:, list(empty_labels)] = 0
    Y[0, 0] = 1  # at least one positive
    Y[5] = 0  # an instance without labels
    return X, sp.csr_matrix(Y)


def unsorted_int64(M):
    """Same matrix as CSR with reversed (unsorted) indices in each row and int64
    index arrays."""
    M = sp.csr_matrix(M)
    data, indices = M.data.copy(), M.indices.astype(np.int64)
    for i in range(M.shape[0]):
        a, b = M.indptr[i], M.indptr[i + 1]
        data[a:b] = data[a:b][::-1]
        indices[a:b] = indices[a:b][::-1]
    out = sp.csr_matrix(
        (data, indices, M.indptr.astype(np.int64)), shape=M.shape, copy=False
    )
    out.has_sorted_indices = False
    return out


def assert_canonical_csr(Z):
    assert isinstance(Z, sp.csr_matrix)
    assert Z.dtype == np.float32
    assert np.all(Z.data != 0)
    Zc = Z.copy()
    Zc.sum_duplicates()
    assert Zc.nnz == Z.nnz
    for i in range(Z.shape[0]):
        row = Z.indices[Z.indptr[i] : Z.indptr[i + 1]]
        assert np.all(np.diff(row) > 0)


def assert_unit_or_zero_rows(Z, atol=1e-5):
    norms = np.linalg.norm(dense(Z).astype(np.float64), axis=1)
    ok = (np.abs(norms - 1) < atol) | (norms == 0)
    assert ok.all(), norms[~ok]


def snapshot(M):
    if sp.issparse(M):
        return {k: getattr(M, k).copy() for k in ("data", "indices", "indptr")}
    return np.array(M, copy=True)


def assert_unchanged(M, snap):
    if sp.issparse(M):
        for k, v in snap.items():
            np.testing.assert_array_equal(getattr(M, k), v)
            assert getattr(M, k).dtype == v.dtype
    else:
        np.testing.assert_array_equal(M, snap)


def read_only(M):
    if sp.issparse(M):
        for k in ("data", "indices", "indptr"):
            getattr(M, k).flags.writeable = False
    else:
        M.flags.writeable = False
    return M


# ---------------------------------------------------------------------------
# PIFA
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_sparse", [True, False])
@pytest.mark.parametrize("y_sparse", [True, False])
def test_pifa_matches_reference(dtype, x_sparse, y_sparse):
    X, Y = make_data()
    X = X.astype(dtype)
    Xin = X if x_sparse else X.toarray()
    Yin = Y if y_sparse else Y.toarray()
    Z = pifa(Xin, Yin)
    if x_sparse:
        assert_canonical_csr(Z)
    else:
        assert isinstance(Z, np.ndarray) and Z.dtype == np.float32
        assert Z.flags.c_contiguous
    assert Z.shape == (Y.shape[1], X.shape[1])
    np.testing.assert_allclose(dense(Z), ref_pifa(X, Y), rtol=1e-5, atol=1e-6)
    assert_unit_or_zero_rows(Z)


def test_pifa_labels_without_positives_are_zero_rows():
    X, Y = make_data(empty_labels=(3, 7))
    Z = dense(pifa(X, Y))
    norms = np.linalg.norm(Z, axis=1)
    assert norms[3] == 0 and norms[7] == 0
    has_pos = np.asarray(Y.sum(0)).ravel() > 0
    np.testing.assert_allclose(norms[has_pos], 1, rtol=1e-5)


def test_pifa_weights_instances_by_their_label_count():
    # Label 0 has instances a (1 label) and b (2 labels): weights 1 and 1/sqrt(2).
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    Y = np.array([[1, 0], [1, 1]])
    Z = pifa(X, Y)
    expected = np.array([1.0, 1 / np.sqrt(2)])
    np.testing.assert_allclose(Z[0], expected / np.linalg.norm(expected), rtol=1e-6)
    np.testing.assert_allclose(Z[1], [0.0, 1.0], rtol=1e-6)


def test_pifa_nonbinary_y_nonzero_is_positive():
    X, Y = make_data()
    Yw = Y.copy()
    rng = np.random.default_rng(1)
    Yw.data = rng.choice([-3.0, 0.5, 2.0, 7.0], size=Yw.nnz)
    np.testing.assert_allclose(dense(pifa(X, Yw)), dense(pifa(X, Y)), rtol=1e-6)
    # explicitly stored zeros are not positives
    Yz = Y.copy()
    Yz.data[:3] = 0
    Yb = Y.copy()
    Yb.data[:3] = 0
    Yb.eliminate_zeros()
    np.testing.assert_allclose(dense(pifa(X, Yz)), dense(pifa(X, Yb)), rtol=1e-6)


def test_pifa_sparse_formats_and_int_features():
    X, Y = make_data()
    ref = dense(pifa(X, Y))
    for Xf in (X.tocoo(), X.tocsc(), sp.csr_array(X)):
        for Yf in (Y.tocoo(), Y.tocsc(), sp.csr_array(Y), Y.astype(bool)):
            Z = pifa(Xf, Yf)
            assert_canonical_csr(Z)
            np.testing.assert_allclose(dense(Z), ref, rtol=1e-6, atol=1e-7)
    Xi = X.copy()
    Xi.data = np.round(Xi.data * 10)
    np.testing.assert_allclose(
        dense(pifa(Xi.astype(np.int64), Y)), ref_pifa(Xi, Y), rtol=1e-5, atol=1e-6
    )


def test_pifa_extreme_magnitudes():
    X, Y = make_data()
    ref = ref_pifa(X, Y)
    for scale in (1e300, 1e-300):
        Xs = X.copy()
        Xs.data = Xs.data * scale
        Z = pifa(Xs, Y)
        np.testing.assert_allclose(dense(Z), ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pifa(Xs.toarray(), Y), ref, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# PII
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("y_sparse", [True, False])
def test_pii_matches_reference(y_sparse):
    _, Y = make_data()
    Z = pii(Y if y_sparse else Y.toarray())
    assert_canonical_csr(Z)
    assert Z.shape == (Y.shape[1], Y.shape[0])
    np.testing.assert_allclose(Z.toarray(), ref_pii(Y), rtol=1e-6)
    assert_unit_or_zero_rows(Z)
    assert np.linalg.norm(Z.toarray()[3]) == 0


# ---------------------------------------------------------------------------
# Spectral
# ---------------------------------------------------------------------------


def connected_y(n=60, L=15, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < 0.2).astype(np.float64)
    Y[np.arange(n), rng.integers(0, L, n)] = 1  # every row has a label
    Y[rng.integers(0, n, L), np.arange(L)] = 1  # every label has a row
    return sp.csr_matrix(Y)


def block_y(seed=0):
    """Two disconnected blocks: rows 0..29 use labels 0..9, rows 30..69 use
    labels 10..24 (and label 25 has no positives)."""
    rng = np.random.default_rng(seed)
    Y = np.zeros((70, 26))
    Y[:30, :10] = rng.random((30, 10)) < 0.3
    Y[30:, 10:25] = rng.random((40, 15)) < 0.3
    Y[np.arange(30), rng.integers(0, 10, 30)] = 1
    Y[30 + np.arange(40), rng.integers(10, 25, 40)] = 1
    Y[rng.integers(0, 30, 10), np.arange(10)] = 1
    Y[rng.integers(30, 70, 15), np.arange(10, 25)] = 1
    return sp.csr_matrix(Y)


@pytest.fixture(params=["dense_svd", "randomized_svd"])
def svd_path(request, monkeypatch):
    if request.param == "randomized_svd":
        monkeypatch.setattr(emb, "_DENSE_SVD_MAX_ENTRIES", 0)
    return request.param


def align_signs(Z, ref):
    signs = np.sign(np.sum(Z * ref, axis=0))
    signs[signs == 0] = 1
    return ref * signs


def test_spectral_shape_unit_rows_and_determinism(svd_path):
    Y = connected_y()
    Z = spectral(Y, n_components=5, random_state=0)
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float32
    assert Z.shape == (15, 5) and Z.flags.c_contiguous
    assert_unit_or_zero_rows(Z)
    np.testing.assert_array_equal(Z, spectral(Y, n_components=5, random_state=0))
    rs = np.random.RandomState(3)
    Z1 = spectral(Y, n_components=5, random_state=rs)
    np.testing.assert_array_equal(
        Z1, spectral(Y, n_components=5, random_state=np.random.RandomState(3))
    )


def test_spectral_matches_dhillon_reference(svd_path):
    Y = connected_y()
    k = 4
    Z, s = emb._spectral(emb._check_labels(Y), k, 0)
    Zref, sref = ref_spectral(Y, k)
    np.testing.assert_allclose(s, sref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(Z, align_signs(Z, Zref), atol=2e-4)


def planted_y(seed=0, n=120, L=40, n_groups=4):
    """Labels in 4 communities: the 3 non-trivial components stand out."""
    rng = np.random.default_rng(seed)
    row_group = rng.integers(0, n_groups, n)
    label_group = np.arange(L) % n_groups
    p = np.where(row_group[:, None] == label_group[None, :], 0.35, 0.03)
    Y = (rng.random((n, L)) < p).astype(np.float64)
    Y[np.arange(n), rng.integers(0, L, n)] = 1
    return sp.csr_matrix(Y)


def test_spectral_dense_and_randomized_paths_agree(monkeypatch):
    # the randomised SVD is approximate (7 power iterations): close, not equal
    Y = planted_y()
    Zd, sd = emb._spectral(emb._check_labels(Y), 3, 0)
    monkeypatch.setattr(emb, "_DENSE_SVD_MAX_ENTRIES", 0)
    Zr, sr = emb._spectral(emb._check_labels(Y), 3, 0)
    np.testing.assert_allclose(sr, sd, rtol=1e-5)
    np.testing.assert_allclose(Zr, Zd, atol=0.03)
    # with as many test vectors as labels the randomised SVD is exact
    Ys = planted_y(n=60, L=12)
    Zd, sd = emb._spectral(emb._check_labels(Ys), 2, 0)
    monkeypatch.setattr(emb, "_DENSE_SVD_MAX_ENTRIES", 1 << 20)
    Zd, sd = emb._spectral(emb._check_labels(Ys), 2, 0)
    monkeypatch.setattr(emb, "_DENSE_SVD_MAX_ENTRIES", 0)
    Zr, sr = emb._spectral(emb._check_labels(Ys), 2, 0)
    np.testing.assert_allclose(sr, sd, rtol=1e-10)
    np.testing.assert_allclose(Zr, Zd, atol=1e-5)


@pytest.mark.parametrize("n_components", [1, 4])
def test_spectral_first_component_separates_disconnected_blocks(
    svd_path, n_components
):
    Y = block_y()
    Z, s = emb._spectral(emb._check_labels(Y), n_components, 0)
    # The second singular value equal to 1 belongs to the second component of
    # the bipartite graph; the trivial first one was dropped.
    assert s[0] == pytest.approx(1.0, abs=1e-8)
    first = Z[:, 0]
    b1, b2 = first[:10], first[10:25]
    assert (np.all(b1 > 0) and np.all(b2 < 0)) or (np.all(b1 < 0) and np.all(b2 > 0))
    # constant within a block when that component is the only one
    if n_components == 1:
        np.testing.assert_allclose(np.abs(first[:25]), 1, rtol=1e-6)
    assert np.all(Z[25] == 0)  # label without positives
    assert_unit_or_zero_rows(Z)


def test_spectral_capping_and_small_inputs():
    Y = connected_y(n=6, L=4)
    assert spectral(Y, n_components=64).shape == (4, 3)  # min(6, 4) - 1
    assert spectral(Y.T, n_components=64).shape == (6, 3)
    assert spectral(np.array([[1, 0], [0, 1], [1, 1]])).shape == (2, 1)
    with pytest.raises(ValueError, match="at least 2 rows and 2"):
        spectral(np.ones((1, 5)))
    with pytest.raises(ValueError, match="at least 2 rows and 2"):
        spectral(np.ones((5, 1)))
    with pytest.raises(ValueError):
        spectral(Y, n_components=0)


def test_spectral_degenerate_inputs_are_finite():
    # every instance has every label: A' = 0, all singular values 0.
    Z = spectral(np.ones((5, 4)), n_components=2, random_state=0)
    assert np.isfinite(Z).all()
    assert_unit_or_zero_rows(Z)
    # empty rows and columns (zero degrees) give no NaN
    Y = block_y().toarray()
    Y[3] = 0
    Z = spectral(Y, n_components=3, random_state=0)
    assert np.isfinite(Z).all()
    assert np.all(Z[25] == 0)


# ---------------------------------------------------------------------------
# Label features and precomputed representations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("z_sparse", [True, False])
@pytest.mark.parametrize("f_sparse", [True, False])
def test_combine_label_features(z_sparse, f_sparse):
    X, Y = make_data()
    Zp = pifa(X, Y)
    Zin = Zp if z_sparse else Zp.toarray()
    rng = np.random.default_rng(0)
    F = rng.standard_normal((Y.shape[1], 6)) * 5
    F[2] = 0
    Fin = sp.csr_matrix(F) if f_sparse else F
    C = combine_label_features(Zin, Fin)
    assert C.shape == (Y.shape[1], Zp.shape[1] + 6)
    if z_sparse or f_sparse:
        assert_canonical_csr(C)
    else:
        assert isinstance(C, np.ndarray) and C.dtype == np.float32
    expected = ref_rownorm(np.hstack([ref_rownorm(Zp.toarray()), ref_rownorm(F)]))
    np.testing.assert_allclose(dense(C), expected, rtol=1e-5, atol=1e-6)
    assert_unit_or_zero_rows(C)


def test_combine_weight():
    Z = np.array([[3.0, 4.0], [1.0, 0.0]])
    F = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    C = combine_label_features(Z, F, weight=2.0)
    np.testing.assert_allclose(np.linalg.norm(C[0, 2:]), 2 / np.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(C[1], [1, 0, 0, 0, 0])  # F row zero


def test_combine_errors():
    Z = np.eye(3)
    with pytest.raises(ValueError, match="one row per label"):
        combine_label_features(Z, np.ones((4, 2)))
    with pytest.raises(ValueError):
        combine_label_features(Z, np.array([[np.nan], [1], [1]]))
    with pytest.raises(ValueError):
        combine_label_features(Z, np.ones((3, 2)), weight=0)
    with pytest.raises(ValueError):
        combine_label_features(Z, np.ones((3, 2)), weight=np.inf)


@pytest.mark.parametrize("sparse_input", [True, False])
def test_check_precomputed(sparse_input):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5, 4))
    Z[1] = 0
    Zin = sp.csr_matrix(Z) if sparse_input else Z
    snap = snapshot(Zin)
    out = check_precomputed(Zin, n_labels=5)
    assert out is not Zin
    if sparse_input:
        assert_canonical_csr(out)
    else:
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(dense(out), ref_rownorm(Z), rtol=1e-6)
    assert_unchanged(Zin, snap)


def test_check_precomputed_errors():
    with pytest.raises(ValueError):
        check_precomputed(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError):
        check_precomputed(sp.csr_matrix(np.array([[1.0, np.nan]])))
    with pytest.raises(ValueError):
        check_precomputed(np.ones(3))  # 1-D
    with pytest.raises(ValueError):
        check_precomputed(np.ones((0, 3)))
    with pytest.raises(ValueError, match="one row per label"):
        check_precomputed(np.ones((3, 2)), n_labels=4)


# ---------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------


def test_compute_label_representation_dispatch():
    X, Y = make_data()
    np.testing.assert_array_equal(
        dense(compute_label_representation(X, Y)), dense(pifa(X, Y))
    )
    np.testing.assert_array_equal(
        dense(compute_label_representation(None, Y, "pii")), dense(pii(Y))
    )
    Yc = connected_y()
    np.testing.assert_array_equal(
        compute_label_representation(
            None, Yc, "spectral", n_components=3, random_state=0
        ),
        spectral(Yc, n_components=3, random_state=0),
    )
    F = np.random.default_rng(0).standard_normal((Y.shape[1], 3))
    C = compute_label_representation(X, Y, "pifa", label_features=F)
    np.testing.assert_allclose(
        dense(C), dense(combine_label_features(pifa(X, Y), F)), rtol=1e-6
    )
    C2 = compute_label_representation(
        X, Y, label_features=F, label_features_weight=3.0
    )
    np.testing.assert_allclose(
        dense(C2), dense(combine_label_features(pifa(X, Y), F, weight=3.0)), rtol=1e-6
    )


def test_compute_label_representation_errors():
    X, Y = make_data()
    with pytest.raises(ValueError):
        compute_label_representation(X, Y, "precomputed")
    with pytest.raises(ValueError, match="X is required"):
        compute_label_representation(None, Y, "pifa")
    with pytest.raises(ValueError, match="same number of rows"):
        compute_label_representation(X[:-1], Y, "pii")
    with pytest.raises(ValueError, match="one row per label"):
        compute_label_representation(X, Y, label_features=np.ones((3, 2)))


# ---------------------------------------------------------------------------
# Validation shared by all representations
# ---------------------------------------------------------------------------


def test_invalid_inputs():
    X, Y = make_data()
    Xn = X.copy()
    Xn.data[0] = np.nan
    with pytest.raises(ValueError):
        pifa(Xn, Y)
    Xd = X.toarray()
    Xd[0, 0] = np.inf
    with pytest.raises(ValueError):
        pifa(Xd, Y)
    with pytest.raises(ValueError, match="same number of rows"):
        pifa(X[:-1], Y)
    for Y0 in (np.zeros((40, 12)), sp.csr_matrix((40, 12))):
        with pytest.raises(ValueError, match="Y has no positive entries"):
            pifa(X, Y0)
        with pytest.raises(ValueError, match="Y has no positive entries"):
            pii(Y0)
        with pytest.raises(ValueError, match="Y has no positive entries"):
            spectral(Y0)
    Yz = sp.csr_matrix((np.zeros(2), ([0, 1], [0, 1])), shape=(40, 12))
    with pytest.raises(ValueError, match="Y has no positive entries"):
        pii(Yz)
    Ynan = Y.toarray()
    Ynan[0, 0] = np.nan
    with pytest.raises(ValueError):
        pii(Ynan)
    with pytest.raises(ValueError):
        pifa(np.ones((40, 0)), Y)
    with pytest.raises(ValueError):
        pii(np.array(["a", "b"], dtype=object).reshape(1, 2))


def test_unsorted_int64_csr_same_result_and_inputs_unchanged():
    X, Y = make_data()
    Xu, Yu = unsorted_int64(X), unsorted_int64(Y)
    # row 0's first positive stored twice: still one positive
    Yu = sp.csr_matrix(
        (
            np.insert(Yu.data, 0, 1.0),
            np.insert(Yu.indices, 0, Yu.indices[0]),
            np.append(Yu.indptr[:1], Yu.indptr[1:] + 1),
        ),
        shape=Y.shape,
    )
    assert Yu.nnz == Y.nnz + 1
    Yu.has_sorted_indices = False
    read_only(Xu)
    read_only(Yu)
    snaps = snapshot(Xu), snapshot(Yu)
    Xd = read_only(X.toarray())
    snap_d = snapshot(Xd)
    F = read_only(unsorted_int64(sp.random(12, 5, density=0.5, random_state=0)))
    snap_f = snapshot(F)

    np.testing.assert_array_equal(dense(pifa(Xu, Yu)), dense(pifa(X, Y)))
    np.testing.assert_array_equal(pifa(Xd, Yu), pifa(X.toarray(), Y))
    np.testing.assert_array_equal(dense(pii(Yu)), dense(pii(Y)))
    np.testing.assert_array_equal(
        spectral(Yu, n_components=3, random_state=0),
        spectral(Y, n_components=3, random_state=0),
    )
    C = compute_label_representation(Xu, Yu, label_features=F)
    F_ref = sp.csr_matrix(F.toarray())
    C_ref = compute_label_representation(X, Y, label_features=F_ref)
    np.testing.assert_array_equal(dense(C), dense(C_ref))
    assert_canonical_csr(C)
    check_precomputed(F)

    assert_unchanged(Xu, snaps[0])
    assert_unchanged(Yu, snaps[1])
    assert_unchanged(Xd, snap_d)
    assert_unchanged(F, snap_f)
