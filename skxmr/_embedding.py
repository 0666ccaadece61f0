"""Label representations for semantic label indexing. Private API.

Every label of an extreme multilabel problem is turned into a vector; the label
tree is then built by clustering these vectors (see ``skxmr._indexer``).

Notation: instances ``X`` are ``(n_samples, n_features)``, the label indicator
``Y`` is ``(n_samples, n_labels)`` and the label vectors ``Z`` are
``(n_labels, n_dims)``.  ``rownorm_l2`` scales every row to unit Euclidean norm
and leaves all-zero rows at zero.

Representations
---------------
``pifa``
    Positive instance feature aggregation:
    ``Z = rownorm_l2(rownorm_l2(Y)^T X)``.  A label is the normalised sum of the
    (L2-weighted) feature vectors of its positive instances.
``pii``
    Positive instance indexing: ``Z = rownorm_l2(Y^T)``.  A label is the set of
    its instances.
``spectral``
    Bipartite spectral co-clustering embedding (Dhillon, KDD 2001) of the
    instance-label graph ``Y``; see :func:`spectral`.
label features
    User-supplied label vectors (label-name TF-IDF, text embeddings, ...),
    either alone (``representation="precomputed"``, validated by
    :func:`check_precomputed`) or concatenated with a base representation by
    :func:`combine_label_features`.

Conventions shared by all functions here
----------------------------------------
* ``Y`` is a sparse (any format) or dense indicator.  Any *nonzero* entry is a
  positive (negative or non-binary values included; repeated entries of a
  sparse ``Y`` are summed first).  NaN or infinity in ``Y`` is an error, as is
  a ``Y`` without any positive entry.
* ``X`` is sparse (any format) or dense, float32 or float64 (other numeric
  dtypes are converted to float32); NaN or infinity is an error.  Products are
  taken in ``X``'s floating dtype, row norms are accumulated in float64.
* Results are float32.  Sparse results are ``scipy.sparse.csr_matrix`` in
  canonical form (sorted indices, no duplicates, no explicitly stored zeros);
  dense results are C-contiguous ndarrays.  When ``X`` is sparse no dense
  ``n_labels x n_features`` array is ever allocated.
* Labels without positive instances get an all-zero row.
* Inputs are never modified (CSR with unsorted or int64 indices and read-only
  buffers are fine).
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skxmr._cython._sparse import _csr_row_normalize
from skxmr.utils import effective_n_threads

__all__ = [
    "check_precomputed",
    "combine_label_features",
    "compute_label_representation",
    "pifa",
    "pii",
    "spectral",
]

REPRESENTATIONS = ("pifa", "pii", "spectral")

# Below this many entries of the n_samples x n_labels matrix the spectral
# embedding uses an exact dense SVD instead of the randomised one.
_DENSE_SVD_MAX_ENTRIES = 1 << 20
# Randomised SVD settings (extra test vectors, power iterations).
_SVD_OVERSAMPLES = 10
_SVD_POWER_ITER = 7

# Rows processed at once when normalising a dense matrix (bounds the float64
# temporary to _ROW_CHUNK x n_columns).
_ROW_CHUNK = 4096


# ---------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------


def _check_features(X, name="X"):
    """Validate a feature matrix: CSR (shares the input's buffers when possible)
    or a 2-D ndarray, float32/float64, finite, at least one row and column."""
    X = check_array(
        X,
        accept_sparse="csr",
        accept_large_sparse=True,
        dtype=[np.float32, np.float64],
        ensure_all_finite=True,
        ensure_2d=True,
        ensure_min_samples=1,
        ensure_min_features=1,
        input_name=name,
    )
    if sp.issparse(X) and not isinstance(X, sp.csr_matrix):
        # sparse *array* input: view it as a csr_matrix (buffers are shared).
        X = sp.csr_matrix(X)
    return X


def _check_labels(Y):
    """Return ``Y`` as a new canonical CSR 0/1 indicator with float64 data.

    Repeated entries are summed, then every nonzero entry becomes 1.  The input
    is never modified.
    """
    if sp.issparse(Y):
        Yc = check_array(
            Y,
            accept_sparse=True,  # keep the format; converted (copied) below
            accept_large_sparse=True,
            dtype=None,
            ensure_all_finite=True,
            ensure_min_samples=1,
            ensure_min_features=1,
            input_name="Y",
        )
        if Yc.dtype.kind not in "biuf":
            raise ValueError(f"Y must be a numeric indicator, got dtype {Yc.dtype}.")
        Yc = sp.csr_matrix(Yc, copy=True)
        Yc.sum_duplicates()  # on our own copy
        Yc.data = (Yc.data != 0).astype(np.float64)
        Yc.eliminate_zeros()
        Yb = Yc
    else:
        arr = check_array(
            Y,
            accept_sparse=False,
            dtype=None,
            ensure_all_finite=True,
            ensure_min_samples=1,
            ensure_min_features=1,
            input_name="Y",
        )
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"Y must be a numeric indicator, got dtype {arr.dtype}.")
        Yb = sp.csr_matrix(arr != 0, dtype=np.float64)
        Yb.sort_indices()
    Yb.has_canonical_format = True
    if Yb.nnz == 0:
        raise ValueError("Y has no positive entries.")
    return Yb


def _check_same_rows(X, Y):
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of rows (samples); got X with "
            f"{X.shape[0]} rows and Y with {Y.shape[0]} rows."
        )


# ---------------------------------------------------------------------------
# Row normalisation
# ---------------------------------------------------------------------------


def _rownorm_csr_inplace(M):
    """Scale the rows of a CSR matrix (ours, no explicit zeros) to unit L2 norm
    in place; all-zero rows stay zero.

    Every row is first divided by its largest absolute value, so the float64 sum
    of squares neither overflows nor underflows whatever the data's magnitude.
    """
    if M.nnz == 0:
        return M
    _csr_row_normalize(M.data, M.indptr, effective_n_threads(None))
    return M


def _rownorm_dense_inplace(M):
    """Scale the rows of a 2-D float ndarray (ours) to unit L2 norm in place;
    all-zero rows stay zero (same scaling scheme as the CSR version)."""
    if M.shape[1] == 0:
        return M
    for start in range(0, M.shape[0], _ROW_CHUNK):
        block = M[start : start + _ROW_CHUNK]
        t = block.astype(np.float64)  # a copy
        absmax = np.abs(t).max(axis=1)
        pos = absmax > 0
        t = t[pos] / absmax[pos, None]
        r = np.sqrt(np.einsum("ij,ij->i", t, t))
        block[pos] = t / r[:, None]
    return M


def _finish_sparse(M):
    """float32, unit rows, canonical CSR (sorted, no explicit zeros)."""
    M = sp.csr_matrix(M)
    if M.dtype != np.float64 and M.dtype != np.float32:
        M = M.astype(np.float64)
    if not M.has_canonical_format:
        M.sum_duplicates()
    M.eliminate_zeros()
    _rownorm_csr_inplace(M)
    M = M.astype(np.float32, copy=False)
    M.eliminate_zeros()  # float64 -> float32 underflow
    M.sort_indices()
    return M


def _finish_dense(M):
    """float32, unit rows, C-contiguous ndarray."""
    M = np.array(M, dtype=np.result_type(M.dtype, np.float32), order="C", copy=True)
    _rownorm_dense_inplace(M)
    return np.ascontiguousarray(M, dtype=np.float32)


def _rownorm(M):
    """rownorm_l2 of a sparse or dense matrix that we own, as float32."""
    if sp.issparse(M):
        return _finish_sparse(M)
    return _finish_dense(M)


# ---------------------------------------------------------------------------
# Representations (private twins trust their validated input)
# ---------------------------------------------------------------------------


def _pifa(X, Yb):
    """PIFA of validated ``X`` (CSR or ndarray) and canonical 0/1 CSR ``Yb``."""
    n = Yb.shape[0]
    counts = np.diff(Yb.indptr)
    inv = np.zeros(n, dtype=np.float64)
    has = counts > 0
    inv[has] = 1.0 / np.sqrt(counts[has])
    # rownorm_l2(Y), built directly in X's dtype so the product keeps it.
    Yn = sp.csr_matrix(
        (np.repeat(inv, counts).astype(X.dtype), Yb.indices, Yb.indptr),
        shape=Yb.shape,
    )
    YnT = Yn.T.tocsr()  # (n_labels, n_samples)
    P = YnT @ X
    if sp.issparse(X):
        return _finish_sparse(P)
    return _finish_dense(np.asarray(P))


def _pii(Yb):
    """PII of canonical 0/1 CSR ``Yb``: rownorm_l2(Y^T), CSR (n_labels, n_samples)."""
    return _finish_sparse(Yb.T.tocsr())


def _inv_sqrt(d):
    out = np.zeros(d.shape, dtype=np.float64)
    pos = d > 0
    out[pos] = 1.0 / np.sqrt(d[pos])
    return out


def _randomized_right_svd(A, At, u1, v1, k, rng):
    """Top ``k`` singular values and right singular vectors of ``A - u1 v1^T``.

    Randomised subspace iteration (Halko, Martinsson & Tropp, SIAM Review 2011,
    algorithm 4.4) on the matrix-free deflated operator: a Gaussian test matrix
    of ``k + _SVD_OVERSAMPLES`` columns, ``_SVD_POWER_ITER`` power iterations
    with QR re-orthonormalisation after every product, then an exact SVD of the
    small projected matrix.  When ``k + oversamples`` reaches ``min(A.shape)``
    the subspace is the whole range: no power iteration is needed and the result
    is exact.
    """
    n, L = A.shape
    width = min(k + _SVD_OVERSAMPLES, n, L)

    def right(M):  # (A - u1 v1^T) @ M, M of shape (L, width)
        return A @ M - np.outer(u1, v1 @ M)

    def left(M):  # (A - u1 v1^T)^T @ M, M of shape (n, width)
        return At @ M - np.outer(v1, u1 @ M)

    Q, _ = np.linalg.qr(right(rng.standard_normal((L, width))))
    # With as many test vectors as the smaller side, Q already spans the whole
    # range of the operator: power iterations would change nothing.
    n_iter = 0 if width == min(n, L) else _SVD_POWER_ITER
    for _ in range(n_iter):
        W, _ = np.linalg.qr(left(Q))
        Q, _ = np.linalg.qr(right(W))
    _, s, Vt = np.linalg.svd(left(Q).T, full_matrices=False)
    return s[:k], Vt[:k].T


def _spectral(Yb, n_components, random_state):
    """Spectral co-clustering embedding of canonical 0/1 CSR ``Yb``.

    Returns ``(Z, singular_values)``; see :func:`spectral`.
    """
    n, L = Yb.shape
    if min(n, L) < 2:
        raise ValueError(
            "The spectral representation needs Y with at least 2 rows and 2 "
            f"columns (labels); got Y of shape {Yb.shape}."
        )
    k = min(int(n_components), min(n, L) - 1)

    d1 = np.diff(Yb.indptr).astype(np.float64)  # instance degrees
    d2 = np.bincount(Yb.indices, minlength=L).astype(np.float64)  # label degrees
    r1 = _inv_sqrt(d1)
    r2 = _inv_sqrt(d2)
    rows = np.repeat(np.arange(n, dtype=np.intp), np.diff(Yb.indptr))
    A = sp.csr_matrix(
        (r1[rows] * r2[Yb.indices], Yb.indices, Yb.indptr), shape=(n, L)
    )
    At = A.T.tocsr()
    # The trivial singular triplet of A: sigma = 1, u1 ~ sqrt(d1), v1 ~ sqrt(d2).
    total = float(Yb.nnz)
    u1 = np.sqrt(d1) / np.sqrt(total)
    v1 = np.sqrt(d2) / np.sqrt(total)

    if n * L <= _DENSE_SVD_MAX_ENTRIES:
        B = A.toarray()
        B -= np.outer(u1, v1)
        _, s, Vt = np.linalg.svd(B, full_matrices=False)
        s = s[:k]
        V = Vt[:k].T
    else:
        s, V = _randomized_right_svd(
            A, At, u1, v1, k, check_random_state(random_state)
        )

    # Fix the sign of every singular vector: its largest-magnitude entry is > 0.
    V = np.array(V, dtype=np.float64, order="C")
    if V.size:
        pivot = np.argmax(np.abs(V), axis=0)
        signs = np.sign(V[pivot, np.arange(V.shape[1])])
        signs[signs == 0] = 1.0
        V *= signs
    Z = V * r2[:, None]
    return _finish_dense(Z), s


# ---------------------------------------------------------------------------
# Public (validated) functions
# ---------------------------------------------------------------------------


@validate_params(
    {"X": ["array-like", "sparse matrix"], "Y": ["array-like", "sparse matrix"]},
    prefer_skip_nested_validation=True,
)
def pifa(X, Y):
    """Positive instance feature aggregation (PIFA) label representation.

    ``Z = rownorm_l2(rownorm_l2(Y)^T X)``: the rows of ``Y`` are L2-normalised
    first (an instance with m labels gives each weight ``1/sqrt(m)``; instances
    without labels contribute nothing), then every label is the normalised sum
    of its positive instances' weighted feature vectors.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Instance features, float32 or float64, finite.
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Label indicator; any nonzero entry is a positive.

    Returns
    -------
    Z : csr_matrix or ndarray of shape (n_labels, n_features), float32
        CSR (sorted indices, no explicit zeros) when ``X`` is sparse, a dense
        array otherwise.  Rows have unit L2 norm, or are zero for labels without
        positive instances (or whose positives have all-zero features).
    """
    X = _check_features(X)
    Yb = _check_labels(Y)
    _check_same_rows(X, Yb)
    return _pifa(X, Yb)


@validate_params(
    {"Y": ["array-like", "sparse matrix"]},
    prefer_skip_nested_validation=True,
)
def pii(Y):
    """Positive instance indexing (PII) label representation.

    ``Z = rownorm_l2(Y^T)``: label ``l`` is the indicator of its positive
    instances, scaled by ``1/sqrt(n_positives(l))``.

    Parameters
    ----------
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Label indicator; any nonzero entry is a positive.

    Returns
    -------
    Z : csr_matrix of shape (n_labels, n_samples), float32
        Unit-norm rows; zero rows for labels without positives.
    """
    return _pii(_check_labels(Y))


@validate_params(
    {
        "Y": ["array-like", "sparse matrix"],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def spectral(Y, n_components=64, random_state=None):
    """Spectral (bipartite co-clustering) label representation.

    Follows Dhillon, "Co-clustering documents and words using bipartite spectral
    graph partitioning" (KDD 2001), with instances and labels as the two sides
    of the bipartite graph whose edges are the positives of ``Y``:

    1. ``Yb`` = 0/1 version of ``Y``; ``d1`` = its row sums (labels per
       instance), ``d2`` = its column sums (positives per label);
    2. ``A = D1^-1/2 Yb D2^-1/2``, where ``1/sqrt(0)`` is taken as 0 (empty
       rows and columns of ``Y`` stay empty in ``A``);
    3. the top singular triplet of ``A`` is known in closed form:
       ``sigma_1 = 1``, ``u_1 = sqrt(d1)/sqrt(nnz)``, ``v_1 = sqrt(d2)/sqrt(nnz)``.
       It is removed explicitly (deflation) — ``A' = A - u_1 v_1^T`` — and the
       top ``k`` right singular vectors of ``A'`` are computed.  These are the
       singular vectors 2..k+1 of ``A`` (Dhillon's "drop the first component"),
       but the dropped vector is always the trivial one, even when ``Y``'s graph
       is disconnected and ``sigma = 1`` is repeated: the first component kept
       is then the one that separates the connected components;
    4. each singular vector's sign is fixed so its largest-magnitude entry is
       positive;
    5. label rows are scaled by ``D2^-1/2`` (``Z = D2^-1/2 V``, Dhillon's
       co-clustering embedding of the "word" side; labels without positives get
       zero rows) and finally L2-normalised.

    The SVD is an exact dense ``numpy.linalg.svd`` of ``A'`` when ``n_samples *
    n_labels <= 2**20``.  Otherwise it is a randomised SVD (Halko, Martinsson &
    Tropp 2011: ``k + 10`` Gaussian test vectors drawn from ``random_state``, 7
    power iterations with QR re-orthonormalisation) on a matrix-free ``A'``
    (sparse products plus the rank-one correction; nothing ``n x L`` is dense).
    It costs about ``16 * nnz(Y) * (k + 10)`` flops for the products plus
    ``32 * (n_samples + n_labels) * (k + 10)**2`` for the QR factorisations
    (these dominate in practice: about 3 s for 100k x 20k, k=32, one core),
    needs ``(n_samples + n_labels) * (k + 10)`` float64 of working memory, and
    is deterministic for a fixed ``random_state``.

    Parameters
    ----------
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Label indicator; any nonzero entry is a positive.  Needs at least 2 rows
        and 2 columns.
    n_components : int, default=64
        Number of spectral components; capped at ``min(n_samples, n_labels) - 1``
        (the number of non-trivial singular vectors).
    random_state : int, RandomState instance or None, default=None
        Seeds the randomised SVD's test vectors (unused by the dense SVD).

    Returns
    -------
    Z : ndarray of shape (n_labels, min(n_components, min(n_samples, n_labels) - 1))
        float32, unit-norm rows (zero rows for labels without positives).
    """
    Z, _ = _spectral(_check_labels(Y), n_components, random_state)
    return Z


def _check_label_features(F, n_labels, name="label_features"):
    F = _check_features(F, name=name)
    if n_labels is not None and F.shape[0] != n_labels:
        raise ValueError(
            f"{name} must have one row per label: expected {n_labels} rows, got "
            f"{F.shape[0]}."
        )
    return F


def _combine(Z, F, weight):
    """rownorm_l2([rownorm_l2(Z), weight * rownorm_l2(F)]) of validated blocks."""
    Zn = _rownorm(sp.csr_matrix(Z, copy=True) if sp.issparse(Z) else Z)
    Fn = _rownorm(sp.csr_matrix(F, copy=True) if sp.issparse(F) else F)
    if weight != 1.0:
        if sp.issparse(Fn):
            Fn.data *= np.float32(weight)
        else:
            Fn *= np.float32(weight)
    if sp.issparse(Zn) or sp.issparse(Fn):
        H = sp.hstack([sp.csr_matrix(Zn), sp.csr_matrix(Fn)], format="csr")
        return _finish_sparse(H)
    return _finish_dense(np.hstack([Zn, Fn]))


@validate_params(
    {
        "Z": ["array-like", "sparse matrix"],
        "F": ["array-like", "sparse matrix"],
        "weight": [Interval(Real, 0, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def combine_label_features(Z, F, weight=1.0):
    """Concatenate a label representation with user-supplied label features.

    ``rownorm_l2([rownorm_l2(Z), weight * rownorm_l2(F)])``: both blocks are
    row-normalised, ``F``'s block is scaled by ``weight`` (its share of every
    cosine similarity relative to ``Z``'s), the blocks are stacked side by side
    and the result is row-normalised again.

    Parameters
    ----------
    Z : {array-like, sparse matrix} of shape (n_labels, d1)
        A label representation, e.g. the output of :func:`pifa`.
    F : {array-like, sparse matrix} of shape (n_labels, d2)
        Label features (label-name TF-IDF, text embeddings, ...); finite.
    weight : float > 0, default=1.0
        Relative weight of the ``F`` block.

    Returns
    -------
    Z_combined : csr_matrix or ndarray of shape (n_labels, d1 + d2), float32
        CSR when either block is sparse, a dense array when both are dense.
        Unit-norm rows (zero rows where both blocks are zero).
    """
    if not np.isfinite(weight):
        raise ValueError(f"weight must be finite, got {weight}.")
    Z = _check_features(Z, name="Z")
    F = _check_label_features(F, Z.shape[0], name="F")
    return _combine(Z, F, float(weight))


@validate_params(
    {
        "Z": ["array-like", "sparse matrix"],
        "n_labels": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def check_precomputed(Z, n_labels=None):
    """Validate user-supplied label vectors (``representation="precomputed"``).

    Parameters
    ----------
    Z : {array-like, sparse matrix} of shape (n_labels, n_dims)
        Label vectors; 2-D, finite, at least one row and one column.
    n_labels : int, default=None
        When given, ``Z`` must have exactly this many rows.

    Returns
    -------
    Z : csr_matrix or ndarray of shape (n_labels, n_dims), float32
        A new matrix with unit-norm rows (zero rows stay zero): CSR (canonical)
        for sparse input, a C-contiguous array for dense input.
    """
    Z = _check_label_features(Z, n_labels, name="Z")
    if sp.issparse(Z):
        return _finish_sparse(sp.csr_matrix(Z, copy=True))
    return _finish_dense(Z)


@validate_params(
    {
        "X": ["array-like", "sparse matrix", None],
        "Y": ["array-like", "sparse matrix"],
        "representation": [StrOptions(set(REPRESENTATIONS))],
        "label_features": ["array-like", "sparse matrix", None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "label_features_weight": [Interval(Real, 0, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def compute_label_representation(
    X,
    Y,
    representation="pifa",
    *,
    label_features=None,
    n_components=64,
    random_state=None,
    label_features_weight=1.0,
):
    """Label vectors for building the label tree.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features) or None
        Instance features.  Required for ``"pifa"``; for ``"pii"`` and
        ``"spectral"`` it is not used (only its number of rows is checked when
        given).
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Label indicator; any nonzero entry is a positive.
    representation : {"pifa", "pii", "spectral"}, default="pifa"
        See :func:`pifa`, :func:`pii`, :func:`spectral`.  ``"precomputed"`` is
        handled by the caller with :func:`check_precomputed`.
    label_features : {array-like, sparse matrix} of shape (n_labels, d2), default=None
        User label features concatenated to the representation with
        :func:`combine_label_features`.
    n_components : int, default=64
        Spectral components (``"spectral"`` only).
    random_state : int, RandomState instance or None, default=None
        Seeds the spectral SVD (``"spectral"`` only).
    label_features_weight : float > 0, default=1.0
        Weight of the ``label_features`` block.

    Returns
    -------
    Z : csr_matrix or ndarray of shape (n_labels, n_dims), float32
        Unit-norm rows; zero rows for labels without positives (unless
        ``label_features`` gives them a nonzero vector).
    """
    if not np.isfinite(label_features_weight):
        raise ValueError(
            f"label_features_weight must be finite, got {label_features_weight}."
        )
    Yb = _check_labels(Y)
    if representation == "pifa":
        if X is None:
            raise ValueError('X is required for representation="pifa".')
        X = _check_features(X)
        _check_same_rows(X, Yb)
        Z = _pifa(X, Yb)
    else:
        if X is not None:
            n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
            if n_rows != Yb.shape[0]:
                raise ValueError(
                    f"X and Y must have the same number of rows (samples); got X "
                    f"with {n_rows} rows and Y with {Yb.shape[0]} rows."
                )
        if representation == "pii":
            Z = _pii(Yb)
        else:
            Z, _ = _spectral(Yb, n_components, random_state)
    if label_features is not None:
        F = _check_label_features(label_features, Yb.shape[1])
        Z = _combine(Z, F, float(label_features_weight))
    return Z
