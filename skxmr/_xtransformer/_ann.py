"""Approximate nearest neighbours of unit vectors: a faiss HNSW graph.

The neighbour bank of ``XTransformerClassifier`` holds every training text;
the exact search (``skxmr._xtransformer._neighbors``) costs one product with
all of them per query, n_train^2 at fit. Above a bank size the model searches
an HNSW graph (faiss ``IndexHNSWFlat``, inner product) instead, and recomputes
the similarities of the candidates it returns exactly from the bank, so that
only which neighbours are found is approximate, not their weights.

faiss is imported inside the functions (the ``transformer`` extra installs
``faiss-cpu``).
"""

import numpy as np

HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(
            f"neighbor_search='hnsw' needs faiss, which is not installed ({exc}). "
            "Install it with `pip install faiss-cpu` (or `pip install "
            "'skxmr[transformer]'`).") from exc
    return faiss


def faiss_available():
    try:
        import_faiss()
    except ImportError:
        return False
    return True


class _Threads:
    def __init__(self, faiss, n_threads):
        self.faiss, self.n_threads = faiss, n_threads

    def __enter__(self):
        self.previous = self.faiss.omp_get_max_threads()
        self.faiss.omp_set_num_threads(max(1, int(self.n_threads)))

    def __exit__(self, *exc):
        self.faiss.omp_set_num_threads(self.previous)


def build_hnsw(bank, n_threads=1, m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION):
    """An HNSW index (inner product) over the rows of ``bank`` (float32)."""
    faiss = import_faiss()
    bank = np.ascontiguousarray(bank, dtype=np.float32)
    index = faiss.IndexHNSWFlat(bank.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    with _Threads(faiss, n_threads):
        index.add(bank)
    return index


def hnsw_to_bytes(index):
    """The index serialised by faiss, as a 1-D uint8 array."""
    faiss = import_faiss()
    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)


def hnsw_from_bytes(data, n_rows, dim):
    """The index of :func:`hnsw_to_bytes`; ValueError unless it is an HNSW
    index of ``n_rows`` vectors of dimension ``dim``."""
    faiss = import_faiss()
    try:
        index = faiss.deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise ValueError(f"not a faiss index: {exc}") from None
    if not isinstance(index, faiss.IndexHNSWFlat) or index.ntotal != n_rows or (
            index.d != dim) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f"not an inner-product HNSW index of {n_rows} vectors of "
                         f"dimension {dim}.")
    return index


def hnsw_search(index, queries, bank, k, self_index=None, n_threads=1,
                ef_search=HNSW_EF_SEARCH):
    """Approximate ``nearest_neighbors`` of ``skxmr._xtransformer._neighbors``:
    same arguments and answers, the candidates found by ``index`` (built on
    ``bank``), their similarities recomputed exactly from ``bank``. Where the
    graph finds fewer than ``k`` candidates, the rest of the row is index -1,
    similarity -inf."""
    faiss = import_faiss()
    n_queries, n_bank = queries.shape[0], bank.shape[0]
    excluded = self_index is not None and bool(np.any(self_index >= 0))
    k = max(0, min(k, n_bank - (1 if excluded else 0)))
    if k == 0 or n_queries == 0:
        return (np.empty((n_queries, k), dtype=np.int64),
                np.empty((n_queries, k), dtype=np.float32))
    asked = min(n_bank, k + (1 if excluded else 0))
    index.hnsw.efSearch = max(ef_search, asked)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    with _Threads(faiss, n_threads):
        _, found = index.search(queries, asked)
    found = found.astype(np.int64, copy=False)
    if excluded:
        found = np.where(found == np.asarray(self_index)[:, None], -1, found)
    valid = found >= 0
    # exact similarities of the candidates; missing ones (-1) sort last
    safe = np.where(valid, found, 0)
    sims = np.einsum("ij,ikj->ik", queries, bank[safe]).astype(np.float32)
    sims = np.where(valid, sims, -np.inf)
    order = np.lexsort((np.where(valid, found, n_bank), -sims), axis=1)[:, :k]
    indices = np.take_along_axis(found, order, axis=1)
    similarities = np.take_along_axis(sims, order, axis=1)
    return indices, similarities  # -1 where the graph found too few
