"""Validation helpers shared by the estimators and kernels' Python faces.

Public functions here validate; callers that already hold checked arrays call the
trusted private code directly. Private API of the package.
"""

from numbers import Integral

import numpy as np
import scipy.sparse as sp


# Weights scale float32 rows (the label representation): beyond this they overflow.
_MAX_WEIGHT = float(np.finfo(np.float32).max) / 2**20


def check_sample_weight(sample_weight, n_samples):
    """Row weights as a float64 array of shape (n_samples,), checked."""
    if sample_weight is None:
        return np.ones(n_samples)
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"sample_weight must hold numbers: {exc}") from exc
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {weights.shape}; expected ({n_samples},), one "
            "weight per row of X."
        )
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if weights.size and np.abs(weights).max() > _MAX_WEIGHT:
        raise ValueError(
            f"sample_weight holds {np.abs(weights).max():g}; weights must be at most "
            f"{_MAX_WEIGHT:g} (they scale float32 features and costs).")
    if weights.min() < 0:
        raise ValueError(
            f"sample_weight must be non-negative; its smallest value is "
            f"{weights.min():g}."
        )
    if not weights.any():
        raise ValueError("sample_weight is zero for every row; nothing to learn.")
    return weights


def check_sparse_structure(M, name="X"):
    """Raise ``ValueError`` unless the arrays of a sparse ``M`` are consistent.

    scipy checks them when a matrix is built from arrays, not when they are set
    afterwards, and its compiled routines (conversions, products) trust them:
    out-of-range indices or pointers would read or write out of bounds. O(nnz),
    nothing is copied or modified. Formats other than CSR, CSC and COO pass.
    """
    if not sp.issparse(M):
        return
    fmt = M.format
    try:
        if fmt in ("csr", "csc"):
            n_major, n_minor = M.shape if fmt == "csr" else M.shape[::-1]
            indptr, indices, data = M.indptr, M.indices, M.data
            if indptr.ndim != 1 or indices.ndim != 1 or data.ndim != 1:
                raise ValueError("its data, indices and indptr must be 1-D")
            if indptr.shape[0] != n_major + 1:
                raise ValueError(f"indptr has {indptr.shape[0]} entries, expected "
                                 f"{n_major + 1}")
            if indices.shape[0] != data.shape[0]:
                raise ValueError(f"indices has {indices.shape[0]} entries but data "
                                 f"{data.shape[0]}")
            if indptr[0] != 0 or indptr[-1] > indices.shape[0] or indptr[-1] < 0:
                raise ValueError("indptr must start at 0 and end at most at nnz")
            if n_major > 1 and np.any(indptr[1:] < indptr[:-1]):
                raise ValueError("indptr must be non-decreasing")
            used = indices[: int(indptr[-1])]
            if used.size and (used.min() < 0 or used.max() >= n_minor):
                raise ValueError(f"its indices must lie in [0, {n_minor})")
        elif fmt == "coo":
            coords = getattr(M, "coords", None) or (M.row, M.col)
            if any(c.shape != M.data.shape for c in coords):
                raise ValueError("its coordinates and data differ in length")
            for c, n in zip(coords, M.shape):
                if c.size and (c.min() < 0 or c.max() >= n):
                    raise ValueError(f"its coordinates must lie in [0, {n})")
    except ValueError as exc:
        raise ValueError(
            f"{name} is not a valid {fmt.upper()} matrix: {exc}.") from None


# Thread counts and joblib's n_jobs: None, a positive count or -1, -2, ... (all
# CPUs, all but one, ...); 0 and counts past C's int are refused up front.
_MAX_JOBS = 2**31 - 1


def n_jobs_constraint():
    """The ``_parameter_constraints`` entry of an ``n_jobs`` parameter."""
    from sklearn.utils._param_validation import Interval

    return [Interval(Integral, 1, _MAX_JOBS, closed="both"),
            Interval(Integral, -_MAX_JOBS, -1, closed="both"), None]
