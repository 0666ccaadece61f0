"""Beam-search inference over a label tree (Python face of ``_cython._beam_search``).

A model is one weight matrix per tree level below the root: ``weights[t - 1]`` has
shape ``(n_features + 1, n_nodes_t)``; column ``j`` scores node ``j`` of level ``t``
(in :class:`~skxmr._label_tree.LabelTree` node order; the last level holds the
labels in node order, label node ``p`` standing for label ``tree.label_perm[p]``)
and its last row multiplies a constant feature of value ``bias``. The score of a
node for a query ``x`` is ``s = W[:, c] . [x; bias]``; the post-processor (see
:mod:`skxmr._postprocess`) turns raw scores into path scores.

Ranking rule: higher path score first; within a level, ties go to the smaller node
index, and in the final top-k to the smaller label id.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from skxmr._cython._beam_search import _beam_search_csr, _beam_search_dense
from skxmr._cython._chunked_weights import (
    CHILD_DTYPES,
    LEVEL_DTYPES,
    ChunkedWeights,
    _build_chunks,
    _release_free_heap,
)
from skxmr._label_tree import LabelTree
from skxmr._postprocess import check_post_processor
from skxmr.utils.validation import check_sparse_structure
from skxmr.utils import effective_n_threads

__all__ = ["BeamSearcher", "beam_search", "chunk_level", "scores_to_csr"]

_FLOATS = (np.float32, np.float64)
_INDEX_TYPES = (np.int32, np.int64)


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}.")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}.")
    return int(value)


def _check_n_threads(n_threads):
    if n_threads is None:
        return effective_n_threads(None)
    if isinstance(n_threads, bool) or not isinstance(n_threads, Integral):
        raise TypeError(f"n_threads must be an int or None, got {n_threads!r}.")
    if n_threads > 0:
        return int(n_threads)  # as is: counting CPUs costs ~40 us per call
    return effective_n_threads(int(n_threads))


def _check_level(W, level, n_rows, n_cols):
    """One level's weights as a validated CSC matrix (no copy when already CSC)."""
    if not sp.issparse(W):
        W = np.asarray(W)
        if W.ndim != 2:
            raise ValueError(f"weights[{level - 1}] must be a 2-D matrix.")
    if W.dtype.kind not in "biuf":
        raise TypeError(
            f"weights[{level - 1}] must hold real numbers, got dtype {W.dtype}."
        )
    # Before any scipy conversion: its compiled routines trust the arrays.
    check_sparse_structure(W, name=f"weights[{level - 1}]")
    if not sp.issparse(W):
        W = sp.csc_matrix(W)
    elif W.format != "csc":
        W = W.tocsc()
    if n_rows is not None and W.shape != (n_rows, n_cols):
        raise ValueError(
            f"weights[{level - 1}] has shape {W.shape}; expected {(n_rows, n_cols)} "
            f"(n_features + 1 rows, one column per node of tree level {level})."
        )
    if W.shape[1] != n_cols:
        raise ValueError(
            f"weights[{level - 1}] has {W.shape[1]} columns but tree level {level} "
            f"has {n_cols} nodes."
        )
    return W


