"""Post-processors: the Python reference against formulas written out here, the
kernels' inline functions against the reference, one definition of the codes, the
one name check, and beam search scores against a brute-force walk of a small tree."""

import numpy as np
import pytest
import scipy.sparse as sp

import skxmr._cython._postprocess as kernel_codes
from skxmr._beam import BeamSearcher
from skxmr._label_tree import LabelTree
from skxmr._postprocess import (
    HINGE,
    LOG_SIGMOID,
    NOOP,
    POST_PROCESSORS,
    SIGMOID,
    check_post_processor,
    get_post_processor,
)

NAMES = ["l1-hinge", "l2-hinge", "l3-hinge", "l4-hinge", "l7-hinge", "l64-hinge",
         "sigmoid", "log-sigmoid", "noop"]
S = np.concatenate([np.linspace(-6, 6, 241), [-800.0, -40.0, -1e-300, 0.0, 1e-300,
                                               0.999999, 1.0, 1.000001, 40.0, 800.0]])


def formula(name, s):
    """Transform, combiner and root score of ``name``, written independently."""
    s = np.asarray(s, dtype=np.float64)
    if name.endswith("-hinge"):
        p = int(name[1:-6])
        return np.exp(-np.clip(1.0 - s, 0.0, None) ** p), "product", 1.0
    if name == "sigmoid":
        return np.exp(-np.logaddexp(0.0, -s)), "product", 1.0
    if name == "log-sigmoid":
        return -np.logaddexp(0.0, -s), "sum", 0.0
    assert name == "noop"
    return s.copy(), "none", 0.0


# -------------------------------------------------------------- the codes
def test_codes_come_from_the_kernel_module():
    assert (NOOP, HINGE, SIGMOID, LOG_SIGMOID) == (
        kernel_codes.NOOP, kernel_codes.HINGE, kernel_codes.SIGMOID,
        kernel_codes.LOG_SIGMOID)
    assert len({NOOP, HINGE, SIGMOID, LOG_SIGMOID}) == 4
    expected = {"noop": NOOP, "sigmoid": SIGMOID, "log-sigmoid": LOG_SIGMOID}
    for name in NAMES:
        pp = get_post_processor(name)
        assert pp.code == expected.get(name, HINGE)
        assert pp.power == (int(name[1:-6]) if name.endswith("-hinge") else 0)
        assert pp.initial == kernel_codes._initial(pp.code)


@pytest.mark.parametrize("name", NAMES)
def test_check_post_processor_gives_code_and_power(name):
    pp = get_post_processor(name)
    assert check_post_processor(name) == (pp.code, pp.power)
    assert check_post_processor(pp) == (pp.code, pp.power)
    assert name in POST_PROCESSORS


@pytest.mark.parametrize("bad", ["cubic", "l0-hinge", "l65-hinge", "L3-hinge",
                                 "l3-hinge ", "l-hinge", "", None, 3, ["noop"]])
def test_check_post_processor_rejects_with_the_valid_names(bad):
    with pytest.raises(ValueError, match="post_processor") as info:
        check_post_processor(bad)
    message = str(info.value)
    for name in ("l3-hinge", "sigmoid", "log-sigmoid", "noop", "lP-hinge"):
        assert name in message
    assert repr(bad) in message
    assert bad not in POST_PROCESSORS if isinstance(bad, str) else True


# ------------------------------------------------- reference against formulas
@pytest.mark.parametrize("name", NAMES)
def test_reference_transform_and_combine_match_the_formulas(name):
    pp = get_post_processor(name)
    expected, combiner, initial = formula(name, S)
    assert pp.combiner == combiner and pp.initial == initial
    got = pp.transform(S)
    assert got.dtype == np.float64 and got.shape == S.shape
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-300)
    parent = np.linspace(0.05, 0.95, S.size)
    combined = pp.combine(parent, got)
    if combiner == "product":
        np.testing.assert_array_equal(combined, parent * got)
    elif combiner == "sum":
        np.testing.assert_array_equal(combined, parent + got)
    else:
        np.testing.assert_array_equal(combined, got)


def test_transforms_have_the_documented_ranges():
    t = get_post_processor("l3-hinge").transform(S)
    assert np.all((t >= 0) & (t <= 1)) and np.all(t[S >= 1] == 1.0)
    assert np.all(t[S >= -6] > 0) and np.all(np.diff(t[:241]) >= 0)
    sig = get_post_processor("sigmoid").transform(S)
    assert np.all((sig >= 0) & (sig <= 1))
    assert sig[S == 800.0][0] == 1.0 and sig[S == -800.0][0] == 0.0
    logsig = get_post_processor("log-sigmoid").transform(S)
    assert np.all(np.isfinite(logsig)) and np.all(logsig <= 0)
    assert logsig[S == -800.0][0] == -800.0  # never underflows


