"""Ranking metrics for extreme multilabel problems, vectorised and sparse-aware.

Every metric takes

- ``y_true``: the relevant labels, a sparse or dense ``(n_samples, n_labels)``
  indicator (any nonzero entry counts as relevant);
- ``y_score``: the model's scores in one of three forms:

  * a sparse ``(n_samples, n_labels)`` matrix, e.g. the top-k CSR returned by
    ``decision_function``. Only *stored* entries are ranked (an explicitly stored
    negative score still ranks; an entry that is not stored is never retrieved);
  * a dense ``(n_samples, n_labels)`` array: every label is ranked;
  * the pair ``(indices, scores)`` of ``(n_samples, m)`` arrays returned by
    ``predict_topk``; index ``-1`` marks padding.

Ranking rule, the same everywhere: higher score first; equal scores are broken by the
smaller label index. Positions past the last retrieved label (``k`` larger than the
number of scored labels in a row) count as misses. Rows without any relevant label
score 0 in every per-row metric and stay in the average (the convention of the
Extreme Classification Repository's evaluation), so a data set with many empty rows
cannot look better than it is. NaN or infinite scores raise ``ValueError``.

Scores are averages over rows (propensity-scored precision: a ratio of sums, see its
docstring). Nothing here loops over rows in Python: the top-k selection is a compiled
kernel and the rest is array arithmetic, so a million rows take about a second.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skxmr._cython._topk import _csr_row_topk, _dense_row_topk
from skxmr._targets import frame_to_indicator, label_sets_to_indicator
from skxmr.utils import effective_n_threads

__all__ = [
    "coverage_at_k",
    "expected_calibration_error",
    "label_propensity",
    "make_topk_scorer",
    "ndcg_at_k",
    "precision_at_k",
    "psprecision_at_k",
    "recall_at_k",
    "topk_report",
]


# ---------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------


def _check_y_true(y_true):
    """Return a canonical CSR 0/1 indicator (int8 data, sorted, no duplicates)."""
    if sp.issparse(y_true):
        Y = sp.csr_matrix(y_true, copy=True)
        if Y.dtype.kind not in "biuf":
            raise ValueError(f"y_true must be numeric, got dtype {Y.dtype}.")
    else:
        arr = np.asarray(y_true)
        if arr.dtype.kind not in "biuf" or arr.ndim != 2:
            raise ValueError(
                "y_true must be a 2-D sparse or dense label indicator matrix of shape "
                f"(n_samples, n_labels); got an array of shape {arr.shape} and dtype "
                f"{arr.dtype}. Convert label lists with "
                "sklearn.preprocessing.MultiLabelBinarizer."
            )
        Y = sp.csr_matrix(arr)
    if Y.dtype.kind == "f" and not np.isfinite(Y.data).all():
        raise ValueError("y_true contains NaN or infinity.")
    Y.sum_duplicates()
    Y.eliminate_zeros()
    Y.data = np.ones_like(Y.data, dtype=np.int8)
    return Y


def _sparse_scores_to_csr(y_score, shape):
    S = sp.csr_matrix(y_score)
    if S.shape != shape:
        raise ValueError(
            f"y_score has shape {S.shape} but y_true has shape {shape}."
        )
    if S.dtype not in (np.float32, np.float64):
        S = S.astype(np.float64)
    if not S.has_canonical_format:
        S = S.copy()
        S.sum_duplicates()
    return S


def _pair_to_csr(indices, scores, shape):
    """Build a CSR score matrix from ``predict_topk``'s (indices, scores) pair."""
    indices = np.asarray(indices)
    scores = np.asarray(scores)
    if indices.ndim != 2 or indices.shape != scores.shape:
        raise ValueError(
            "y_score as a pair must be (indices, scores), two arrays of the same "
            f"shape (n_samples, m); got shapes {indices.shape} and {scores.shape}."
        )
    if indices.shape[0] != shape[0]:
        raise ValueError(
            f"y_score has {indices.shape[0]} rows but y_true has {shape[0]}."
        )
    if indices.dtype.kind not in "iu":
        raise ValueError(f"label indices must be integers, got dtype {indices.dtype}.")
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    keep = indices >= 0
    if np.any(indices[keep] >= shape[1]) or np.any(indices < -1):
        raise ValueError(
            f"label indices must lie in [0, {shape[1]}) (-1 marks padding)."
        )
    rows = np.broadcast_to(np.arange(shape[0])[:, None], indices.shape)[keep]
    cols = indices[keep].astype(np.int64)
    S = sp.csr_matrix((scores[keep], (rows, cols)), shape=shape)
    if S.nnz != cols.size:  # the COO->CSR conversion summed repeated labels
        raise ValueError("y_score lists the same label twice in a row.")
    return S


