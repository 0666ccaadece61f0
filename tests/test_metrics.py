"""Metrics against a straightforward per-row reference implementation."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.multiclass import OneVsRestClassifier

from skxmr.metrics import (
    coverage_at_k,
    label_propensity,
    make_topk_scorer,
    ndcg_at_k,
    precision_at_k,
    psprecision_at_k,
    recall_at_k,
    topk_report,
)

# ---------------------------------------------------------------------------
# Reference: plain Python, one row at a time, straight from the definitions.
# ---------------------------------------------------------------------------


def ref_ranking(scores_row, stored_mask_row, k):
    """Candidates sorted by (-score, index); only stored entries are candidates."""
    cands = [j for j in range(len(scores_row)) if stored_mask_row[j]]
    cands.sort(key=lambda j: (-scores_row[j], j))
    return cands[:k]


def ref_metrics(Y, S, mask, k, propensity):
    n, L = Y.shape
    p_sum = r_sum = n_sum = 0.0
    psp_num = psp_den = 0.0
    found_labels = set()
    for i in range(n):
        true = {j for j in range(L) if Y[i, j]}
        top = ref_ranking(S[i], mask[i], k)
        hits = [1 if j in true else 0 for j in top]
        p_sum += sum(hits) / k
        r_sum += sum(hits) / len(true) if true else 0.0
        dcg = sum(h / math.log2(pos + 2) for pos, h in enumerate(hits))
        idcg = sum(1 / math.log2(pos + 2) for pos in range(min(k, len(true))))
        n_sum += dcg / idcg if idcg > 0 else 0.0
        psp_num += sum(1 / propensity[j] for j in top if j in true)
        psp_den += sum(sorted((1 / propensity[j] for j in true), reverse=True)[:k])
        found_labels |= {j for j in top if j in true}
    relevant = {j for j in range(L) if Y[:, j].any()}
    return {
        "P": p_sum / n,
        "R": r_sum / n,
        "nDCG": n_sum / n,
        "PSP": psp_num / psp_den if psp_den > 0 else 0.0,
        "cov": len(found_labels) / len(relevant) if relevant else 0.0,
    }


def random_problem(rng, n=40, L=12, density=0.15, empty_rows=3, levels=4):
    Y = (rng.random((n, L)) < density).astype(np.int8)
    Y[:empty_rows] = 0  # rows without labels
    # Few distinct score levels -> many ties.
    S = rng.integers(0, levels, size=(n, L)).astype(np.float64) / levels
    return Y, S


METRICS = {
    "P": precision_at_k,
    "R": recall_at_k,
    "nDCG": ndcg_at_k,
    "cov": coverage_at_k,
}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 5, 20])
def test_dense_scores_match_reference(seed, k):
    rng = np.random.default_rng(seed)
    Y, S = random_problem(rng)
    prop = label_propensity(Y)
    ref = ref_metrics(Y, S, np.ones_like(S, dtype=bool), k, prop)
    for name, fn in METRICS.items():
        assert fn(Y, S, k=k) == pytest.approx(ref[name], abs=1e-12), name
    assert psprecision_at_k(Y, S, k=k, propensity=prop) == pytest.approx(ref["PSP"])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 5, 8])
def test_sparse_scores_match_reference(seed, k):
    """Sparse scores: only stored entries rank; rows may hold fewer than k."""
    rng = np.random.default_rng(100 + seed)
    Y, S = random_problem(rng)
    mask = rng.random(S.shape) < 0.3
    mask[5] = False  # a row with nothing scored
    S = np.where(mask, S - 0.5, 0.0)  # stored negative and zero-valued scores too
    S_sparse = sp.csr_matrix(S)
    S_sparse = sp.csr_matrix((S[mask], np.nonzero(mask)), shape=S.shape)  # keeps 0s
    prop = label_propensity(Y)
    ref = ref_metrics(Y, S, mask, k, prop)
    for name, fn in METRICS.items():
        assert fn(sp.csr_matrix(Y), S_sparse, k=k) == pytest.approx(ref[name]), name
    assert psprecision_at_k(Y, S_sparse, k=k, propensity=prop) == pytest.approx(
        ref["PSP"]
    )


def test_pair_form_equals_sparse_form():
    rng = np.random.default_rng(7)
    Y, S = random_problem(rng, n=30, L=20)
    S_sparse = sp.csr_matrix(S * (rng.random(S.shape) < 0.4))
    # Build the (indices, scores) pair, shuffled within rows, padded with -1.
    m = 12
    idx = np.full((30, m), -1)
    val = np.zeros((30, m))
    for i in range(30):
        row = S_sparse.getrow(i)
        order = rng.permutation(row.nnz)
        idx[i, : row.nnz] = row.indices[order]
        val[i, : row.nnz] = row.data[order]
    for k in (1, 3, 5, 12):
        for fn in METRICS.values():
            assert fn(Y, (idx, val), k=k) == fn(Y, S_sparse, k=k)
        assert psprecision_at_k(Y, (idx, val), k=k) == psprecision_at_k(
            Y, S_sparse, k=k
        )


def test_ties_break_towards_smaller_label_index():
    y_true = np.array([[0, 1, 0, 0]])
    scores = np.array([[0.5, 0.5, 0.5, 0.1]])
    assert precision_at_k(y_true, scores, k=1) == 0.0  # label 0 ranks first
    assert precision_at_k(y_true, scores, k=2) == 0.5
    # The same in sparse form, whatever the stored order.
    S = sp.csr_matrix(
        (np.array([0.5, 0.5, 0.5]), np.array([2, 1, 0]), np.array([0, 3])),
        shape=(1, 4),
    )
    assert precision_at_k(y_true, S, k=1) == 0.0
    assert precision_at_k(y_true, S, k=2) == 0.5


def test_hand_checked_values():
    y_true = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]))
    scores = np.array(
        [[0.9, 0.8, 0.7, 0.0], [0.3, 0.2, 0.1, 0.0], [1.0, 0.0, 0.0, 0.0]]
    )
    # Row 0: top-3 = 0, 1, 2 -> hits 1,0,1. Row 1: top-3 = 0,1,2 -> none. Row 2: empty.
    assert precision_at_k(y_true, scores, k=3) == pytest.approx((2 / 3) / 3)
    assert recall_at_k(y_true, scores, k=3) == pytest.approx(1 / 3)
    row0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(y_true, scores, k=3) == pytest.approx(row0 / 3)
    assert coverage_at_k(y_true, scores, k=3) == pytest.approx(2 / 3)
    prop = np.array([0.5, 0.5, 0.25, 0.1])
    gained = 1 / 0.5 + 1 / 0.25
    best = (1 / 0.25 + 1 / 0.5) + 1 / 0.1
    assert psprecision_at_k(y_true, scores, k=3, propensity=prop) == pytest.approx(
        gained / best
    )
    assert psprecision_at_k(
        y_true, scores, k=3, propensity=prop, normalize=False
    ) == pytest.approx(gained / 9)


def test_label_propensity_formula():
    rng = np.random.default_rng(0)
    Y = (rng.random((200, 30)) < 0.1).astype(float)
    A, B = 0.6, 2.6
    n_l = Y.sum(axis=0)
    C = (np.log(200) - 1) * (B + 1) ** A
    expected = 1 / (1 + C * (n_l + B) ** (-A))
    np.testing.assert_allclose(label_propensity(sp.csr_matrix(Y), A=A, B=B), expected)
    # More frequent labels have larger propensities.
    order = np.argsort(n_l)
    assert np.all(np.diff(label_propensity(Y)[order]) >= 0)


def test_topk_report_matches_individual_metrics():
    rng = np.random.default_rng(3)
    Y, S = random_problem(rng, n=50, L=25)
    prop = label_propensity(Y)
    report = topk_report(Y, S, ks=(5, 1, 3), propensity=prop)
    for k in (1, 3, 5):
        assert report[f"P@{k}"] == precision_at_k(Y, S, k)
        assert report[f"R@{k}"] == recall_at_k(Y, S, k)
        assert report[f"nDCG@{k}"] == ndcg_at_k(Y, S, k)
        assert report[f"cov@{k}"] == coverage_at_k(Y, S, k)
        assert report[f"PSP@{k}"] == psprecision_at_k(Y, S, k, propensity=prop)


def test_perfect_ranking_scores_one():
    rng = np.random.default_rng(5)
    Y = (rng.random((30, 10)) < 0.2).astype(np.float32)
    Y[:, 0] = 1  # no empty rows
    S = Y + rng.random(Y.shape) * 0.1
    k = int(Y.sum(axis=1).min())
    assert precision_at_k(Y, S, k=k) == 1.0
    assert ndcg_at_k(Y, S, k=5) == pytest.approx(1.0)
    assert psprecision_at_k(Y, S, k=5) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "y_score, match",
    [
        (np.array([[np.nan, 0.0, 1.0]]), "NaN"),
        (sp.csr_matrix(np.array([[np.inf, 0.0, 1.0]])), "NaN"),
        (np.zeros((1, 4)), "shape"),
        (sp.csr_matrix((2, 3)), "shape"),
        ((np.array([[0, 0]]), np.array([[1.0, 0.5]])), "twice"),
        ((np.array([[0, 3]]), np.array([[1.0, 0.5]])), r"\[0, 3\)"),
        ((np.array([[0, 1]]), np.array([[1.0]])), "same shape"),
        ((np.array([[0.0, 1.0]]), np.array([[1.0, 0.5]])), "integers"),
    ],
)
def test_bad_scores_raise(y_score, match):
    with pytest.raises(ValueError, match=match):
        precision_at_k(np.array([[1, 0, 0]]), y_score, k=1)


def test_bad_y_true_and_k_raise():
    with pytest.raises(ValueError, match="indicator"):
        precision_at_k([["a", "b"]], np.zeros((1, 2)), k=1)
    with pytest.raises(ValueError, match="NaN"):
        precision_at_k(np.array([[np.nan, 1.0]]), np.zeros((1, 2)), k=1)
    with pytest.raises(ValueError, match="k"):
        precision_at_k(np.eye(2), np.eye(2), k=0)
    with pytest.raises(ValueError, match="propensity"):
        psprecision_at_k(np.eye(2), np.eye(2), k=1, propensity=[1.0, 0.0])
    with pytest.raises(ValueError, match="propensity"):
        psprecision_at_k(np.eye(2), np.eye(2), k=1, propensity=[1.0])


def test_no_rows_and_no_relevant_labels():
    empty = sp.csr_matrix((0, 4))
    assert precision_at_k(empty, sp.csr_matrix((0, 4)), k=3) == 0.0
    nothing = np.zeros((3, 4))
    assert precision_at_k(nothing, np.ones((3, 4)), k=2) == 0.0
    assert recall_at_k(nothing, np.ones((3, 4)), k=2) == 0.0
    assert coverage_at_k(nothing, np.ones((3, 4)), k=2) == 0.0


def test_inputs_are_not_modified():
    rng = np.random.default_rng(11)
    Y, S = random_problem(rng)
    Y_sparse = sp.csr_matrix(Y)
    S_sparse = sp.csr_matrix(S)
    before = (Y_sparse.data.copy(), S_sparse.data.copy(), S.copy())
    precision_at_k(Y_sparse, S_sparse, k=3)
    precision_at_k(Y_sparse, S, k=3)
    np.testing.assert_array_equal(Y_sparse.data, before[0])
    np.testing.assert_array_equal(S_sparse.data, before[1])
    np.testing.assert_array_equal(S, before[2])


def test_large_input_is_vectorised():
    """200k rows in a sparse top-10 form: a per-row Python loop would take minutes."""
    rng = np.random.default_rng(0)
    n, L, k = 200_000, 50_000, 10

    def random_rows(m, values):
        cols = np.sort(rng.integers(0, L, size=(n, m)), axis=1)
        M = sp.csr_matrix((values, cols.ravel(), np.arange(0, n * m + 1, m)), (n, L))
        M.sum_duplicates()
        return M

    Y = random_rows(5, np.ones(n * 5))
    S = random_rows(k, rng.random(n * k))
    report = topk_report(Y, S, ks=(1, 3, 5))
    assert 0.0 <= report["P@5"] <= 1.0


# ---------------------------------------------------------------------------
# Scorers
# ---------------------------------------------------------------------------


class _ListLabelsRanker(ClassifierMixin, BaseEstimator):
    """Scores labels by their training frequency plus a per-feature lookup."""

    def fit(self, X, y):
        from sklearn.preprocessing import MultiLabelBinarizer

        self._binarizer = MultiLabelBinarizer(sparse_output=True)
        Y = self._binarizer.fit_transform(y)
        self.classes_ = self._binarizer.classes_
        self.coef_ = (sp.csr_matrix(X).T @ Y).toarray()
        return self

    def decision_function(self, X):
        return sp.csr_matrix(np.asarray(X) @ self.coef_)


def test_scorer_maps_label_lists_through_classes():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = [["cat"], ["dog", "bird"], ["cat"], ["dog"]]
    model = _ListLabelsRanker().fit(X, y)
    scorer = make_topk_scorer("precision", k=1)
    assert scorer(model, X, y) == 1.0
    # Unknown test labels have no column; wrong top-1 lowers precision.
    assert scorer(model, X, [["dog"], ["cat"], ["fish"], ["cat"]]) == 0.0
    assert repr(scorer) == "make_topk_scorer('precision', k=1)"


def test_scorer_in_grid_search_and_cross_val_score():
    rng = np.random.default_rng(0)
    n, d, L = 120, 10, 5
    W = rng.normal(size=(d, L))
    X = rng.normal(size=(n, d))
    Y = (X @ W > 1.0).astype(int)
    Y[Y.sum(axis=1) == 0, 0] = 1
    scorer = make_topk_scorer("precision", k=1)
    search = GridSearchCV(
        OneVsRestClassifier(LogisticRegression()),
        {"estimator__C": [1e-4, 10.0]},
        scoring={"p1": scorer, "ndcg3": make_topk_scorer("ndcg", k=3)},
        refit="p1",
        cv=KFold(3),
        n_jobs=2,
    )
    search.fit(X, Y)
    assert search.best_params_ == {"estimator__C": 10.0}
    manual = precision_at_k(Y, search.best_estimator_.decision_function(X), k=1)
    assert scorer(search.best_estimator_, X, Y) == manual
    scores = cross_val_score(
        OneVsRestClassifier(LogisticRegression()), X, Y, scoring=scorer, cv=3
    )
    assert scores.shape == (3,) and np.all(scores > 0.5)


def test_make_topk_scorer_validates():
    with pytest.raises(ValueError, match="metric"):
        make_topk_scorer("accuracy", k=1)
    with pytest.raises(ValueError, match="k"):
        make_topk_scorer("precision", k=0)
