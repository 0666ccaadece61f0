"""The shared base of skxmr's classifiers (XR-Linear, XR-Transformer, calibrated).

A subclass implements ``_fit(X, y, sample_weight)`` (on a scratch copy: see
``skxmr.utils._fit_state``), ``_predict_topk(X, k)`` and sets ``_targets`` (a
fitted :class:`~skxmr._targets.TargetEncoder`) and ``classes_``. The base gives
the rest the same way for every classifier: the transactional ``fit``,
``predict_topk``, ``decision_function`` (top-k CSR), ``predict`` (top-k or
thresholded label sets in the form ``y`` had at fit), ``score`` (precision@1),
the tags, and ``set_params``/``get_params`` that reach the parameters of a
default sub-estimator (``indexer__branching_factor`` with ``indexer=None``).
Every public method validates; the ``_``-methods trust.

The estimator-type tag is None, not "classifier" (see ``__sklearn_tags__``):
scikit-learn's ``check_cv`` (GridSearchCV, cross_val_score, ...) runs
``type_of_target(y)`` on the ``y`` of a classifier to choose StratifiedKFold,
and that raises on label lists (``[["a", "b"], ["c"]]``), the main form of
``y`` here. The classes stay ``ClassifierMixin`` subclasses with classifier
tags (``multi_label=True``).
"""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from skxmr._beam import scores_to_csr
from skxmr._targets import TargetEncoder
from skxmr.metrics import precision_at_k
from skxmr.utils._fit_state import TransactionalFitMixin
from skxmr.utils.validation import check_sample_weight, check_sparse_structure


