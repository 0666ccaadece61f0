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


# ------------------------------------------------- HNSW search (skxmr._xtransformer._ann)
faiss = pytest.importorskip("faiss", reason="faiss-cpu (the transformer extra)")


def _clustered_unit_rows(rng, n, dim=32, n_centres=50):
    centres = rng.standard_normal((n_centres, dim))
    X = centres[rng.randint(n_centres, size=n)] + 0.5 * rng.standard_normal((n, dim))
    X = X.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_hnsw_recall_against_the_exact_search():
    from skxmr._xtransformer._ann import build_hnsw, hnsw_search

    rng = np.random.RandomState(0)
    bank, queries = _clustered_unit_rows(rng, 5000), _clustered_unit_rows(rng, 300)
    index = build_hnsw(bank)
    exact, exact_sims = nearest_neighbors(queries, bank, 20)
    approx, approx_sims = hnsw_search(index, queries, bank, 20)
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    assert recall > 0.95
    # similarities are exact for what is found, nearest first
    np.testing.assert_allclose(approx_sims, np.take_along_axis(queries @ bank.T, approx,
                                                               axis=1), atol=1e-6)
    assert np.all(np.diff(approx_sims, axis=1) <= 0)
    # the training rows of the bank: never their own neighbour
    self_index = np.arange(300)
    found, _ = hnsw_search(index, bank[:300], bank, 20, self_index)
    assert not np.any(found == self_index[:, None])
    reference, _ = nearest_neighbors(bank[:300], bank, 20, self_index)
    assert np.mean([len(set(a) & set(e)) / 20 for a, e in zip(found, reference)]) > 0.95


def test_votes_with_an_index_fill_short_rows_exactly(monkeypatch):
    """Where the graph returns fewer than k candidates, the row is searched
    exactly: the votes equal the exact ones."""
    from skxmr._xtransformer import _ann
    from skxmr._xtransformer._ann import build_hnsw

    rng = np.random.RandomState(1)
    bank, queries = _unit_rows(rng, 40), _unit_rows(rng, 10)
    labels = sp.random(40, 6, density=0.3, format="csr", random_state=0)
    labels.data[:] = 1
    index = build_hnsw(bank)
    original = _ann.hnsw_search

    def short(*args, **kwargs):
        indices, sims = original(*args, **kwargs)
        indices[::2, -3:] = -1  # every other row: three candidates missing
        sims[::2, -3:] = -np.inf
        return indices, sims

    monkeypatch.setattr(_neighbors, "hnsw_search", short)
    got = neighbor_label_votes(queries, bank, labels, 7, index=index).toarray()
    expected = neighbor_label_votes(queries, bank, labels, 7).toarray()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_hnsw_bytes_round_trip_and_checks():
    from skxmr._xtransformer._ann import (build_hnsw, hnsw_from_bytes, hnsw_search,
                                          hnsw_to_bytes)

    rng = np.random.RandomState(2)
    bank = _unit_rows(rng, 200)
    index = build_hnsw(bank)
    data = hnsw_to_bytes(index)
    assert data.dtype == np.uint8 and data.ndim == 1
    restored = hnsw_from_bytes(data, 200, 8)
    a = hnsw_search(index, bank[:20], bank, 5)
    b = hnsw_search(restored, bank[:20], bank, 5)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="HNSW index of 201"):
        hnsw_from_bytes(data, 201, 8)
    with pytest.raises(ValueError):
        hnsw_from_bytes(data[:50], 200, 8)
