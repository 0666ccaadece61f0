"""Exact nearest neighbours and their label votes (skxmr._xtransformer._neighbors) against a
brute-force sort of every similarity."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr._xtransformer import _neighbors
from skxmr._xtransformer._neighbors import nearest_neighbors, neighbor_label_votes


def _unit_rows(rng, n, dim=8):
    X = rng.standard_normal((n, dim)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _sorted_reference(queries, bank, k, self_index=None):
    S = queries @ bank.T
    if self_index is not None:
        for i, j in enumerate(self_index):
            if j >= 0:
                S[i, j] = -np.inf
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(S, order, axis=1)


@pytest.mark.parametrize("chunk_bytes", [1 << 27, 4 * 30 * 7])  # one chunk; chunks of 7 rows
def test_nearest_neighbors_match_a_full_sort(monkeypatch, chunk_bytes):
    monkeypatch.setattr(_neighbors, "_CHUNK_BYTES", chunk_bytes)
    rng = np.random.RandomState(0)
    bank, queries = _unit_rows(rng, 30), _unit_rows(rng, 23)
    for k in (1, 5, 30, 50):  # 50 > the bank: all of it
        indices, similarities = nearest_neighbors(queries, bank, k)
        ref_indices, ref_similarities = _sorted_reference(queries, bank, min(k, 30))
        np.testing.assert_array_equal(indices, ref_indices)
        np.testing.assert_allclose(similarities, ref_similarities, atol=1e-6)
    # The bank asked about itself: each row leaves itself out, others are as they are.
    self_index = np.arange(30)
    self_index[::4] = -1
    indices, similarities = nearest_neighbors(bank, bank, 30, self_index)
    assert indices.shape == (30, 29)  # one row fewer than the bank
    ref_indices, _ = _sorted_reference(bank, bank, 29, self_index)
    np.testing.assert_array_equal(indices, ref_indices)
    kept = self_index >= 0
    assert not np.any(indices[kept] == np.arange(30)[kept, None])
    assert np.all(indices[~kept][:, 0] == np.flatnonzero(~kept))  # the nearest is itself


def test_ties_are_broken_by_row():
    bank = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    indices, similarities = nearest_neighbors(np.array([[1, 0]], np.float32), bank, 3)
    np.testing.assert_array_equal(indices, [[0, 2, 3]])
    np.testing.assert_array_equal(similarities, [[1, 1, 1]])


def test_votes_are_softmax_weighted_labels():
    rng = np.random.RandomState(1)
    bank, queries = _unit_rows(rng, 40), _unit_rows(rng, 12)
    labels = sp.random(40, 9, density=0.3, random_state=2, format="csr")
    labels.data[:] = 1
    votes = neighbor_label_votes(queries, bank, labels, 6, temperature=0.1)
    assert sp.issparse(votes) and votes.dtype == np.float32 and votes.shape == (12, 9)
    order, S = _sorted_reference(queries, bank, 6)
    weights = np.exp((S - S[:, :1]) / 0.1)
    weights /= weights.sum(axis=1, keepdims=True)
    expected = np.einsum("qk,qkl->ql", weights, labels.toarray()[order])
    np.testing.assert_allclose(votes.toarray(), expected, rtol=1e-5, atol=1e-6)
    # Each row's weights sum to 1: a label all neighbours share gets a vote of 1.
    shared = sp.csr_matrix(np.ones((40, 1), dtype=np.float32))
    np.testing.assert_allclose(neighbor_label_votes(queries, bank, shared, 6).toarray(), 1,
                               rtol=1e-6)


def test_empty_bank_or_queries_give_empty_votes():
    rng = np.random.RandomState(3)
    one = _unit_rows(rng, 1)
    labels = sp.csr_matrix(np.ones((1, 4), dtype=np.float32))
    # A bank of one row, asked about itself: no neighbour at all.
    votes = neighbor_label_votes(one, one, labels, 5, self_index=np.array([0]))
    assert votes.shape == (1, 4) and votes.nnz == 0
    votes = neighbor_label_votes(np.zeros((0, 8), np.float32), one, labels, 5)
    assert votes.shape == (0, 4)