def chunk_level(W, children_counts, n_threads=1):
    """The chunked layout of one level's weights (see ``_cython._chunked_weights``).

    Parameters
    ----------
    W : CSC matrix of shape (n_features + 1, n_nodes)
        Validated weights of one tree level (columns in node order).
    children_counts : ndarray of shape (n_chunks,)
        Number of children of each node of the level above; they sum to
        ``n_nodes``, and chunk ``j`` holds the next ``children_counts[j]`` columns.
    n_threads : int, default=1
        OpenMP threads (the result does not depend on it).

    Returns
    -------
    arrays : tuple
        ``(chunk_ptr, row_feat, row_off, row_base, row_shift, entry_ptr, vals,
        child, dir_ptr, dir_shift, dir)``. Chunk ``j`` has the rows
        ``chunk_ptr[j]:chunk_ptr[j + 1]`` (int64), sorted by feature id
        ``row_feat`` (int32), and the entries ``entry_ptr[j]:entry_ptr[j + 1]``
        (int64) of ``vals`` (float32 weights) and ``child`` (child offsets within
        the chunk: uint8, uint16 or int32, the narrowest that holds the widest
        chunk). Row ``r`` has the entries ``start(r):start(r + 1)``, ``start(r) =
        row_base[r >> s] + row_off[r]`` with ``s = row_shift[0]`` (int64 bases of
        groups of ``2**s`` rows, uint16 offsets, ``s`` = 6 unless a group spans
        2**16 entries), by increasing child offset. The directory: chunk ``j``'s
        feature range ``row_feat[first] ..`` is cut into ``n_b = dir_ptr[j + 1] -
        dir_ptr[j] - 1`` buckets of ``2**dir_shift[j]`` features, at most half as
        many buckets as rows; the rows of bucket ``b`` are ``dir[dir_ptr[j] + b]``
        to ``dir[dir_ptr[j] + b + 1]`` (uint32, relative to the chunk's first
        row). Explicit zeros are dropped.
    """
    n_rows = W.shape[0]
    counts = np.asarray(children_counts, dtype=np.int64)
    col_ptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=col_ptr[1:])
    max_width = int(counts.max()) if counts.size else 1
    indptr = W.indptr if W.indptr.dtype == np.int64 else W.indptr.astype(np.int64)
    chunk_ptr, row_feat, row_ptr, entry_ptr, vals, child = _build_chunks(
        col_ptr, indptr, np.asarray(W.indices, dtype=np.int32),
        np.asarray(W.data, dtype=np.float32), n_rows, max(1, max_width), n_threads)
    del indptr
    return (chunk_ptr, row_feat, *_row_offsets(chunk_ptr, row_ptr, entry_ptr),
            entry_ptr, vals, child, *_bucket_directory(chunk_ptr, row_feat))


def _row_starts(chunk_ptr, row_ptr, entry_ptr):
    """Global first entry of every row, then the number of entries (int64)."""
    starts = np.repeat(entry_ptr[:-1], np.diff(chunk_ptr))
    starts += row_ptr
    return np.append(starts, entry_ptr[-1])


def _row_offsets(chunk_ptr, row_ptr, entry_ptr):
    """``(row_off, row_base, row_shift)`` of :func:`chunk_level` from the builder's
    chunk-relative uint32 row pointers: the largest group of ``2**s`` rows (s <=
    6) whose entries span less than 2**16 from the group's first row."""
    starts = _row_starts(chunk_ptr, row_ptr, entry_ptr)
    for shift in range(6, -1, -1):
        base = starts[::1 << shift]
        off = starts - np.repeat(base, 1 << shift)[:starts.size]
        if off.max(initial=0) < 2**16:
            return (off.astype(np.uint16), base.copy(),
                    np.array([shift], dtype=np.int32))
    raise AssertionError("unreachable: a group of one row has offset 0")


