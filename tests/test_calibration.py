"""CalibratedXMRClassifier and expected_calibration_error: sparse top-k
probabilities, calibration on held-out data (cv folds or a frozen ranker),
ranking kept, thresholds, y forms, the scikit-learn contract."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skxmr import CalibratedXMRClassifier, XRLinearClassifier
from skxmr._calibration import _column_map, _feature, _SigmoidCalibrator
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import expected_calibration_error

N_LABELS = 60
K = 10
NAMES = np.array([f"tag{j:03d}" for j in range(N_LABELS)])  # sorted = column order


def base(**params):
    return XRLinearClassifier(top_k=K, random_state=0, **params)


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(1500, 300, N_LABELS, random_state=0)
    return X[:1000], Y[:1000], X[1000:], Y[1000:]


@pytest.fixture(scope="module")
def fitted(data):
    X, Y, _, _ = data
    return {method: CalibratedXMRClassifier(base(), method=method,
                                            random_state=0).fit(X, Y)
            for method in ("sigmoid", "isotonic")}


def as_sets(Y):
    return [list(NAMES[row.indices]) for row in sp.csr_matrix(Y)]


# ---------------------------------------------------------------------------
# predict_proba and the calibration itself
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_predict_proba_is_sparse_topk_probabilities(fitted, data, method):
    model = fitted[method]
    _, _, Xt, _ = data
    proba = model.predict_proba(Xt)
    assert sp.issparse(proba) and proba.format == "csr"
    assert proba.shape == (Xt.shape[0], N_LABELS)
    assert proba.getnnz(axis=1).max() <= K
    assert proba.data.min() >= 0 and proba.data.max() <= 1
    # Exactly the ranker's top-k labels are stored.
    raw = model.estimator_.decision_function(Xt)
    np.testing.assert_array_equal(proba.indptr, raw.indptr)
    np.testing.assert_array_equal(proba.indices, raw.indices)
    # decision_function is the calibrated top-k as well
    assert (model.decision_function(Xt) != proba).nnz == 0


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibration_beats_raw_scores_on_held_out_rows(fitted, data, method):
    model = fitted[method]
    _, _, Xt, Yt = data
    raw = expected_calibration_error(Yt, model.estimator_.decision_function(Xt))
    calibrated = expected_calibration_error(Yt, model.predict_proba(Xt))
    assert raw > 0.05
    assert calibrated < 0.5 * raw, (raw, calibrated)
    # The Brier score over the same top-k pairs improves too.
    proba = model.predict_proba(Xt)
    raw_scores = model.estimator_.decision_function(Xt)  # same sparsity pattern
    rows = np.repeat(np.arange(proba.shape[0]), np.diff(proba.indptr))
    outcome = np.asarray(Yt.tocsr()[rows, proba.indices]).ravel() > 0
    brier_cal = np.mean((proba.data - outcome) ** 2)
    brier_raw = np.mean((raw_scores.data - outcome) ** 2)
    assert brier_cal < brier_raw


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_ranking_is_kept(fitted, data, method):
    X, Y, Xt, _ = data
    model = fitted[method]
    reference = base().fit(X, Y)  # the refit on all data is the plain ranker
    labels, proba = model.predict_topk(Xt)
    ref_labels, ref_scores = reference.predict_topk(Xt)
    np.testing.assert_array_equal(labels, ref_labels)
    assert proba.dtype == np.float32 and proba.shape == (Xt.shape[0], K)
    assert np.all(np.diff(proba, axis=1) <= 0)  # best first
    if method == "sigmoid":
        assert model.calibrator_.slope_ > 0
        assert np.all(np.diff(proba, axis=1)[np.diff(ref_scores, axis=1) < 0] < 0)
    assert model.score(Xt, data[3]) == reference.score(Xt, data[3])
    weights = np.ones(Xt.shape[0])
    assert model.score(Xt, data[3], sample_weight=weights) == pytest.approx(
        model.score(Xt, data[3]))
    labels3, proba3 = model.predict_topk(Xt, k=3)
    np.testing.assert_array_equal(labels3, labels[:, :3])
    np.testing.assert_allclose(proba3, proba[:, :3])


def test_calibration_pairs_are_the_out_of_fold_top_k(data):
    """The sigmoid fitted by the meta-estimator equals one fitted on the
    out-of-fold top-k pairs built by hand (labels matched by name, so the
    mapping of each fold's columns is checked too)."""
    X, Y, _, _ = data
    y = as_sets(Y)
    y[0] = y[0] + ["zz-rare"]  # a label in one row: missing from two folds
    model = CalibratedXMRClassifier(base(), cv=3, random_state=7).fit(X, y)
    assert model.classes_[-1] == "zz-rare"
    scores, outcome = [], []
    for train, test in KFold(3, shuffle=True, random_state=7).split(X):
        fold = base().fit(X[train], [y[i] for i in train])
        labels, fold_scores = fold.predict_topk(X[test], K)
        for i, row_labels, row_scores in zip(test, labels, fold_scores):
            for label, score in zip(row_labels, row_scores):
                if label >= 0:
                    scores.append(score)
                    outcome.append(fold.classes_[label] in y[i])
    scores = np.array(scores, dtype=np.float32)
    manual = _SigmoidCalibrator().fit(_feature(scores, "logit"), np.array(outcome),
                                      np.ones(len(outcome)))
    assert model.n_calibration_pairs_ == len(outcome)
    assert model.calibrator_.slope_ == pytest.approx(manual.slope_, rel=1e-6)
    assert model.calibrator_.intercept_ == pytest.approx(manual.intercept_, rel=1e-6)


def test_column_map():
    classes = np.array(["a", "b", "c", "d"])
    assert _column_map(classes.copy(), classes) is None
    np.testing.assert_array_equal(_column_map(np.array(["b", "d"]), classes), [1, 3])
    unsorted = np.array(["d", "a", "c"], dtype=object)
    np.testing.assert_array_equal(_column_map(np.array(["c", "d"]), unsorted), [2, 0])


# ---------------------------------------------------------------------------
# cv: folds, splitters, frozen rankers
# ---------------------------------------------------------------------------


def test_cv_int_splitter_and_iterable(data):
    X, Y, Xt, _ = data
    n = X.shape[0]
    by_int = CalibratedXMRClassifier(base(), cv=3, random_state=1).fit(X, Y)
    by_splitter = CalibratedXMRClassifier(
        base(), cv=KFold(3, shuffle=True, random_state=1)).fit(X, Y)
    by_list = CalibratedXMRClassifier(
        base(), cv=list(KFold(3, shuffle=True, random_state=1).split(X))).fit(X, Y)
    for other in (by_splitter, by_list):
        assert other.calibrator_.slope_ == by_int.calibrator_.slope_
        assert other.calibrator_.intercept_ == by_int.calibrator_.intercept_
    assert by_int.n_calibration_pairs_ == n * K  # every row held out once
    # Parallel folds give the same model.
    parallel = CalibratedXMRClassifier(base(), cv=3, random_state=1, n_jobs=2).fit(X, Y)
    assert parallel.calibrator_.slope_ == by_int.calibrator_.slope_
    # cv=None: 5 folds (scikit-learn's default)
    five = CalibratedXMRClassifier(base(), cv=None, random_state=1).fit(X, Y)
    assert five.n_calibration_pairs_ == n * K
    assert (five.predict_proba(Xt) != by_int.predict_proba(Xt)).nnz > 0


def test_fold_that_misses_a_class():
    # Regression: a fold whose training rows lack a class ranks fewer than k
    # labels; its rows must still be calibrated (this used to raise a
    # concatenation error for 4 classes and top_k=5).
    rng = np.random.RandomState(0)
    X = sp.csr_matrix(rng.uniform(size=(40, 10)))
    y = np.r_[np.full(2, 3), rng.randint(0, 3, size=38)]
    folds = [(np.arange(2, 40), np.arange(2)), (np.arange(20), np.arange(20, 40))]
    model = CalibratedXMRClassifier(
        XRLinearClassifier(top_k=5, random_state=0), cv=folds).fit(X, y)
    assert list(model.classes_) == [0, 1, 2, 3]
    # fold 1 ranks 3 classes for its 2 rows, fold 2 ranks 4 for its 20
    assert model.n_calibration_pairs_ == 2 * 3 + 20 * 4
    proba = model.predict_proba(X)
    assert proba.shape == (40, 4)
    assert np.all((proba.data >= 0) & (proba.data <= 1))


def test_frozen_ranker_is_calibrated_on_the_given_rows_only(data):
    X, Y, Xt, Yt = data
    ranker = base().fit(X[:600], Y[:600])
    coef = ranker.coef_
    model = CalibratedXMRClassifier(FrozenEstimator(ranker), cv=5).fit(X[600:], Y[600:])
    assert ranker.coef_ is coef  # not refitted
    assert model.n_calibration_pairs_ == 400 * K
    labels, _ = model.predict_topk(Xt)
    np.testing.assert_array_equal(labels, ranker.predict_topk(Xt)[0])
    raw = expected_calibration_error(Yt, ranker.decision_function(Xt))
    assert expected_calibration_error(Yt, model.predict_proba(Xt)) < 0.5 * raw
    # an unfitted ranker cannot be frozen
    with pytest.raises(NotFittedError):
        CalibratedXMRClassifier(FrozenEstimator(base())).fit(X, Y)


def test_default_estimator(data):
    X, Y, Xt, _ = data
    model = CalibratedXMRClassifier(random_state=0).fit(X, Y)
    assert isinstance(model.estimator_, XRLinearClassifier)
    assert model.estimator is None
    assert model.predict_proba(Xt).getnnz(axis=1).max() == 10  # its top_k


def test_top_k_parameter(data):
    X, Y, Xt, _ = data
    model = CalibratedXMRClassifier(base(), top_k=3, random_state=0).fit(X, Y)
    assert model.n_calibration_pairs_ == X.shape[0] * 3
    assert model.predict_proba(Xt).getnnz(axis=1).max() == 3
    assert model.predict_topk(Xt)[0].shape == (Xt.shape[0], 3)


def test_sample_weight(data):
    X, Y, Xt, _ = data
    plain = CalibratedXMRClassifier(base(), random_state=0).fit(X, Y)
    ones = CalibratedXMRClassifier(base(), random_state=0).fit(
        X, Y, sample_weight=np.ones(X.shape[0]))
    assert ones.calibrator_.slope_ == pytest.approx(plain.calibrator_.slope_)
    weights = np.ones(X.shape[0])
    weights[::2] = 3.0
    weighted = CalibratedXMRClassifier(base(), random_state=0).fit(
        X, Y, sample_weight=weights)
    assert weighted.calibrator_.slope_ != plain.calibrator_.slope_
    with pytest.raises(ValueError, match="sample_weight"):
        CalibratedXMRClassifier(base()).fit(X, Y, sample_weight=np.ones(3))


# ---------------------------------------------------------------------------
# predict: top-k sets and thresholds, y forms
# ---------------------------------------------------------------------------


def test_threshold_predictions(fitted, data):
    model = fitted["sigmoid"]
    _, _, Xt, _ = data
    proba = model.predict_proba(Xt)
    top = model.predict(Xt)
    assert (top != model.estimator_.predict(Xt)).nnz == 0
    for t in (0.0, 0.3, 0.5, 0.9):
        P = model.predict(Xt, threshold=t)
        assert sp.issparse(P) and P.shape == proba.shape
        expected = (proba >= t).astype(P.dtype) if t > 0 else top
        assert (P != expected).nnz == 0
    assert model.predict(Xt, threshold=0.5).nnz < top.nnz
    assert model.predict(Xt, threshold=1.0).nnz <= model.predict(Xt, threshold=0.9).nnz
    for bad in (-0.1, 1.5, "high", True):
        with pytest.raises(ValueError, match="threshold"):
            model.predict(Xt, threshold=bad)


def test_label_lists_in_label_lists_out(data):
    X, Y, Xt, Yt = data
    model = CalibratedXMRClassifier(base(), random_state=0).fit(X, as_sets(Y))
    assert list(model.classes_) == list(NAMES)
    sets = model.predict(Xt, threshold=0.5)
    assert isinstance(sets, list) and len(sets) == Xt.shape[0]
    proba = model.predict_proba(Xt)
    for row, labels in zip(proba[:50], sets[:50]):
        expected = set(NAMES[row.indices[row.data >= 0.5]])
        assert set(labels) == expected
        assert all(isinstance(label, str) for label in labels)
    top = model.predict(Xt)
    assert all(len(labels) == K for labels in top)
    # same ranker as with the indicator (every label has training rows)
    indicator = CalibratedXMRClassifier(base(), random_state=0).fit(X, Y)
    np.testing.assert_array_equal(model.predict_topk(Xt)[0],
                                  indicator.predict_topk(Xt)[0])
    assert model.score(Xt, as_sets(Yt)) == indicator.score(Xt, Yt)


def test_dense_and_multiclass_forms(data):
    X, Y, Xt, _ = data
    dense = CalibratedXMRClassifier(base(), random_state=0).fit(X, Y.toarray())
    out = dense.predict(Xt, threshold=0.5)
    assert isinstance(out, np.ndarray) and out.shape == (Xt.shape[0], N_LABELS)
    first = NAMES[np.asarray(Y.argmax(axis=1)).ravel()]
    multi = CalibratedXMRClassifier(base(), random_state=0).fit(X, first)
    assert multi.predict(Xt).shape == (Xt.shape[0],)
    assert multi.predict_proba(Xt).shape == (Xt.shape[0], len(multi.classes_))
    out = multi.predict(Xt, threshold=0.5)
    assert out.dtype == object and out.shape == (Xt.shape[0],)
    labels, proba = multi.predict_topk(Xt)
    sure = proba[:, 0] >= 0.5
    assert 0 < sure.sum() < Xt.shape[0]
    assert list(out[sure]) == list(multi.classes_[labels[sure, 0]])
    assert all(label is None for label in out[~sure])


# ---------------------------------------------------------------------------
# Parameters and the scikit-learn contract
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params, match", [
    ({"method": "foo"}, "method"),
    ({"method": "temperature"}, "method"),
    ({"cv": 1}, "cv"),
    ({"cv": "prefit"}, "FrozenEstimator"),
    ({"top_k": 0}, "top_k"),
    ({"estimator": object()}, "estimator"),
])
def test_bad_parameters(data, params, match):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match=match):
        CalibratedXMRClassifier(**{"estimator": base(), **params}).fit(X, Y)


