"""CalibratedXMRClassifier: probabilities for the top-k labels of a ranker.

An extreme multilabel ranker scores the few labels it retrieves per row (its
top-k); those scores rank well but are not probabilities. The calibrator turns
the score of a retrieved label into ``P(label relevant | retrieved with this
score)``, learnt on held-out rows: every (row, top-k label) pair of a held-out
row is one binary example, positive when the label is relevant for the row.
"""

from inspect import signature
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import MetaEstimatorMixin, _fit_context, clone
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold, check_cv
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _num_samples,
    check_consistent_length,
    check_is_fitted,
)

from skxmr._base import XMRClassifierBase
from skxmr._targets import TargetEncoder
from skxmr._xrlinear import XRLinearClassifier
from skxmr.utils.validation import check_sample_weight
from skxmr.metrics import _entry_hits

__all__ = ["CalibratedXMRClassifier"]

# Scores are clipped to [_EPS, 1 - _EPS] before the logit (path scores reach 0
# and exactly 1; float32 still resolves 1 - 1e-6).
_EPS = 1e-6


def _score_transform(estimator, scores):
    """How raw scores become the calibrator's input: "logit" (scores in [0, 1],
    e.g. multiplied l3-hinge or sigmoid path scores), "exp-logit" (summed
    log-sigmoid scores, i.e. log-probabilities) or "identity" (raw scores)."""
    post = getattr(estimator, "post_processor", None)
    if post == "log-sigmoid":
        return "exp-logit"
    if post == "noop":
        return "identity"
    if isinstance(post, str):
        return "logit"  # the multiplied ones: "lP-hinge", "sigmoid"
    # An estimator of unknown kind: its scores' range decides.
    if scores.size == 0 or (scores.min() >= 0 and scores.max() <= 1):
        return "logit"
    return "identity"


def _feature(scores, transform):
    scores = np.asarray(scores, dtype=np.float64)
    if transform == "identity":
        return scores
    if transform == "exp-logit":
        scores = np.exp(np.minimum(scores, 0.0))
    scores = np.clip(scores, _EPS, 1.0 - _EPS)
    return np.log(scores) - np.log1p(-scores)


class _SigmoidCalibrator:
    """Platt scaling: ``p = 1 / (1 + exp(-(slope * f + intercept)))``.

    Fitted by weighted maximum likelihood against Platt's smoothed targets
    (``(N+ + 1) / (N+ + 2)`` for positives, ``1 / (N- + 2)`` for negatives),
    with ``slope >= 0`` so that the map never reverses the ranking.
    """

    def fit(self, f, y, weights):
        w = weights / weights.sum()
        n_pos = float(np.count_nonzero(y))
        n_neg = float(y.size - n_pos)
        target = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

        def loss(params):
            z = params[0] * f + params[1]
            value = np.dot(w, np.logaddexp(0.0, z) - target * z)
            residual = w * (expit(z) - target)
            return value, np.array([np.dot(residual, f), residual.sum()])

        result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                          bounds=[(0.0, None), (None, None)])
        self.slope_, self.intercept_ = (float(v) for v in result.x)
        return self

    def predict(self, f):
        return expit(self.slope_ * f + self.intercept_)


class _IsotonicCalibrator:
    """Isotonic regression (non-decreasing, clipped to the fitted range)."""

    def fit(self, f, y, weights):
        self.isotonic_ = IsotonicRegression(
            y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
        ).fit(f, y.astype(np.float64), sample_weight=weights)
        return self

    def predict(self, f):
        return self.isotonic_.predict(f)


_CALIBRATORS = {"sigmoid": _SigmoidCalibrator, "isotonic": _IsotonicCalibrator}


def _pad_columns(array, width, fill):
    """``array`` (n, w) widened to (n, width) with ``fill`` on the right."""
    if array.shape[1] == width:
        return array
    padded = np.full((array.shape[0], width), fill, dtype=array.dtype)
    padded[:, :array.shape[1]] = array
    return padded