def _bucket_directory(chunk_ptr, row_feat):
    """``(dir_ptr, dir_shift, dir)`` of :func:`chunk_level` (vectorised)."""
    rows = np.diff(chunk_ptr)
    n_chunks = rows.size
    has = rows > 0
    first = np.zeros(n_chunks, dtype=np.int64)
    last = np.zeros(n_chunks, dtype=np.int64)
    first[has] = row_feat[chunk_ptr[:-1][has]]
    last[has] = row_feat[chunk_ptr[1:][has] - 1]
    span = last - first
    target = np.maximum(rows // 2, 1)  # at most this many buckets
    shift = np.zeros(n_chunks, dtype=np.int64)
    while True:
        over = (span >> shift) + 1 > target
        if not over.any():
            break
        shift[over] += 1
    n_buckets = (span >> shift) + 1
    dir_ptr = np.zeros(n_chunks + 1, dtype=np.int64)
    np.cumsum(n_buckets + 1, out=dir_ptr[1:])
    row_chunk = np.repeat(np.arange(n_chunks), rows)
    bucket = (row_feat - first[row_chunk]) >> shift[row_chunk]
    counts = np.bincount(dir_ptr[:-1][row_chunk] + bucket + 1,
                         minlength=int(dir_ptr[-1]))
    del row_chunk, bucket
    ends = np.cumsum(counts)
    ends -= np.repeat(ends[dir_ptr[:-1]], n_buckets + 1)
    return dir_ptr, shift.astype(np.int32), ends.astype(np.uint32)


def _check_chunked_level(level, counts, n_rows, t):
    """Validate one level of the chunked layout against the tree (see
    :func:`chunk_level`); raise ``ValueError`` naming what is wrong."""
    if len(level) != 11:
        raise ValueError(f"chunked level {t}: expected 11 arrays, got {len(level)}.")
    for a, kind in zip(level, LEVEL_DTYPES):
        if not isinstance(a, np.ndarray) or a.ndim != 1 or (
                a.dtype not in CHILD_DTYPES if kind is None else a.dtype != kind):
            raise ValueError(f"chunked level {t}: expected 1-D arrays of dtypes "
                             f"{LEVEL_DTYPES} (child: one of {CHILD_DTYPES}).")
    (chunk_ptr, row_feat, row_off, row_base, row_shift, entry_ptr, vals, child,
     dir_ptr, dir_shift, dirs) = level
    n_chunks = counts.size
    n_rows_total, nnz = row_feat.shape[0], vals.shape[0]

    def bad(what):
        return ValueError(f"chunked level {t}: {what}.")

    if (chunk_ptr.shape != (n_chunks + 1,) or chunk_ptr[0] != 0
            or chunk_ptr[-1] != n_rows_total or np.any(np.diff(chunk_ptr) < 0)):
        raise bad("chunk pointers do not match the tree or the rows")
    rows = np.diff(chunk_ptr)
    if (entry_ptr.shape != (n_chunks + 1,) or entry_ptr[0] != 0
            or entry_ptr[-1] != nnz or child.shape != (nnz,)
            or np.any(np.diff(entry_ptr) < rows)):
        raise bad("entry pointers are out of range")
    shift = int(row_shift[0]) if row_shift.shape == (1,) else -1
    if (not 0 <= shift <= 6 or row_off.shape != (n_rows_total + 1,)
            or row_base.shape != ((n_rows_total >> shift) + 1,)):
        raise bad("row pointers are out of range")
    starts = row_base[np.arange(n_rows_total + 1) >> shift] + row_off
    # Every row has at least one entry and stays in its chunk.
    if (starts[0] != 0 or starts[-1] != nnz or np.any(np.diff(starts) <= 0)
            or not np.array_equal(starts[chunk_ptr], entry_ptr)):
        raise bad("row pointers are out of range")
    del starts
    row_chunk = np.repeat(np.arange(n_chunks), rows)
    if n_rows_total and (row_feat.min() < 0 or row_feat.max() >= n_rows):
        raise bad("feature ids are out of range")
    if n_rows_total > 1:
        same = row_chunk[1:] == row_chunk[:-1]
        if np.any(row_feat[1:][same] <= row_feat[:-1][same]):
            raise bad("feature ids are not sorted within a chunk")
    entry_chunk = np.repeat(np.arange(n_chunks), np.diff(entry_ptr))
    if nnz and (child.min() < 0 or np.any(child >= counts[entry_chunk])):
        raise bad("child offsets are out of range")
    expected = _bucket_directory(chunk_ptr, row_feat)
    if not all(a.shape == b.shape and np.array_equal(a, b)
               for a, b in zip((dir_ptr, dir_shift, dirs), expected)):
        raise bad("the bucket directory does not match the rows")


class BeamSearcher:
    """A model prepared for repeated beam searches.

    Validates the weights and the tree once and converts the weights to the chunked
    layout of ``_cython._chunked_weights`` (for each node, its children's weights
    row-major over the features they use, with a bucket directory), kept in a C
    table, so that each search
    adds little Python overhead (useful for one-query calls). The searcher holds its
    own copy of the weights: later changes to ``weights`` do not affect it.

    Parameters
    ----------
    weights : list of sparse matrices
        ``weights[t - 1]`` of shape ``(n_features + 1, n_nodes_t)`` for the tree
        levels ``t = 1 .. tree.n_levels``; CSC float32 preferred.
    tree : LabelTree
    bias : float, default=1.0
        Value of the constant feature multiplied by the last weight row.
    n_threads : int or None, default=1
        OpenMP threads for building the layout (the result does not depend on it).

    Attributes
    ----------
    n_features : int
    n_labels : int
    """

    def __init__(self, weights, tree, *, bias=1.0, n_threads=1):
        if not isinstance(tree, LabelTree):
            raise TypeError(f"tree must be a LabelTree, got {type(tree).__name__}.")
        if sp.issparse(weights) or isinstance(weights, np.ndarray):
            weights = [weights]
        try:
            weights = list(weights)
        except TypeError:
            raise TypeError("weights must be a list of per-level sparse matrices.")
        if len(weights) != tree.n_levels:
            raise ValueError(
                f"got {len(weights)} weight matrices for a tree with {tree.n_levels} "
                "levels below the root (one matrix per level)."
            )
        if (isinstance(bias, bool) or not isinstance(bias, Real)
                or not np.isfinite(bias)):
            raise ValueError(f"bias must be a finite number, got {bias!r}.")
        sizes = tree.level_sizes
        n_rows = None
        levels = []
        for t, W in enumerate(weights, start=1):
            W = _check_level(W, t, n_rows, int(sizes[t - 1]))
            n_rows = W.shape[0]
            if n_rows < 1 or n_rows - 1 >= 2**31 - 1:
                raise ValueError(f"weights have {n_rows} rows; need 1 .. 2**31 - 1.")
            levels.append(chunk_level(W, tree.children_counts(t - 1),
                                      _check_n_threads(n_threads)))
            del W
        _release_free_heap()  # the build's scratch, tens of MB on large models
        self.tree = tree
        self.bias = float(bias)
        self.n_features = n_rows - 1
        self._finish(levels, n_rows)

    def _finish(self, levels, n_rows):
        tree = self.tree
        self.n_labels = tree.n_labels
        self._max_beam = int(tree.level_sizes.max())
        max_width = max(int(tree.children_counts(t).max()) for t in range(tree.n_levels))
        self._levels = levels
        self._table = ChunkedWeights(levels, n_rows, max_width)
        self._tree_arrays = (tree.level_ptr, tree.child_ptr, tree.label_perm)
        self._block = 0  # queries per block in batch searches (0: automatic)

    @property
    def chunked_levels(self):
        """The chunked layout, one tuple of arrays per level (see
        :func:`chunk_level`); with ``n_features``, ``tree`` and ``bias``, what
        :meth:`from_chunked_levels` needs to rebuild the searcher without the
        conversion (e.g. from memory-mapped files)."""
        return list(self._levels)

    @classmethod
    def from_chunked_levels(cls, levels, tree, *, n_features, bias=1.0):
        """A searcher over an existing chunked layout (no copy of the arrays).

        Every array is checked for the dtype, shape and index ranges the kernel
        relies on (O(size), vectorised), so inconsistent arrays, e.g. from a
        damaged file, raise ``ValueError`` instead of reaching the kernel.
        """
        if not isinstance(tree, LabelTree):
            raise TypeError(f"tree must be a LabelTree, got {type(tree).__name__}.")
        if (isinstance(bias, bool) or not isinstance(bias, Real)
                or not np.isfinite(bias)):
            raise ValueError(f"bias must be a finite number, got {bias!r}.")
        n_rows = _check_positive_int(int(n_features) + 1, "n_features + 1")
        levels = [tuple(level) for level in levels]
        if len(levels) != tree.n_levels:
            raise ValueError(f"got {len(levels)} chunked levels for a tree with "
                             f"{tree.n_levels} levels.")
        for t, level in enumerate(levels, start=1):
            _check_chunked_level(level, tree.children_counts(t - 1), n_rows, t)
        self = cls.__new__(cls)
        self.tree = tree
        self.bias = float(bias)
        self.n_features = n_rows - 1
        self._finish(levels, n_rows)
        return self

    # ----------------------------------------------------------------- inputs
    def _check_X(self, X):
        if sp.issparse(X):
            if X.format != "csr":
                X = X.tocsr()
            if X.dtype not in _FLOATS:
                X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
        else:
            X = np.asarray(X)
            if X.dtype not in _FLOATS:
                if X.dtype.kind not in "biuf":
                    raise TypeError(f"X must hold real numbers, got dtype {X.dtype}.")
                X = X.astype(np.float32 if X.dtype == np.float16 else np.float64)
            if X.ndim != 2:
                raise ValueError(
                    f"X must be 2-D, got {X.ndim}-D; reshape a single sample with "
                    "X.reshape(1, -1)."
                )
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but the model expects "
                f"{self.n_features}."
            )
        values = X.data if sp.issparse(X) else X
        if not np.isfinite(values).all():
            raise ValueError("X contains NaN or infinity.")
        return X

    def _params(self, beam_size, top_k, post_processor):
        """The search parameters, validated: ``(beam, k, code, power)``, with
        ``beam`` and ``k`` capped at the largest level and the number of labels."""
        beam = min(_check_positive_int(beam_size, "beam_size"), self._max_beam)
        k = min(_check_positive_int(top_k, "top_k"), self.n_labels)
        code, power = check_post_processor(post_processor)
        return beam, k, code, power

    # ----------------------------------------------------------------- search
    def search(self, X, *, beam_size=10, top_k=10, post_processor="l3-hinge",
               n_threads=1):
        """Top-k labels and path scores of every row of ``X``.

        See :func:`beam_search` for the parameters and the returned arrays.
        Validates everything once, then runs the trusted :meth:`_search`.
        """
        beam, k, code, power = self._params(beam_size, top_k, post_processor)
        n_threads = _check_n_threads(n_threads)
        X = self._check_X(X)
        return self._search(X, beam, k, code, power, n_threads)

    def _search(self, X, beam, k, code, power, n_threads):
        """Trusted: X validated (CSR or dense float32/float64), parameters capped
        (as :meth:`_params` returns them), ``n_threads >= 1``."""
        if sp.issparse(X):
            indices, indptr = X.indices, X.indptr
            if indices.dtype != indptr.dtype or indices.dtype not in _INDEX_TYPES:
                indices = indices.astype(np.int64)
                indptr = indptr.astype(np.int64)
            return self._search_csr(X.data, indices, indptr, beam, k, code, power,
                                    n_threads)
        labels, scores = self._outputs(X.shape[0], k)
        lp, cp, perm = self._tree_arrays
        bad = _beam_search_dense(
            np.ascontiguousarray(X), self._table, lp, cp, perm, self.bias, beam,
            code, power, labels, scores, n_threads, self._block,
        )
        self._after_batch(X.shape[0], beam, k)
        self._raise_bad(bad)
        return labels, scores

    def _after_batch(self, n, beam, k):
        """Return the batch workspace's pages to the system when it was large
        (>= 4 MiB of candidates: glibc keeps freed memory in the heap once large
        numpy arrays have raised its mmap threshold); about 1 ms."""
        if n * max(beam, k) * self._table.max_width * 16 >= 4 * 2**20:
            _release_free_heap()

    def _search_csr(self, data, indices, indptr, beam, k, code, power, n_threads):
        """Trusted: CSR arrays (float data; int32 or int64 indices and indptr of one
        dtype; column bounds are checked by the kernel), parameters as for
        :meth:`_search`."""
        labels, scores = self._outputs(indptr.shape[0] - 1, k)
        lp, cp, perm = self._tree_arrays
        bad = _beam_search_csr(
            np.ascontiguousarray(data), np.ascontiguousarray(indices),
            np.ascontiguousarray(indptr), self._table, lp, cp, perm, self.bias,
            beam, code, power, labels, scores, n_threads, self._block,
        )
        if indptr.shape[0] > 4:
            self._after_batch(indptr.shape[0] - 1, beam, k)
        self._raise_bad(bad)
        return labels, scores

    @staticmethod
    def _outputs(n, k):
        return np.empty((n, k), dtype=np.int64), np.empty((n, k), dtype=np.float32)

    @staticmethod
    def _raise_bad(bad):
        n_bad_x, n_failed = bad
        if n_bad_x:
            raise ValueError(
                f"X has {n_bad_x} column indices out of range (malformed CSR matrix)."
            )
        if n_failed:
            raise MemoryError(f"beam search: out of memory for {n_failed} queries.")

    def _predict_one_fast(self, indices, data, *, beam_size=10, top_k=10,
                          post_processor="l3-hinge"):
        """Beam search for one sparse query given as (feature indices, values).

        Light checks only (lengths, finiteness, dtypes; index bounds are checked by
        the kernel); single-threaded. Returns 1-D ``labels`` (int64) and ``scores``
        (float32) of length ``min(top_k, n_labels)``, equal to one row of
        :meth:`search`.
        """
        beam, k, code, power = self._params(beam_size, top_k, post_processor)
        data = np.asarray(data)
        if data.dtype not in _FLOATS:
            data = data.astype(np.float64)
        indices = np.asarray(indices)
        if indices.dtype not in _INDEX_TYPES:
            indices = indices.astype(np.int64)
        if indices.shape != data.shape or data.ndim != 1:
            raise ValueError("indices and data must be 1-D arrays of equal length.")
        if not np.isfinite(data).all():
            raise ValueError("the query contains NaN or infinity.")
        indptr = np.array([0, data.shape[0]], dtype=indices.dtype)
        labels, scores = self._search_csr(data, indices, indptr, beam, k, code, power,
                                          1)
        return labels[0], scores[0]

