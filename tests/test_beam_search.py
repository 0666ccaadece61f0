"""Beam search over a label tree: the kernel against exhaustive and pure-Python
references, across post-processors, input types, thread counts and bad input."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skxmr import LabelIndexer
from skxmr._beam import BeamSearcher, beam_search, scores_to_csr
from skxmr._label_tree import LabelTree
from skxmr._postprocess import POST_PROCESSORS, get_post_processor
from skxmr.datasets import make_xmc_classification

ALL_PP = ["l3-hinge", "l1-hinge", "l2-hinge", "l4-hinge", "l7-hinge", "sigmoid",
          "log-sigmoid", "noop"]

# Level sizes below the root (the last entry is the number of labels).
SHAPES = [[9], [3, 11], [4, 10, 37], [2, 5, 12, 40]]


# ------------------------------------------------------------------ fixtures
def random_tree(rng, level_sizes):
    """A random tree with the given level sizes (every parent gets a child)."""
    chain, prev = [], 1
    for size in level_sizes:
        parents = np.concatenate([np.arange(prev), rng.integers(0, prev, size - prev)])
        rng.shuffle(parents)
        chain.append(sp.csr_matrix(
            (np.ones(size), (np.arange(size), parents)), shape=(size, prev)))
        prev = size
    return LabelTree.from_chain(chain)


def random_weights(rng, tree, n_features, density=0.3, dense_bias=True, scale=1.0):
    weights = []
    for size in tree.level_sizes:
        W = sp.random(n_features + 1, size, density=density, format="lil",
                      random_state=rng, data_rvs=lambda n: rng.normal(size=n))
        if dense_bias:
            W[n_features, :] = rng.normal(size=size)
        weights.append((W * scale).tocsc().astype(np.float32))
    return weights


def random_X(rng, n, n_features, density=0.3, dtype=np.float32, empty_rows=()):
    X = sp.random(n, n_features, density=density, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.normal(size=k)).astype(dtype)
    X = X.tolil()
    for i in empty_rows:
        X[i, :] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def problem(seed, shape, n=25, n_features=12, **kw):
    rng = np.random.default_rng(seed)
    tree = random_tree(rng, shape)
    weights = random_weights(rng, tree, n_features, **kw)
    X = random_X(rng, n, n_features, empty_rows=(0,))
    return X, weights, tree


# ----------------------------------------------------------------- references
def level_scores(X, weights, bias):
    """Raw scores of every node of every level, float64 (n, n_nodes_t)."""
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
    Xb = np.hstack([Xd.astype(np.float64), np.full((Xd.shape[0], 1), bias)])
    return [Xb @ W.toarray().astype(np.float64) for W in weights]


def exhaustive_reference(X, weights, tree, post_processor, bias, top_k):
    """Path score of every label, then top-k by (score desc, label asc)."""
    pp = get_post_processor(post_processor)
    S = level_scores(X, weights, bias)
    path = np.full((S[0].shape[0], 1), pp.initial)
    for t in range(1, tree.n_levels + 1):
        path = pp.combine(path[:, tree.parents(t)], pp.transform(S[t - 1]))
    by_label = np.empty_like(path)
    by_label[:, tree.label_perm] = path
    k = min(top_k, tree.n_labels)
    labels = np.empty((path.shape[0], k), dtype=np.int64)
    scores = np.empty((path.shape[0], k), dtype=np.float64)
    for i in range(path.shape[0]):
        order = np.lexsort((np.arange(tree.n_labels), -by_label[i]))[:k]
        labels[i] = order
        scores[i] = by_label[i, order]
    return labels, scores.astype(np.float32)


def python_beam_reference(X, weights, tree, post_processor, bias, beam, top_k):
    """A straightforward beam search: nodes by (score desc, node asc) per level,
    labels by (score desc, label asc) at the last level."""
    pp = get_post_processor(post_processor)
    T = [pp.transform(S) for S in level_scores(X, weights, bias)]
    k = min(top_k, tree.n_labels)
    n = T[0].shape[0]
    labels = np.full((n, k), -1, dtype=np.int64)
    scores = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        cur = [(pp.initial, 0)]
        for t in range(1, tree.n_levels + 1):
            base, last = tree.level_ptr[t], t == tree.n_levels
            cands = []
            for ps, node in cur:
                for c in range(tree.child_ptr[node], tree.child_ptr[node + 1]):
                    v = float(pp.combine(ps, T[t - 1][i, c - base]))
                    cands.append((v, int(tree.label_perm[c - base]) if last else c))
            cands.sort(key=lambda z: (-z[0], z[1]))
            cur = cands[: (k if last else beam)]
        labels[i, : len(cur)] = [c for _, c in cur]
        scores[i, : len(cur)] = [v for v, _ in cur]
    return labels, scores


def assert_same(result, expected):
    np.testing.assert_array_equal(result[0], expected[0])
    np.testing.assert_allclose(result[1], expected[1], rtol=2e-6, atol=1e-7)


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("post_processor", ALL_PP)
@pytest.mark.parametrize("shape", SHAPES)
def test_wide_beam_equals_exhaustive(post_processor, shape):
    X, weights, tree = problem(len(shape), shape)
    beam = int(tree.level_sizes.max())
    for top_k in (1, 5, tree.n_labels):
        result = beam_search(X, weights, tree, beam_size=beam, top_k=top_k,
                             post_processor=post_processor)
        assert result[0].dtype == np.int64 and result[1].dtype == np.float32
        assert result[0].shape == result[1].shape == (X.shape[0], top_k)
        assert_same(result, exhaustive_reference(X, weights, tree, post_processor,
                                                 1.0, top_k))


def test_narrow_level_above_a_wide_one():
    """Levels of 1 and 300 children (uint8 and uint16 child offsets, as an
    indexer with max_leaf_size above the number of labels builds) search exactly."""
    X, weights, tree = problem(7, (1, 300))
    result = beam_search(X, weights, tree, beam_size=1, top_k=5)
    assert_same(result, exhaustive_reference(X, weights, tree, "l3-hinge", 1.0, 5))


@pytest.mark.parametrize("post_processor", ALL_PP)
def test_saturated_scores_tie_by_label(post_processor):
    # Large weights: many hinge transforms saturate at exactly 1 (ties).
    X, weights, tree = problem(7, [3, 8, 30], scale=6.0)
    result = beam_search(X, weights, tree, beam_size=1000, top_k=12,
                         post_processor=post_processor, bias=0.5)
    assert_same(result, exhaustive_reference(X, weights, tree, post_processor, 0.5, 12))


@pytest.mark.parametrize("post_processor", ALL_PP)
@pytest.mark.parametrize("beam", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES[1:])
def test_small_beam_equals_python_reference(post_processor, beam, shape):
    X, weights, tree = problem(10 + beam, shape)
    for top_k in (1, 4, 10):
        result = beam_search(X, weights, tree, beam_size=beam, top_k=top_k,
                             post_processor=post_processor, bias=0.7)
        assert_same(result, python_beam_reference(X, weights, tree, post_processor,
                                                  0.7, beam, top_k))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       fanouts=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       beam=st.integers(1, 6), top_k=st.integers(1, 12),
       post_processor=st.sampled_from(ALL_PP))
def test_random_trees_equal_python_reference(seed, fanouts, beam, top_k,
                                             post_processor):
    rng = np.random.default_rng(seed)
    sizes, size = [], 1
    for f in fanouts:  # each level has between 1x and f x the nodes of the last one
        size = int(rng.integers(size, size * f + 1))
        sizes.append(size)
    tree = random_tree(rng, sizes)
    weights = random_weights(rng, tree, 6, density=0.5, dense_bias=bool(seed % 2))
    X = random_X(rng, 8, 6, density=0.4, empty_rows=(1,))
    result = beam_search(X, weights, tree, beam_size=beam, top_k=top_k,
                         post_processor=post_processor)
    assert_same(result, python_beam_reference(X, weights, tree, post_processor, 1.0,
                                              beam, top_k))


@pytest.mark.filterwarnings("ignore:.*all-zero vector:UserWarning")
def test_tree_from_label_indexer():
    X, Y = make_xmc_classification(400, 300, 120, random_state=0)
    tree = LabelIndexer(branching_factor=4, max_leaf_size=8, random_state=0).fit(
        X, Y).tree_
    rng = np.random.default_rng(0)
    weights = random_weights(rng, tree, X.shape[1], density=0.05)
    Xq = X[:40]
    wide = beam_search(Xq, weights, tree, beam_size=10**6, top_k=10)
    assert_same(wide, exhaustive_reference(Xq, weights, tree, "l3-hinge", 1.0, 10))
    small = beam_search(Xq, weights, tree, beam_size=3, top_k=10,
                        post_processor="sigmoid")
    assert_same(small, python_beam_reference(Xq, weights, tree, "sigmoid", 1.0, 3, 10))


def test_empty_rows_use_the_bias_only():
    X, weights, tree = problem(3, [4, 10, 37], n=6)
    X = sp.csr_matrix(X.shape, dtype=np.float32)  # every row empty
    for dense_bias in (True, False):
        rng = np.random.default_rng(5)
        weights = random_weights(rng, tree, X.shape[1], dense_bias=dense_bias)
        for post_processor in ALL_PP:
            result = beam_search(X, weights, tree, beam_size=100, top_k=7,
                                 post_processor=post_processor, bias=2.0)
            assert_same(result, exhaustive_reference(X, weights, tree,
                                                     post_processor, 2.0, 7))
            assert (result[0] == result[0][0]).all()  # identical queries


def test_no_rows():
    X, weights, tree = problem(3, [3, 11])
    labels, scores = beam_search(X[:0], weights, tree, top_k=4)
    assert labels.shape == scores.shape == (0, 4)
    labels, scores = beam_search(X[:0].toarray(), weights, tree, top_k=4)
    assert labels.shape == (0, 4)


# -------------------------------------------------------- input equivalences
@pytest.mark.parametrize("post_processor", ["l3-hinge", "log-sigmoid"])
def test_threads_and_input_forms_identical(post_processor):
    X, weights, tree = problem(4, [4, 10, 37], n=200)
    kw = dict(beam_size=3, top_k=6, post_processor=post_processor)
    base = beam_search(X, weights, tree, n_threads=1, **kw)
    variants = [
        beam_search(X, weights, tree, n_threads=2, **kw),
        beam_search(X, weights, tree, n_threads=None, **kw),
        beam_search(X.toarray(), weights, tree, n_threads=2, **kw),  # dense
        beam_search(X.tocoo(), weights, tree, **kw),  # converted to CSR
        # float64 X holding the same values: same computation (double accumulation)
        beam_search(X.astype(np.float64), weights, tree, **kw),
        beam_search(X.toarray().astype(np.float64), weights, tree, **kw),
    ]
    X64 = X.copy()
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    variants.append(beam_search(X64, weights, tree, **kw))
    for labels, scores in variants:
        np.testing.assert_array_equal(labels, base[0])
        np.testing.assert_array_equal(scores, base[1])


def test_unsorted_and_duplicate_indices():
    X, weights, tree = problem(5, [3, 11], n=30)
    kw = dict(beam_size=2, top_k=5)
    expected = beam_search(X, weights, tree, **kw)
    # Reverse each row's entries and split every value into two duplicates.
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    order = np.lexsort((-X.indices, rows))
    indices = np.repeat(X.indices[order], 2)
    data = np.repeat(X.data[order] / 2, 2)
    indptr = X.indptr * 2
    X_messy = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert not X_messy.has_canonical_format
    result = beam_search(X_messy, weights, tree, **kw)
    np.testing.assert_array_equal(result[0], expected[0])
    np.testing.assert_allclose(result[1], expected[1], rtol=1e-6)


def test_float32_and_float64_close():
    rng = np.random.default_rng(8)
    tree = random_tree(rng, [4, 10, 37])
    weights = random_weights(rng, tree, 12)
    X64 = random_X(rng, 50, 12, dtype=np.float64) * np.pi  # not float32-exact
    l64, s64 = beam_search(X64, weights, tree, beam_size=100, top_k=5)
    l32, s32 = beam_search(X64.astype(np.float32), weights, tree, beam_size=100,
                           top_k=5)
    np.testing.assert_allclose(s32, s64, rtol=1e-5, atol=1e-6)
    assert (l32 == l64).mean() > 0.95


def test_weight_formats_and_dtypes():
    X, weights, tree = problem(6, [3, 11])
    expected = beam_search(X, weights, tree, beam_size=2, top_k=5)
    for convert in (lambda W: W.astype(np.float64), lambda W: W.tocsr(),
                    lambda W: W.toarray(), lambda W: sp.csc_array(W)):
        result = beam_search(X, [convert(W) for W in weights], tree, beam_size=2,
                             top_k=5)
        np.testing.assert_array_equal(result[0], expected[0])
        np.testing.assert_array_equal(result[1], expected[1])
    W64 = []
    for W in weights:
        W = W.copy()
        W.indices = W.indices.astype(np.int64)
        W.indptr = W.indptr.astype(np.int64)
        W64.append(W)
    result = beam_search(X, W64, tree, beam_size=2, top_k=5)
    np.testing.assert_array_equal(result[0], expected[0])


def test_top_k_capped_and_padded():
    rng = np.random.default_rng(9)
    tree = random_tree(rng, [3, 9])
    weights = random_weights(rng, tree, 5)
    X = random_X(rng, 10, 5)
    # top_k above the number of labels: capped at n_labels.
    labels, scores = beam_search(X, weights, tree, beam_size=3, top_k=50)
    assert labels.shape == (10, 9)
    assert (np.sort(labels, axis=1) == np.arange(9)).all()
    # A beam of 1 reaches only one leaf: the remaining slots are padded.
    labels, scores = beam_search(X, weights, tree, beam_size=1, top_k=9)
    leaf_sizes = np.diff(tree.child_ptr[1:])
    n_found = (labels >= 0).sum(axis=1)
    assert set(n_found) <= set(leaf_sizes)
    assert (labels[np.arange(9) >= n_found[:, None]] == -1).all()
    assert (scores[labels == -1] == 0).all()
    assert_same((labels, scores), python_beam_reference(X, weights, tree, "l3-hinge",
                                                        1.0, 1, 9))


def test_single_query_path_equals_batch():
    X, weights, tree = problem(12, [4, 10, 37], n=40)
    searcher = BeamSearcher(weights, tree, bias=1.5)
    for post_processor in ("l3-hinge", "log-sigmoid", "noop"):
        kw = dict(beam_size=2, top_k=6, post_processor=post_processor)
        labels, scores = searcher.search(X, n_threads=2, **kw)
        np.testing.assert_array_equal(
            (labels, scores), beam_search(X, weights, tree, bias=1.5, **kw))
        for i in range(X.shape[0]):
            row = X[i]
            one = searcher._predict_one_fast(row.indices, row.data, **kw)
            np.testing.assert_array_equal(one[0], labels[i])
            np.testing.assert_array_equal(one[1], scores[i])
            one = searcher.search(row, **kw)
            np.testing.assert_array_equal(one[0], labels[i : i + 1])
    # A searcher survives pickling.
    clone = pickle.loads(pickle.dumps(searcher))
    np.testing.assert_array_equal(clone.search(X)[0], searcher.search(X)[0])


# ----------------------------------------------------------------- bad input
def test_bad_input():
    X, weights, tree = problem(13, [3, 11])
    X_nan = X.copy()
    X_nan.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        beam_search(X_nan, weights, tree)
    X_dense = X.toarray()
    X_dense[1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        beam_search(X_dense, weights, tree)
    with pytest.raises(ValueError, match="features"):
        beam_search(X[:, :-1], weights, tree)
    with pytest.raises(ValueError, match="features"):
        beam_search(X.toarray()[:, :-1], weights, tree)
    with pytest.raises(ValueError, match="2-D"):
        beam_search(X.toarray()[0], weights, tree)
    with pytest.raises(TypeError, match="real"):
        beam_search(np.array([["a"] * X.shape[1]]), weights, tree)
    for name, value in [("beam_size", 0), ("top_k", 0), ("beam_size", -3)]:
        with pytest.raises(ValueError, match=name):
            beam_search(X, weights, tree, **{name: value})
    with pytest.raises(TypeError, match="top_k"):
        beam_search(X, weights, tree, top_k=2.5)
    for pp in ("foo", "l0-hinge", "l-hinge", "L3-hinge", None):
        with pytest.raises(ValueError, match="post_processor"):
            beam_search(X, weights, tree, post_processor=pp)
    with pytest.raises(ValueError, match="bias"):
        beam_search(X, weights, tree, bias=np.nan)
    with pytest.raises(ValueError, match="levels"):
        beam_search(X, weights[:1], tree)
    with pytest.raises(ValueError, match="shape"):
        beam_search(X, [weights[0], weights[1][:-1]], tree)
    with pytest.raises(ValueError, match="columns"):
        beam_search(X, [weights[0][:, :-1], weights[1]], tree)
    with pytest.raises(TypeError, match="LabelTree"):
        beam_search(X, weights, tree.to_chain())
    # Malformed sparse matrices never crash: out-of-range indices -> ValueError.
    W_bad = weights[1].copy()
    W_bad.indices[0] = X.shape[1] + 5
    with pytest.raises(ValueError, match="weights"):
        beam_search(X, [weights[0], W_bad], tree, beam_size=100)
    X_bad = X.copy()
    X_bad.indices[-1] = -2
    with pytest.raises(ValueError, match="X has"):
        beam_search(X_bad, weights, tree)
    searcher = BeamSearcher(weights, tree)
    with pytest.raises(ValueError, match="NaN"):
        searcher._predict_one_fast([0], [np.nan])
    with pytest.raises(ValueError, match="X has"):
        searcher._predict_one_fast([X.shape[1]], [1.0])


# ------------------------------------------------------ helpers and registry
def test_scores_to_csr():
    labels = np.array([[4, 0, -1], [-1, -1, -1], [2, 3, 1]])
    scores = np.array([[0.9, 0.5, 0], [0, 0, 0], [0.3, 0.2, 0.1]], dtype=np.float32)
    M = scores_to_csr(labels, scores, 5)
    assert M.shape == (3, 5) and M.format == "csr" and M.dtype == np.float32
    assert M.nnz == 5 and M.has_sorted_indices
    expected = np.zeros((3, 5), dtype=np.float32)
    expected[0, [4, 0]] = [0.9, 0.5]
    expected[2, [2, 3, 1]] = [0.3, 0.2, 0.1]
    np.testing.assert_array_equal(M.toarray(), expected)
    assert (np.diff(M.indices[M.indptr[2]:M.indptr[3]]) > 0).all()
    with pytest.raises(ValueError):
        scores_to_csr(labels, scores, 4)
    with pytest.raises(ValueError):
        scores_to_csr(labels, scores[:2], 5)


def test_post_processor_registry():
    assert "l3-hinge" in POST_PROCESSORS and "l12-hinge" in POST_PROCESSORS
    assert "l0-hinge" not in POST_PROCESSORS and "hinge" not in POST_PROCESSORS
    assert {"noop", "sigmoid", "log-sigmoid", "l3-hinge"} <= set(POST_PROCESSORS)
    s = np.array([-800.0, -3.0, 0.0, 0.5, 1.0, 2.0, 800.0])
    pp = get_post_processor("l3-hinge")
    np.testing.assert_allclose(pp.transform(s)[1:],
                               np.exp(-np.maximum(0, 1 - s[1:]) ** 3))
    assert pp.transform(s)[0] == 0 and (pp.transform(s)[4:] == 1).all()
    sig = get_post_processor("sigmoid").transform(s)
    np.testing.assert_allclose(sig[1:-1], 1 / (1 + np.exp(-s[1:-1])))
    assert sig[0] == 0 and sig[-1] == 1
    logsig = get_post_processor("log-sigmoid").transform(s)
    assert np.isfinite(logsig).all() and logsig[0] == -800 and logsig[-1] == 0
    np.testing.assert_allclose(logsig[1:-1], np.log(sig[1:-1]))
    # Extreme raw scores stay finite through the kernel too.
    X, weights, tree = problem(14, [3, 11], scale=1000.0)
    for name in ALL_PP:
        _, scores = beam_search(X, weights, tree, beam_size=100, top_k=11,
                                post_processor=name)
        assert not np.isnan(scores).any()


# ------------------------------------------------------------ chunked layout
def _rebuild_blocks(level, n_rows, counts):
    """Each chunk's dense block from the chunked layout, checking its invariants
    (sorted rows, one per feature, children increasing, the directory finds every
    row and only in its bucket)."""
    (chunk_ptr, row_feat, row_off, row_base, row_shift, entry_ptr, vals, child,
     dir_ptr, dir_shift, dirs) = level
    s = int(row_shift[0])
    starts = [int(row_base[r >> s]) + int(row_off[r]) for r in range(row_off.size)]
    np.testing.assert_array_equal(np.array(starts)[chunk_ptr], entry_ptr)
    blocks = []
    for c in range(counts.size):
        r0, r1 = chunk_ptr[c], chunk_ptr[c + 1]
        feats = row_feat[r0:r1]
        assert np.all(np.diff(feats) > 0)
        block = np.zeros((n_rows, counts[c]), dtype=np.float32)
        for r in range(r0, r1):
            start, end = starts[r], starts[r + 1]
            assert end > start and np.all(np.diff(child[start:end].astype(int)) > 0)
            block[row_feat[r], child[start:end]] = vals[start:end]
        blocks.append(block)
        d = dirs[dir_ptr[c]:dir_ptr[c + 1]]
        n_buckets = d.size - 1
        assert n_buckets >= 1 and d[0] == 0 and d[-1] == r1 - r0
        assert np.all(np.diff(d.astype(np.int64)) >= 0)
        assert n_buckets <= max(1, (r1 - r0) // 2)
        for i, f in enumerate(feats):
            b = (int(f) - int(feats[0])) >> int(dir_shift[c])
            assert d[b] <= i < d[b + 1]
    return blocks


def test_chunk_level_rebuilds_the_weights():
    """Every chunk's rows and entries hold exactly its columns' nonzeros."""
    from skxmr._beam import chunk_level

    rng = np.random.default_rng(5)
    n_rows, counts = 30, np.array([3, 1, 5, 2, 4])
    W = sp.random(n_rows, counts.sum(), density=0.4, format="csc", random_state=rng,
                  dtype=np.float32)
    W.data[::7] = 0  # explicit zeros are dropped
    dense = W.toarray()
    first = np.concatenate([[0], np.cumsum(counts)])
    for n_threads in (1, 2):
        level = chunk_level(W, counts, n_threads=n_threads)
        assert level[6].size == np.count_nonzero(dense)
        assert level[2].dtype == np.uint16 and level[7].dtype == np.uint8
        for c, block in enumerate(_rebuild_blocks(level, n_rows, counts)):
            np.testing.assert_array_equal(block, dense[:, first[c]:first[c + 1]])


@pytest.mark.parametrize("width, dtype", [(256, np.uint8), (257, np.uint16),
                                          (70000, np.int32)])
def test_chunk_level_child_dtypes(width, dtype):
    """Child offsets take the narrowest dtype that holds the widest chunk."""
    from skxmr._beam import chunk_level

    rng = np.random.default_rng(width)
    counts = np.array([1, width])
    W = sp.random(12, counts.sum(), density=0.05, format="csc", random_state=rng,
                  dtype=np.float32).tolil()
    W[3, counts.sum() - 1] = 2.5  # the last child of the wide chunk
    level = chunk_level(W.tocsc(), counts)
    assert level[7].dtype == dtype
    blocks = _rebuild_blocks(level, 12, counts)
    np.testing.assert_array_equal(np.hstack(blocks), W.toarray())


def test_wide_dense_chunk_uses_smaller_row_groups():
    """When 64 rows span 2**16 entries or more, the row groups shrink (uint16
    offsets stay exact) and the search still equals brute force."""
    rng = np.random.default_rng(8)
    n_features, width = 70, 1200
    tree = LabelTree.from_chain([np.ones((width, 1))])
    W = sp.csc_matrix(rng.normal(size=(n_features + 1, width)).astype(np.float32))
    searcher = BeamSearcher([W], tree)
    level = searcher.chunked_levels[0]
    assert int(level[4][0]) == 5  # 32 rows x 1200 entries < 2**16 <= 64 x 1200
    assert level[7].dtype == np.uint16
    X = random_X(rng, 9, n_features, density=0.9)
    for post_processor in ("l3-hinge", "noop"):
        got = searcher.search(X, beam_size=3, top_k=7, post_processor=post_processor)
        expected = exhaustive_reference(X, [W], tree, post_processor, 1.0, 7)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)


def test_chunk_level_same_for_any_threads_and_weight_dtype():
    """The layout does not depend on n_threads, and float64 weights give the
    layout of their float32 rounding; float32 and float64 queries agree."""
    from skxmr._beam import chunk_level

    X, weights, tree = problem(31, [3, 11, 40], n=20, n_features=40)
    for t, W in enumerate(weights):
        counts = tree.children_counts(t)
        one = chunk_level(W, counts, n_threads=1)
        for other in (chunk_level(W, counts, n_threads=3),
                      chunk_level(W.astype(np.float64), counts, n_threads=2)):
            assert len(other) == len(one) == 11
            for a, b in zip(one, other):
                assert a.dtype == b.dtype and np.array_equal(a, b)
    searcher = BeamSearcher(weights, tree)
    a = searcher.search(X.astype(np.float32), beam_size=3, top_k=5, n_threads=1)
    b = searcher.search(X.astype(np.float32), beam_size=3, top_k=5, n_threads=2)
    assert_same(a, b)
    c = searcher.search(X.astype(np.float64), beam_size=3, top_k=5, n_threads=2)
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_allclose(a[1], c[1], rtol=1e-5)


def test_chunk_level_edge_cases():
    """Empty columns, empty chunks, one-feature chunks and feature ids near the
    int32 limit."""
    from skxmr._beam import chunk_level

    n_rows = 2**31 - 1
    rows = np.array([0, 5, 5, 2**31 - 3, 2**31 - 2, 7])
    cols = np.array([0, 0, 2, 2, 2, 5])
    vals = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
    W = sp.csc_matrix((vals, (rows, cols)), shape=(n_rows, 7))
    counts = np.array([1, 2, 1, 2, 1])  # chunk 1 = columns 1-2, chunk 3 = 4-5
    level = chunk_level(W, counts)
    chunk_ptr, row_feat = level[0], level[1]
    np.testing.assert_array_equal(np.diff(chunk_ptr), [2, 3, 0, 1, 0])
    np.testing.assert_array_equal(row_feat[2:5], [5, 2**31 - 3, 2**31 - 2])
    # Check blocks on the used rows only (dense blocks of 2**31 rows are too big).
    (_, _, row_off, row_base, row_shift, entry_ptr, v, child, dir_ptr, dir_shift,
     dirs) = level
    np.testing.assert_array_equal(row_off, np.arange(7))  # one group
    np.testing.assert_array_equal(row_base, [0])
    np.testing.assert_array_equal(v, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(child, [0, 0, 1, 1, 1, 1])
    assert dir_ptr[-1] == dirs.size == 2 * 5  # one bucket a chunk here
    for c in range(5):
        d = dirs[dir_ptr[c]:dir_ptr[c + 1]]
        assert d[0] == 0 and d[-1] == chunk_ptr[c + 1] - chunk_ptr[c]


def test_searcher_with_features_near_int32_limit():
    """Queries on features near 2**31 find their rows (shifts and buckets do not
    overflow) and agree with brute force."""
    n_features = 2**31 - 2
    tree = LabelTree.from_chain([np.ones((2, 1)), np.eye(2)[[0, 0, 1]]])
    rows = np.array([0, n_features - 1, n_features - 2, n_features, 3, n_features - 1])
    cols = np.array([0, 0, 1, 1, 1, 1])
    W1 = sp.csc_matrix((np.array([1, 2, 3, 0.5, 1, -1], dtype=np.float32),
                        (rows, cols)), shape=(n_features + 1, 2))
    W2 = sp.csc_matrix((np.array([2, 1, 3, 1], dtype=np.float32),
                        (np.array([n_features - 1, 3, n_features - 2, 0]),
                         np.array([0, 1, 2, 2]))), shape=(n_features + 1, 3))
    X = sp.csr_matrix((np.array([1.0, 2.0, 0.5]),
                       (np.zeros(3, int), np.array([3, n_features - 2,
                                                    n_features - 1]))),
                      shape=(1, n_features))
    # The same model and query on 6 features (ids 0, 3, n-2, n-1, bias -> 0..4):
    # same accumulation order, so bit-identical results.
    small = {0: 0, 3: 1, n_features - 2: 2, n_features - 1: 3, n_features: 4}

    def shrink(W):
        C = W.tocoo()
        return sp.csc_matrix((C.data, ([small[int(r)] for r in C.row], C.col)),
                             shape=(5, W.shape[1]))

    Xs = sp.csr_matrix((X.data, [small[int(c)] for c in X.indices], X.indptr),
                       shape=(1, 4))
    for post_processor in ("l3-hinge", "noop"):
        got = BeamSearcher([W1, W2], tree).search(
            X, beam_size=2, top_k=3, post_processor=post_processor)
        expected = BeamSearcher([shrink(W1), shrink(W2)], tree).search(
            Xs, beam_size=2, top_k=3, post_processor=post_processor)
        assert_same(got, expected)
        assert np.all(got[0] >= 0) and np.any(got[1] != 0)


@pytest.mark.parametrize("dense", [False, True])
def test_block_size_does_not_change_results(dense):
    X, weights, tree = problem(21, [4, 10, 37], n=40, n_features=30)
    X = X.toarray() if dense else X
    searcher = BeamSearcher(weights, tree)
    expected = searcher.search(X, beam_size=3, top_k=6, n_threads=2)
    for block in (1, 3, 7):
        searcher._block = block
        assert_same(searcher.search(X, beam_size=3, top_k=6, n_threads=2), expected)
    # Fewer than four queries take the one-at-a-time path: same results.
    searcher._block = 0
    for i in range(3):
        assert_same(searcher.search(X[i:i + 1], beam_size=3, top_k=6),
                    (expected[0][i:i + 1], expected[1][i:i + 1]))


def test_searcher_from_chunked_levels():
    """The chunked layout rebuilds an identical searcher; damaged arrays raise."""
    X, weights, tree = problem(23, [4, 10, 37], n=30, n_features=25)
    searcher = BeamSearcher(weights, tree, bias=0.5)
    levels = searcher.chunked_levels
    again = BeamSearcher.from_chunked_levels(levels, tree, n_features=25, bias=0.5)
    assert_same(again.search(X, beam_size=2, top_k=5),
                searcher.search(X, beam_size=2, top_k=5))
    damages = [
        (0, lambda a: a.__setitem__(-1, a[-1] + 1)),           # chunk_ptr
        (1, lambda a: a.__setitem__(0, 10**6)),                # feature id
        (2, lambda a: a.__setitem__(1, a[1] + 1000)),          # row_off
        (3, lambda a: a.__setitem__(0, 1)),                    # row_base
        (4, lambda a: a.__setitem__(0, 7)),                    # row_shift
        (5, lambda a: a.__setitem__(-1, a[-1] + 1)),           # entry_ptr
        (7, lambda a: a.__setitem__(0, 99)),                   # child offset
        (8, lambda a: a.__setitem__(1, a[1] + 1)),             # dir_ptr
        (9, lambda a: a.__setitem__(0, a[0] + 1)),             # dir_shift
        (10, lambda a: a.__setitem__(1, 10**6)),               # dir
    ]
    for index, damage in damages:
        broken = [list(level) for level in levels]
        broken[1][index] = broken[1][index].copy()
        damage(broken[1][index])
        with pytest.raises(ValueError, match="chunked level 2"):
            BeamSearcher.from_chunked_levels(broken, tree, n_features=25, bias=0.5)
    with pytest.raises(ValueError, match="chunked levels"):
        BeamSearcher.from_chunked_levels(levels[:2], tree, n_features=25)
    with pytest.raises(ValueError, match="chunked level 1"):
        BeamSearcher.from_chunked_levels(levels, tree, n_features=3)


@pytest.mark.parametrize("post_processor", ["l3-hinge", "sigmoid", "log-sigmoid",
                                            "noop"])
def test_one_query_and_block_drivers_agree_exactly(post_processor):
    """The one-query driver (fewer than 4 rows, and the one-row fast path) and
    the block driver, with any block size, give bit-identical results."""
    X, weights, tree = problem(31, [3, 11, 40], n=23, n_features=15)
    searcher = BeamSearcher(weights, tree, bias=0.8)
    kw = dict(beam_size=2, top_k=50, post_processor=post_processor)
    one = [searcher._predict_one_fast(X[i].indices, X[i].data, **kw)
           for i in range(X.shape[0])]
    one = (np.vstack([o[0] for o in one]), np.vstack([o[1] for o in one]))
    assert np.all(one[0][:, -1] == -1)  # a beam of 2 reaches fewer than 40 labels
    small = [searcher.search(X[i:i + 3], **kw) for i in range(0, X.shape[0], 3)]
    small = (np.vstack([s[0] for s in small]), np.vstack([s[1] for s in small]))
    np.testing.assert_array_equal(small[0], one[0])
    np.testing.assert_array_equal(small[1], one[1])
    try:
        for block in (1, 2, 5, 0):
            searcher._block = block
            for Xq in (X, X.toarray()):
                labels, scores = searcher.search(Xq, n_threads=2, **kw)
                np.testing.assert_array_equal(labels, one[0])
                np.testing.assert_array_equal(scores, one[1])
    finally:
        searcher._block = 0