class XMRClassifierBase(TransactionalFitMixin, ClassifierMixin, BaseEstimator):
    """Base of the extreme multilabel rankers: see the module docstring."""

    _private_fitted_state = ("_targets",)

    # Parameters whose default None stands for a sub-estimator: name -> class
    # (called without arguments). ``set_params(name__param=...)`` on a None
    # parameter sets it to a fresh default first (see set_params).
    _default_sub_estimators = {}

    # ------------------------------------------------------------ params
    def get_params(self, deep=True):
        """Get the parameters of this estimator.

        As scikit-learn's, and with ``deep=True`` a parameter left at None
        that stands for a default sub-estimator (``indexer=None``: a
        ``LabelIndexer()``) also lists that default's parameters
        (``indexer__branching_factor``, ...), which ``set_params`` and
        searches can set.

        Parameters
        ----------
        deep : bool, default=True
            Also the parameters of sub-estimators (``<name>__<param>``).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        if deep:
            for name, factory in self._default_sub_estimators.items():
                if params.get(name) is None:
                    params.update((f"{name}__{key}", value) for key, value in
                                  factory().get_params(deep=True).items())
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator.

        As scikit-learn's; in addition ``<name>__<param>`` works when ``<name>``
        is left at its default None that stands for a sub-estimator: the
        parameter is first set to that default (e.g. ``indexer=None`` becomes
        ``LabelIndexer()``, which fits the same tree), then its ``<param>``
        is set. So ``set_params(indexer__branching_factor=8)`` and a grid over
        ``xr__indexer__max_leaf_size`` in a ``Pipeline`` work on a default
        model.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``<name>__<param>`` for sub-estimators.

        Returns
        -------
        self : estimator instance
        """
        nested = {key.partition("__")[0] for key in params if "__" in key}
        for name in sorted(nested & set(self._default_sub_estimators)):
            value = params[name] if name in params else getattr(self, name, None)
            if value is None:
                params[name] = self._default_sub_estimators[name]()
            elif not hasattr(value, "set_params"):
                keys = sorted(key for key in params if key.startswith(name + "__"))
                raise ValueError(
                    f"cannot set {', '.join(keys)}: {name} is a "
                    f"{type(value).__name__}, which has no parameters.")
        return super().set_params(**params)

    # ----------------------------------------------------------------- fit
    def _transactional_fit(self, X, y, sample_weight=None):
        """Run ``_fit`` on a scratch copy and publish its state in one step."""
        work = self._scratch()
        work._fit(X, y, sample_weight)
        self._publish_from(work)
        return self

    def _check_X(self, X, *, reset):
        """THE validation boundary of feature rows: consistent sparse arrays,
        CSR or dense float32/float64, finite, the fitted width (``reset=False``).
        ``reset=True`` (in ``_fit``, on the scratch copy) records
        ``n_features_in_`` and ``feature_names_in_``."""
        check_sparse_structure(X)
        return validate_data(self, X, accept_sparse="csr",
                             dtype=[np.float32, np.float64], reset=reset,
                             ensure_min_samples=1 if reset else 0)

    # ------------------------------------------------------------- predict
    def predict_topk(self, X, k=None):
        """Top-k label indices and scores, each of shape (n_samples, k).

        Labels are column indices of ``y`` as seen at fit (``classes_[labels]``
        gives the original labels), best first; when fewer than ``k`` labels
        are found a row ends with label -1 and score 0. ``X`` with 0 rows gives
        arrays of 0 rows. Safe to call from several threads at once, also while
        another thread refits (the answer is then the old model's or the new
        one's).
        """
        check_is_fitted(self)
        return self._frozen()._predict_topk(X, k)

    def decision_function(self, X):
        """Top-k scores of each row, as a sparse matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : scipy.sparse.csr_matrix of shape (n_samples, n_labels)
            Row ``i`` holds the scores of its ``top_k`` best labels (in the
            columns of ``classes_``) and nothing else: a dense matrix of every
            label's score is what extreme multilabel ranking avoids.
        """
        check_is_fitted(self)
        model = self._frozen()
        labels, scores = model._predict_topk(X, None)
        return scores_to_csr(labels, scores, len(model.classes_))

    def _check_threshold(self, threshold):
        if threshold is not None:
            if (isinstance(threshold, bool) or not isinstance(threshold, Real)
                    or np.isnan(threshold)):
                raise ValueError(
                    f"threshold must be None or a number, got {threshold!r}.")
        return threshold

    def predict(self, X, threshold=None):
        """Top-k label sets, or the labels scoring at least ``threshold``, in the
        form ``y`` had at fit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        threshold : float, default=None
            None: every row gets its ``top_k`` best labels. A number: every row
            gets those of its ``top_k`` best labels whose score is at least
            ``threshold``, so rows get from 0 to ``top_k`` labels (see
            ``predict_topk`` for the scores themselves).

        Returns
        -------
        y_pred
            As ``y`` at fit: a sparse (CSR) or dense 0/1 indicator of shape
            (n_samples, n_labels) in the dtype of ``y``, a pandas DataFrame
            indicator with the columns of a DataFrame ``y`` (and the index of
            ``X`` when ``X`` is a pandas object), or a list of tuples of
            labels, best first. For 1-D ``y`` (one label per row): the best label
            of each row, an ndarray of shape (n_samples,) like ``classes_``; with
            a ``threshold``, an object ndarray holding the best label where its
            score is at least ``threshold`` and None where it is not.
        """
        threshold = self._check_threshold(threshold)
        check_is_fitted(self)
        model = self._frozen()
        labels, scores = model._predict_topk(X, None)
        return labels_to_y(model._targets, model.classes_, labels, scores, threshold,
                           index=_pandas_index(X))

    def score(self, X, y, sample_weight=None):
        """Precision@1 of the ranking against ``y`` (in the form ``y`` had at fit).

        With ``sample_weight``, the weighted mean over rows of whether the best
        label of the row is relevant.
        """
        check_is_fitted(self)
        model = self._frozen()
        Y = model._targets.transform(y)
        labels, scores = model._predict_topk(X, 1)
        if labels.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {labels.shape[0]} rows but y has {Y.shape[0]}.")
        if sample_weight is None:
            return precision_at_k(Y, (labels, scores), k=1)
        weights = check_sample_weight(sample_weight, Y.shape[0])
        best = labels[:, 0]
        hit = np.zeros(Y.shape[0])
        found = best >= 0
        hit[found] = np.asarray(sp.csr_matrix(Y)[np.flatnonzero(found),
                                                 best[found]]).ravel() != 0
        return float(np.average(hit, weights=weights))

    def __sklearn_tags__(self):
        """The scikit-learn tags: sparse input, multilabel classifier tags, and
        ``estimator_type=None``.

        Why not "classifier": scikit-learn's model selection (``check_cv`` in
        GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV,
        cross_val_score, cross_validate, learning_curve, validation_curve)
        calls ``type_of_target(y)`` on the ``y`` of a classifier, which raises
        on label lists, the main form of ``y`` of an extreme multilabel
        ranker. With no estimator type, an integer ``cv`` is a ``KFold`` for
        every form of ``y``. What changes with it: 1-D labels are not
        stratified by default (pass ``cv=StratifiedKFold(n)``, or shuffle,
        for data sorted by label); ``sklearn.base.is_classifier`` is False;
        scikit-learn's ``check_estimator`` does not run its classifier checks
        on its own (``skxmr.estimator_checks.check_estimator`` does).
        """
        tags = super().__sklearn_tags__()
        tags.estimator_type = None
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags

    # ------------------------------------ saved state (skxmr._persistence)
    def _get_target_state(self):
        """The form of ``y`` at fit (``TargetEncoder.get_state()``), the one
        piece of fitted state that is not a public attribute; for ``skxmr.save``."""
        return self._targets.get_state()

    def _set_target_state(self, state):
        """Restore :meth:`_get_target_state` output (and ``classes_``); for
        ``skxmr.load``. Raises ``ValueError`` when the state is inconsistent."""
        self._targets = TargetEncoder.from_state(state)
        self.classes_ = self._targets.classes_


def _pandas_index(X):
    """The index of a pandas ``X`` (DataFrame or Series), else None."""
    index = getattr(X, "index", None)
    return index if hasattr(X, "iloc") and len(index) == len(X) else None


def labels_to_y(targets, classes, labels, scores, threshold=None, index=None):
    """Top-k ``labels`` (column indices, -1 = none) as the ``y`` form of
    ``targets``; with a ``threshold``, labels scoring below it are dropped (for
    multiclass targets: the best label, or None). ``index``: the row index of
    a DataFrame answer (DataFrame targets only)."""
    n_labels = len(classes)
    if threshold is None:
        return targets.inverse_transform(labels, n_labels, index=index)
    below = scores < threshold
    if targets.kind == "multiclass":
        out = np.empty(labels.shape[0], dtype=object)
        if labels.shape[1]:
            out[:] = list(np.asarray(classes)[np.maximum(labels[:, 0], 0)])
            out[below[:, 0] | (labels[:, 0] < 0)] = None
        return out
    return targets.inverse_transform(np.where(below, -1, labels), n_labels,
                                     index=index)
