"""Batch prediction on Dask collections: lazy, one task per block of rows.

dask is optional: it is imported when ``predict_dask`` is called (install the
``skxmr[dask]`` extra).
"""

import uuid
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

__all__ = ["predict_dask"]

_METHODS = ("predict_topk", "decision_function", "predict")


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "predict_dask needs dask: pip install 'skxmr[dask]' (dask[array,"
            "dataframe] and distributed)."
        ) from exc
    return dask, da


def _topk_block(model, X, k):
    labels, scores = model.predict_topk(X, k=k)
    return labels, scores


def _decision_block(model, X):
    return model.decision_function(X)


def _predict_block(model, X):
    y = model.predict(X)
    # A DataFrame y at fit: the blocks are its values (columns: classes_).
    return y.to_numpy() if hasattr(y, "columns") else y


def _blocks(X, da):
    """The row blocks of ``X`` as delayed objects, with their row counts (NaN when
    unknown) and the number of features."""
    if hasattr(X, "to_delayed") and hasattr(X, "npartitions") and not isinstance(
            X, da.Array):  # dask DataFrame: one block per partition
        n_features = len(X.columns)
        parts = X.to_delayed()
        return list(parts), [np.nan] * len(parts), n_features
    if not isinstance(X, da.Array):
        raise TypeError(
            "X must be a dask.array.Array or a dask.dataframe.DataFrame, got "
            f"{type(X).__name__}; call the model's own methods on in-memory data."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # whole rows in every block
    blocks = X.to_delayed()[:, 0]
    return list(blocks), list(X.chunks[0]), X.shape[1]


@validate_params(
    {
        "model": [object],
        "X": [object],
        "method": [StrOptions(set(_METHODS))],
        "k": [Interval(Integral, 1, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def predict_dask(model, X, method="predict_topk", *, k=None):
    """Predict lazily on a Dask array or DataFrame, one task per block of rows.

    The fitted ``model`` enters the task graph once (as one key shared by all
    blocks); each block of rows is predicted by the model's own method, so the
    computed result equals the in-memory prediction. Use it with a
    ``dask.distributed`` client to spread batch prediction over a cluster.

    Parameters
    ----------
    model : fitted estimator
        An ``XRLinearClassifier`` (or any fitted estimator with the chosen
        method, e.g. a pipeline ending in one).
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, \
            n_features)
        The inputs. Arrays are cut by rows (column chunks are merged first);
        their blocks may be NumPy arrays or scipy sparse matrices (e.g.
        ``da.from_array(X_csr, chunks=(10_000, -1), asarray=False)``). A
        DataFrame gives one block per partition (row counts unknown until
        computed).
    method : {"predict_topk", "decision_function", "predict"}, \
            default="predict_topk"
        ``"predict_topk"``: a pair of dask arrays ``(labels, scores)`` of shape
        (n_samples, k); compute both with ``dask.compute(labels, scores)`` so
        that every block is searched once. ``"decision_function"``: a dask array
        whose blocks are CSR matrices (the top-k scores of each row).
        ``"predict"``: a dask array when the model predicts arrays (indicator or
        1-D ``y`` at fit; CSR blocks for a sparse indicator; the values, in
        the columns of ``classes_``, for a DataFrame ``y``), a ``dask.bag.Bag``
        of label tuples when ``y`` was label collections.
    k : int, default=None
        Labels per row for ``"predict_topk"`` (None: the model's ``top_k``).

    Returns
    -------
    result : dask collection or tuple of dask arrays
        Lazy; nothing is computed before ``.compute()`` / ``dask.compute``.

    Examples
    --------
    >>> import dask, dask.array as da
    >>> from skxmr import XRLinearClassifier, predict_dask
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(1000, 300, 50, random_state=0)
    >>> model = XRLinearClassifier(top_k=3, random_state=0).fit(X, Y)
    >>> X_dask = da.from_array(X, chunks=(250, -1), asarray=False)
    >>> labels, scores = predict_dask(model, X_dask)
    >>> labels_np, scores_np = dask.compute(labels, scores)
    >>> bool((labels_np == model.predict_topk(X)[0]).all())
    True
    """
    dask, da = _import_dask()
    if k is not None and method != "predict_topk":
        raise ValueError(f"k is only used with method='predict_topk', not {method!r}.")
    if not hasattr(model, method):
        raise TypeError(f"{type(model).__name__} has no method {method!r}.")
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    blocks, n_rows, _ = _blocks(X, da)
    token = uuid.uuid4().hex
    model_d = dask.delayed(model, name=f"skxmr-model-{token}")
    if method == "predict_topk":
        k = getattr(model, "top_k", None) if k is None else k
        if k is None:
            raise ValueError("k must be given for a model without top_k.")
        labels, scores = [], []
        for block, rows in zip(blocks, n_rows):
            pair = dask.delayed(_topk_block, nout=2, pure=True)(model_d, block, k)
            labels.append(da.from_delayed(pair[0], shape=(rows, k), dtype=np.intp))
            scores.append(da.from_delayed(pair[1], shape=(rows, k), dtype=np.float32))
        return _concat(da, labels, (0, k), np.intp), _concat(da, scores, (0, k),
                                                              np.float32)
    n_labels = len(model.classes_)
    if method == "decision_function":
        meta = sp.csr_matrix((0, n_labels), dtype=np.float32)
        parts = [da.from_delayed(dask.delayed(_decision_block, pure=True)(model_d, b),
                                 shape=(rows, n_labels), dtype=np.float32, meta=meta)
                 for b, rows in zip(blocks, n_rows)]
        return _concat(da, parts, (0, n_labels), np.float32, meta=meta)
    # predict: the form of y at fit
    sample = _predict_block(model, _empty_like_block(X, da))
    if isinstance(sample, list):  # label collections: a bag of tuples
        import dask.bag as db

        return db.from_delayed([dask.delayed(_predict_block, pure=True)(model_d, b)
                                for b in blocks])
    shape_tail = sample.shape[1:]
    meta = sample[:0] if sp.issparse(sample) else np.empty((0,) + shape_tail,
                                                           dtype=sample.dtype)
    parts = [da.from_delayed(dask.delayed(_predict_block, pure=True)(model_d, b),
                             shape=(rows,) + shape_tail, dtype=sample.dtype, meta=meta)
             for b, rows in zip(blocks, n_rows)]
    return _concat(da, parts, (0,) + shape_tail, sample.dtype, meta=meta)


def _concat(da, parts, empty_shape, dtype, meta=None):
    if not parts:
        return da.from_array(np.empty(empty_shape, dtype=dtype) if meta is None
                             else meta, chunks=empty_shape)
    return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def _empty_like_block(X, da):
    """Zero rows of the input's kind, to learn the output form of ``predict``."""
    if not isinstance(X, da.Array):
        return X._meta  # an empty pandas DataFrame with the columns
    meta = X._meta
    n_features = X.shape[1]
    if sp.issparse(meta):
        return sp.csr_matrix((0, n_features), dtype=meta.dtype)
    return np.empty((0, n_features), dtype=X.dtype)