# ----------------------------------------------- kernel functions vs reference
@pytest.mark.parametrize("name", NAMES)
def test_kernel_transform_and_path_score_match_the_reference(name):
    # The kernel raises to the power P by repeated products, the reference with
    # numpy's power: the exponents differ in the last bits, which exp turns into a
    # relative error of about |exponent| * eps (|exponent| < 745 before underflow).
    pp = get_post_processor(name)
    np.testing.assert_allclose(kernel_codes._path_score(pp.code, pp.power, None, S),
                               pp.transform(S), rtol=1e-12, atol=1e-300)
    rng = np.random.default_rng(0)
    parent = (rng.uniform(0.01, 1.0, S.size) if pp.combiner == "product"
              else rng.uniform(-5.0, 0.0, S.size))
    np.testing.assert_allclose(kernel_codes._path_score(pp.code, pp.power, parent, S),
                               pp.combine(parent, pp.transform(S)), rtol=1e-12,
                               atol=1e-300)


def test_kernel_functions_reject_unknown_codes():
    for code, power in ((-1, 0), (4, 0), (HINGE, 0)):
        with pytest.raises(ValueError, match="code"):
            kernel_codes._path_score(code, power, None, S)
    with pytest.raises(ValueError, match="code"):
        kernel_codes._initial(4)


# ------------------------------------------------ beam search vs brute force
def small_problem(seed=0, n=30, n_features=10):
    """A 3-level tree (3 clusters, 8 sub-clusters, 21 labels in shuffled label
    order), random weights, random queries."""
    rng = np.random.default_rng(seed)
    level_ptr = [0, 1, 4, 12, 33]
    child_ptr = [1, 4, 6, 9, 12, 15, 17, 19, 23, 26, 28, 31, 33]
    tree = LabelTree(level_ptr, child_ptr, rng.permutation(21))
    weights = [sp.csc_matrix(rng.normal(size=(n_features + 1, size)).astype(np.float32)
                             * (rng.random((n_features + 1, size)) < 0.6))
               for size in (3, 8, 21)]
    X = sp.random(n, n_features, density=0.4, format="csr", random_state=rng,
                  dtype=np.float64)
    return X, weights, tree


def brute_force(X, weights, tree, name, bias, k):
    """Every label's path score by walking its root path with the Python
    reference, then the top k by (score desc, label asc)."""
    pp = get_post_processor(name)
    lp, cp = tree.level_ptr, tree.child_ptr
    parent = np.zeros(lp[-1], dtype=np.int64)
    for node in range(lp[-2]):
        parent[cp[node]:cp[node + 1]] = node
    level_of = np.repeat(np.arange(len(lp) - 1), np.diff(lp))
    Xb = np.hstack([X.toarray(), np.full((X.shape[0], 1), bias)])
    raw = [Xb @ W.toarray().astype(np.float64) for W in weights]
    labels = np.empty((X.shape[0], min(k, tree.n_labels)), dtype=np.int64)
    scores = np.empty(labels.shape)
    for i in range(X.shape[0]):
        by_label = np.empty(tree.n_labels)
        for p in range(tree.n_labels):
            path, node = [], lp[-2] + p
            while node != 0:
                path.append(node)
                node = parent[node]
            value = pp.initial
            for node in reversed(path):
                t = level_of[node]
                value = float(pp.combine(value, pp.transform(
                    raw[t - 1][i, node - lp[t]])))
            by_label[tree.label_perm[p]] = value
        order = np.lexsort((np.arange(tree.n_labels), -by_label))[:labels.shape[1]]
        labels[i], scores[i] = order, by_label[order]
    return labels, scores


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dense", [False, True])
def test_kernel_scores_equal_brute_force(name, dense):
    X, weights, tree = small_problem()
    searcher = BeamSearcher(weights, tree, bias=0.5)
    Xq = X.toarray() if dense else X
    for k in (1, 5, 21):
        labels, scores = searcher.search(Xq, beam_size=100, top_k=k,
                                         post_processor=name)
        ref_labels, ref_scores = brute_force(X, weights, tree, name, 0.5, k)
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(scores, ref_scores.astype(np.float32), rtol=2e-6,
                                   atol=1e-30)
        for i in range(3):  # the one-row path gives the same scores
            row = X[i]
            one = searcher._predict_one_fast(row.indices, row.data, beam_size=100,
                                             top_k=k, post_processor=name)
            np.testing.assert_array_equal(one[0], labels[i])
            np.testing.assert_array_equal(one[1], scores[i])


def test_trusted_search_rejects_an_invalid_code_in_the_kernel():
    X, weights, tree = small_problem()
    searcher = BeamSearcher(weights, tree)
    for code, power in ((HINGE, 0), (7, 0), (-1, 0)):
        with pytest.raises(ValueError, match="post-processor code"):
            searcher._search(X, 2, 3, code, power, 1)