def _column_map(fold_classes, classes):
    """Column in ``classes`` of every label of ``fold_classes`` (a subset)."""
    fold_classes = np.asarray(fold_classes)
    if fold_classes.shape == classes.shape and np.array_equal(fold_classes, classes):
        return None
    try:
        pos = np.searchsorted(classes, fold_classes)
        pos = np.minimum(pos, classes.size - 1)
        if np.array_equal(classes[pos], fold_classes):
            return pos
    except TypeError:
        pass
    index = {label: j for j, label in enumerate(classes.tolist())}
    return np.array([index[label] for label in fold_classes.tolist()], dtype=np.int64)


def _fit_fold(estimator, X, y, sample_weight, train, test, k):
    """Fit a clone on ``train`` and rank the ``test`` rows: (test, classes, labels,
    scores)."""
    kwargs = {}
    if sample_weight is not None:
        kwargs["sample_weight"] = sample_weight[train]
    estimator.fit(_safe_indexing(X, train), _safe_indexing(y, train), **kwargs)
    labels, scores = estimator.predict_topk(_safe_indexing(X, test), k)
    return test, estimator.classes_, labels, scores


class CalibratedXMRClassifier(MetaEstimatorMixin, XMRClassifierBase):
    """Calibrated probabilities for the top-k labels of an extreme multilabel ranker.

    The ranker (by default ``XRLinearClassifier``) retrieves the ``top_k``
    labels of each row with a score; this meta-estimator maps a score to the
    probability that the label is relevant for the row, learnt on held-out
    rows, in the manner of scikit-learn's ``CalibratedClassifierCV``. Each
    (held-out row, top-k label) pair is one binary example (1 if the label is
    relevant for the row); one calibrator maps the score to ``P(relevant)``
    for all labels.

    Parameters
    ----------
    estimator : estimator instance, default=None
        The ranker: it needs ``fit(X, y)``, ``predict_topk(X, k)`` (label
        indices into ``classes_`` and scores, -1 padding) and ``classes_``.
        None: ``XRLinearClassifier()``. Wrap an already fitted ranker in
        ``sklearn.frozen.FrozenEstimator`` to calibrate it on the data passed
        to ``fit`` (which must then be held-out data, not its training rows).
    method : {"sigmoid", "isotonic"}, default="sigmoid"
        "sigmoid": Platt scaling, a logistic regression on the logit of the
        path score (``log(s / (1 - s))``, for path scores in ``[0, 1]``; on the
        raw score for ``post_processor="noop"``), with a non-negative slope:
        a strictly increasing map, so the ranking never changes. "isotonic":
        a non-decreasing step function (more flexible, needs more held-out
        pairs; it may tie labels that the ranker told apart).
    cv : int, cross-validation generator, iterable or None, default=3
        Where the held-out scores come from, when ``estimator`` is not a
        ``FrozenEstimator``: an int is the number of folds of a ``KFold`` with
        shuffling (seeded by ``random_state``); None is 5 folds; a splitter or
        an iterable of (train, test) index arrays is used as is. A clone of
        the ranker is fitted on each training part and ranks its test part;
        all these out-of-fold top-k pairs fit the calibrator. Then the ranker
        is refitted on all the data (``estimator_``): this is
        ``CalibratedClassifierCV(ensemble=False)``, with ``cv + 1`` fits. With
        a ``FrozenEstimator``, ``cv`` is not used: all of ``X, y`` calibrate.
    top_k : int, default=None
        Labels per row (the calibration pairs per held-out row, and the labels
        ``predict_proba``, ``predict_topk`` and ``predict`` return). None: the
        ranker's ``top_k`` (10 if it has none).
    n_jobs : int, default=None
        Folds fitted in parallel (joblib; None: 1). The ranker's own
        ``n_jobs`` sets the threads inside each fit: keep their product within
        the number of cores.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the folds when ``cv`` is an int or None, and
        the ranker when its own ``random_state`` is None; a ranker's own seed
        is kept.

    Attributes
    ----------
    estimator_ : estimator
        The ranker used for prediction: fitted on all the data, or the given
        ``FrozenEstimator``.
    calibrator_ : object
        The fitted score-to-probability map: for "sigmoid", ``slope_`` and
        ``intercept_`` (``p = 1 / (1 + exp(-(slope_ * f + intercept_)))``, with
        ``f`` the logit of the score); for "isotonic", ``isotonic_`` (an
        ``IsotonicRegression``).
    classes_ : ndarray of shape (n_labels,)
        The label of each column (the ranker's ``classes_``).
    n_calibration_pairs_ : int
        Number of (row, label) pairs the calibrator was fitted on.
    n_features_in_ : int
        Number of features seen during ``fit`` (when the ranker has it).

    See Also
    --------
    sklearn.calibration.CalibratedClassifierCV : The same idea for
        classifiers with a probability (or decision value) for every class.
    skxmr.metrics.expected_calibration_error : Evaluates ``predict_proba``.

    Notes
    -----
    The probabilities are conditional on retrieval: a label outside a row's
    top k has no probability (it is not stored in ``predict_proba``), and the
    relevant labels the ranker misses are not calibration examples. Rows
    without relevant labels give negative pairs only.

    The calibration is global (one map for all labels and ranks): in an
    extreme label space most labels have too few held-out pairs for a map of
    their own. Using the rank as a second feature was tried and did not
    improve the calibration on debian-deps and debian-debtags.

    ``predict_topk`` keeps the ranker's order (with "isotonic", labels the
    step function ties stay in the ranker's order; the sparse outputs, read
    by ``skxmr.metrics``, break such ties by label index).

    Examples
    --------
    >>> from skxmr import CalibratedXMRClassifier, XRLinearClassifier
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(1500, 300, 60, random_state=0)
    >>> model = CalibratedXMRClassifier(
    ...     XRLinearClassifier(top_k=5, random_state=0), random_state=0
    ... ).fit(X[:1000], Y[:1000])
    >>> proba = model.predict_proba(X[1000:])
    >>> proba.shape, int(proba.getnnz(axis=1).max())
    ((500, 60), 5)
    """

    # estimator=None is an XRLinearClassifier(): estimator__* reach it (_base).
    _default_sub_estimators = {"estimator": XRLinearClassifier}

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_topk"]), None],
        "method": [StrOptions({"sigmoid", "isotonic"})],
        "cv": ["cv_object"],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    _private_fitted_state = ("_targets", "_transform")

    def __init__(self, estimator=None, *, method="sigmoid", cv=3, top_k=None,
                 n_jobs=None, random_state=None):
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.top_k = top_k
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        """Fit the ranker and the calibrator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows (anything the ranker takes).
        y : sparse matrix, ndarray, sequence of label collections or 1-D labels
            The relevant labels, in any form the ranker takes; ``predict``
            answers in the same form.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights: passed to the ranker's ``fit`` (when it takes them)
            and weighting the row's calibration pairs.

        Returns
        -------
        self : CalibratedXMRClassifier
            The fitted meta-estimator. A fit that fails (or is interrupted)
            leaves it as it was.
        """
        if isinstance(self.cv, str) and self.cv == "prefit":
            raise ValueError(
                "cv='prefit' is not supported (scikit-learn removed it from "
                "CalibratedClassifierCV); wrap the fitted ranker instead: "
                "CalibratedXMRClassifier(FrozenEstimator(model)) from sklearn.frozen, "
                "and fit it on held-out data."
            )
        return self._fit_validated(X, y, sample_weight)

    @_fit_context(prefer_skip_nested_validation=False)
    def _fit_validated(self, X, y, sample_weight):
        return self._transactional_fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        """The fit, on a scratch copy (see ``XMRClassifierBase``)."""
        estimator = XRLinearClassifier() if self.estimator is None else self.estimator
        if (not isinstance(estimator, FrozenEstimator)
                and "random_state" in estimator.get_params(deep=False)
                and estimator.get_params(deep=False)["random_state"] is None
                and self.random_state is not None):
            # A ranker without a seed takes one from ours (reproducible fits).
            estimator = clone(estimator).set_params(
                random_state=check_random_state(self.random_state).randint(2**31 - 1))
        X, y = indexable(X, y)
        check_consistent_length(X, y)
        n_samples = _num_samples(X)
        weights = None
        if sample_weight is not None:
            weights = check_sample_weight(sample_weight, n_samples)
        k = self._k(estimator)

        if isinstance(estimator, FrozenEstimator):
            self.estimator_ = estimator.fit(X, y)  # checks it is fitted
            rows = np.arange(n_samples)
            labels, scores = self.estimator_.predict_topk(X, k)
        else:
            takes_weights = "sample_weight" in signature(estimator.fit).parameters
            if weights is not None and not takes_weights:
                raise ValueError(
                    f"{type(estimator).__name__}.fit does not take sample_weight."
                )
            fit_weights = weights if takes_weights else None
            self.estimator_ = clone(estimator)
            self.estimator_.fit(X, y, **({} if fit_weights is None
                                         else {"sample_weight": fit_weights}))
            folds = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_fold)(clone(estimator), X, y, fit_weights, train, test, k)
                for train, test in self._splitter().split(X)
            )
            classes = np.asarray(self.estimator_.classes_)
            rows, labels, scores = [], [], []
            for test, fold_classes, fold_labels, fold_scores in folds:
                columns = _column_map(fold_classes, classes)
                if columns is not None:
                    fold_labels = np.where(fold_labels >= 0,
                                           columns[np.maximum(fold_labels, 0)], -1)
                rows.append(np.asarray(test))
                labels.append(fold_labels)
                scores.append(fold_scores)
            # a fold that saw fewer classes returns fewer than k columns: pad
            # them with "no label" (-1), which the pairs below leave out
            width = max(part.shape[1] for part in labels)
            labels = [_pad_columns(part, width, -1) for part in labels]
            scores = [_pad_columns(np.asarray(part), width, 0) for part in scores]
            rows = np.concatenate(rows)
            labels = np.concatenate(labels)
            scores = np.concatenate(scores)

        self.classes_ = np.asarray(self.estimator_.classes_)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_

        self._targets, Y = TargetEncoder.with_classes(y, self.classes_)
        Y = sp.csr_matrix(Y)
        Y.sum_duplicates()
        Y.eliminate_zeros()
        Y.sort_indices()
        keep = labels >= 0
        pair_rows = np.broadcast_to(rows[:, None], labels.shape)[keep]
        pair_labels = labels[keep].astype(np.int64)
        pair_scores = np.asarray(scores)[keep]
        if pair_scores.size == 0:
            raise ValueError(
                "the ranker retrieved no label for the calibration rows; nothing "
                "to calibrate."
            )
        outcome = _entry_hits(Y, pair_rows, pair_labels)
        pair_weights = (np.ones(pair_rows.size) if weights is None
                        else weights[pair_rows])
        if not pair_weights.any():
            raise ValueError("the calibration rows all have sample_weight 0.")
        self._transform = _score_transform(self.estimator_, pair_scores)
        self.calibrator_ = _CALIBRATORS[self.method]().fit(
            _feature(pair_scores, self._transform), outcome, pair_weights)
        self.n_calibration_pairs_ = int(pair_scores.size)
        return self

    def add_labels(self, X, y, sample_weight=None, **kwargs):
        """Add new labels to the fitted ranker (its ``add_labels``, e.g.
        ``XRLinearClassifier.add_labels``; ``kwargs`` go to it) and to
        ``classes_``.

        The calibrator is kept: the scores of the new labels are mapped to
        probabilities as those of the old ones were (refit to calibrate on
        them). A call that fails leaves the model as it was.

        Returns
        -------
        self : CalibratedXMRClassifier
        """
        import copy

        check_is_fitted(self)
        ranker = self.estimator_
        if isinstance(ranker, FrozenEstimator) or not hasattr(ranker, "add_labels"):
            raise TypeError(f"the ranker ({type(ranker).__name__}) has no add_labels.")
        work = self._fitted_copy()
        work.estimator_ = copy.copy(ranker)  # its add_labels replaces its __dict__
        work.estimator_.add_labels(X, y, sample_weight, **kwargs)
        work.classes_ = np.asarray(work.estimator_.classes_)
        work._targets = work.estimator_._targets
        self._publish_from(work)
        return self

    def _k(self, estimator=None):
        if self.top_k is not None:
            return self.top_k
        estimator = self.estimator_ if estimator is None else estimator
        k = getattr(estimator, "top_k", None)
        return k if isinstance(k, Integral) and k >= 1 else 10

    def _splitter(self):
        if self.cv is None or isinstance(self.cv, Integral):
            n_splits = 5 if self.cv is None else self.cv
            return KFold(n_splits, shuffle=True, random_state=self.random_state)
        return check_cv(self.cv)

    def _predict_topk(self, X, k):
        """Top-k label indices and calibrated probabilities of a (frozen) fitted
        model, each (n_samples, k): column indices (``classes_[labels]`` gives
        the labels) in the ranker's order, best first; padding is label -1 with
        probability 0."""
        k = self._k() if k is None else k
        labels, scores = self.estimator_.predict_topk(X, k)
        proba = self.calibrator_.predict(_feature(scores.ravel(), self._transform))
        proba = proba.reshape(labels.shape).astype(np.float32)
        proba[labels < 0] = 0.0
        return labels, proba

    def predict_proba(self, X):
        """Calibrated probabilities of the top-k labels of each row.

        Returns
        -------
        proba : scipy.sparse.csr_matrix of shape (n_samples, n_labels)
            ``proba[i, j]`` is the probability that label ``classes_[j]`` is
            relevant for row ``i``; only the row's ``top_k`` labels are stored
            (float32; a stored value may be 0). Labels not stored were not
            retrieved and have no probability.
        """
        return self.decision_function(X)

    def decision_function(self, X):
        """The same CSR as ``predict_proba`` (the calibrated top-k); the ranker's
        raw scores are ``estimator_.decision_function(X)``."""
        return super().decision_function(X)

    def predict(self, X, threshold=None):
        """Label sets, in the form ``y`` had at fit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The rows.
        threshold : float in [0, 1], default=None
            None: the ``top_k`` labels of each row (as the ranker's
            ``predict``). A number: the top-k labels whose calibrated
            probability is at least ``threshold`` (possibly none).

        Returns
        -------
        y_pred
            As ``y`` at fit: a sparse (CSR) or dense indicator, or a list of
            tuples of labels (best first). For 1-D ``y`` (one label per row): the
            best label of each row; with a ``threshold``, an object ndarray
            holding the best label where its probability is at least
            ``threshold`` and None where it is not (as ``XRLinearClassifier``).
        """
        return super().predict(X, threshold=threshold)

    def _check_threshold(self, threshold):
        if threshold is not None:
            if (isinstance(threshold, bool) or not isinstance(threshold, Real)
                    or not 0 <= threshold <= 1):
                raise ValueError(
                    f"threshold must be a probability in [0, 1] or None, got "
                    f"{threshold!r}."
                )
        return threshold

    def score(self, X, y, sample_weight=None):
        """The ranker's ``score`` (for ``XRLinearClassifier``: precision@1 against
        ``y``, in the form ``y`` had at fit); the calibration does not change it."""
        check_is_fitted(self)
        return self._frozen().estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags
