"""LabelTree: flat arrays, the assignment-matrix chain, transform."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr._label_tree import LabelTree


def small_chain():
    # root -> 2 clusters -> 5 labels; labels 1, 3, 4 in cluster 0, labels 0, 2 in 1.
    C0 = sp.csc_matrix(np.ones((2, 1)))
    C1 = sp.csc_matrix(np.array([[0, 1], [1, 0], [0, 1], [1, 0], [1, 0]]))
    return [C0, C1]


def test_from_chain_makes_siblings_contiguous():
    tree = LabelTree.from_chain(small_chain())
    assert tree.n_levels == 2 and tree.n_labels == 5
    np.testing.assert_array_equal(tree.level_sizes, [2, 5])
    np.testing.assert_array_equal(tree.level_ptr, [0, 1, 3, 8])
    np.testing.assert_array_equal(tree.child_ptr, [1, 3, 6, 8])
    np.testing.assert_array_equal(tree.label_perm, [1, 3, 4, 0, 2])
    np.testing.assert_array_equal(tree.leaf_sizes(), [3, 2])
    np.testing.assert_array_equal(tree.label_to_cluster(1), [1, 0, 1, 0, 0])


def random_chain(rng, sizes):
    chain = []
    for parent_n, child_n in zip([1] + sizes[:-1], sizes):
        parents = np.concatenate([np.arange(parent_n), rng.integers(0, parent_n,
                                                                    child_n - parent_n)])
        rng.shuffle(parents)
        chain.append(sp.csc_matrix((np.ones(child_n), (np.arange(child_n), parents)),
                                   shape=(child_n, parent_n)))
    return chain


def test_chain_round_trip_preserves_the_tree():
    rng = np.random.default_rng(0)
    chain = random_chain(rng, [4, 13, 60])
    tree = LabelTree.from_chain(chain)
    again = LabelTree.from_chain(tree.to_chain())
    assert again.equals(tree)
    # Each label keeps its ancestors: compare label -> top-cluster maps.
    top_from_chain = (chain[2] @ chain[1]).tocsr().indices
    top_ids = tree.label_to_cluster(1)
    # Same partition of labels (cluster ids may be renumbered).
    pairs = set(zip(top_from_chain.tolist(), top_ids.tolist()))
    assert len(pairs) == len(set(top_from_chain.tolist())) == len(set(top_ids.tolist()))


def test_to_chain_shapes_and_one_parent_per_row():
    tree = LabelTree.from_chain(random_chain(np.random.default_rng(1), [3, 9, 40]))
    chain = tree.to_chain()
    assert [C.shape for C in chain] == [(3, 1), (9, 3), (40, 9)]
    for C in chain:
        assert sp.issparse(C) and C.format == "csc"
        np.testing.assert_array_equal(np.diff(C.tocsr().indptr), 1)


def test_transform_counts_relevant_labels_per_cluster():
    tree = LabelTree.from_chain(small_chain())
    Y = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(tree.transform(Y, -1).toarray(),
                                  [[1, 1], [1, 1], [0, 0]])
    np.testing.assert_array_equal(tree.transform(sp.csr_matrix(Y), 1).toarray(),
                                  [[1, 1], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match="columns"):
        tree.transform(np.ones((1, 4)))
    with pytest.raises(ValueError, match="level"):
        tree.transform(Y, 2)


def test_keep_levels_groups_levels():
    tree = LabelTree.from_chain(random_chain(np.random.default_rng(2), [2, 4, 8, 16, 64]))
    coarse = tree.keep_levels([2, 4])
    np.testing.assert_array_equal(coarse.level_sizes, [4, 16, 64])
    # The leaf partition is unchanged.
    np.testing.assert_array_equal(
        np.sort(tree.leaf_sizes()), np.sort(coarse.leaf_sizes())
    )
    fine_leaf = tree.label_to_cluster(4)
    coarse_leaf = coarse.label_to_cluster(2)
    assert len(set(zip(fine_leaf.tolist(), coarse_leaf.tolist()))) == 16


@pytest.mark.parametrize(
    "chain, match",
    [
        ([sp.csc_matrix(np.ones((2, 2)))], "columns"),
        ([sp.csc_matrix(np.ones((2, 1))), sp.csc_matrix(np.ones((3, 2)))], "one parent"),
        ([sp.csc_matrix(np.ones((2, 1))), sp.csc_matrix(np.array([[1, 0], [1, 0]]))],
         "no child"),
        ([], "at least one"),
    ],
)
def test_bad_chains_raise(chain, match):
    with pytest.raises(ValueError, match=match):
        LabelTree.from_chain(chain)


def test_bad_arrays_raise():
    with pytest.raises(ValueError, match="permutation"):
        LabelTree([0, 1, 3, 6], [1, 3, 5, 6], [0, 0, 1])
    with pytest.raises(ValueError, match="child_ptr"):
        LabelTree([0, 1, 3, 6], [1, 3, 6], [0, 1, 2])


def test_pickle_round_trip():
    tree = LabelTree.from_chain(small_chain())
    assert pickle.loads(pickle.dumps(tree)).equals(tree)