def test_not_fitted(data):
    with pytest.raises(NotFittedError):
        CalibratedXMRClassifier(base()).predict_proba(data[2])


def test_invalid_parameter_error_type(data):
    with pytest.raises(InvalidParameterError):
        CalibratedXMRClassifier(base(), cv=1).fit(data[0], data[1])


def test_pickle_round_trip(fitted, data):
    Xt = data[2]
    for model in fitted.values():
        again = pickle.loads(pickle.dumps(model))
        assert (again.predict_proba(Xt) != model.predict_proba(Xt)).nnz == 0
        assert (again.predict(Xt, threshold=0.4)
                != model.predict(Xt, threshold=0.4)).nnz == 0


def docs_from(X):
    """Text documents whose words are the nonzero features of X."""
    X = sp.csr_matrix(X)
    return [" ".join(f"w{j}" for j in row.indices) for row in X]


def test_pipeline_clone_and_nested_params(data):
    X, Y, Xt, Yt = data
    docs, docs_t = docs_from(X), docs_from(Xt)
    pipe = make_pipeline(
        TfidfVectorizer(),
        CalibratedXMRClassifier(base(C=1.0), method="isotonic", random_state=0),
    )
    params = pipe.get_params(deep=True)
    assert params["calibratedxmrclassifier__estimator__C"] == 1.0
    assert params["calibratedxmrclassifier__method"] == "isotonic"
    pipe.set_params(calibratedxmrclassifier__estimator__C=2.0)
    copy = clone(pipe)
    assert copy.get_params()["calibratedxmrclassifier__estimator__C"] == 2.0
    copy.fit(docs, as_sets(Y))
    proba = copy.predict_proba(docs_t)
    assert sp.issparse(proba) and proba.shape == (len(docs_t), N_LABELS)
    assert proba.getnnz(axis=1).max() <= K
    sets = copy.predict(docs_t, threshold=0.5)
    assert isinstance(sets, list) and len(sets) == len(docs_t)
    assert copy.score(docs_t, as_sets(Yt)) > 0.5
    # the unfitted original was left alone
    assert not hasattr(pipe[-1], "estimator_")
    direct = CalibratedXMRClassifier(base(), method="sigmoid")
    assert set(direct.get_params(deep=True)) >= {"estimator__C", "estimator__top_k",
                                                  "method", "cv", "top_k"}


