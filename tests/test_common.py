"""The scikit-learn estimator checks on every public estimator, and the parts of
the contract they cannot see: what the expected failures stand for, sample_weight
as repeated rows, predict on 0 rows, predict with a score threshold, column-vector
and continuous targets, feature names, n_iter_."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.base import ClassifierMixin, clone, is_classifier
from sklearn.utils.estimator_checks import (
    estimator_checks_generator,
    parametrize_with_checks,
)

from skxmr import CalibratedXMRClassifier, LabelIndexer, XRLinearClassifier
from skxmr.datasets import make_xmc_classification
from skxmr.estimator_checks import (
    _check_name,
    classifier_checks,
    expected_failed_checks,
)
from skxmr.estimator_checks import check_estimator as skxmr_check_estimator

# The expected failures, with their reasons, are published by the package
# (skxmr.estimator_checks.expected_failed_checks); each one is a consequence of
# what the estimator is, not of a defect, and the tests below check the
# behaviour that replaces the contract.
_ESTIMATORS = [LabelIndexer(), XRLinearClassifier(), CalibratedXMRClassifier(),
               XRLinearClassifier(n_estimators=2)]


@parametrize_with_checks(_ESTIMATORS, expected_failed_checks=expected_failed_checks,
                         xfail_strict=True)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # Labels without positive rows in the checks' tiny data sets.
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        check(estimator)


def _classifier_check_params():
    """The classifier checks (scikit-learn skips them for estimator_type=None),
    each expected failure marked strict xfail with its published reason."""
    for estimator in _ESTIMATORS[1:]:
        expected = expected_failed_checks(estimator)
        for est, check in classifier_checks(estimator):
            name = check.func.__name__
            extra = "".join(f"-{k}={v}" for k, v in check.keywords.items())
            marks = ([pytest.mark.xfail(reason=expected[name], strict=True)]
                     if name in expected else [])
            yield pytest.param(est, check, marks=marks,
                               id=f"{type(est).__name__}-{name}{extra}")


@pytest.mark.parametrize("estimator, check", list(_classifier_check_params()))
def test_sklearn_classifier_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        check(clone(estimator))


def test_classifier_checks_are_the_ones_sklearn_skips():
    # With estimator_type=None scikit-learn's own generator leaves them out, so
    # test_sklearn_classifier_checks is what runs them.
    names = {_check_name(c) for _, c in estimator_checks_generator(
        XRLinearClassifier())}
    ours = {_check_name(c) for _, c in classifier_checks(XRLinearClassifier())}
    assert "check_classifiers_train" in ours and "check_classifiers_one_label" in ours
    assert not ours & names


@pytest.mark.parametrize("estimator", _ESTIMATORS, ids=lambda e: type(e).__name__)
def test_published_check_estimator_holds(estimator):
    # What a user runs to see the compatibility claim: every check, the
    # classifier ones included, fails exactly when it is expected to
    # (check_estimator raises otherwise).
    results = skxmr_check_estimator(estimator)
    by_name = {}
    for result in results:
        by_name.setdefault(result["check_name"], set()).add(result["status"])
    expected = expected_failed_checks(estimator)
    assert set(expected) <= set(by_name)
    if isinstance(estimator, LabelIndexer):
        assert "check_classifiers_train" not in by_name
        return
    assert by_name["check_classifiers_train"] == {"failed"}
    assert by_name["check_classifiers_one_label"] == {"passed"}
    assert by_name["check_fit2d_1sample"] <= {"passed"}
    with pytest.raises(ValueError, match="on_fail"):
        skxmr_check_estimator(XRLinearClassifier(), on_fail="warn")


def test_published_check_estimator_reports_wrong_expectations(monkeypatch):
    import skxmr.estimator_checks as module

    monkeypatch.setattr(module, "expected_failed_checks",
                        lambda est: {"check_classifiers_one_label": "not really"})
    with pytest.raises(AssertionError, match="check_classifiers_one_label"):
        module.check_estimator(XRLinearClassifier())


def test_tags():
    tags = XRLinearClassifier().__sklearn_tags__()
    # Not "classifier": model selection would run type_of_target on label
    # lists and raise (test_model_selection.py); classifier tags stay.
    assert tags.estimator_type is None and not is_classifier(XRLinearClassifier())
    assert isinstance(XRLinearClassifier(), ClassifierMixin)
    assert tags.classifier_tags is not None
    assert tags.input_tags.sparse and tags.classifier_tags.multi_label
    assert tags.target_tags.required and not tags.target_tags.multi_output
    tags = LabelIndexer().__sklearn_tags__()
    assert tags.input_tags.sparse and tags.target_tags.required
    assert tags.transformer_tags.preserves_dtype == []
    assert not LabelIndexer("precomputed").__sklearn_tags__().target_tags.required


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(300, 400, 40, random_state=0)
    return X, Y


@pytest.fixture(scope="module")
def model(data):
    X, Y = data
    return XRLinearClassifier(top_k=5, random_state=0).fit(X, Y)


def _names(Y):
    return [[f"t{j:02d}" for j in row.indices] for row in Y]


# ------------------------------------------------- sample_weight = repeated rows
@pytest.mark.parametrize("representation", ["pifa", "pii"])
def test_indexer_sample_weight_is_repeated_rows(data, representation):
    X, Y = data
    weights = np.random.RandomState(0).randint(0, 4, size=X.shape[0])
    rows = np.repeat(np.arange(X.shape[0]), weights)
    params = dict(branching_factor=2, max_leaf_size=4, random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        repeated = LabelIndexer(representation, **params).fit(X[rows], Y[rows])
        weighted = LabelIndexer(representation, **params).fit(X, Y,
                                                              sample_weight=weights)
        plain = LabelIndexer(representation, **params).fit(X, Y)
    assert repeated.tree_.equals(weighted.tree_)
    assert not plain.tree_.equals(weighted.tree_)


def test_sample_weight_is_repeated_rows(data):
    X, Y = data
    weights = np.random.RandomState(0).randint(0, 4, size=X.shape[0])
    rows = np.repeat(np.arange(X.shape[0]), weights)
    params = dict(indexer=LabelIndexer(branching_factor=2, max_leaf_size=4),
                  tol=1e-5, threshold=0, max_iter=2000, top_k=5, random_state=0)
    repeated = XRLinearClassifier(**params).fit(X[rows], Y[rows])
    weighted = XRLinearClassifier(**params).fit(X, Y, sample_weight=weights)
    assert repeated.tree_.equals(weighted.tree_) and repeated.tree_.n_levels > 2
    a, b = repeated.decision_function(X), weighted.decision_function(X)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, atol=1e-4)


def test_indexer_sample_weight_errors(data):
    X, Y = data
    with pytest.raises(ValueError, match="non-negative"):
        LabelIndexer().fit(X, Y, sample_weight=-np.ones(X.shape[0]))
    with pytest.raises(ValueError, match=r"expected \(300,\)"):
        LabelIndexer().fit(X, Y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="precomputed"):
        LabelIndexer("precomputed").fit(np.eye(3), sample_weight=np.ones(3))


def test_score_with_sample_weight(data, model):
    X, Y = data
    best = model.predict_topk(X, k=1)[0][:, 0]
    hit = Y[np.arange(X.shape[0]), best].A1 != 0
    assert model.score(X, Y) == pytest.approx(hit.mean())
    weights = np.arange(X.shape[0]) % 3
    assert model.score(X, Y, sample_weight=weights) == pytest.approx(
        np.average(hit, weights=weights))
    with pytest.raises(ValueError, match="non-negative"):
        model.score(X, Y, sample_weight=-np.ones(X.shape[0]))


# --------------------------------------------------------------- 0 rows in
@pytest.mark.parametrize("form", ["sparse", "dense", "sets", "multiclass"])
def test_predict_on_zero_rows(data, form):
    X, Y = data
    y = {"sparse": Y, "dense": Y.toarray().astype(np.int8), "sets": _names(Y),
         "multiclass": [f"t{row.indices[0]:02d}" for row in Y]}[form]
    model = XRLinearClassifier(top_k=3, random_state=0).fit(X, y)
    n_labels = len(model.classes_)
    for X0 in (X[:0], X[:0].toarray(), np.empty((0, X.shape[1]), dtype=np.float32)):
        labels, scores = model.predict_topk(X0)
        assert labels.shape == scores.shape == (0, 3)
        assert labels.dtype == np.int64 and scores.dtype == np.float32
        D = model.decision_function(X0)
        assert sp.issparse(D) and D.shape == (0, n_labels)
        for threshold in (None, 0.5):
            pred = model.predict(X0, threshold=threshold)
            if form == "sparse":
                assert sp.issparse(pred) and pred.shape == (0, n_labels)
            elif form == "dense":
                assert pred.shape == (0, n_labels) and pred.dtype == np.int8
            elif form == "sets":
                assert pred == []
            else:
                assert isinstance(pred, np.ndarray) and pred.shape == (0,)
    with pytest.raises(ValueError, match="0 sample"):
        XRLinearClassifier().fit(X[:0], Y[:0])  # but nothing to learn from 0 rows
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:0, :10])  # the width is still checked


# --------------------------------------------------------- predict(threshold=)
def _expected_by_threshold(labels, scores, t):
    return [[int(j) for j, s in zip(lr, sr) if j >= 0 and s >= t]
            for lr, sr in zip(labels, scores)]


@pytest.mark.parametrize("form", ["sparse", "dense", "sets"])
def test_predict_threshold_keeps_topk_labels_scoring_at_least_t(data, form):
    X, Y = data
    y = {"sparse": Y, "dense": Y.toarray().astype(bool), "sets": _names(Y)}[form]
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X, y)
    labels, scores = model.predict_topk(X)
    t = float(np.median(scores[:, 1]))  # some rows keep 0, 1, ... 5 labels
    expected = _expected_by_threshold(labels, scores, t)
    sizes = {len(e) for e in expected}
    assert 0 in sizes and 1 in sizes and max(sizes) >= 3
    pred = model.predict(X, threshold=t)
    if form == "sets":
        assert isinstance(pred, list) and all(isinstance(p, tuple) for p in pred)
        assert pred == [tuple(model.classes_[e]) for e in expected]  # best first
    else:
        P = sp.csr_matrix(pred)
        assert [sorted(row.indices.tolist()) for row in P] == [sorted(e)
                                                               for e in expected]
        if form == "dense":
            assert isinstance(pred, np.ndarray) and pred.dtype == bool
        else:
            assert sp.issparse(pred) and pred.dtype == Y.dtype
    # Extremes: every top-k label, or none.
    everything = model.predict(X, threshold=-np.inf)
    top_k = model.predict(X)
    if form == "sets":
        assert everything == top_k
        assert model.predict(X, threshold=np.inf) == [()] * X.shape[0]
    else:
        assert (sp.csr_matrix(everything) != sp.csr_matrix(top_k)).nnz == 0
        assert sp.csr_matrix(model.predict(X, threshold=np.inf)).nnz == 0


def test_predict_threshold_multiclass_gives_none_below_t(data):
    X, Y = data
    y = np.array([f"t{row.indices[0]:02d}" for row in Y])
    model = XRLinearClassifier(top_k=3, random_state=0).fit(X, y)
    labels, scores = model.predict_topk(X)
    t = float(np.median(scores[:, 0]))
    pred = model.predict(X, threshold=t)
    assert isinstance(pred, np.ndarray) and pred.dtype == object
    keep = scores[:, 0] >= t
    assert 0 < keep.sum() < X.shape[0]
    assert all(p is None for p in pred[~keep])
    np.testing.assert_array_equal(pred[keep].astype(str),
                                  model.classes_[labels[keep, 0]])
    # Without a threshold: classes_[top1], as always.
    np.testing.assert_array_equal(model.predict(X), model.classes_[labels[:, 0]])


@pytest.mark.parametrize("threshold", ["0.5", np.nan, True, [0.5]])
def test_predict_threshold_must_be_a_number(model, data, threshold):
    X, _ = data
    with pytest.raises(ValueError, match="threshold must be None or a number"):
        model.predict(X[:3], threshold=threshold)


# ------------------------------------------------------------- forms of y
def test_column_vector_y_is_one_label_per_row(data):
    X, Y = data
    y = np.array([row.indices[0] for row in Y])
    flat = XRLinearClassifier(top_k=3, random_state=0).fit(X, y)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = XRLinearClassifier(top_k=3, random_state=0).fit(X, y[:, None])
    np.testing.assert_array_equal(column.classes_, flat.classes_)
    np.testing.assert_array_equal(column.predict(X), flat.predict(X))
    assert column.score(X, y[:, None]) == flat.score(X, y)


@pytest.mark.parametrize("y, match", [
    (np.linspace(0, 1, 300), "Unknown label type: continuous"),
    (list(np.linspace(0, 1, 300)), "Unknown label type: continuous"),
    (np.r_[np.zeros(299), np.nan], "NaN"),
    (np.r_[np.zeros(299), np.inf], "infinity"),
])
def test_continuous_or_non_finite_1d_y_is_rejected(data, y, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        XRLinearClassifier().fit(X, y)


def test_integral_float_labels_are_classes(data):
    X, Y = data
    y = np.array([row.indices[0] for row in Y], dtype=np.float64)
    model = XRLinearClassifier(top_k=3, random_state=0).fit(X, y)
    assert model.classes_.dtype == np.float64
    assert set(model.predict(X)) <= set(y)


class _ArrayLike:
    """Only ``__array__``: not a list, not iterable."""

    def __init__(self, values):
        self._values = np.asarray(values)

    def __array__(self, dtype=None, copy=None):
        return self._values if dtype is None else self._values.astype(dtype)


def test_array_like_y(data, model):
    X, Y = data
    y = np.array([row.indices[0] for row in Y])
    a = XRLinearClassifier(top_k=3, random_state=0).fit(X, _ArrayLike(y))
    b = XRLinearClassifier(top_k=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.score(X, _ArrayLike(y)) == b.score(X, y)


def test_indexer_takes_the_label_forms_of_the_classifier(data):
    X, Y = data
    params = dict(branching_factor=2, max_leaf_size=4, random_state=0)
    indicator = LabelIndexer(**params).fit(X, Y)
    names = _names(Y)
    sets = LabelIndexer(**params).fit(X, names)  # t00 .. t39: sorted = columns
    assert sets.tree_.equals(indicator.tree_)
    np.testing.assert_array_equal(sets.transform(names).toarray(),
                                  indicator.transform(Y).toarray())
    np.testing.assert_array_equal(sets.transform(Y).toarray(),
                                  indicator.transform(Y).toarray())
    first = np.array([row.indices[0] for row in Y])
    one = LabelIndexer(**params).fit(X, first)
    assert one.tree_.n_labels == np.unique(first).size
    assert one.transform(first).sum() == X.shape[0]
    with pytest.raises(ValueError, match="requires y to be passed"):
        LabelIndexer().fit(X)


# ----------------------------------------------------- attributes of the fit
def test_n_iter_is_the_most_passes_of_a_node(data):
    X, Y = data
    model = XRLinearClassifier(max_iter=3, tol=1e-12, random_state=0).fit(X, Y)
    assert model.n_iter_ == 3  # no node reaches tol=1e-12 in 3 passes
    model = XRLinearClassifier(random_state=0).fit(X, Y)
    assert 1 <= model.n_iter_ < 100


def test_feature_names_in(data):
    pd = pytest.importorskip("pandas")  # names come from DataFrame columns
    X, Y = data
    Xd = X[:, :30].toarray()
    columns = [f"w{j}" for j in range(30)]
    frame = pd.DataFrame(Xd, columns=columns)
    model = XRLinearClassifier(top_k=3, random_state=0).fit(frame, Y)
    np.testing.assert_array_equal(model.feature_names_in_, columns)
    np.testing.assert_array_equal(model.predict_topk(frame)[0],
                                  model.predict_topk(Xd)[0])
    with pytest.raises(ValueError, match="feature names"):
        model.predict(frame[columns[::-1]])
    assert not hasattr(XRLinearClassifier(top_k=3).fit(Xd, Y), "feature_names_in_")