def _as_score_csr(y_score, shape, name):
    """CSR of scores given as an ``(indices, scores)`` pair or a sparse matrix;
    None for dense input."""
    if isinstance(y_score, tuple):
        if len(y_score) != 2:
            raise ValueError(f"{name} as a tuple must be the pair (indices, scores).")
        return _pair_to_csr(y_score[0], y_score[1], shape)
    if sp.issparse(y_score):
        return _sparse_scores_to_csr(y_score, shape)
    return None


def _rank_topk(y_score, k, shape):
    """Return ``(n_samples, k)`` label indices, best first, -1 where nothing ranks."""
    n_threads = effective_n_threads(None)
    S = _as_score_csr(y_score, shape, "y_score")
    if S is not None:
        if not np.isfinite(S.data).all():
            raise ValueError("y_score contains NaN or infinity.")
        out_idx = np.empty((shape[0], k), dtype=np.intp)
        out_val = np.empty((shape[0], k), dtype=S.dtype)
        _csr_row_topk(S.data, S.indices, S.indptr, out_val, out_idx, n_threads)
        return out_idx
    scores = np.asarray(y_score)
    if scores.ndim != 2 or scores.shape != shape:
        raise ValueError(
            f"y_score has shape {scores.shape} but y_true has shape {shape}."
        )
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    scores = np.ascontiguousarray(scores)
    if not np.isfinite(scores).all():
        raise ValueError("y_score contains NaN or infinity.")
    out_idx = np.empty((shape[0], k), dtype=np.intp)
    out_val = np.empty((shape[0], k), dtype=scores.dtype)
    _dense_row_topk(scores, out_val, out_idx, n_threads)
    return out_idx


def _hits(Y, ranked):
    """Boolean ``ranked.shape`` array: is ``ranked[i, j]`` a relevant label of row i."""
    n_labels = np.int64(Y.shape[1])
    row_of_entry = np.repeat(np.arange(Y.shape[0], dtype=np.int64), np.diff(Y.indptr))
    true_keys = row_of_entry * n_labels + Y.indices  # sorted: canonical CSR
    query = np.arange(ranked.shape[0], dtype=np.int64)[:, None] * n_labels + ranked
    pos = np.searchsorted(true_keys, query)
    pos = np.minimum(pos, max(true_keys.size - 1, 0))
    if true_keys.size == 0:
        return np.zeros(ranked.shape, dtype=bool)
    return (true_keys[pos] == query) & (ranked >= 0)


def _prepare(y_true, y_score, k):
    Y = _check_y_true(y_true)
    ranked = _rank_topk(y_score, k, Y.shape)
    return Y, ranked, _hits(Y, ranked)


_SHARED_DOC = {
    "{y_true_y_score}": """y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Relevant labels as an indicator matrix.
    y_score : {array-like, sparse matrix} of shape (n_samples, n_labels) or tuple
        Scores, or the ``(indices, scores)`` pair of ``predict_topk``.""",
    "{k}": """k : int, default=5
        Cut-off rank.""",
}
_SHARED_DOC["{y_true_y_score_k}"] = (
    _SHARED_DOC["{y_true_y_score}"] + "\n    " + _SHARED_DOC["{k}"]
)


def _fill_doc(func):
    """Put the parameter descriptions shared by the metrics into a docstring."""
    for key, text in _SHARED_DOC.items():
        func.__doc__ = func.__doc__.replace(key, text)
    return func


_METRIC_PARAMS = {
    "y_true": ["array-like", "sparse matrix"],
    "y_score": ["array-like", "sparse matrix", tuple],
    "k": [Interval(Integral, 1, None, closed="left")],
}


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def _dcg_discount(k):
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


# Each ``_metric(Y, ranked, hits, k, ...)`` works on a prepared ranking, so that
# ``topk_report`` ranks once for all metrics and cut-offs.


def _precision(Y, ranked, hits, k):
    if hits.shape[0] == 0:
        return 0.0
    return float(hits[:, :k].sum() / (k * hits.shape[0]))


def _recall(Y, ranked, hits, k):
    if hits.shape[0] == 0:
        return 0.0
    n_true = np.diff(Y.indptr)
    found = hits[:, :k].sum(axis=1)
    per_row = np.divide(found, n_true, out=np.zeros(len(n_true)), where=n_true > 0)
    return float(per_row.mean())


def _ndcg(Y, ranked, hits, k):
    if hits.shape[0] == 0:
        return 0.0
    discount = _dcg_discount(k)
    dcg = hits[:, :k] @ discount
    n_ideal = np.minimum(np.diff(Y.indptr), k)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[n_ideal]
    per_row = np.divide(dcg, ideal, out=np.zeros(len(dcg)), where=ideal > 0)
    return float(per_row.mean())


def _check_propensity(propensity, Y, A, B):
    if propensity is None:
        return label_propensity(Y, A=A, B=B)
    propensity = np.asarray(propensity, dtype=np.float64)
    if propensity.shape != (Y.shape[1],):
        raise ValueError(
            f"propensity must have shape ({Y.shape[1]},), got {propensity.shape}."
        )
    if not np.all(np.isfinite(propensity)) or np.any(propensity <= 0):
        raise ValueError("propensity must be finite and positive.")
    return propensity


def _psprecision(Y, ranked, hits, k, propensity, normalize):
    if hits.shape[0] == 0:
        return 0.0
    inv = 1.0 / propensity
    ranked, hits = ranked[:, :k], hits[:, :k]
    gained = float(np.where(hits, inv[np.maximum(ranked, 0)], 0.0).sum())
    if not normalize:
        return gained / (k * hits.shape[0])
    # Best ranking per row: its relevant labels by decreasing inverse propensity.
    weights = sp.csr_matrix((inv[Y.indices], Y.indices, Y.indptr), shape=Y.shape)
    best_idx = _rank_topk(weights, k, Y.shape)
    best = float(np.where(best_idx >= 0, inv[np.maximum(best_idx, 0)], 0.0).sum())
    return gained / best if best > 0 else 0.0


def _coverage(Y, ranked, hits, k):
    n_relevant = np.unique(Y.indices).size
    if n_relevant == 0:
        return 0.0
    return float(np.unique(ranked[:, :k][hits[:, :k]]).size / n_relevant)


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
@_fill_doc
def precision_at_k(y_true, y_score, k=5):
    """Precision at k: the share of the top-k ranked labels that are relevant.

    ``P@k = mean_i |top_k(i) ∩ y_i| / k`` (the denominator is always ``k``).

    Parameters
    ----------
    {y_true_y_score_k}

    Returns
    -------
    float
        Mean over rows; see the module docstring for ties and empty rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import precision_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]])
    >>> float(precision_at_k(y_true, y_score, k=1))
    1.0
    >>> float(precision_at_k(y_true, y_score, k=2))
    0.5
    """
    return _precision(*_prepare(y_true, y_score, k), k)


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
@_fill_doc
def recall_at_k(y_true, y_score, k=5):
    """Recall at k: the share of a row's relevant labels found in its top k.

    ``R@k = mean_i |top_k(i) ∩ y_i| / |y_i|``; rows without relevant labels count 0.

    Parameters
    ----------
    {y_true_y_score_k}

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import recall_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> y_score = np.array([[0.9, 0.8, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0]])
    >>> float(recall_at_k(y_true, y_score, k=1))
    0.75
    """
    return _recall(*_prepare(y_true, y_score, k), k)


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
@_fill_doc
def ndcg_at_k(y_true, y_score, k=5):
    """Normalised discounted cumulative gain at k, with binary relevance.

    ``DCG@k(i) = sum_{j<=k} rel_ij / log2(j + 1)``, divided by the best DCG@k
    attainable for row i (its ``min(k, |y_i|)`` relevant labels ranked first).
    Rows without relevant labels count 0.

    Parameters
    ----------
    {y_true_y_score_k}

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import ndcg_at_k
    >>> y_true = np.array([[0, 1]])
    >>> y_score = np.array([[0.9, 0.1]])
    >>> round(float(ndcg_at_k(y_true, y_score, k=2)), 4)
    0.6309
    """
    return _ndcg(*_prepare(y_true, y_score, k), k)


