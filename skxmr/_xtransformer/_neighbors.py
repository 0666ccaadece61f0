"""Label votes of nearest training neighbours in an embedding space.

``XTransformerClassifier`` gives its ranker, beside the embeddings and the
TF-IDF, one more sparse block: for each text, the labels of its ``k`` nearest
training texts (cosine similarity of the L2-normalised embeddings), each
neighbour's label row weighted by a softmax of its similarity. The linear
models of the ranker then learn, label by label, how far to trust the
neighbours: a non-linear view of the embedding space that a linear model on
the embeddings alone cannot take. A training text is never its own neighbour
(leave one out), so its features look like a new text's.

The search is exact and brute force (dense products in chunks, BLAS threads)
unless an HNSW index of the bank is given (``skxmr._xtransformer._ann``): its
cost then grows with the logarithm of the bank, not its size.
"""

import numpy as np
import scipy.sparse as sp

from skxmr._xtransformer._ann import hnsw_search

# Softmax temperature over cosine similarities: the nearest neighbour weighs
# e times more than one 0.05 less similar.
NEIGHBOR_TEMPERATURE = 0.05
_CHUNK_BYTES = 1 << 27  # similarities held at once (float32)


def nearest_neighbors(queries, bank, n_neighbors, self_index=None):
    """Indices and cosine similarities of each query's nearest rows of ``bank``.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, dim), L2-normalised rows
    bank : ndarray of shape (n_bank, dim), L2-normalised rows
    n_neighbors : int
        Neighbours per query (fewer when the bank is smaller).
    self_index : ndarray of shape (n_queries,) or None, default=None
        The row of ``bank`` that each query is (-1: none), never its own
        neighbour. None: no query is in the bank.

    Returns
    -------
    indices : ndarray of shape (n_queries, k), int64, nearest first
    similarities : ndarray of shape (n_queries, k), float32
    """
    n_queries, n_bank = queries.shape[0], bank.shape[0]
    excluded = self_index is not None and bool(np.any(self_index >= 0))
    k = max(0, min(n_neighbors, n_bank - (1 if excluded else 0)))
    indices = np.empty((n_queries, k), dtype=np.int64)
    similarities = np.empty((n_queries, k), dtype=np.float32)
    if k == 0 or n_queries == 0:
        return indices, similarities
    chunk = max(1, _CHUNK_BYTES // (4 * n_bank))
    for start in range(0, n_queries, chunk):
        stop = min(n_queries, start + chunk)
        scores = queries[start:stop] @ bank.T
        if excluded:
            rows = np.flatnonzero(self_index[start:stop] >= 0)
            scores[rows, self_index[start:stop][rows]] = -np.inf
        if k < n_bank:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n_bank), (stop - start, n_bank))
        top_scores = np.take_along_axis(scores, top, axis=1)
        # nearest first; ties by index, so that the order never depends on BLAS
        order = np.lexsort((top, -top_scores), axis=1)
        indices[start:stop] = np.take_along_axis(top, order, axis=1)
        similarities[start:stop] = np.take_along_axis(top_scores, order, axis=1)
    return indices, similarities


def search_neighbors(queries, bank, n_neighbors, self_index=None, index=None,
                     n_threads=1):
    """:func:`nearest_neighbors`, or its approximation on the HNSW ``index`` of
    ``bank`` when one is given (rows it leaves short are searched exactly)."""
    if index is None:
        return nearest_neighbors(queries, bank, n_neighbors, self_index)
    indices, similarities = hnsw_search(index, queries, bank, n_neighbors, self_index,
                                        n_threads=n_threads)
    short = np.flatnonzero(np.any(indices < 0, axis=1))
    if short.size:
        sub_self = None if self_index is None else np.asarray(self_index)[short]
        indices[short], similarities[short] = nearest_neighbors(
            queries[short], bank, n_neighbors, sub_self)
    return indices, similarities


def neighbor_label_votes(queries, bank, bank_labels, n_neighbors, self_index=None,
                         temperature=NEIGHBOR_TEMPERATURE, index=None, n_threads=1):
    """Softmax-weighted sum of the label rows of each query's nearest neighbours.

    Parameters
    ----------
    queries, bank, n_neighbors, self_index
        As :func:`nearest_neighbors`.
    bank_labels : sparse matrix of shape (n_bank, n_labels)
        The 0/1 labels of the bank's rows.
    temperature : float
        Of the softmax over each query's neighbour similarities.
    index : faiss index or None, default=None
        An HNSW index of ``bank`` to search instead of the exact search.
    n_threads : int, default=1
        Threads of the HNSW search.

    Returns
    -------
    votes : csr_matrix of shape (n_queries, n_labels), float32
        Each row sums the labels of its neighbours with weights that sum to 1
        (an empty row when the bank holds no neighbour).
    """
    indices, similarities = search_neighbors(queries, bank, n_neighbors, self_index,
                                             index, n_threads)
    n_queries, k = indices.shape
    if k == 0:
        return sp.csr_matrix((n_queries, bank_labels.shape[1]), dtype=np.float32)
    weights = np.exp((similarities - similarities[:, :1]) / np.float32(temperature))
    weights /= weights.sum(axis=1, keepdims=True)
    W = sp.csr_matrix((weights.ravel(), indices.ravel(), np.arange(0, n_queries * k + 1, k)),
                      shape=(n_queries, bank.shape[0]))
    return sp.csr_matrix(W @ sp.csr_matrix(bank_labels, dtype=np.float32),
                         dtype=np.float32)