def beam_search(X, weights, tree, *, beam_size=10, top_k=10,
                post_processor="l3-hinge", bias=1.0, n_threads=1):
    """Top-k labels of each row of ``X`` by beam search over a label tree.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Queries; float32 or float64 (other real dtypes become float64), CSR with
        int32 or int64, sorted or unsorted indices (other sparse formats are
        converted). Must be finite.
    weights : list of sparse matrices
        One matrix per tree level below the root, ``weights[t - 1]`` of shape
        ``(n_features + 1, n_nodes_t)``; the last row holds the bias weights.
        They are converted to the chunked layout on every call: prefer
        :class:`BeamSearcher` for repeated calls.
    tree : LabelTree
    beam_size : int, default=10
        Nodes kept per level above the labels. Values above the largest level size
        are capped there (a beam that large is an exhaustive search).
    top_k : int, default=10
        Labels returned per row; capped at ``tree.n_labels``.
    post_processor : str, default="l3-hinge"
        A name from :data:`skxmr._postprocess.POST_PROCESSORS`: ``"l3-hinge"``
        (any ``"lP-hinge"``), ``"sigmoid"``, ``"log-sigmoid"`` or ``"noop"``.
    bias : float, default=1.0
        Value of the constant feature multiplied by the last weight row.
    n_threads : int or None, default=1
        OpenMP threads (``None``: all CPUs; negative values count like ``n_jobs``).
        Results do not depend on it.

    Returns
    -------
    labels : ndarray of shape (n_samples, min(top_k, n_labels)), dtype int64
        Original label ids (columns of ``Y``), best first. When the beam reaches
        fewer labels than that (small beams, small leaves), rows end with -1.
    scores : ndarray of shape (n_samples, min(top_k, n_labels)), dtype float32
        Path scores of those labels; 0 where the label is -1.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skxmr._label_tree import LabelTree
    >>> from skxmr._beam import beam_search
    >>> tree = LabelTree.from_chain([np.ones((2, 1)), np.eye(2)[[0, 0, 1]]])
    >>> W1 = sp.csc_matrix(np.array([[1., -1.], [0., 0.]], dtype=np.float32))
    >>> W2 = sp.csc_matrix(np.array([[2., 1., 3.], [0., 0., 0.]], dtype=np.float32))
    >>> labels, scores = beam_search(sp.csr_matrix([[1.0]]), [W1, W2], tree,
    ...                              beam_size=1, top_k=3)
    >>> labels
    array([[ 0,  1, -1]])
    >>> scores
    array([[1., 1., 0.]], dtype=float32)
    """
    searcher = BeamSearcher(weights, tree, bias=bias)
    return searcher.search(X, beam_size=beam_size, top_k=top_k,
                           post_processor=post_processor, n_threads=n_threads)