@validate_params(
    {
        "Y": ["array-like", "sparse matrix"],
        "A": [Interval(Real, 0, None, closed="neither")],
        "B": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def label_propensity(Y, A=0.55, B=1.5):
    """Label propensities of Jain, Prabhu and Varma (KDD 2016).

    ``p_l = 1 / (1 + C (n_l + B)^-A)`` with ``C = (log N - 1) (B + 1)^A``, where
    ``n_l`` is the number of rows with label l and ``N`` the number of rows. Rare
    labels get small propensities (large inverse propensities). The published
    defaults are ``A=0.55, B=1.5`` (Amazon: 0.6/2.6, Wikipedia: 0.5/0.4).

    Parameters
    ----------
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Training label indicator matrix.
    A, B : float
        Dataset constants of the model.

    Returns
    -------
    propensity : ndarray of shape (n_labels,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import label_propensity
    >>> Y = np.array([[1, 0], [1, 0], [1, 1], [1, 0], [1, 0], [1, 0], [1, 0], [1, 0]])
    >>> p = label_propensity(Y)
    >>> bool(p[0] > p[1])
    True
    """
    Yc = _check_y_true(Y)
    n_samples = Yc.shape[0]
    if n_samples < 1:
        raise ValueError("label_propensity needs at least one row.")
    n_per_label = np.bincount(Yc.indices, minlength=Yc.shape[1]).astype(np.float64)
    C = (np.log(n_samples) - 1.0) * (B + 1.0) ** A
    return 1.0 / (1.0 + C * (n_per_label + B) ** (-A))


@validate_params(
    {
        **_METRIC_PARAMS,
        "propensity": ["array-like", None],
        "A": [Interval(Real, 0, None, closed="neither")],
        "B": [Interval(Real, 0, None, closed="left")],
        "normalize": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
@_fill_doc
def psprecision_at_k(y_true, y_score, k=5, *, propensity=None, A=0.55, B=1.5,
                     normalize=True):
    """Propensity-scored precision at k (Jain, Prabhu and Varma, KDD 2016).

    A hit on label l counts ``1 / p_l``, so finding rare labels weighs more:
    ``PSP@k = sum_i sum_{j<=k} rel_ij / p_{l_ij}  /  (k * n_samples)``.
    With ``normalize=True`` (default, the figure the Extreme Classification
    Repository reports) this is divided by the same sum for the best possible ranking
    (each row's relevant labels ordered by ``1 / p``), so a perfect ranker scores 1.

    Parameters
    ----------
    {y_true_y_score_k}
    propensity : array-like of shape (n_labels,), default=None
        Label propensities, normally ``label_propensity(Y_train)``. When None they
        are computed from ``y_true`` itself (convenient, but test-set counts).
    A, B : float, default=0.55, 1.5
        Constants passed to :func:`label_propensity` when ``propensity`` is None.
    normalize : bool, default=True
        Divide by the best attainable value.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import psprecision_at_k
    >>> y_true = np.array([[1, 1], [1, 0]])
    >>> y_score = np.array([[0.2, 0.9], [0.9, 0.1]])
    >>> float(psprecision_at_k(y_true, y_score, k=1, propensity=[0.5, 0.25]))
    1.0
    """
    Y, ranked, hits = _prepare(y_true, y_score, k)
    propensity = _check_propensity(propensity, Y, A, B)
    return _psprecision(Y, ranked, hits, k, propensity, normalize)


@validate_params(_METRIC_PARAMS, prefer_skip_nested_validation=True)
@_fill_doc
def coverage_at_k(y_true, y_score, k=5):
    """Label coverage at k: the share of labels found at least once.

    The number of distinct labels that appear, correctly, in some row's top k,
    divided by the number of distinct labels relevant to at least one row. A
    popularity ranker covers few labels; a ranker serving the long tail covers many.
    Returns 0 when no row has a relevant label.

    Parameters
    ----------
    {y_true_y_score_k}

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import coverage_at_k
    >>> y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    >>> y_score = np.array([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.1, 0.0, 0.9]])
    >>> round(float(coverage_at_k(y_true, y_score, k=1)), 4)
    0.6667
    """
    return _coverage(*_prepare(y_true, y_score, k), k)


@_fill_doc
def topk_report(y_true, y_score, ks=(1, 3, 5), *, propensity=None):
    """All metrics at several cut-offs from one ranking pass.

    Parameters
    ----------
    {y_true_y_score}
    ks : sequence of int, default=(1, 3, 5)
        Cut-offs.
    propensity : array-like of shape (n_labels,), default=None
        For ``PSP@k``; computed from ``y_true`` when None.

    Returns
    -------
    dict
        ``{"P@1": ..., "R@1": ..., "nDCG@1": ..., "PSP@1": ..., "cov@1": ..., ...}``.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr.metrics import topk_report
    >>> report = topk_report(np.eye(3), np.eye(3), ks=(1,))
    >>> report["P@1"], report["nDCG@1"]
    (1.0, 1.0)
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError("ks must be a non-empty sequence of positive ints.")
    Y, ranked, hits = _prepare(y_true, y_score, ks[-1])
    propensity = _check_propensity(propensity, Y, 0.55, 1.5)
    report = {}
    for k in ks:
        # The top k of a top-k_max ranking is the top-k ranking.
        report[f"P@{k}"] = _precision(Y, ranked, hits, k)
        report[f"R@{k}"] = _recall(Y, ranked, hits, k)
        report[f"nDCG@{k}"] = _ndcg(Y, ranked, hits, k)
        report[f"PSP@{k}"] = _psprecision(Y, ranked, hits, k, propensity, True)
        report[f"cov@{k}"] = _coverage(Y, ranked, hits, k)
    return report


# ---------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------

_SCORER_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "psprecision": psprecision_at_k,
    "coverage": coverage_at_k,
}


def _y_as_indicator(y, estimator):
    """Turn the ``y`` a search passes to a scorer into the estimator's indicator.

    Sparse matrices and 2-D numeric arrays are indicators already; anything else is
    label sets (or 1-D multiclass labels) mapped to columns through ``classes_``.
    """
    if sp.issparse(y) or (
        isinstance(y, np.ndarray) and y.ndim == 2 and y.dtype != object
    ):
        return y
    classes = getattr(estimator, "classes_", None)
    if getattr(y, "ndim", 1) == 2 and hasattr(y, "columns") and classes is not None:
        return frame_to_indicator(y, classes)  # a DataFrame: columns by name
    if classes is None:
        raise ValueError(
            "y is not an indicator matrix and the estimator has no classes_ to "
            "map its labels to columns."
        )
    return label_sets_to_indicator(y, classes)


class _TopKScorer:
    """Callable ``scorer(estimator, X, y)`` for ``GridSearchCV(scoring=...)``."""

    def __init__(self, metric, k, kwargs):
        self.metric = metric
        self.k = k
        self.kwargs = kwargs

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("top-k scorers do not support sample_weight.")
        scores = estimator.decision_function(X)
        Y = _y_as_indicator(y, estimator)
        return _SCORER_METRICS[self.metric](Y, scores, self.k, **self.kwargs)

    def __repr__(self):
        extra = "".join(f", {key}={value!r}" for key, value in self.kwargs.items())
        return f"make_topk_scorer({self.metric!r}, k={self.k}{extra})"


@validate_params(
    {
        "metric": [StrOptions(set(_SCORER_METRICS))],
        "k": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def make_topk_scorer(metric="precision", k=5, **kwargs):
    """A scorer for model selection from a top-k metric.

    The scorer calls ``estimator.decision_function(X)`` (sparse top-k scores or a
    dense score matrix) and compares it with ``y``: an indicator matrix, or label
    lists / 1-D multiclass labels mapped to columns through ``estimator.classes_``
    (labels the estimator never saw at fit time have no column and are ignored).

    Parameters
    ----------
    metric : {"precision", "recall", "ndcg", "psprecision", "coverage"}
        Which metric; higher is better for all of them.
    k : int, default=5
        Cut-off rank.
    **kwargs
        Passed to the metric (e.g. ``propensity=`` for ``"psprecision"``).

    Returns
    -------
    callable
        ``scorer(estimator, X, y) -> float``, usable as ``scoring=`` in
        ``GridSearchCV`` and ``cross_val_score``.

    Examples
    --------
    >>> from skxmr.metrics import make_topk_scorer
    >>> make_topk_scorer("precision", k=3)
    make_topk_scorer('precision', k=3)
    """
    return _TopKScorer(metric, k, kwargs)


# ---------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------


@validate_params(
    {
        "y_true": ["array-like", "sparse matrix"],
        "y_prob": ["array-like", "sparse matrix", tuple],
        "n_bins": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def expected_calibration_error(y_true, y_prob, n_bins=15):
    """Expected calibration error of (sparse, top-k) label probabilities.

    Every scored ``(row, label)`` entry is one binary prediction: probability
    ``p``, outcome 1 when the label is relevant for the row. The entries are
    put in ``n_bins`` equal-width bins of ``[0, 1]`` by ``p`` (the last bin
    includes 1) and::

        ECE = sum over bins b of (n_b / N) * |mean(p in b) - mean(outcome in b)|

    N being the number of entries. 0 is perfect calibration. Only the scored
    entries count: for the top-k CSR of ``predict_proba`` this is the
    calibration of the top-k candidates (the labels left out have no
    probability), and a stored 0 still counts.

    Parameters
    ----------
    y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Relevant labels as an indicator matrix.
    y_prob : {array-like, sparse matrix} of shape (n_samples, n_labels) or tuple
        Probabilities in ``[0, 1]``: a sparse matrix (its stored entries, e.g.
        ``predict_proba`` of ``skxmr.CalibratedXMRClassifier``), a dense array
        (every entry), or the ``(indices, probabilities)`` pair of
        ``predict_topk`` (index -1 marks padding, skipped).
    n_bins : int, default=15
        Number of equal-width bins.

    Returns
    -------
    float
        The expected calibration error, in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from skxmr.metrics import expected_calibration_error
    >>> y_true = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 1]]))
    >>> y_prob = sp.csr_matrix(np.array([[0.9, 0.2, 0.0], [0.0, 0.7, 0.6]]))
    >>> round(expected_calibration_error(y_true, y_prob, n_bins=10), 3)  # 4 entries
    0.25
    """
    Y = _check_y_true(y_true)
    rows, cols, prob = _scored_entries(y_prob, Y.shape)
    if prob.size == 0:
        raise ValueError("y_prob has no scored entry; nothing to evaluate.")
    if not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
        raise ValueError(
            "y_prob must hold probabilities in [0, 1] (e.g. predict_proba of a "
            f"calibrated model); its values range over [{prob.min():g}, "
            f"{prob.max():g}]."
        )
    outcome = _entry_hits(Y, rows, cols).astype(np.float64)
    bins = np.minimum((prob * n_bins).astype(np.int64), n_bins - 1)
    gap = (np.bincount(bins, weights=prob, minlength=n_bins)
           - np.bincount(bins, weights=outcome, minlength=n_bins))
    return float(np.abs(gap).sum() / prob.size)


def _scored_entries(y_prob, shape):
    """Rows, columns and values (float64) of the scored entries of ``y_prob``."""
    S = _as_score_csr(y_prob, shape, "y_prob")
    if S is None:
        dense = np.asarray(y_prob)
        if dense.ndim != 2 or dense.shape != shape:
            raise ValueError(
                f"y_prob has shape {dense.shape} but y_true has shape {shape}."
            )
        if dense.dtype.kind not in "biuf":
            raise ValueError(f"y_prob must be numeric, got dtype {dense.dtype}.")
        rows, cols = np.indices(shape).reshape(2, -1)
        return rows, cols, dense.astype(np.float64).ravel()
    rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(S.indptr))
    return rows, S.indices.astype(np.int64), S.data.astype(np.float64)


def _entry_hits(Y, rows, cols):
    """Boolean array: is label ``cols[j]`` relevant for row ``rows[j]`` in ``Y``
    (a canonical CSR indicator)."""
    if Y.nnz == 0:
        return np.zeros(rows.shape, dtype=bool)
    n_labels = np.int64(Y.shape[1])
    true_keys = (np.repeat(np.arange(Y.shape[0], dtype=np.int64), np.diff(Y.indptr))
                 * n_labels + Y.indices)
    query = rows.astype(np.int64) * n_labels + cols
    pos = np.minimum(np.searchsorted(true_keys, query), true_keys.size - 1)
    return true_keys[pos] == query
