"""XRLinearClassifier and the scikit-learn contract: target and input forms,
pickling, clone/params, determinism, input validation, empty rows and labels,
sample_weight and score."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skxmr import LabelIndexer, XRLinearClassifier
from skxmr._targets import TargetEncoder
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import precision_at_k

N_LABELS = 50
NAMES = np.array([f"tag{j:03d}" for j in range(N_LABELS)])  # sorted = column order


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(400, 600, N_LABELS, random_state=0)
    assert (Y.getnnz(axis=0) > 0).all()  # every label has rows: all forms agree
    return X, Y


@pytest.fixture(scope="module")
def ref(data):
    X, Y = data
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X, Y)
    return model, model.predict_topk(X)


def assert_same_ranking(model, X, expected):
    labels, scores = model.predict_topk(X)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(scores, expected[1])


# ----------------------------------------------------------------- forms of y
def test_sparse_indicator_in_sparse_indicator_out(data, ref):
    X, Y = data
    model, (labels, _) = ref
    assert list(model.classes_) == list(range(N_LABELS))
    pred = model.predict(X)
    assert sp.issparse(pred) and pred.format == "csr" and pred.shape == Y.shape
    assert pred.dtype == Y.dtype
    for i in range(X.shape[0]):
        np.testing.assert_array_equal(pred[i].indices, np.sort(labels[i]))
        np.testing.assert_array_equal(pred[i].data, 1)


@pytest.mark.parametrize("dtype", [np.int64, np.float64, bool])
def test_dense_indicator_in_dense_indicator_out(data, ref, dtype):
    X, Y = data
    model, expected = ref
    dense = XRLinearClassifier(top_k=5, random_state=0).fit(X, Y.toarray().astype(dtype))
    assert_same_ranking(dense, X, expected)
    pred = dense.predict(X)
    assert isinstance(pred, np.ndarray) and pred.dtype == dtype
    assert pred.shape == Y.shape
    np.testing.assert_array_equal(pred, model.predict(X).toarray().astype(dtype))


class _FrameLike:
    """Just enough of a pandas DataFrame: 2-D, iterates over its column names."""

    ndim = 2

    def __init__(self, values):
        self.values = values

    def __iter__(self):
        return iter(range(self.values.shape[1]))

    def to_numpy(self):
        return self.values


def test_dataframe_indicator_is_a_dense_indicator(data, ref):
    X, Y = data
    _, expected = ref
    model = XRLinearClassifier(top_k=5, random_state=0).fit(
        X, _FrameLike(Y.toarray().astype(np.int64)))
    assert_same_ranking(model, X, expected)
    assert model.predict(X).shape == Y.shape


def test_label_lists_in_label_tuples_out(data, ref):
    X, Y = data
    _, expected = ref
    y = [[str(NAMES[j]) for j in row.indices] for row in Y]
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.classes_, NAMES)
    assert_same_ranking(model, X, expected)
    pred = model.predict(X)
    assert isinstance(pred, list) and len(pred) == X.shape[0]
    # Label names in rank order, through classes_.
    assert pred[:3] == [tuple(NAMES[row]) for row in expected[0][:3]]
    assert all(isinstance(p, tuple) and len(p) == 5 for p in pred)


def test_labels_that_are_tuples_of_strings(data, ref):
    X, Y = data
    _, expected = ref
    y = [[(str(NAMES[j]), "x") for j in row.indices] for row in Y]
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X, y)
    assert len(model.classes_) == N_LABELS and model.classes_[0] == ("tag000", "x")
    assert_same_ranking(model, X, expected)
    pred = model.predict(X[:2])
    assert pred == [tuple((str(NAMES[j]), "x") for j in row) for row in expected[0][:2]]


@pytest.mark.parametrize("as_names", [True, False])
def test_multiclass_labels_in_1d_out(data, as_names):
    X, Y = data
    first = np.array([row.indices[0] for row in Y])
    classes, codes = np.unique(first, return_inverse=True)
    one_hot = sp.csr_matrix((np.ones(len(codes), dtype=np.float32), codes,
                             np.arange(len(codes) + 1)), shape=(len(codes), classes.size))
    indicator = XRLinearClassifier(top_k=3, random_state=0).fit(X, one_hot)
    y = NAMES[first] if as_names else first
    model = XRLinearClassifier(top_k=3, random_state=0).fit(X, list(y))
    np.testing.assert_array_equal(model.classes_, NAMES[classes] if as_names else classes)
    expected = indicator.predict_topk(X)
    assert_same_ranking(model, X, expected)
    pred = model.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (X.shape[0],)
    np.testing.assert_array_equal(pred, model.classes_[expected[0][:, 0]])
    assert np.mean(pred == y) > 0.5


def test_target_encoder_inverse_transform_skips_missing():
    enc = TargetEncoder()
    enc.fit_transform([["a", "b"], ["c"], []])
    labels = np.array([[2, 0], [1, -1]])
    assert enc.inverse_transform(labels, 3) == [("c", "a"), ("b",)]
    enc = TargetEncoder()
    enc.fit_transform(sp.csr_matrix(np.eye(3, dtype=np.int8)))
    out = enc.inverse_transform(labels, 3)
    assert sp.issparse(out) and out.dtype == np.int8
    np.testing.assert_array_equal(out.toarray(), [[1, 0, 1], [0, 1, 0]])
    enc = TargetEncoder()
    enc.fit_transform(np.eye(3, dtype=bool))
    np.testing.assert_array_equal(enc.inverse_transform(labels, 3),
                                  [[True, False, True], [False, True, False]])


# ----------------------------------------------------------------- forms of X
def test_float32_and_float64_X_rank_alike(data, ref):
    X, Y = data
    _, (labels, scores) = ref
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X.astype(np.float64), Y)
    l64, s64 = model.predict_topk(X.astype(np.float64))
    np.testing.assert_array_equal(l64, labels)
    np.testing.assert_allclose(s64, scores, rtol=1e-5, atol=1e-7)


def test_unsorted_and_int64_csr_equal_canonical(data, ref):
    X, Y = data
    _, expected = ref
    rng = np.random.default_rng(0)
    unsorted = X.copy()
    for i in range(X.shape[0]):
        a, b = X.indptr[i], X.indptr[i + 1]
        perm = a + rng.permutation(b - a)
        unsorted.indices[a:b] = X.indices[perm]
        unsorted.data[a:b] = X.data[perm]
    unsorted.has_sorted_indices = False
    assert not np.array_equal(unsorted.indices, X.indices)
    assert (unsorted != X).nnz == 0
    wide = X.copy()
    wide.indices = X.indices.astype(np.int64)
    wide.indptr = X.indptr.astype(np.int64)
    assert wide.indices.dtype == wide.indptr.dtype == np.int64
    for Xv in (unsorted, wide):
        model = XRLinearClassifier(top_k=5, random_state=0).fit(Xv, Y)
        assert_same_ranking(model, Xv, expected)
        assert_same_ranking(model, X, expected)


def test_dense_X(data, ref):
    X, Y = data
    _, expected = ref
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X.toarray(), Y)
    assert model.n_features_in_ == X.shape[1]
    labels, scores = model.predict_topk(X.toarray())
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_allclose(scores, expected[1], rtol=1e-5, atol=1e-7)


# ------------------------------------------------------ pickle, clone, params
def test_pickle_round_trip(data, ref):
    X, Y = data
    model, expected = ref
    restored = pickle.loads(pickle.dumps(model))
    assert_same_ranking(restored, X, expected)
    assert (restored.predict(X) != model.predict(X)).nnz == 0
    y = [[str(NAMES[j]) for j in row.indices] for row in Y]
    named = XRLinearClassifier(top_k=5, random_state=0).fit(X, y)
    assert pickle.loads(pickle.dumps(named)).predict(X[:5]) == named.predict(X[:5])


def test_clone_is_unfitted_with_equal_params(ref):
    model, _ = ref
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    assert not hasattr(copy, "coef_") and not hasattr(copy, "tree_")


def test_nested_indexer_params(data):
    X, Y = data
    indexer = LabelIndexer(max_leaf_size=5, random_state=0)
    model = XRLinearClassifier(indexer, random_state=0)
    params = model.get_params(deep=True)
    assert params["indexer__branching_factor"] == 16
    assert params["indexer__max_leaf_size"] == 5
    assert list(model.fit(X, Y).tree_.level_sizes) == [16, 50]
    assert not hasattr(indexer, "tree_")  # the indexer is cloned, not fitted
    model.set_params(indexer__branching_factor=4)
    assert indexer.branching_factor == 4
    assert list(model.fit(X, Y).tree_.level_sizes) == [4, 16, 50]
    assert model.predict(X).shape == Y.shape


# --------------------------------------------------------------- determinism
def test_same_random_state_same_model_for_any_n_jobs(data):
    X, Y = data
    indexer = LabelIndexer(branching_factor=4, max_leaf_size=5)
    a = XRLinearClassifier(indexer, top_k=5, n_jobs=1, random_state=7).fit(X, Y)
    b = XRLinearClassifier(indexer, top_k=5, n_jobs=2, random_state=7).fit(X, Y)
    assert a.tree_.equals(b.tree_) and a.tree_.n_levels == 3
    assert_same_ranking(b, X, a.predict_topk(X))
    assert len(a.coef_) == len(b.coef_) == 3
    for Wa, Wb in zip(a.coef_, b.coef_):
        assert Wa.format == Wb.format == "csc"
        np.testing.assert_array_equal(Wa.indptr, Wb.indptr)
        np.testing.assert_array_equal(Wa.indices, Wb.indices)
        np.testing.assert_array_equal(Wa.data, Wb.data)


# ---------------------------------------------------------------- bad input
def _with_value(X, value):
    X = X.copy()
    X.data[3] = value
    return X


@pytest.mark.parametrize("make_X, match", [
    (lambda X: _with_value(X, np.nan), "NaN"),
    (lambda X: _with_value(X, np.inf), "infinity"),
    (lambda X: _with_value(X, np.nan).toarray(), "NaN"),
    (lambda X: sp.csr_matrix((X.shape[0], 0), dtype=np.float32), "0 feature"),
    (lambda X: np.zeros((X.shape[0], 0)), "0 feature"),
    (lambda X: X[:100], "X has 100 rows but y has 400"),
])
def test_bad_X(data, make_X, match):
    X, Y = data
    with pytest.raises(ValueError, match=match):
        XRLinearClassifier().fit(make_X(X), Y)


@pytest.mark.parametrize("make_y, error, match", [
    (lambda Y: sp.csr_matrix(Y.shape, dtype=np.float32), ValueError, "no positive label"),
    (lambda Y: np.zeros(Y.shape, dtype=np.int64), ValueError, "no positive label"),
    (lambda Y: [[] for _ in range(Y.shape[0])], ValueError, "no positive label"),
    (lambda Y: Y[:100], ValueError, "X has 400 rows but y has 100"),
    (lambda Y: np.where(Y.toarray() > 0, 1, -1), ValueError, "negative values"),
    (lambda Y: np.where(Y.toarray() > 0, 1.0, np.nan), ValueError, "NaN"),
    (lambda Y: np.zeros((Y.shape[0], 2, 2)), ValueError, "3-D"),
    (lambda Y: None, ValueError, "requires y"),
    (lambda Y: [], ValueError, "empty"),
    (lambda Y: [["a"]] * (Y.shape[0] - 1) + ["b"], ValueError, "mixes label collections"),
    (lambda Y: [[["a"]]] * Y.shape[0], TypeError, "hashable"),
    (lambda Y: ["a", 1] * (Y.shape[0] // 2), TypeError, "comparable"),
])
def test_bad_y(data, make_y, error, match):
    X, Y = data
    with pytest.raises(error, match=match):
        XRLinearClassifier().fit(X, make_y(Y))


@pytest.mark.parametrize("params, match", [
    (dict(loss="foo"), "'loss' parameter"),
    (dict(negative_sampling="bar"), "'negative_sampling' parameter"),
    (dict(post_processor="baz"), "'post_processor' parameter.*'lP-hinge'"),
    (dict(post_processor="l0-hinge"), "'post_processor' parameter.*'lP-hinge'"),
    (dict(C=-1), "'C' parameter"),
    (dict(Cp=0), "'Cp' parameter"),
    (dict(beam_size=0), "'beam_size' parameter"),
    (dict(top_k=0), "'top_k' parameter"),
    (dict(indexer="kmeans"), "'indexer' parameter"),
    (dict(n_jobs=0), "'n_jobs' parameter"),
    (dict(n_jobs=2**40), "'n_jobs' parameter"),
    (dict(n_jobs=1.5), "'n_jobs' parameter"),
])
def test_bad_params(data, params, match, monkeypatch):
    X, Y = data
    # Rejected up front: before any work (no tree is built).
    import skxmr._xrlinear as xrl

    def no_tree(*args, **kwargs):
        raise AssertionError("the tree was built before the parameters were checked")

    monkeypatch.setattr(xrl, "build_tree", no_tree)
    with pytest.raises(ValueError, match=match):
        XRLinearClassifier(**params).fit(X, Y)


def test_predict_checks(data, ref):
    X, _ = data
    model, _ = ref
    with pytest.raises(ValueError, match="X has 100 features.*expecting 600"):
        model.predict(X[:, :100])
    with pytest.raises(ValueError, match="X has 700 features.*expecting 600"):
        model.predict_topk(sp.hstack([X, X[:, :100]]).tocsr())
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, X.shape[1]), np.nan))
    for method in ("predict", "predict_topk", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(XRLinearClassifier(), method)(X)


# --------------------------------------------- rows without labels, and labels
# without rows
def test_rows_without_labels_are_negatives_of_the_top_level_only(data):
    X, Y = data
    keep = 360  # the last 40 rows lose their labels
    empty = Y.tolil()
    empty[keep:] = 0
    empty = empty.tocsr()
    empty.eliminate_zeros()
    tree = LabelIndexer(branching_factor=4, max_leaf_size=5, random_state=0).fit(
        X[:keep], Y[:keep]).tree_
    a = XRLinearClassifier(tree, top_k=5, random_state=0).fit(X, empty)
    b = XRLinearClassifier(tree, top_k=5, random_state=0).fit(X[:keep], Y[:keep])
    assert a.predict(X).shape == Y.shape
    assert a.predict_topk(X)[0].shape == (X.shape[0], 5)
    # Teacher forcing: they are negatives of every top-level cluster, and of
    # nothing below it.
    assert (a.coef_[0] != b.coef_[0]).nnz > 0
    for Wa, Wb in zip(a.coef_[1:], b.coef_[1:]):
        assert (Wa != Wb).nnz == 0
    # Matcher-aware negatives: beam search retrieves clusters for them too.
    man = XRLinearClassifier(tree, negative_sampling="man", random_state=0).fit(X, empty)
    man_b = XRLinearClassifier(tree, negative_sampling="man", random_state=0).fit(
        X[:keep], Y[:keep])
    assert (man.coef_[-1] != man_b.coef_[-1]).nnz > 0


def test_labels_without_rows_are_kept_and_rank_low():
    X, Y = make_xmc_classification(700, 1000, 100, random_state=1)
    n_empty = 10
    Ye = sp.hstack([Y, sp.csr_matrix((Y.shape[0], n_empty))]).tocsr()
    y = [[f"t{j:03d}" for j in row.indices] for row in Y[:600]]
    with pytest.warns(UserWarning, match=f"{n_empty} labels have an all-zero vector"):
        model = XRLinearClassifier(
            LabelIndexer(branching_factor=4, max_leaf_size=10, random_state=0),
            top_k=5, random_state=0,
        ).fit(X[:600], Ye[:600])
    assert len(model.classes_) == 110
    assert model.predict(X[600:]).shape == (100, 110)
    assert model.decision_function(X[600:]).shape == (100, 110)
    labels, _ = model.predict_topk(X[600:])
    assert np.mean(labels >= 100) < 0.01  # (0 measured)
    # With every label reachable, they rank below the labels relevant to a row.
    wide = clone(model).set_params(beam_size=1000, top_k=110)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        wide.fit(X[:600], Ye[:600])
    labels, _ = wide.predict_topk(X[600:])
    rank = np.argsort(labels, axis=1)  # rank[i, j]: position of label j in row i
    Yt = Y[600:].toarray().astype(bool)
    worst_relevant = np.array([rank[i, :100][Yt[i]].max() for i in range(100)])
    best_empty = rank[:, 100:].min(axis=1)
    assert np.mean(best_empty > worst_relevant) > 0.9
    # Label lists only know the labels they saw.
    named = XRLinearClassifier(top_k=5, random_state=0).fit(X[:600], y)
    assert len(named.classes_) == (Y[:600].getnnz(axis=0) > 0).sum()


# -------------------------------------------------------------- sample_weight
@pytest.mark.parametrize("weights, error, match", [
    (-np.ones(400), ValueError, "non-negative"),
    (np.r_[np.ones(399), np.nan], ValueError, "NaN"),
    (np.r_[np.ones(399), np.inf], ValueError, "infinity"),
    (np.ones(300), ValueError, r"shape \(300,\); expected \(400,\)"),
    (np.ones((400, 2)), ValueError, "shape"),
    (np.zeros(400), ValueError, "zero for every row"),
    (["a"] * 400, TypeError, "numbers"),
])
def test_bad_sample_weight(data, weights, error, match):
    X, Y = data
    with pytest.raises(error, match=match):
        XRLinearClassifier().fit(X, Y, sample_weight=weights)


def test_sample_weight_scales_the_cost(data):
    X, Y = data
    twice = XRLinearClassifier(top_k=5, random_state=0).fit(
        X, Y, sample_weight=np.full(X.shape[0], 2.0))
    c2 = XRLinearClassifier(top_k=5, C=2.0, random_state=0).fit(X, Y)
    one = XRLinearClassifier(top_k=5, random_state=0).fit(X, Y)
    for Wa, Wb in zip(twice.coef_, c2.coef_):
        assert (Wa != Wb).nnz == 0
    assert any((Wa != Wb).nnz for Wa, Wb in zip(twice.coef_, one.coef_))
    scalar = XRLinearClassifier(top_k=5, random_state=0).fit(X, Y, sample_weight=2)
    assert_same_ranking(scalar, X, twice.predict_topk(X))


def test_zero_sample_weight_leaves_the_row_out(data):
    X, Y = data
    weights = np.ones(X.shape[0])
    weights[::7] = 0
    keep = weights > 0
    a = XRLinearClassifier(top_k=5, random_state=0).fit(X, Y, sample_weight=weights)
    b = XRLinearClassifier(top_k=5, random_state=0).fit(X[keep], Y[keep])
    assert a.tree_.equals(b.tree_)
    for Wa, Wb in zip(a.coef_, b.coef_):
        assert (Wa != Wb).nnz == 0


# --------------------------------------------------------------------- score
def test_score_is_precision_at_1(data):
    X, Y = data
    train, test = slice(0, 300), slice(300, None)
    assert (Y[train].getnnz(axis=0) > 0).all()
    model = XRLinearClassifier(top_k=5, random_state=0).fit(X[train], Y[train])
    Xt, Yt = X[test], Y[test]
    labels, _ = model.predict_topk(Xt)
    expected = precision_at_k(Yt, model.decision_function(Xt), k=1)
    manual = np.mean(Yt[np.arange(Xt.shape[0]), labels[:, 0]].A1)
    assert model.score(Xt, Yt) == pytest.approx(expected) == pytest.approx(manual)
    assert 0.5 < expected < 1
    assert model.score(Xt, Yt.toarray()) == pytest.approx(expected)
    # Label lists: y is mapped to the columns through classes_.
    y = [[str(NAMES[j]) for j in row.indices] for row in Y]
    named = XRLinearClassifier(top_k=5, random_state=0).fit(X[train], y[train])
    assert named.score(Xt, y[test]) == pytest.approx(expected)
