"""XRLinearClassifier (work in progress, issue 4): what works so far."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr._postprocess import get_post_processor
from skxmr._xrlinear import XRLinearClassifier
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import precision_at_k


def exhaustive_topk(model, X, k):
    """Score every node of every level, combine along paths, rank all labels."""
    tree = model.tree_
    pp = get_post_processor(model.post_processor)
    Xb = sp.hstack([X, np.full((X.shape[0], 1), model.bias)]).tocsr()
    path = np.full((X.shape[0], 1), pp.initial, dtype=np.float64)
    for level, W in enumerate(model.coef_, start=1):
        s = (Xb @ W).toarray().astype(np.float64)
        parent_score = path[:, tree.parents(level)]
        path = pp.combine(parent_score, pp.transform(s))
    scores = np.empty_like(path)
    scores[:, tree.label_perm] = path  # columns back to label ids
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape),
                        -scores), axis=1)[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_wide_beam_equals_exhaustive_scoring(xmc_split):
    X, Y, Xt, _ = xmc_split
    model = XRLinearClassifier(beam_size=10_000, top_k=5, random_state=0).fit(X, Y)
    labels, scores = model.predict_topk(Xt)
    ref_labels, ref_scores = exhaustive_topk(model, Xt, 5)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(labels, ref_labels)


def test_beats_label_centroid_baseline(xmc_split):
    from sklearn.preprocessing import normalize

    X, Y, Xt, Yt = xmc_split
    model = XRLinearClassifier(random_state=0).fit(X, Y)
    p1 = precision_at_k(Yt, model.decision_function(Xt), k=1)
    centroid_scores = (Xt @ normalize(Y.T @ X).T).toarray()
    assert p1 > precision_at_k(Yt, centroid_scores, k=1)
    assert p1 > 0.8


def test_same_model_for_any_n_jobs(xmc_split):
    X, Y, _, _ = xmc_split
    a = XRLinearClassifier(random_state=3, n_jobs=1).fit(X, Y)
    b = XRLinearClassifier(random_state=3, n_jobs=2).fit(X, Y)
    assert a.tree_.equals(b.tree_)
    for Wa, Wb in zip(a.coef_, b.coef_):
        assert (Wa != Wb).nnz == 0


def test_label_lists_in_and_out():
    X, Y = make_xmc_classification(600, 1000, 30, random_state=1)
    names = np.array([f"tag{j}" for j in range(30)])
    y = [tuple(names[row.indices]) for row in Y]
    model = XRLinearClassifier(top_k=3, random_state=0).fit(X, y)
    pred = model.predict(X[:5])
    assert len(pred) == 5 and all(len(p) == 3 for p in pred)
    assert set(model.classes_) <= set(names)
    assert model.score(X, y) > 0.8


def test_multiclass_and_dense_targets():
    X, Y = make_xmc_classification(600, 1000, 20, random_state=2)
    first = np.array([row.indices[0] for row in Y])
    model = XRLinearClassifier(random_state=0).fit(X, first)
    assert model.predict(X[:4]).shape == (4,)
    dense = Y.toarray().astype(np.int64)
    out = XRLinearClassifier(top_k=2, random_state=0).fit(X, dense).predict(X[:3])
    assert out.shape == (3, 20) and out.dtype == np.int64
    assert (out.sum(axis=1) == 2).all()


def test_bad_input():
    X, Y = make_xmc_classification(100, 300, 10, random_state=0)
    with pytest.raises(ValueError, match="no positive"):
        XRLinearClassifier().fit(X, sp.csr_matrix(Y.shape))
    with pytest.raises(ValueError, match="rows"):
        XRLinearClassifier().fit(X, Y[:50])
    with pytest.raises(ValueError, match="post_processor"):
        XRLinearClassifier(post_processor="cubic").fit(X, Y)
    with pytest.raises(ValueError):
        XRLinearClassifier(C=-1).fit(X, Y)


@pytest.mark.parametrize("scheme", ["man", "tfn+man"])
def test_matcher_aware_negatives(xmc_split, scheme):
    X, Y, Xt, Yt = xmc_split
    tfn = XRLinearClassifier(random_state=0).fit(X, Y)
    model = XRLinearClassifier(negative_sampling=scheme, random_state=0).fit(X, Y)
    assert model.tree_.equals(tfn.tree_)
    # The top level sees every row whatever the scheme.
    assert (model.coef_[0] != tfn.coef_[0]).nnz == 0
    p1 = precision_at_k(Yt, model.predict_topk(Xt), k=1)
    assert p1 >= precision_at_k(Yt, tfn.predict_topk(Xt), k=1) - 0.05


def test_user_tree_and_fitted_indexer(xmc_split):
    from skxmr import LabelIndexer, LabelTree

    X, Y, Xt, _ = xmc_split
    indexer = LabelIndexer(branching_factor=4, max_leaf_size=30, random_state=5).fit(X, Y)
    a = XRLinearClassifier(indexer=indexer, random_state=0).fit(X, Y)
    assert a.tree_.equals(indexer.tree_)
    tree = LabelTree.from_chain(indexer.tree_.to_chain())
    b = XRLinearClassifier(indexer=tree, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(a.predict_topk(Xt)[0], b.predict_topk(Xt)[0])
    with pytest.raises(ValueError, match="labels"):
        XRLinearClassifier(indexer=tree).fit(X, Y[:, :100])


def test_tree_as_assignment_matrices(xmc_split):
    """A user tree given as the chain of assignment matrices (PECOS's layout)
    trains the same model as the same tree given as a LabelTree."""
    X, Y, Xt, _ = xmc_split
    tree = XRLinearClassifier(random_state=0).fit(X, Y).tree_
    chain = tree.to_chain()
    a = XRLinearClassifier(indexer=chain, random_state=1).fit(X, Y)
    b = XRLinearClassifier(indexer=tree, random_state=1).fit(X, Y)
    assert a.tree_.equals(tree)
    for Wa, Wb in zip(a.coef_, b.coef_):
        assert (Wa != Wb).nnz == 0
    np.testing.assert_array_equal(a.predict_topk(Xt)[0], b.predict_topk(Xt)[0])
    bad = [m.copy() for m in chain]
    bad[-1] = bad[-1][:-1]  # one label short of y
    with pytest.raises(ValueError, match="labels"):
        XRLinearClassifier(indexer=bad).fit(X, Y)
