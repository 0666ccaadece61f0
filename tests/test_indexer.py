"""LabelIndexer: balanced trees, determinism, quality, representations, errors."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.preprocessing import normalize

from skxmr import LabelIndexer, LabelTree
from skxmr._indexer import tree_fanouts
from skxmr.datasets import make_xmc_classification


@pytest.fixture(scope="module")
def data():
    return make_xmc_classification(800, 3000, 500, random_state=0)


def leaf_members(tree):
    leaf = tree.label_to_cluster(tree.n_levels - 1)
    return [set(np.flatnonzero(leaf == c)) for c in range(leaf.max() + 1)]


def assert_valid_partition(tree, n_labels, max_leaf_size):
    leaves = leaf_members(tree)
    assert sum(len(m) for m in leaves) == n_labels
    assert set().union(*leaves) == set(range(n_labels))  # every label exactly once
    sizes = tree.leaf_sizes()
    assert sizes.max() <= max_leaf_size
    assert sizes.min() >= 1


@pytest.mark.parametrize("clustering", ["kmeans", "binary"])
@pytest.mark.parametrize("B, leaf", [(16, 100), (4, 10), (2, 7), (8, 1)])
def test_every_label_in_one_leaf_and_balance(data, clustering, B, leaf):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # labels without positives
        tree = LabelIndexer(branching_factor=B, max_leaf_size=leaf,
                            clustering=clustering, random_state=0).fit(X, Y).tree_
    assert_valid_partition(tree, 500, leaf)
    sizes = tree.leaf_sizes()
    if tree.level_sizes[-2] <= 500:  # every node could take its full fan-out
        assert sizes.max() - sizes.min() <= 1
    if clustering == "kmeans":
        assert tree.children_counts(0)[0] == min(B, tree.level_sizes[0])
        assert tree.level_sizes[0] == min(B, int(np.ceil(500 / leaf)))


def test_fanouts():
    assert tree_fanouts(37463, 16, 100) == [16, 16, 2]
    assert tree_fanouts(100, 16, 100) == [1]
    assert tree_fanouts(1, 16, 100) == [1]
    assert tree_fanouts(1000, 16, 100) == [10]
    assert tree_fanouts(37463, 16, 100, "binary") == [2] * 9


def test_binary_mode_groups_levels_like_pecos(data):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tree = LabelIndexer(branching_factor=4, max_leaf_size=5, clustering="binary",
                            random_state=0).fit(X, Y).tree_
    # ceil(log2(500 / 5)) = 7 binary levels, kept at depths 1, 3, 5, 7.
    np.testing.assert_array_equal(tree.level_sizes, [2, 8, 32, 128, 500])
    with pytest.raises(ValueError, match="power of 2"):
        LabelIndexer(branching_factor=6, clustering="binary").fit(X, Y)


def test_hand_checkable_two_groups():
    # 8 labels: 4 near direction e0, 4 near e1 -> the two leaves are the groups.
    Z = np.zeros((8, 3))
    Z[[0, 2, 4, 6], 0] = 1.0
    Z[[1, 3, 5, 7], 1] = 1.0
    Z[:, 2] = np.linspace(0.0, 0.3, 8)
    indexer = LabelIndexer("precomputed", branching_factor=2, max_leaf_size=4,
                           random_state=0).fit(Z)
    assert sorted(map(sorted, leaf_members(indexer.tree_))) == [[0, 2, 4, 6],
                                                                [1, 3, 5, 7]]


def test_recovers_planted_clusters():
    """Labels drawn around 16 well-separated centres: leaves are pure."""
    rng = np.random.default_rng(0)
    centres = np.eye(64)[:16] * 5
    truth = np.repeat(np.arange(16), 20)
    Z = centres[truth] + rng.normal(scale=0.3, size=(320, 64))
    indexer = LabelIndexer("precomputed", branching_factor=16, max_leaf_size=20,
                           random_state=1).fit(Z)
    for members in leaf_members(indexer.tree_):
        assert len({truth[m] for m in members}) == 1


def test_beats_random_balanced_partition(data):
    X, Y = data
    from skxmr._embedding import pifa

    Z = pifa(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tree = LabelIndexer(max_leaf_size=20, random_state=0).fit(X, Y).tree_
    leaf = tree.label_to_cluster(tree.n_levels - 1)

    def avg_cosine(assign):
        M = sp.csr_matrix((np.ones(500), assign, np.arange(501)))
        C = normalize(M.T @ Z)
        return np.asarray(Z.multiply(C[assign]).sum(axis=1)).mean()

    random_assign = np.random.default_rng(0).permutation(leaf)
    assert avg_cosine(leaf) > 1.5 * avg_cosine(random_assign)


@pytest.mark.parametrize("clustering", ["kmeans", "binary"])
@pytest.mark.parametrize("spherical", [True, False])
def test_same_tree_for_any_n_jobs(data, clustering, spherical):
    X, Y = data
    trees = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for n_jobs in (1, 2):
            trees.append(LabelIndexer(max_leaf_size=8, branching_factor=4,
                                      clustering=clustering, spherical=spherical,
                                      n_jobs=n_jobs, random_state=42).fit(X, Y).tree_)
    assert trees[0].equals(trees[1])


def test_random_state_changes_the_tree(data):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = LabelIndexer(max_leaf_size=20, random_state=0).fit(X, Y).tree_
        b = LabelIndexer(max_leaf_size=20, random_state=1).fit(X, Y).tree_
    assert not a.equals(b)


def test_chain_round_trip_and_user_tree(data):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tree = LabelIndexer(max_leaf_size=20, branching_factor=4,
                            random_state=0).fit(X, Y).tree_
    chain = tree.to_chain()
    assert chain[0].shape[1] == 1 and chain[-1].shape[0] == 500
    assert LabelTree.from_chain(chain).equals(tree)


def test_transform_matches_assignment_product(data):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        indexer = LabelIndexer(max_leaf_size=20, branching_factor=4,
                               random_state=0).fit(X, Y)
    tree = indexer.tree_
    for level in range(1, tree.n_levels):
        leaf = tree.label_to_cluster(level)
        expected = np.zeros((Y.shape[0], tree.level_sizes[level - 1]))
        Yd = Y.toarray()
        for label in range(500):
            expected[:, leaf[label]] += Yd[:, label]
        np.testing.assert_array_equal(indexer.transform(Y, level).toarray(), expected)
    np.testing.assert_array_equal(indexer.transform(Y).toarray(),
                                  indexer.transform(Y, tree.n_levels - 1).toarray())


def test_predict_places_known_labels_in_their_leaf():
    rng = np.random.default_rng(0)
    centres = np.eye(32)[:8] * 4
    truth = np.repeat(np.arange(8), 10)
    Z = centres[truth] + rng.normal(scale=0.2, size=(80, 32))
    indexer = LabelIndexer("precomputed", branching_factor=8, max_leaf_size=10,
                           random_state=0).fit(Z)
    leaf = indexer.tree_.label_to_cluster(indexer.tree_.n_levels - 1)
    new = centres[[3, 5]] + rng.normal(scale=0.2, size=(2, 32))
    np.testing.assert_array_equal(indexer.predict(new), leaf[[30, 50]])
    with pytest.raises(ValueError, match="columns"):
        indexer.predict(np.ones((1, 5)))


@pytest.mark.parametrize("representation", ["pifa", "pii", "spectral"])
def test_representations(data, representation):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        indexer = LabelIndexer(representation, max_leaf_size=30, n_components=16,
                               random_state=0).fit(X, Y)
    assert_valid_partition(indexer.tree_, 500, 30)


def test_label_features_concatenated_with_pifa(data):
    X, Y = data
    F = np.random.default_rng(0).normal(size=(500, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        indexer = LabelIndexer(max_leaf_size=30, random_state=0).fit(
            X, Y, label_features=F)
    assert indexer.leaf_centroids_.shape[1] == X.shape[1] + 8
    with pytest.raises(ValueError):
        LabelIndexer().fit(X, Y, label_features=F[:10])


def test_dense_and_float64_inputs(data):
    X, Y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a = LabelIndexer(max_leaf_size=30, random_state=0).fit(X, Y).tree_
        b = LabelIndexer(max_leaf_size=30, random_state=0).fit(
            X.astype(np.float64).toarray(), Y.toarray()).tree_
    assert_valid_partition(b, 500, 30)
    assert a.n_labels == b.n_labels


def test_labels_without_positives_still_get_a_leaf():
    X, Y = make_xmc_classification(300, 1000, 200, random_state=3)
    Y = Y.tolil()
    Y[:, [5, 17]] = 0
    with pytest.warns(UserWarning, match="all-zero vector"):
        tree = LabelIndexer(max_leaf_size=10, random_state=0).fit(X, Y.tocsr()).tree_
    assert_valid_partition(tree, 200, 10)


def test_single_leaf_and_single_label():
    X, Y = make_xmc_classification(100, 500, 40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tree = LabelIndexer(max_leaf_size=40).fit(X, Y).tree_
    np.testing.assert_array_equal(tree.level_sizes, [1, 40])
    one = LabelIndexer("precomputed").fit(np.ones((1, 3))).tree_
    np.testing.assert_array_equal(one.level_sizes, [1, 1])


@pytest.mark.parametrize(
    "params, fit_args, match",
    [
        ({}, "empty_Y", "no positive"),
        ({}, "nan_X", "NaN|infinity"),
        ({}, "short_Y", "rows|samples"),
        ({}, "no_Y", "needs fit"),
        ({"representation": "precomputed"}, "with_Y", "Y must be None"),
        ({"branching_factor": 1}, "ok", "branching_factor"),
        ({"max_leaf_size": 0}, "ok", "max_leaf_size"),
        ({"representation": "pifaa"}, "ok", "representation"),
    ],
)
def test_bad_input_raises_clear_errors(params, fit_args, match):
    X, Y = make_xmc_classification(50, 200, 30, random_state=0)
    args = {
        "empty_Y": (X, sp.csr_matrix(Y.shape)),
        "nan_X": (sp.csr_matrix(np.full((50, 200), np.nan)), Y),
        "short_Y": (X, Y[:10]),
        "no_Y": (X,),
        "with_Y": (X, Y),
        "ok": (X, Y),
    }[fit_args]
    with pytest.raises(ValueError, match=match):
        LabelIndexer(**params).fit(*args)


def test_clone_pickle_and_params(data):
    X, Y = data
    indexer = LabelIndexer(branching_factor=4, max_leaf_size=25, random_state=0)
    assert clone(indexer).get_params() == indexer.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        indexer.fit(X, Y)
    restored = pickle.loads(pickle.dumps(indexer))
    assert restored.tree_.equals(indexer.tree_)
    np.testing.assert_array_equal(
        restored.transform(Y).toarray(), indexer.transform(Y).toarray()
    )
