"""LabelIndexer: label representations clustered into a balanced B-ary tree."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skxmr._cython._kmeans import _split_level
from skxmr._embedding import check_precomputed, compute_label_representation
from skxmr._label_tree import LabelTree
from skxmr.utils import effective_n_threads

_REPRESENTATIONS = ("pifa", "pii", "spectral", "precomputed")
_CLUSTERINGS = ("kmeans", "binary")


def tree_fanouts(n_labels, branching_factor, max_leaf_size, clustering="kmeans"):
    """Fan-out of each cluster level for ``n_labels`` labels.

    ``"kmeans"``: the root's children use the full ``branching_factor``, as do all
    levels but the last, which gets just enough children per node for the leaves
    to hold at most ``max_leaf_size`` labels. ``"binary"``: ``ceil(log2(n_labels /
    max_leaf_size))`` binary levels (to be grouped into B-ary levels afterwards).
    A single leaf (fan-out ``[1]``) when ``n_labels <= max_leaf_size``.
    """
    n_leaves = math.ceil(n_labels / max_leaf_size)
    if n_leaves <= 1:
        return [1]
    if clustering == "binary":
        return [2] * math.ceil(math.log2(n_leaves))
    depth = 1
    while branching_factor**depth < n_leaves:
        depth += 1
    last = math.ceil(n_leaves / branching_factor ** (depth - 1))
    return [branching_factor] * (depth - 1) + [last]


def build_label_tree(Z, fanouts, *, spherical=True, max_iter=20, tol=0.0, seed=0,
                     n_threads=1):
    """Recursive balanced k-means of the rows of ``Z`` with the given fan-outs.

    Every node of a level is split into ``min(fanout, n_labels_in_node)`` children
    of sizes differing by at most one. Returns a :class:`LabelTree`.
    """
    Z = sp.csr_matrix(Z, dtype=np.float32)
    if not Z.has_sorted_indices:
        Z = Z.sorted_indices()
    data = np.ascontiguousarray(Z.data, dtype=np.float32)
    indices = np.ascontiguousarray(Z.indices, dtype=np.int32)
    indptr = np.ascontiguousarray(Z.indptr, dtype=np.intp)
    n_labels = Z.shape[0]
    order = np.arange(n_labels, dtype=np.intp)
    node_ptr = np.array([0, n_labels], dtype=np.intp)
    counts = []
    level_sizes = [1]
    for level, fanout in enumerate(fanouts):
        n_children = np.minimum(fanout, np.diff(node_ptr)).astype(np.intp)
        new_order = np.empty_like(order)
        node_ptr = _split_level(
            data, indices, indptr, Z.shape[1], order, node_ptr, n_children, new_order,
            max_iter, tol, spherical, (seed + level * 1_000_003) % 2**63, n_threads,
        ).astype(np.intp)
        order = new_order
        counts.append(n_children)
        level_sizes.append(int(n_children.sum()))
    counts.append(np.diff(node_ptr))  # labels per leaf
    level_sizes.append(n_labels)
    child_ptr = np.concatenate([[1], 1 + np.cumsum(np.concatenate(counts))])
    level_ptr = np.concatenate([[0], np.cumsum(level_sizes)])
    return LabelTree(level_ptr, child_ptr, order)


class LabelIndexer(BaseEstimator):
    """Semantic label indexing: label vectors clustered into a balanced B-ary tree.

    Stage 1 of XR-Linear (PECOS). Each label gets a vector (``representation``),
    then labels are split recursively by balanced k-means into a tree whose leaves
    hold at most ``max_leaf_size`` labels. Use it alone, or as the ``indexer=`` of
    the classifiers (so a search can tune ``indexer__branching_factor``).

    Parameters
    ----------
    representation : {"pifa", "pii", "spectral", "precomputed"}, default="pifa"
        How labels become vectors. ``"pifa"``: the normalised sum of the label's
        positive instances' features (Y rows L2-normalised first); ``"pii"``: the
        set of its instances; ``"spectral"``: the bipartite co-clustering embedding
        of Y; ``"precomputed"``: ``fit(Z)`` takes the (n_labels, d) label vectors.
    branching_factor : int, default=16
        Children per node (B). The root always uses the full fan-out.
    max_leaf_size : int, default=100
        Most labels a leaf cluster may hold.
    spherical : bool, default=True
        Cosine k-means with normalised centroids; False: Euclidean k-means.
    max_iter : int, default=20
        Most k-means rounds per node.
    tol : float, default=0.01
        A node's k-means stops once at most ``tol * n_labels_in_node`` labels
        changed cluster in a round (0: only when nothing changes).
    clustering : {"binary", "kmeans"}, default="binary"
        ``"binary"``: balanced 2-means to depth ``ceil(log2(L / max_leaf_size))``
        (leaves of half to all of ``max_leaf_size`` labels), binary levels grouped
        into B-ary levels from the bottom (PECOS's way; the root may then have
        fewer than B children); ``branching_factor`` must be a power of 2.
        ``"kmeans"``: B-way balanced k-means at every node; the last level gets
        just enough children per node for the leaf bound (larger leaves). For
        XR-Linear, ``"binary"`` trees were as accurate as or more accurate than
        ``"kmeans"`` ones on four of five benchmark sets and cheaper to train;
        ``"kmeans"`` gave +0.4 to +0.9 P@1 on debian-deps (see
        ``benchmarks/RESULTS.md``).
    n_components : int, default=64
        Dimension of the ``"spectral"`` representation.
    n_jobs : int, default=None
        OpenMP threads (None: all available CPUs; -1: all; -2: all but one).
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means initialisation (and the spectral SVD). The tree is the
        same for any ``n_jobs``.

    Attributes
    ----------
    tree_ : LabelTree
        The tree as flat arrays; ``tree_.to_chain()`` gives the assignment-matrix
        layout that PECOS saves, ``LabelTree.from_chain`` reads it.
    n_labels_ : int
    n_features_in_ : int
        Columns of the ``X`` (or ``Z``) seen in ``fit``.
    leaf_centroids_ : sparse matrix or ndarray of shape (n_leaves, d)
        Centroids of the leaf clusters, used by ``predict`` to place new labels.

    Notes
    -----
    Balance: the children of a node holding ``s`` labels get ``s // f`` or
    ``s // f + 1`` labels each. When every node can take its full fan-out (the
    usual case, ``n_leaves <= n_labels``), all leaves hold ``floor(L / n_leaves)``
    or ``ceil(L / n_leaves)`` labels, so leaf sizes differ by at most one.
    Labels without any positive instance have a zero vector; they still get a
    leaf (placed by the balance constraint only) and a warning says how many.

    Examples
    --------
    >>> from skxmr import LabelIndexer
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(3000, 2000, 300, random_state=0)
    >>> indexer = LabelIndexer(branching_factor=4, max_leaf_size=20,
    ...                        random_state=0).fit(X, Y)
    >>> indexer.tree_
    LabelTree(n_labels=300, level_sizes=[4, 16, 300])
    >>> int(indexer.tree_.leaf_sizes().max())
    19
    """

    _parameter_constraints: dict = {
        "representation": [StrOptions(set(_REPRESENTATIONS))],
        "branching_factor": [Interval(Integral, 2, None, closed="left")],
        "max_leaf_size": [Interval(Integral, 1, None, closed="left")],
        "spherical": ["boolean"],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "clustering": [StrOptions(set(_CLUSTERINGS))],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        representation="pifa",
        *,
        branching_factor=16,
        max_leaf_size=100,
        spherical=True,
        max_iter=20,
        tol=0.01,
        clustering="binary",
        n_components=64,
        n_jobs=None,
        random_state=None,
    ):
        self.representation = representation
        self.branching_factor = branching_factor
        self.max_leaf_size = max_leaf_size
        self.spherical = spherical
        self.max_iter = max_iter
        self.tol = tol
        self.clustering = clustering
        self.n_components = n_components
        self.n_jobs = n_jobs
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, Y=None, *, label_features=None):
        """Build the label vectors and the tree.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Instance features; with ``representation="precomputed"``, the label
            vectors Z of shape (n_labels, d).
        Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
            Label indicator (not used with ``"precomputed"``).
        label_features : {array-like, sparse matrix} of shape (n_labels, d2)
            Optional label features (e.g. label-name TF-IDF or embeddings),
            concatenated with the representation (each block L2-normalised).

        Returns
        -------
        self
        """
        if (
            self.clustering == "binary"
            and self.branching_factor & (self.branching_factor - 1) != 0
        ):
            raise ValueError(
                "clustering='binary' groups binary levels, so branching_factor must "
                f"be a power of 2; got {self.branching_factor}."
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if self.representation == "precomputed":
            if Y is not None:
                raise ValueError(
                    "representation='precomputed' takes fit(Z) with the label vectors "
                    "only; Y must be None."
                )
            Z = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
            Z = check_precomputed(Z)
            if label_features is not None:
                raise ValueError("label_features needs a computed representation.")
        else:
            if Y is None:
                raise ValueError(
                    f"representation={self.representation!r} needs fit(X, Y)."
                )
            X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
            Z = compute_label_representation(
                X, Y, self.representation, label_features=label_features,
                n_components=self.n_components, random_state=seed,
            )
        n_labels = Z.shape[0]
        self._warn_empty_labels(Z)
        fanouts = tree_fanouts(n_labels, self.branching_factor, self.max_leaf_size,
                               self.clustering)
        tree = build_label_tree(
            Z, fanouts, spherical=self.spherical, max_iter=self.max_iter, tol=self.tol,
            seed=seed,
            n_threads=effective_n_threads(self.n_jobs),
        )
        if self.clustering == "binary" and tree.n_levels > 2:
            step = int(round(math.log2(self.branching_factor)))
            binary_depth = tree.n_levels - 1
            tree = tree.keep_levels(range(binary_depth, 0, -step))
        self.tree_ = tree
        self.n_labels_ = n_labels
        self.leaf_centroids_ = self._leaf_centroids(Z, tree)
        return self

    @staticmethod
    def _warn_empty_labels(Z):
        row_nnz = Z.getnnz(axis=1) if sp.issparse(Z) else np.count_nonzero(Z, axis=1)
        n_empty = int(np.sum(row_nnz == 0))
        if n_empty:
            warnings.warn(
                f"{n_empty} labels have an all-zero vector (no positive instance); "
                "they are placed in leaves by the balance constraint only.",
                UserWarning,
                stacklevel=4,
            )

    def _leaf_centroids(self, Z, tree):
        # Leaf -> label membership as CSR: label_perm lists labels leaf by leaf.
        counts = tree.leaf_sizes()
        members = sp.csr_matrix(
            (np.ones(tree.n_labels, dtype=np.float32), tree.label_perm,
             np.concatenate([[0], np.cumsum(counts)])),
            shape=(counts.size, tree.n_labels),
        )
        sums = members @ Z
        if self.spherical:
            return normalize(sums)
        scale = sp.diags(1.0 / counts)
        return scale @ sums if sp.issparse(sums) else sums / counts[:, None]

    def transform(self, Y, level=-1):
        """Label indicator -> cluster relevance at a tree level.

        Parameters
        ----------
        Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        level : int, default=-1
            Cluster level: 1 = the root's children, -1 = the leaf clusters.

        Returns
        -------
        Y_level : sparse matrix of shape (n_samples, n_clusters(level))
            Entry (i, c): the number of row i's labels inside cluster c.
        """
        check_is_fitted(self)
        return self.tree_.transform(Y, level)

    def predict(self, Z):
        """Leaf cluster of new label vectors (to add labels without a rebuild).

        Parameters
        ----------
        Z : {array-like, sparse matrix} of shape (n_new_labels, d)
            Label vectors built the same way as in ``fit`` (e.g. PIFA of the new
            labels' instances).

        Returns
        -------
        leaves : ndarray of shape (n_new_labels,)
            Index of the best leaf cluster (cosine, or Euclidean distance).
        """
        check_is_fitted(self)
        Z = check_precomputed(Z)
        C = self.leaf_centroids_
        if Z.shape[1] != C.shape[1]:
            raise ValueError(
                f"Z has {Z.shape[1]} columns; the label vectors of fit had {C.shape[1]}."
            )
        sims = Z @ C.T
        sims = sims.toarray() if sp.issparse(sims) else np.asarray(sims)
        if not self.spherical:
            c_norm = (
                np.asarray(C.multiply(C).sum(axis=1)).ravel()
                if sp.issparse(C) else np.einsum("ij,ij->i", C, C)
            )
            sims = 2 * sims - c_norm[None, :]
        return np.argmax(sims, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.required = self.representation != "precomputed"
        return tags
