"""XRLinearClassifier inside scikit-learn's composition tools, end to end on the
bundled Debian debtags texts: Pipeline with TfidfVectorizer, GridSearchCV over
nested parameters with a top-k scorer, cross_val_score, clone, set_params, label
lists in and out."""

import pickle
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr import LabelIndexer, XRLinearClassifier
from skxmr.datasets import load_debian_debtags
from skxmr.metrics import make_topk_scorer, precision_at_k

N_DOCS, N_TRAIN = 1500, 1200


@pytest.fixture(scope="module")
def docs():
    texts, labels = load_debian_debtags(subset="train", return_X_y=True)
    order = np.random.RandomState(0).permutation(len(texts))[:N_DOCS]
    texts = [texts[i] for i in order]
    labels = [labels[i] for i in order]
    assert all(isinstance(t, str) for t in texts)
    assert all(isinstance(y, tuple) for y in labels)
    return texts[:N_TRAIN], labels[:N_TRAIN], texts[N_TRAIN:], labels[N_TRAIN:]


def make_pipe(**params):
    return make_pipeline(
        TfidfVectorizer(),
        XRLinearClassifier(LabelIndexer(max_leaf_size=20), top_k=5, random_state=0,
                           **params),
    )


@pytest.fixture(scope="module")
def fitted(docs):
    texts, labels, _, _ = docs
    return make_pipe().fit(texts, labels)


def test_label_lists_in_label_tuples_out(docs, fitted):
    texts, labels, test_texts, test_labels = docs
    model = fitted[-1]
    seen = sorted({label for row in labels for label in row})
    np.testing.assert_array_equal(model.classes_, seen)
    pred = fitted.predict(test_texts)
    assert isinstance(pred, list) and len(pred) == len(test_texts)
    assert all(isinstance(p, tuple) and len(p) == 5 for p in pred)
    assert {label for p in pred for label in p} <= set(seen)
    # Best first: the first label of each tuple is the top-1 of the ranking.
    labels_topk, _ = fitted[-1].predict_topk(fitted[0].transform(test_texts))
    assert [p[0] for p in pred] == list(model.classes_[labels_topk[:, 0]])
    # Far better than always answering the most frequent tag.
    majority = Counter(label for row in labels for label in row).most_common(1)[0][0]
    floor = np.mean([majority in row for row in test_labels])
    p1 = np.mean([p[0] in truth for p, truth in zip(pred, test_labels)])
    assert fitted.score(test_texts, test_labels) == pytest.approx(p1)
    assert p1 > floor + 0.2


def test_multilabel_binarizer_round_trip(docs, fitted):
    texts, labels, test_texts, _ = docs
    mlb = MultiLabelBinarizer(sparse_output=True)
    Y = mlb.fit_transform(labels)
    assert sp.issparse(Y)
    by_indicator = make_pipe().fit(texts, Y)
    np.testing.assert_array_equal(mlb.classes_, fitted[-1].classes_)
    # Same columns, same model: the two forms rank alike.
    Xt = fitted[0].transform(test_texts)
    np.testing.assert_array_equal(by_indicator[-1].predict_topk(Xt)[0],
                                  fitted[-1].predict_topk(Xt)[0])
    P = by_indicator.predict(test_texts)
    assert sp.issparse(P) and P.shape == (len(test_texts), len(mlb.classes_))
    back = mlb.inverse_transform(P)
    assert [set(b) for b in back] == [set(p) for p in fitted.predict(test_texts)]
    # A score threshold gives label sets of varying sizes, in both forms.
    t = 0.5
    by_sets = fitted.predict(test_texts, threshold=t)
    by_rows = mlb.inverse_transform(by_indicator.predict(test_texts, threshold=t))
    assert [set(s) for s in by_sets] == [set(r) for r in by_rows]
    assert len({len(s) for s in by_sets}) > 2