def scores_to_csr(labels, scores, n_labels):
    """Top-k ``(labels, scores)`` as a CSR matrix of shape (n_samples, n_labels).

    Entries with label -1 (padding) are skipped; column indices are sorted within
    each row. This is the ``decision_function`` form of skxmr models.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmr._beam import scores_to_csr
    >>> M = scores_to_csr(np.array([[2, 0], [1, -1]]),
    ...                   np.array([[0.9, 0.5], [0.7, 0.0]], dtype=np.float32), 3)
    >>> M.toarray()
    array([[0.5, 0. , 0.9],
           [0. , 0.7, 0. ]], dtype=float32)
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.ndim != 2 or labels.shape != scores.shape:
        raise ValueError("labels and scores must be 2-D arrays of the same shape.")
    if isinstance(n_labels, bool) or not isinstance(n_labels, Integral) or n_labels < 0:
        raise ValueError(f"n_labels must be a non-negative int, got {n_labels!r}.")
    if labels.size and (labels.max() >= n_labels or labels.min() < -1):
        raise ValueError(f"labels must lie in [0, {n_labels}) or be -1 (padding).")
    n = labels.shape[0]
    keep = labels >= 0
    # Sort each row by label id, padding last.
    key = np.where(keep, labels, n_labels)
    order = np.argsort(key, axis=1, kind="stable")
    labels = np.take_along_axis(labels, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    keep = np.take_along_axis(keep, order, axis=1)
    counts = keep.sum(axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_dtype = np.int32 if max(n_labels, indptr[-1]) < 2**31 else np.int64
    M = sp.csr_matrix(
        (scores[keep].astype(np.float32, copy=False),
         labels[keep].astype(index_dtype), indptr.astype(index_dtype)),
        shape=(n, n_labels),
    )
    M.has_sorted_indices = True
    return M
