"""scikit-learn model selection with every form of y that fit takes (integer cv),
for every skxmr estimator and inside a Pipeline; tree parameters tuned from a
default model; pandas targets."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_score,
    cross_validate,
    learning_curve,
    validation_curve,
)
from sklearn.pipeline import Pipeline

import skxmr
from skxmr import CalibratedXMRClassifier, LabelIndexer, XRLinearClassifier
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import make_topk_scorer

pd = pytest.importorskip("pandas")

P_AT_3 = make_topk_scorer("precision", k=3)


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(240, 200, 24, random_state=0)
    return X, Y


def _forms(Y):
    names = [f"t{j:02d}" for j in range(Y.shape[1])]
    first = np.array([row.indices[0] if row.nnz else 0 for row in Y])
    return {
        "sparse": Y,
        "dense": Y.toarray().astype(np.int8),
        "lists": [[names[j] for j in row.indices] for row in Y],
        "tuples": [tuple(int(j) for j in row.indices) for row in Y],
        "multiclass": np.array([names[j] for j in first]),
        "series": pd.Series([names[j] for j in first]),
        "frame": pd.DataFrame(Y.toarray().astype(int), columns=names),
    }


FORMS = ["sparse", "dense", "lists", "tuples", "multiclass", "series", "frame"]


def _xr(**params):
    return XRLinearClassifier(top_k=3, random_state=0, **params)


def _splits_score(estimator, X, y):
    """cross_val_score(cv=3) against the same folds (KFold(3)) by hand."""
    scores = []
    rows = np.arange(X.shape[0])
    for train, test in KFold(3).split(rows):
        take = (lambda v, idx: v.iloc[idx] if hasattr(v, "iloc") else (
            [v[i] for i in idx] if isinstance(v, list) else v[idx]))
        model = clone(estimator).fit(X[train], take(y, train))
        scores.append(P_AT_3(model, X[test], take(y, test)))
    return np.array(scores)


@pytest.mark.parametrize("form", FORMS)
def test_cross_val_score_with_integer_cv_is_kfold(data, form):
    X, Y = data
    y = _forms(Y)[form]
    if form == "sparse":
        # scikit-learn's own parameter validation of cross_val_score,
        # cross_validate, learning_curve and validation_curve refuses a sparse
        # y before the estimator is involved (searches take it: see below);
        # the documented workaround is the dense indicator.
        with pytest.raises(ValueError, match="'y' parameter of cross_val_score"):
            cross_val_score(_xr(), X, y, cv=3)
        y = y.toarray()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        got = cross_val_score(_xr(), X, y, cv=3, scoring=P_AT_3)
        expected = _splits_score(_xr(), X, y)
    np.testing.assert_allclose(got, expected)
    assert got.min() > 0.3  # the folds learnt something


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("search", ["grid", "random", "halving"])
def test_searches_take_every_form_of_y(data, form, search):
    X, Y = data
    y = _forms(Y)[form]
    grid = {"C": [0.5, 2.0], "indexer__branching_factor": [2, 4]}
    cls = {"grid": GridSearchCV, "halving": HalvingGridSearchCV,
           "random": lambda est, grid, **kw: RandomizedSearchCV(
               est, grid, n_iter=3, random_state=0, **kw)}[search]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        found = cls(_xr(), grid, cv=3).fit(X, y)
    assert set(found.best_params_) == set(grid)
    best = found.best_estimator_
    assert (best.indexer.branching_factor
            == found.best_params_["indexer__branching_factor"])
    if search == "grid":  # the search's score is the mean of the folds'
        scores = cross_val_score(clone(_xr()).set_params(**found.best_params_),
                                 X, y.toarray() if sp.issparse(y) else y, cv=3)
        assert found.best_score_ == pytest.approx(scores.mean())


@pytest.mark.parametrize("form", ["lists", "multiclass", "frame"])
def test_cross_validate_learning_and_validation_curves(data, form):
    X, Y = data
    y = _forms(Y)[form]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        result = cross_validate(_xr(), X, y, cv=3, scoring={"p3": P_AT_3},
                                return_train_score=True, return_estimator=True)
        assert result["test_p3"].shape == (3,) and len(result["estimator"]) == 3
        assert (result["train_p3"] >= result["test_p3"] - 0.05).all()
        sizes, train, test = learning_curve(_xr(), X, y, cv=3,
                                            train_sizes=[0.5, 1.0], scoring=P_AT_3)
        assert train.shape == test.shape == (2, 3)
        np.testing.assert_allclose(test[-1], cross_val_score(_xr(), X, y, cv=3,
                                                             scoring=P_AT_3))
        train, test = validation_curve(_xr(), X, y, param_name="C",
                                       param_range=[0.1, 1.0], cv=3)
        assert test.shape == (2, 3)


def test_pipeline_on_label_lists_with_default_indexer():
    texts, labels = skxmr.datasets.load_debian_debtags(subset="train",
                                                       return_X_y=True)
    texts, labels = texts[:300], labels[:300]
    pipe = Pipeline([("tfidf", TfidfVectorizer()),
                     ("xr", XRLinearClassifier(top_k=5, random_state=0))])
    grid = {"xr__indexer__branching_factor": [2, 8],
            "xr__indexer__max_leaf_size": [4, 100]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        search = GridSearchCV(pipe, grid, cv=2, scoring=P_AT_3).fit(texts, labels)
        assert cross_val_score(pipe, texts, labels, cv=2).shape == (2,)
    assert pipe.get_params()["xr__indexer"] is None  # the search changed a clone
    trees = {}
    for params in search.cv_results_["params"]:
        model = clone(pipe).set_params(**params).fit(texts, labels)
        trees[tuple(sorted(params.items()))] = model[-1].tree_
    sizes = {key: tuple(tree.level_sizes) for key, tree in trees.items()}
    assert len(set(sizes.values())) == 4  # four different trees
    for key, tree in trees.items():
        params = dict(key)
        bf = params["xr__indexer__branching_factor"]
        leaf = params["xr__indexer__max_leaf_size"]
        assert tree.level_sizes[0] <= bf
        for level in range(tree.n_levels - 1):
            assert tree.children_counts(level).max() <= bf
        assert tree.leaf_sizes().max() <= leaf


def _run_tool(tool, model, X, y, grid):
    """Run one model-selection tool with an integer cv; return what it found."""
    if tool == "cross_val_score":
        return cross_val_score(model, X, y, cv=2, scoring=P_AT_3)
    if tool == "cross_validate":
        return cross_validate(model, X, y, cv=2)["test_score"]
    if tool == "learning_curve":
        return learning_curve(model, X, y, cv=2, train_sizes=[0.6, 1.0])[2]
    if tool == "validation_curve":
        name, values = next(iter(grid.items()))
        return validation_curve(model, X, y, param_name=name, param_range=values,
                                cv=2)[1]
    cls = {"grid": GridSearchCV, "halving": HalvingGridSearchCV,
           "random": lambda est, grid, **kw: RandomizedSearchCV(
               est, grid, n_iter=2, random_state=0, **kw)}[tool]
    search = cls(model, grid, cv=2).fit(X, y)
    return search.cv_results_["mean_test_score"]


TOOLS = ["cross_val_score", "cross_validate", "learning_curve", "validation_curve",
         "grid", "random", "halving"]


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("which", ["calibrated", "calibrated_pipeline",
                                   "xtransformer"])
def test_every_estimator_in_every_tool(which, tool, data, request):
    if which == "xtransformer":
        from skxmr import XTransformerClassifier

        tiny_encoder = request.getfixturevalue("tiny_encoder")
        texts, tags = request.getfixturevalue("debtags_small")[:2]
        X, y = texts[:120], tags[:120]  # texts and label lists
        model = XTransformerClassifier(tiny_encoder, n_neighbors=3, random_state=0)
        grid = {"ranker__indexer__max_leaf_size": [8, 100]}
    elif which == "calibrated":
        X, Y = data
        y = _forms(Y)["lists"]
        model = CalibratedXMRClassifier(cv=2, random_state=0)
        grid = {"estimator__indexer__max_leaf_size": [4, 100]}
    else:
        texts, tags = skxmr.datasets.load_debian_debtags(subset="train",
                                                         return_X_y=True)
        X, y = texts[:200], tags[:200]
        model = Pipeline([("tfidf", TfidfVectorizer()),
                          ("cal", CalibratedXMRClassifier(cv=2, random_state=0))])
        grid = {"cal__estimator__indexer__branching_factor": [2, 4]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        scores = np.asarray(_run_tool(tool, model, X, y, grid))
    assert scores.size >= 2 and np.isfinite(scores).all()
    assert scores.max() > 0.05  # the folds learnt something


# ------------------------------------------------- tree parameters (item 3)
def test_nested_params_of_the_default_indexer():
    model = XRLinearClassifier()
    params = model.get_params(deep=True)
    assert params["indexer"] is None
    assert params["indexer__branching_factor"] == LabelIndexer().branching_factor
    assert set(LabelIndexer().get_params()) <= {
        key.partition("__")[2] for key in params if key.startswith("indexer__")}
    assert "indexer__branching_factor" not in model.get_params(deep=False)
    model.set_params(indexer__branching_factor=8, indexer__max_leaf_size=5)
    assert isinstance(model.indexer, LabelIndexer)
    assert (model.indexer.branching_factor, model.indexer.max_leaf_size) == (8, 5)
    twin = clone(model)
    assert twin.indexer is not model.indexer
    assert twin.indexer.get_params() == model.indexer.get_params()
    # a given indexer is changed, not replaced
    given = LabelIndexer(max_leaf_size=7)
    model = XRLinearClassifier(indexer=given).set_params(indexer__branching_factor=3)
    assert model.indexer is given and given.branching_factor == 3
    # indexer and indexer__ together: the new indexer gets the nested value
    model = XRLinearClassifier().set_params(indexer=None, indexer__max_leaf_size=9)
    assert model.indexer.max_leaf_size == 9


def test_nested_params_errors(data):
    X, Y = data
    with pytest.raises(ValueError, match="Invalid parameter 'no_such'"):
        XRLinearClassifier().set_params(indexer__no_such=1)
    tree = _xr().fit(X, Y).tree_
    with pytest.raises(ValueError, match="indexer is a LabelTree"):
        XRLinearClassifier(indexer=tree).set_params(indexer__branching_factor=2)
    with pytest.raises(ValueError, match="Invalid parameter"):
        XRLinearClassifier().set_params(ranker__C=1.0)


def test_default_indexer_set_explicitly_fits_the_same_model(data):
    X, Y = data
    plain = _xr().fit(X, Y)
    same = _xr().set_params(indexer__max_leaf_size=100).fit(X, Y)
    assert same.tree_.equals(plain.tree_)
    for a, b in zip(plain.coef_, same.coef_):
        assert (a != b).nnz == 0
    other = _xr().set_params(indexer__max_leaf_size=4,
                             indexer__branching_factor=2).fit(X, Y)
    assert not other.tree_.equals(plain.tree_)
    assert other.tree_.level_sizes[0] == 2
    assert other.tree_.n_levels > plain.tree_.n_levels


def test_nested_defaults_of_the_other_estimators():
    from skxmr import XTransformerClassifier

    model = CalibratedXMRClassifier().set_params(estimator__C=2.0,
                                                 estimator__indexer__max_leaf_size=6)
    assert model.estimator.C == 2.0 and model.estimator.indexer.max_leaf_size == 6
    assert "estimator__indexer__branching_factor" in CalibratedXMRClassifier(
        ).get_params()
    model = XTransformerClassifier().set_params(ranker__beam_size=4,
                                                indexer__branching_factor=4)
    assert model.ranker.beam_size == 4 and model.indexer.branching_factor == 4
    assert clone(model).get_params()["ranker__beam_size"] == 4


# --------------------------------------------------------- pandas (item 6)
def test_frame_y_keeps_its_column_names(data):
    X, Y = data
    frame = _forms(Y)["frame"]
    model = _xr().fit(X, frame)
    np.testing.assert_array_equal(model.classes_, frame.columns)
    reference = _xr().fit(X, Y)
    labels = reference.predict_topk(X[:20])[0]
    np.testing.assert_array_equal(model.predict_topk(X[:20])[0], labels)
    pred = model.predict(X[:20])
    assert isinstance(pred, pd.DataFrame)
    assert list(pred.columns) == list(frame.columns)
    np.testing.assert_array_equal(pred.to_numpy(), reference.predict(X[:20]).toarray())
    assert pred.dtypes.unique().tolist() == [frame.to_numpy().dtype]
    thresholded = model.predict(X[:20], threshold=0.5)
    assert isinstance(thresholded, pd.DataFrame)
    assert thresholded.to_numpy().sum() <= pred.to_numpy().sum()
    # decision_function stays the sparse top-k, in the columns of classes_
    D = model.decision_function(X[:20])
    assert sp.issparse(D) and D.shape == (20, Y.shape[1])
    # score and the top-k scorers match the columns by name, in any order
    shuffled = frame[frame.columns[::-1]]
    assert model.score(X, shuffled) == model.score(X, frame) == reference.score(X, Y)
    assert P_AT_3(model, X, shuffled) == pytest.approx(P_AT_3(reference, X, Y))
    with pytest.raises(ValueError, match="not the labels of the model"):
        model.score(X, frame.rename(columns={"t00": "zz"}))


def test_frame_x_index_and_feature_names(data):
    X, Y = data
    columns = [f"w{j}" for j in range(X.shape[1])]
    Xf = pd.DataFrame(X.toarray(), columns=columns,
                      index=[f"row{i}" for i in range(X.shape[0])])
    frame = _forms(Y)["frame"]
    model = _xr().fit(Xf, frame)
    np.testing.assert_array_equal(model.feature_names_in_, columns)
    pred = model.predict(Xf.iloc[:5])
    assert list(pred.index) == [f"row{i}" for i in range(5)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        assert list(model.predict(X[:5]).index) == list(range(5))


def test_series_y_keeps_its_values_and_bool_int_frames(data):
    X, Y = data
    series = _forms(Y)["series"]
    model = _xr().fit(X, series)
    np.testing.assert_array_equal(model.classes_, np.unique(series))
    assert isinstance(model.predict(X[:3]), np.ndarray)
    mixed = pd.DataFrame({"a": Y[:, 0].toarray().ravel().astype(bool),
                          "b": Y[:, 1].toarray().ravel().astype(int),
                          7: Y[:, 2].toarray().ravel().astype(float)})
    model = _xr().fit(X, mixed)
    assert model.classes_.tolist() == ["a", "b", 7]
    assert list(model.predict(X[:3]).columns) == ["a", "b", 7]
    with pytest.raises(ValueError, match="repeated column names"):
        _xr().fit(X, pd.DataFrame(Y[:, :2].toarray(), columns=["a", "a"]))


def test_frame_targets_survive_save_and_load(data, tmp_path):
    X, Y = data
    frame = _forms(Y)["frame"]
    model = _xr().fit(X, frame)
    skxmr.save(model, tmp_path / "model")
    loaded = skxmr.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    pd.testing.assert_frame_equal(loaded.predict(X[:10]), model.predict(X[:10]))
    state = model._targets.get_state()
    assert state["kind"] == "frame"
    again = type(model._targets).from_state(state)
    np.testing.assert_array_equal(again.classes_, model.classes_)
    with pytest.raises(ValueError, match="repeat"):
        type(model._targets).from_state({**state, "classes": np.array(["a", "a"])})


def test_frame_targets_with_predict_dask(data):
    pytest.importorskip("dask")
    import dask
    import dask.array  # noqa: F401

    X, Y = data
    model = _xr().fit(X, _forms(Y)["frame"])
    out = skxmr.predict_dask(model, dask.array.from_array(X.toarray(), chunks=100),
                             method="predict")
    np.testing.assert_array_equal(dask.compute(out)[0], model.predict(X).to_numpy())


def test_frame_targets_of_the_other_estimators(data, tiny_encoder, debtags_small):
    from sklearn.preprocessing import MultiLabelBinarizer

    from skxmr import XTransformerClassifier

    X, Y = data
    frame = _forms(Y)["frame"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        calibrated = CalibratedXMRClassifier(_xr(), cv=2, random_state=0).fit(X, frame)
    pred = calibrated.predict(X[:5], threshold=0.2)
    assert isinstance(pred, pd.DataFrame) and list(pred.columns) == list(frame.columns)
    texts, tags = debtags_small[0][:120], debtags_small[1][:120]
    binarizer = MultiLabelBinarizer().fit(tags)
    tag_frame = pd.DataFrame(binarizer.transform(tags), columns=binarizer.classes_)
    model = XTransformerClassifier(tiny_encoder, n_neighbors=3, random_state=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        model.fit(texts, tag_frame)
    pred = model.predict(texts[:4])
    assert isinstance(pred, pd.DataFrame)
    assert list(pred.columns) == list(binarizer.classes_)
    np.testing.assert_array_equal(model.classes_, binarizer.classes_)


@pytest.mark.parametrize("form, scoring", [("dense", "f1_samples"),
                                           ("multiclass", "accuracy")])
def test_sklearn_scorers_on_predict(data, form, scoring):
    # Scorers that call predict work without the "classifier" estimator type.
    from sklearn.metrics import get_scorer

    X, Y = data
    y = _forms(Y)[form]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*labels have an all-zero vector")
        warnings.filterwarnings("ignore", ".*ill-defined")
        got = cross_val_score(_xr(), X, y, cv=3, scoring=scoring)
        scorer = get_scorer(scoring)
        expected = [scorer(clone(_xr()).fit(X[train], y[train]), X[test], y[test])
                    for train, test in KFold(3).split(X)]
    np.testing.assert_allclose(got, expected)
    assert min(got) > 0.1