def test_grid_search_nested_params_with_topk_scorer(docs):
    texts, labels, test_texts, test_labels = docs
    grid = {
        "xrlinearclassifier__indexer__branching_factor": [2, 8],
        "xrlinearclassifier__C": [0.5, 2.0],
        "xrlinearclassifier__beam_size": [1, 10],
    }
    scorer = make_topk_scorer("precision", k=3)
    search = GridSearchCV(make_pipe(), grid, scoring=scorer,
                          cv=KFold(3, shuffle=True, random_state=0), n_jobs=2)
    search.fit(texts, labels)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (8,) and np.isfinite(scores).all()
    assert 0.2 < search.best_score_ <= 1
    # Each parameter reached the nested estimators: the trees differ with the
    # branching factor, and a beam of 1 ranks worse than a beam of 10.
    params = search.cv_results_["params"]
    assert len({tuple(sorted(p.items())) for p in params}) == 8
    beam = np.array([p["xrlinearclassifier__beam_size"] for p in params])
    assert scores[beam == 10].mean() > scores[beam == 1].mean()
    best = search.best_estimator_
    model = best[-1]
    assert model.indexer.branching_factor == search.best_params_[
        "xrlinearclassifier__indexer__branching_factor"]
    assert not hasattr(model.indexer, "tree_")  # cloned, never fitted in place
    assert search.score(test_texts, test_labels) == pytest.approx(
        scorer(best, test_texts, test_labels))
    Y = model._targets.transform(test_labels)
    Xt = best[0].transform(test_texts)
    assert search.score(test_texts, test_labels) == pytest.approx(
        precision_at_k(Y, model.decision_function(Xt), k=3))


def test_cross_val_score(docs):
    texts, labels, _, _ = docs
    cv = KFold(3, shuffle=True, random_state=0)
    p3 = cross_val_score(make_pipe(), texts, labels, cv=cv,
                         scoring=make_topk_scorer("precision", k=3))
    p1 = cross_val_score(make_pipe(), texts, labels, cv=cv)  # model.score: P@1
    assert p3.shape == p1.shape == (3,)
    assert np.isfinite(p3).all() and np.isfinite(p1).all()
    assert (p1 > p3).all()  # P@1 > P@3 with ~3.7 tags per package
    assert (p3 > 0.3).all()


def test_clone_refits_to_the_same_model(docs, fitted):
    texts, labels, test_texts, _ = docs
    copy = clone(fitted)
    assert isinstance(copy, Pipeline)
    assert not hasattr(copy[-1], "coef_") and not hasattr(copy[-1].indexer, "tree_")
    assert copy.get_params()["xrlinearclassifier__indexer__max_leaf_size"] == 20
    copy.fit(texts, labels)
    assert copy.predict(test_texts) == fitted.predict(test_texts)
    for Wa, Wb in zip(copy[-1].coef_, fitted[-1].coef_):
        assert (Wa != Wb).nnz == 0
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.predict(test_texts) == fitted.predict(test_texts)


def test_set_params_of_nested_estimators(docs):
    texts, labels, test_texts, _ = docs
    pipe = make_pipe()
    pipe.set_params(tfidfvectorizer__min_df=2,
                    xrlinearclassifier__indexer__branching_factor=4,
                    xrlinearclassifier__indexer__max_leaf_size=10,
                    xrlinearclassifier__top_k=3)
    params = pipe.get_params()
    assert params["xrlinearclassifier__indexer__branching_factor"] == 4
    assert params["xrlinearclassifier__top_k"] == 3
    pipe.fit(texts, labels)
    vocabulary = pipe[0].vocabulary_
    assert len(vocabulary) < len(TfidfVectorizer().fit(texts).vocabulary_)
    model = pipe[-1]
    assert model.n_features_in_ == len(vocabulary)
    tree = model.tree_
    assert tree.leaf_sizes().max() <= 10
    assert tree.children_counts(1).max() <= 4 and tree.n_levels >= 3
    assert all(len(p) == 3 for p in pipe.predict(test_texts))
    # Replacing the whole nested estimator works too.
    pipe.set_params(xrlinearclassifier__indexer=LabelIndexer(max_leaf_size=400))
    n_labels = len({label for row in labels for label in row})
    assert list(pipe.fit(texts, labels)[-1].tree_.level_sizes) == [1, n_labels]
