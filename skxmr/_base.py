"""The shared base of skxmr's classifiers (XR-Linear, XR-Transformer, calibrated).

A subclass implements ``_fit(X, y, sample_weight)`` (on a scratch copy: see
``skxmr.utils._fit_state``), ``_predict_topk(X, k)`` and sets ``_targets`` (a
fitted :class:`~skxmr._targets.TargetEncoder`) and ``classes_``. The base gives
the rest the same way for every classifier: the transactional ``fit``,
``predict_topk``, ``decision_function`` (top-k CSR), ``predict`` (top-k or
thresholded label sets in the form ``y`` had at fit), ``score`` (precision@1)
and the tags. Every public method validates; the ``_``-methods trust.
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
            (n_samples, n_labels) in the dtype of ``y``, or a list of tuples of
            labels, best first. For 1-D ``y`` (one label per row): the best label
            of each row, an ndarray of shape (n_samples,) like ``classes_``; with
            a ``threshold``, an object ndarray holding the best label where its
            score is at least ``threshold`` and None where it is not.
        """
        threshold = self._check_threshold(threshold)
        check_is_fitted(self)
        model = self._frozen()
        labels, scores = model._predict_topk(X, None)
        return labels_to_y(model._targets, model.classes_, labels, scores, threshold)

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
        tags = super().__sklearn_tags__()
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


def labels_to_y(targets, classes, labels, scores, threshold=None):
    """Top-k ``labels`` (column indices, -1 = none) as the ``y`` form of
    ``targets``; with a ``threshold``, labels scoring below it are dropped (for
    multiclass targets: the best label, or None)."""
    n_labels = len(classes)
    if threshold is None:
        return targets.inverse_transform(labels, n_labels)
    below = scores < threshold
    if targets.kind == "multiclass":
        out = np.empty(labels.shape[0], dtype=object)
        if labels.shape[1]:
            out[:] = list(np.asarray(classes)[np.maximum(labels[:, 0], 0)])
            out[below[:, 0] | (labels[:, 0] < 0)] = None
        return out
    return targets.inverse_transform(np.where(below, -1, labels), n_labels)
