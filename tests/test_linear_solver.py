"""Batched dual coordinate descent (skxmr._linear_solver.train_binary_nodes)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from skxmr._cython import _solver
from skxmr._linear_solver import train_binary_nodes
from skxmr.utils import openmp_enabled

TIGHT = dict(tol=1e-7, max_iter=100_000)


def _problem(n=200, d=40, density=0.2, seed=0, noise=0.5):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng,
                  dtype=np.float64)
    X.data = np.round(X.data * 4) / 4 + 0.25  # exactly representable in float32
    w = rng.randn(d)
    y = np.where(X @ w + noise * rng.randn(n) > np.median(X @ w), 1, -1)
    return X, y


def _one_node(X, y, cost, **kw):
    n = X.shape[0]
    return train_binary_nodes(X, [0, n], np.arange(n), y, cost, **kw).toarray()[:, 0]


def _rel_err(w, ref):
    return np.abs(w - ref).max() / max(np.abs(ref).max(), 1e-12)


def _primal(w, X, y, cost, bias, loss):
    Xb = sp.hstack([X, np.full((X.shape[0], 1), bias)]).tocsr()
    m = y * (Xb @ w)
    if loss == "squared_hinge":
        terms = np.maximum(0, 1 - m) ** 2
    elif loss == "hinge":
        terms = np.maximum(0, 1 - m)
    else:
        terms = np.logaddexp(0, -m)
    return 0.5 * w @ w + cost @ terms


def _reference_log(X, y, cost, bias):
    """Primal logistic regression optimum by L-BFGS (smooth objective)."""
    Xb = sp.hstack([X, np.full((X.shape[0], 1), bias)]).tocsr()

    def fun(w):
        m = y * (Xb @ w)
        sig = 0.5 * (1 - np.tanh(0.5 * m))  # 1 / (1 + exp(m)), stable
        grad = w - Xb.T @ (cost * y * sig)
        return 0.5 * w @ w + cost @ np.logaddexp(0, -m), grad

    res = minimize(fun, np.zeros(Xb.shape[1]), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=10_000, gtol=1e-10, ftol=1e-15))
    return res.x, res.fun


# --------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge"])
@pytest.mark.parametrize("C, bias, seed", [(1.0, 1.0, 0), (0.3, 2.0, 1), (5.0, 0.5, 2)])
def test_svm_losses_match_liblinear(loss, C, bias, seed):
    X, y = _problem(seed=seed)
    ref = LinearSVC(loss=loss, dual=True, C=C, fit_intercept=True,
                    intercept_scaling=bias, tol=1e-8, max_iter=100_000).fit(X, y)
    ref_w = np.r_[ref.coef_.ravel(), ref.intercept_ / bias]
    w = _one_node(X, y, np.full(len(y), C), loss=loss, bias=bias, random_state=0, **TIGHT)
    assert _rel_err(w, ref_w) < 1e-3
    obj, ref_obj = (_primal(v, X, y, np.full(len(y), C), bias, loss) for v in (w, ref_w))
    assert abs(obj - ref_obj) <= 1e-5 * ref_obj


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge"])
def test_no_bias_matches_liblinear_without_intercept(loss):
    X, y = _problem(seed=3)
    ref = LinearSVC(loss=loss, dual=True, C=0.7, fit_intercept=False, tol=1e-8,
                    max_iter=100_000).fit(X, y)
    w = _one_node(X, y, np.full(len(y), 0.7), loss=loss, bias=0.0, random_state=0,
                  **TIGHT)
    assert w[-1] == 0
    assert _rel_err(w[:-1], ref.coef_.ravel()) < 1e-3


@pytest.mark.parametrize("C, bias, seed", [(1.0, 1.0, 0), (0.2, 3.0, 4)])
def test_log_loss_matches_liblinear_and_primal_optimum(C, bias, seed):
    X, y = _problem(seed=seed)
    cost = np.full(len(y), C)
    ref = LogisticRegression(solver="liblinear", dual=True, C=C, intercept_scaling=bias,
                             tol=1e-10, max_iter=100_000).fit(X, y)
    ref_w = np.r_[ref.coef_.ravel(), ref.intercept_ / bias]
    w = _one_node(X, y, cost, loss="log", bias=bias, random_state=0, **TIGHT)
    assert _rel_err(w, ref_w) < 1e-3
    _, opt = _reference_log(X, y, cost, bias)
    assert abs(_primal(w, X, y, cost, bias, "log") - opt) <= 1e-4 * opt


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge"])
def test_per_instance_costs_match_sample_weight(loss):
    X, y = _problem(seed=5)
    rng = np.random.RandomState(0)
    relevance = rng.uniform(0.5, 2.0, len(y))
    cost = np.where(y > 0, 4.0, 0.5) * relevance  # C_p != C_n, times weights
    ref = LinearSVC(loss=loss, dual=True, C=1.0, intercept_scaling=1.0, tol=1e-8,
                    max_iter=100_000).fit(X, y, sample_weight=cost)
    ref_w = np.r_[ref.coef_.ravel(), ref.intercept_]
    w = _one_node(X, y, cost, loss=loss, random_state=0, **TIGHT)
    assert _rel_err(w, ref_w) < 1e-3


def test_log_loss_with_per_instance_costs_reaches_primal_optimum():
    X, y = _problem(seed=6)
    cost = np.where(y > 0, 3.0, 0.25) * np.random.RandomState(1).uniform(0.5, 2, len(y))
    w = _one_node(X, y, cost, loss="log", bias=1.0, random_state=0, **TIGHT)
    w_opt, opt = _reference_log(X, y, cost, 1.0)
    assert abs(_primal(w, X, y, cost, 1.0, "log") - opt) <= 1e-4 * opt
    assert _rel_err(w, w_opt) < 1e-3


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge", "log"])
def test_default_tol_is_a_good_approximation(loss):
    """tol=0.1 (the published default) stops early, near the optimum."""
    X, y = _problem(n=400, seed=7)
    cost = np.ones(len(y))
    w_tight = _one_node(X, y, cost, loss=loss, random_state=0, **TIGHT)
    W, n_iter = train_binary_nodes(X, [0, len(y)], np.arange(len(y)), y, cost, loss=loss,
                                   random_state=0, return_n_iter=True)
    obj = _primal(W.toarray()[:, 0], X, y, cost, 1.0, loss)
    opt = _primal(w_tight, X, y, cost, 1.0, loss)
    assert n_iter[0] < 100
    assert opt <= obj * (1 + 1e-6) and obj <= 1.05 * opt


# ------------------------------------------------------------- batches, threads


def _batch(seed=0, n_nodes=12, loss_rows=300):
    """Nodes of different sizes over a shared X; rows repeat across nodes."""
    rng = np.random.RandomState(seed)
    X, _ = _problem(n=loss_rows, d=60, seed=seed)
    w_true = rng.randn(n_nodes, 60)
    node_ptr, rows, y = [0], [], []
    for k in range(n_nodes):
        size = rng.randint(1, loss_rows)
        r = np.sort(rng.choice(loss_rows, size, replace=False))
        s = X[r] @ w_true[k]
        lab = np.where(s > np.median(s), 1, -1)
        rows.append(r)
        y.append(lab)
        node_ptr.append(node_ptr[-1] + size)
    rows, y = np.concatenate(rows), np.concatenate(y)
    cost = np.where(y > 0, 2.0, 1.0) * rng.uniform(0.5, 1.5, len(y))
    return X, np.array(node_ptr), rows, y, cost


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge", "log"])
def test_batch_equals_each_node_alone(loss):
    X, node_ptr, rows, y, cost = _batch(seed=1)
    W = train_binary_nodes(X, node_ptr, rows, y, cost, loss=loss, random_state=3).toarray()
    W_tight = train_binary_nodes(X, node_ptr, rows, y, cost, loss=loss, random_state=3,
                                 **TIGHT).toarray()
    for k in range(len(node_ptr) - 1):
        sl = slice(node_ptr[k], node_ptr[k + 1])
        # Node k alone at the same position (empty nodes before it): same seed,
        # so bit-identical.
        ptr = np.r_[np.zeros(k + 1, dtype=int), node_ptr[k + 1] - node_ptr[k]]
        alone = train_binary_nodes(X, ptr, rows[sl], y[sl], cost[sl], loss=loss,
                                   random_state=3).toarray()
        assert not alone[:, :k].any()
        np.testing.assert_array_equal(alone[:, k], W[:, k])
        # Alone as node 0 (another visiting order): same optimum.
        alone0 = _one_node(X[rows[sl]], y[sl], cost[sl], loss=loss, random_state=3,
                           **TIGHT)
        assert _rel_err(alone0, W_tight[:, k]) < 1e-4


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("loss", ["squared_hinge", "hinge", "log"])
def test_threads_give_bit_identical_models(loss):
    X, node_ptr, rows, y, cost = _batch(seed=2, n_nodes=40)
    kw = dict(loss=loss, random_state=7, threshold=0.01)
    W1 = train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=1, **kw)
    for n_threads in (2, 3):
        W2 = train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=n_threads, **kw)
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(W1, attr), getattr(W2, attr))


def test_random_state_controls_visiting_order():
    X, node_ptr, rows, y, cost = _batch(seed=3)
    W_a = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0)
    W_b = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0)
    W_c = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=1)
    W_d = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=np.random.RandomState(0))
    assert (W_a != W_b).nnz == 0
    assert (W_a != W_c).nnz > 0  # another order, another approximate solution
    assert np.abs(W_a - W_c).max() < 0.2 * np.abs(W_a).max()
    assert W_d.shape == W_a.shape


# ------------------------------------------------------------------ output form


def test_output_format_and_threshold():
    X, node_ptr, rows, y, cost = _batch(seed=4)
    W0 = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0)
    assert sp.isspmatrix_csc(W0) and W0.dtype == np.float32
    assert W0.shape == (X.shape[1] + 1, len(node_ptr) - 1)
    W0c = W0.copy()
    W0c.sort_indices()
    np.testing.assert_array_equal(W0c.indices, W0.indices)  # sorted already
    assert np.all(W0.data != 0)
    t = float(np.quantile(np.abs(W0.data), 0.6))
    Wt = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0, threshold=t)
    expected = W0.copy()
    expected.data[np.abs(expected.data) < t] = 0
    expected.eliminate_zeros()
    for attr in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(Wt, attr), getattr(expected, attr))
    assert np.abs(Wt.data).min() >= t
    # The bias weight follows the same rule.
    huge = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0, threshold=1e9)
    assert huge.nnz == 0


def test_only_used_features_get_weights():
    X, y = _problem(n=50, d=30, density=0.05, seed=8)
    w = _one_node(X, y, np.ones(len(y)), random_state=0)
    used = np.zeros(31, dtype=bool)
    used[np.unique(X.indices)] = True
    used[-1] = True
    assert not w[~used].any()


def test_float32_and_float64_inputs_agree():
    X, y = _problem(seed=9)
    X.data = X.data + np.random.RandomState(0).uniform(0, 1e-3, X.nnz)  # not exact in f32
    cost = np.ones(len(y))
    w64 = _one_node(X, y, cost, random_state=0, **TIGHT)
    w32 = _one_node(X.astype(np.float32), y, cost, random_state=0, **TIGHT)
    assert _rel_err(w32, w64) < 1e-4


def test_unsorted_int64_and_other_formats_give_the_same_model():
    X, node_ptr, rows, y, cost = _batch(seed=5)
    X = X.astype(np.float32)
    ref = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0)

    rng = np.random.RandomState(0)
    shuffled = X.copy()
    for i in range(X.shape[0]):  # reverse/shuffle each row's entries
        a, b = X.indptr[i], X.indptr[i + 1]
        perm = rng.permutation(b - a)
        shuffled.indices[a:b] = X.indices[a:b][perm]
        shuffled.data[a:b] = X.data[a:b][perm]
    shuffled.has_sorted_indices = False
    wide = X.copy()
    wide.indices = wide.indices.astype(np.int64)
    wide.indptr = wide.indptr.astype(np.int64)
    # Every entry split into two halves (duplicate entries are summed).
    dup = sp.csr_matrix(
        (np.concatenate([np.r_[X.data[a:b] * 0.5, X.data[a:b] * 0.5]
                         for a, b in zip(X.indptr[:-1], X.indptr[1:])]),
         np.concatenate([np.r_[X.indices[a:b], X.indices[a:b]]
                         for a, b in zip(X.indptr[:-1], X.indptr[1:])]),
         2 * X.indptr), shape=X.shape)
    before = shuffled.indices.copy(), dup.data.copy()
    for other in (shuffled, wide, X.tocoo(), X.tocsc(), X.toarray(), dup):
        W = train_binary_nodes(other, node_ptr, rows, y, cost, random_state=0)
        for attr in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(W, attr), getattr(ref, attr))
    # The caller's matrices are left alone.
    np.testing.assert_array_equal(shuffled.indices, before[0])
    np.testing.assert_array_equal(dup.data, before[1])


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge", "log"])
@pytest.mark.parametrize("n, d", [(30, 2000), (300, 3_000_000), (300, 2**31 - 2)])
def test_sparse_feature_space_takes_the_sorting_path(loss, n, d):
    """Few nonzeros over a wide feature range (radix-sort ranking with 1, 2 or 3
    passes, and insertion sort for a tiny node) give the same model as the
    compacted feature space (ranking by a table)."""
    rng = np.random.RandomState(0)
    X = sp.csr_matrix((rng.uniform(0.5, 2, 4 * n).astype(np.float32),
                       (np.repeat(np.arange(n), 4), rng.randint(0, d, 4 * n))),
                      shape=(n, d))
    y = np.where(rng.rand(n) > 0.5, 1, -1)
    cost = np.ones(n)
    node_ptr = [0, n, n + 10]  # a big node (radix sort) and a tiny one (insertion)
    rows = np.r_[np.arange(n), np.arange(10)]
    yy, cc = np.r_[y, y[:10]], np.r_[cost, cost[:10]]
    W = train_binary_nodes(X, node_ptr, rows, yy, cc, loss=loss, random_state=0)
    used = np.r_[np.unique(X.indices), d]
    # Compacted by hand (scipy's column indexing allocates O(d)): the table path.
    Xc = sp.csr_matrix((X.data, np.searchsorted(used, X.indices), X.indptr),
                       shape=(n, len(used) - 1))
    Wc = train_binary_nodes(Xc, node_ptr, rows, yy, cc, loss=loss, random_state=0)
    assert W.shape == (d + 1, 2)
    assert W.nnz == Wc.nnz > 0
    np.testing.assert_array_equal(W.indptr, Wc.indptr)
    np.testing.assert_array_equal(W.indices, used[Wc.indices])
    np.testing.assert_array_equal(W.data, Wc.data)


# ------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge", "log"])
@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_edge_case_nodes(loss, bias):
    X = sp.csr_matrix(np.array([[1.0, 0, 2], [0, 0, 0], [0, 3, 0], [0, 0, 0]]))
    node_ptr = [0, 0, 3, 5, 7, 9, 9]
    rows = [0, 1, 2,  # mixed, with an empty row
            0, 2,     # all positive
            0, 2,     # all negative
            1, 3]     # only empty rows
    y = [1, -1, -1, 1, 1, -1, -1, 1, -1]
    W, n_iter = train_binary_nodes(X, node_ptr, rows, y, np.ones(9), loss=loss, bias=bias,
                                   random_state=0, return_n_iter=True, **TIGHT)
    W = W.toarray()
    assert W.shape == (4, 6)
    assert np.all(np.isfinite(W))
    assert not W[:, 0].any() and not W[:, 5].any()  # nodes without instances
    assert n_iter[0] == 0 and n_iter[5] == 0
    Xb = np.c_[X.toarray(), np.full(4, bias)]
    assert np.all(Xb[[0, 2]] @ W[:, 2] > 0)
    assert np.all(Xb[[0, 2]] @ W[:, 3] < 0)
    assert np.all(Xb[[0]] @ W[:, 1] > 0) and np.all(Xb[[2]] @ W[:, 1] < 0)
    if bias == 0:
        assert not W[:, 4].any()  # nothing to learn from empty rows
    assert np.all(n_iter[1:5] < TIGHT["max_iter"])


def test_degenerate_shapes():
    X = sp.csr_matrix((3, 0))  # no features: only the bias
    W = train_binary_nodes(X, [0, 3], [0, 1, 2], [1, 1, -1], np.ones(3))
    assert W.shape == (1, 1) and W.toarray()[0, 0] > 0
    X = sp.csr_matrix((0, 5))
    W = train_binary_nodes(X, [0, 0, 0], [], [], [])
    assert W.shape == (6, 2) and W.nnz == 0
    W = train_binary_nodes(sp.eye(4, format="csr"), [0], [], [], [])
    assert W.shape == (5, 0)


def test_duplicated_rows_in_one_node_count_twice():
    X, y = _problem(n=60, seed=10)
    cost = np.full(60, 0.5)
    twice = train_binary_nodes(X, [0, 120], np.r_[np.arange(60), np.arange(60)],
                               np.r_[y, y], np.r_[cost, cost], **TIGHT).toarray()[:, 0]
    once = _one_node(X, y, 2 * cost, **TIGHT)
    assert _rel_err(twice, once) < 1e-4


def test_memory_failure_raises_memory_error():
    X, node_ptr, rows, y, cost = _batch(seed=6)
    _solver._set_fail_node(3)
    try:
        with pytest.raises(MemoryError, match="out of memory"):
            train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=2)
    finally:
        _solver._set_fail_node(-1)
    assert train_binary_nodes(X, node_ptr, rows, y, cost).shape[1] == len(node_ptr) - 1


# ------------------------------------------------------------------ bad inputs


def _good():
    X = sp.csr_matrix(np.array([[1.0, 0], [0, 1.0], [1.0, 1.0]]))
    return dict(X=X, node_ptr=[0, 3], rows=[0, 1, 2], y=[1, -1, 1], cost=[1.0, 1.0, 1.0])


@pytest.mark.parametrize("change, match", [
    (dict(X=sp.csr_matrix(np.array([[np.nan, 0], [0, 1.0], [1, 1]]))), "NaN"),
    (dict(X=sp.csr_matrix(np.array([[np.inf, 0], [0, 1.0], [1, 1]]))), "infinity"),
    (dict(X=sp.csr_matrix(np.array([[1e300, 0], [0, 1.0], [1, 1]]))), "float32"),
    (dict(cost=[1.0, 0.0, 1.0]), "cost"),
    (dict(cost=[1.0, -1.0, 1.0]), "cost"),
    (dict(cost=[1.0, np.nan, 1.0]), "cost"),
    (dict(y=[1, 0, 1]), r"\+1 and -1"),
    (dict(y=[1, 2, -1]), r"\+1 and -1"),
    (dict(y=[1, -1]), "y must be 1-D with len"),
    (dict(cost=[1.0, 1.0]), "cost must be 1-D with len"),
    (dict(node_ptr=[0, 2]), "end at len"),
    (dict(node_ptr=[1, 3]), "start at 0"),
    (dict(node_ptr=[0, 2, 1, 3]), "non-decreasing"),
    (dict(node_ptr=[]), "at least one"),
    (dict(rows=[0, 1, 3]), "rows must lie"),
    (dict(rows=[0, -1, 2]), "rows must lie"),
    (dict(rows=[0.0, 1.0, 2.0]), "integers"),
    (dict(loss="logistic"), "loss"),
    (dict(tol=-1.0), "tol"),
    (dict(bias=-1.0), "bias"),
    (dict(bias=np.inf), "bias"),
    (dict(threshold=-0.1), "threshold"),
    (dict(max_iter=0), "max_iter"),
    (dict(max_iter=2.5), "max_iter"),
])
def test_bad_input_raises_value_error(change, match):
    kwargs = {**_good(), **change}
    with pytest.raises(ValueError, match=match):
        train_binary_nodes(**kwargs)


# ------------------------------------------------------------------ groups


def _grouped_batch(seed=0, sizes=(3, 1, 5, 2, 4), n=200):
    """Groups of nodes sharing one row list each (as the children of a parent)."""
    rng = np.random.RandomState(seed)
    X, _ = _problem(n=n, d=60, seed=seed)
    node_ptr, rows, y, group_ptr = [0], [], [], [0]
    for m in sizes:
        r = rng.choice(n, rng.randint(1, n), replace=True)  # repeats and any order
        for _ in range(m):
            s = X[r] @ rng.randn(60)
            y.append(np.where(s > np.median(s), 1, -1))
            rows.append(r)
            node_ptr.append(node_ptr[-1] + len(r))
        group_ptr.append(group_ptr[-1] + m)
    rows, y = np.concatenate(rows), np.concatenate(y)
    cost = np.where(y > 0, 2.0, 1.0) * rng.uniform(0.5, 1.5, len(y))
    return X, np.array(node_ptr), rows, y, cost, np.array(group_ptr)


def _assert_same(W1, W2):
    for attr in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(W1, attr), getattr(W2, attr))


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge", "log"])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
def test_groups_give_bit_identical_models(loss, n_threads):
    X, node_ptr, rows, y, cost, group_ptr = _grouped_batch(seed=1)
    kw = dict(loss=loss, random_state=5, threshold=0.01, return_n_iter=True)
    W0, it0 = train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=1, **kw)
    W1, it1 = train_binary_nodes(X, node_ptr, rows, y, cost, groups=group_ptr,
                                 n_threads=n_threads, **kw)
    _assert_same(W0, W1)
    np.testing.assert_array_equal(it0, it1)
    # A single group of all nodes of one row list, fewer groups than threads.
    sl = slice(node_ptr[4], node_ptr[9])  # group 2: nodes 4..8
    ptr = node_ptr[4:10] - node_ptr[4]
    Wa = train_binary_nodes(X, ptr, rows[sl], y[sl], cost[sl], n_threads=1,
                            loss=loss, random_state=5)
    Wb = train_binary_nodes(X, ptr, rows[sl], y[sl], cost[sl], n_threads=n_threads,
                            loss=loss, random_state=5, groups=[0, 5])
    _assert_same(Wa, Wb)


def _wide_group(seed=0, n_nodes=40, n=250, d=6000):
    """One group of ``n_nodes`` nodes on the same rows, whose rows use more
    distinct features than the solver's lockstep threshold (4096), so that the
    group is solved in lockstep chunks; labels from random sparse directions,
    from balanced to a few positives, so that the nodes stop at different
    iterations."""
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=0.03, format="csr", random_state=rng)
    X.data = rng.uniform(0.1, 1.0, X.nnz)
    r = rng.permutation(n)[: n - 7]
    node_ptr, y = [0], []
    for k in range(n_nodes):
        s = X[r] @ sp.random(d, 1, density=0.01, random_state=rng).toarray().ravel()
        y.append(np.where(s > np.quantile(s, rng.uniform(0.5, 0.98)), 1, -1))
        node_ptr.append(node_ptr[-1] + len(r))
    y = np.concatenate(y)
    rows = np.tile(r, n_nodes)
    cost = np.where(y > 0, 2.0, 1.0) * rng.uniform(0.5, 1.5, len(y))
    return X, np.array(node_ptr), rows, y, cost


@pytest.mark.parametrize("loss", ["squared_hinge", "hinge"])
def test_lockstep_chunks_give_bit_identical_models(loss):
    """A group of 40 wide nodes runs in lockstep chunks (32 + 8 nodes, or
    smaller under a memory cap): every node's weights and iteration count are
    those it gets alone, for any chunking and thread count."""
    X, node_ptr, rows, y, cost = _wide_group(seed=1)
    assert len(np.unique(X[rows[: node_ptr[1]]].indices)) > 4096
    kw = dict(loss=loss, random_state=3, threshold=0.01, return_n_iter=True)
    W0, it0 = train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=1, **kw)
    assert len(np.unique(it0)) > 1  # nodes leave the lockstep at different times
    assert W0.nnz > 0
    for n_threads in (1, 2):
        W1, it1 = train_binary_nodes(X, node_ptr, rows, y, cost, groups=[0, 40],
                                     n_threads=n_threads, **kw)
        _assert_same(W0, W1)
        np.testing.assert_array_equal(it0, it1)
    per_node = (6000 + 1) * 8 + len(rows) // 40 * 9
    for nodes_per_chunk in (1, 3):
        previous = _solver._set_lockstep_max_bytes(nodes_per_chunk * per_node)
        try:
            W2, it2 = train_binary_nodes(X, node_ptr, rows, y, cost, groups=[0, 40],
                                         n_threads=1, **kw)
        finally:
            _solver._set_lockstep_max_bytes(previous)
        _assert_same(W0, W2)
        np.testing.assert_array_equal(it0, it2)
    # Wide groups share one stream: the node offset does not change the orders.
    W3 = train_binary_nodes(X, node_ptr, rows, y, cost, node_offset=17, **kw)[0]
    _assert_same(W0, W3)


def test_lockstep_nodes_reach_the_liblinear_optimum():
    """Nodes solved in lockstep reach the optimum of each node alone."""
    X, node_ptr, rows, y, cost = _wide_group(seed=2, n_nodes=6)
    W = train_binary_nodes(X, node_ptr, rows, y, cost, groups=[0, 6], random_state=0,
                           **TIGHT).toarray()
    for k in (0, 5):
        sl = slice(node_ptr[k], node_ptr[k + 1])
        alone = _one_node(X[rows[sl]], y[sl], cost[sl], random_state=7, **TIGHT)
        assert _rel_err(alone, W[:, k]) < 1e-4


@pytest.mark.skipif(not openmp_enabled(), reason="built without OpenMP")
def test_groups_threads_give_bit_identical_models():
    X, node_ptr, rows, y, cost, group_ptr = _grouped_batch(seed=2, sizes=(4, 7, 1, 9, 3, 2))
    kw = dict(random_state=3, groups=group_ptr)
    _assert_same(train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=1, **kw),
                 train_binary_nodes(X, node_ptr, rows, y, cost, n_threads=2, **kw))


def test_groups_edge_cases():
    X, node_ptr, rows, y, cost, group_ptr = _grouped_batch(seed=3, sizes=(2, 3))
    ref = train_binary_nodes(X, node_ptr, rows, y, cost, random_state=0)
    # Empty groups, singleton groups and a coarser valid grouping.
    for g in ([0, 0, 2, 2, 5, 5], [0, 1, 2, 3, 4, 5], [0, 2, 5], [0, 1, 2, 4, 5]):
        _assert_same(ref, train_binary_nodes(X, node_ptr, rows, y, cost,
                                             random_state=0, groups=g, n_threads=2))
    # Groups of empty nodes, and no nodes at all.
    W = train_binary_nodes(X, [0, 0, 0, 3], [0, 1, 2], [1, -1, 1], np.ones(3),
                           groups=[0, 2, 3], random_state=0)
    assert W.shape == (X.shape[1] + 1, 3) and W[:, :2].nnz == 0 and W[:, 2].nnz > 0
    W = train_binary_nodes(X, [0], [], [], [], groups=[0], n_threads=4)
    assert W.shape == (X.shape[1] + 1, 0)


def test_groups_memory_failure_raises_memory_error():
    X, node_ptr, rows, y, cost, group_ptr = _grouped_batch(seed=6)
    _solver._set_fail_node(3)
    try:
        with pytest.raises(MemoryError, match="out of memory while training 1 of"):
            train_binary_nodes(X, node_ptr, rows, y, cost, groups=group_ptr, n_threads=2)
    finally:
        _solver._set_fail_node(-1)


@pytest.mark.parametrize("groups, match", [
    ([0, 2], "groups must start at 0 and end"),
    ([1, 5], "groups must start at 0 and end"),
    ([], "groups must start at 0 and end"),
    ([0, 3, 2, 5], "non-decreasing"),
    ([0.0, 5.0], "integers"),
    ([0, 4, 5], "same number of rows"),
    ([0, 5], "same number of rows"),
])
def test_bad_groups_raise_value_error(groups, match):
    X, node_ptr, rows, y, cost, _ = _grouped_batch(seed=4, sizes=(2, 3))
    with pytest.raises(ValueError, match=match):
        train_binary_nodes(X, node_ptr, rows, y, cost, groups=groups)


def test_groups_with_different_rows_raise_value_error():
    X, _ = _problem(n=10, d=5)
    rows = np.array([0, 1, 2, 0, 1, 3])
    args = (X, [0, 3, 6], rows, np.ones(6), np.ones(6))
    with pytest.raises(ValueError, match="identical rows"):
        train_binary_nodes(*args, groups=[0, 2])
    with pytest.raises(ValueError, match="identical rows"):  # same set, other order
        train_binary_nodes(X, [0, 3, 6], [0, 1, 2, 0, 2, 1], np.ones(6), np.ones(6),
                           groups=[0, 2])
    train_binary_nodes(*args, groups=[0, 1, 2])


@pytest.mark.parametrize("loss", ["squared_hinge", "log"])
def test_node_offset_batches_equal_one_call(loss):
    """Nodes trained in consecutive batches with their offsets equal one call."""
    X, node_ptr, rows, y, cost, group_ptr = _grouped_batch(seed=7)
    kw = dict(loss=loss, random_state=11, threshold=0.01)
    full = train_binary_nodes(X, node_ptr, rows, y, cost, **kw)
    parts = []
    for lo, hi in [(0, 4), (4, 9), (9, len(node_ptr) - 1)]:
        sl = slice(node_ptr[lo], node_ptr[hi])
        parts.append(train_binary_nodes(X, node_ptr[lo:hi + 1] - node_ptr[lo], rows[sl],
                                        y[sl], cost[sl], node_offset=lo, **kw))
    _assert_same(full, sp.hstack(parts, format="csc"))
    # Without the offset the batches draw other streams.
    sl = slice(node_ptr[4], node_ptr[9])
    other = train_binary_nodes(X, node_ptr[4:10] - node_ptr[4], rows[sl], y[sl], cost[sl],
                               **kw)
    assert (other != parts[1]).nnz > 0
    with pytest.raises(ValueError, match="node_offset"):
        train_binary_nodes(X, node_ptr, rows, y, cost, node_offset=-1)


def test_out_of_range_column_index_raises():
    X, node_ptr, rows, y, cost, _ = _grouped_batch(seed=8, sizes=(2,))
    X = X.copy()
    X.indices[0] = 2**31 - 1
    with pytest.raises(ValueError, match=r"X is not a valid CSR matrix: its indices"):
        train_binary_nodes(X, node_ptr, rows, y, cost)