def test_tags():
    tags = CalibratedXMRClassifier().__sklearn_tags__()
    assert tags.input_tags.sparse
    assert tags.classifier_tags.multi_label


# ---------------------------------------------------------------------------
# expected_calibration_error
# ---------------------------------------------------------------------------


def test_ece_values_and_forms():
    y_true = np.array([[1, 0, 0], [0, 1, 1]])
    dense = np.array([[0.9, 0.2, 0.0], [0.0, 0.7, 0.6]])
    sparse = sp.csr_matrix(dense)  # 4 stored entries
    # bins of width 0.1: |0.9-1|, |0.2-0|, |0.7-1|, |0.6-1| over 4 entries
    assert expected_calibration_error(y_true, sparse, n_bins=10) == pytest.approx(0.25)
    pair = (np.array([[0, 1], [1, 2]]), np.array([[0.9, 0.2], [0.7, 0.6]]))
    assert expected_calibration_error(y_true, pair, n_bins=10) == pytest.approx(0.25)
    # dense: every entry (the two zeros are calibrated negatives)
    assert expected_calibration_error(y_true, dense, n_bins=10) == pytest.approx(1 / 6)
    # one bin: |mean p - mean outcome|
    assert expected_calibration_error(y_true, sparse, n_bins=1) == pytest.approx(
        abs(0.6 - 0.75))
    # padding is skipped; a probability of exactly 1 falls in the last bin
    padded = (np.array([[0, -1], [1, 2]]), np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert expected_calibration_error(y_true, padded) == pytest.approx(0.0)
    perfect = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 1.0]]))
    assert expected_calibration_error(y_true, perfect) == 0.0


def test_ece_bad_input():
    y_true = np.array([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error(y_true, np.array([[1.5, 0], [0, 1]]))
    with pytest.raises(ValueError, match="shape"):
        expected_calibration_error(y_true, np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="no scored entry"):
        expected_calibration_error(y_true, sp.csr_matrix((2, 2)))
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(y_true, np.ones((2, 2)) / 2, n_bins=0)
