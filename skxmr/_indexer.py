"""LabelIndexer: label representations clustered into a balanced B-ary tree."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state
from sklearn.utils import TransformerTags
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from skxmr._embedding import (
    _finish_sparse,
    check_precomputed,
    combine_label_features,
    compute_label_representation,
)
from skxmr._label_tree import LabelTree
from skxmr._targets import TargetEncoder, binary_indicator
from skxmr._tree_building import build_label_tree, tree_fanouts
from skxmr.utils.validation import check_sample_weight, check_sparse_structure
from skxmr.utils import effective_n_threads
from skxmr.utils._fit_state import TransactionalFitMixin

_REPRESENTATIONS = ("pifa", "pii", "spectral", "precomputed")
_CLUSTERINGS = ("kmeans", "binary")


# Sparse matrices wider than this lose their unused columns before the label
# representation, k-means and the centroids: scipy's sparse products and the
# k-means centroids need buffers as wide as the matrix (16 bytes per column).
_COMPACT_WIDTH = 1 << 20


def _compact_columns(M, cols):
    """CSR ``M`` restricted to the sorted column ids ``cols``, renumbered
    ``0 .. len(cols) - 1`` (entries in other columns are dropped). Time and memory
    grow with ``M.nnz``, whatever the width of ``M``."""
    M = sp.csr_matrix(M)
    indices = M.indices
    pos = np.searchsorted(cols, indices)
    keep = pos < cols.size
    keep[keep] = cols[pos[keep]] == indices[keep]
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    indptr = np.zeros(M.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=M.shape[0]), out=indptr[1:])
    return sp.csr_matrix((M.data[keep], pos[keep], indptr),
                         shape=(M.shape[0], cols.size))


def _expand_columns(M, cols, width):
    """Inverse of :func:`_compact_columns`: column ``j`` of ``M`` -> ``cols[j]``."""
    M = sp.csr_matrix(M)
    return sp.csr_matrix((M.data, cols[M.indices], M.indptr), shape=(M.shape[0], width))


def _wide_columns(M):
    """The sorted used column ids of a sparse ``M`` wider than ``_COMPACT_WIDTH``,
    else None."""
    if sp.issparse(M) and M.shape[1] > _COMPACT_WIDTH:
        return np.unique(sp.csr_matrix(M).indices).astype(np.int64)
    return None


def _is_indicator(Y):
    """Whether ``Y`` is a label indicator matrix (sparse, or a 2-D array of numbers
    with more than one column) rather than label collections or 1-D labels."""
    if sp.issparse(Y):
        return True
    return (isinstance(Y, np.ndarray) and Y.ndim == 2 and Y.shape[1] > 1
            and Y.dtype.kind in "biuf")


def _binary_indicator_of(Y, name="y"):
    """A sparse or dense indicator as checked 0/1 CSR float32 (the y contract
    of every estimator: :func:`skxmr._targets.binary_indicator`)."""
    if not sp.issparse(Y):
        Y = np.asarray(Y)
        if Y.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a numeric indicator, got dtype {Y.dtype}.")
    return binary_indicator(sp.csr_matrix(Y, dtype=np.float32, copy=True), name)


class LabelIndexer(TransactionalFitMixin, BaseEstimator):
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
        Inside ``joblib.parallel_config(backend="dask")`` (any backend but
        ``"loky"`` and ``"sequential"``) the subtrees below the top levels are
        built as joblib units, each with ``n_jobs`` threads where it runs; the
        tree is the same.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means initialisation (and the spectral SVD). The tree is the
        same for any ``n_jobs``, locally or on a cluster.
    verbose : int, default=0
        0: silent. 1 or more: ``fit`` shows a progress bar of the tree levels
        split, on stderr (tqdm when installed, else plain lines).

    Attributes
    ----------
    tree_ : LabelTree
        The tree as flat arrays; ``tree_.to_chain()`` gives the assignment-matrix
        layout that PECOS saves, ``LabelTree.from_chain`` reads it.
    n_labels_ : int
    n_features_in_ : int
        Columns of the ``X`` (or ``Z``) seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the columns of ``X``, when it has string column names.
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
        "verbose": ["verbose"],
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
        verbose=0,
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
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, sample_weight=None, label_features=None):
        """Build the label vectors and the tree.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Instance features; with ``representation="precomputed"``, the label
            vectors Z of shape (n_labels, d).
        y : {array-like, sparse matrix} of shape (n_samples, n_labels), sequence \
                of label collections or 1-D labels
            Label indicator (not used with ``"precomputed"``), or the labels in
            any form ``XRLinearClassifier.fit`` takes (one collection of labels
            per row, or one label per row): their columns are the sorted
            distinct labels, and ``transform`` then takes the same form.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, with the meaning of repeated rows:
            ``"pifa"`` sums each row's features times its weight, ``"pii"``
            scales each row's coordinate by the square root of its weight (the
            cosine geometry of repeated rows); ``"spectral"`` only leaves out
            the rows of weight 0 (other weights are not used). Not used with
            ``"precomputed"``.
        label_features : {array-like, sparse matrix} of shape (n_labels, d2)
            Optional label features (e.g. label-name TF-IDF or embeddings),
            concatenated with the representation (each block L2-normalised).

        Returns
        -------
        self
            A fit that fails (or is interrupted) leaves the indexer as it was.
        """
        work = self._scratch()
        work._fit(X, y, sample_weight, label_features)
        self._publish_from(work)
        return self

    _private_fitted_state = ("_label_encoder",)

    def _fit(self, X, y, sample_weight, label_features):
        """The fit, on a scratch copy (see ``skxmr.utils._fit_state``)."""
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
        self._label_encoder = None
        if self.representation == "precomputed":
            if y is not None:
                raise ValueError(
                    "representation='precomputed' takes fit(Z) with the label vectors "
                    "only; Y must be None."
                )
            check_sparse_structure(X, "Z")
            Z = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
            Z = check_precomputed(Z)
            if label_features is not None:
                raise ValueError("label_features needs a computed representation.")
            if sample_weight is not None:
                raise ValueError("sample_weight needs a computed representation; with "
                                 "representation='precomputed' there are no rows.")
        else:
            Z, self._label_encoder = self._computed_vectors(
                X, y, sample_weight, label_features, seed)
        n_labels = Z.shape[0]
        self._warn_empty_labels(Z)
        fanouts = tree_fanouts(n_labels, self.branching_factor, self.max_leaf_size,
                               self.clustering)
        z_cols = _wide_columns(Z)
        z_width = Z.shape[1]
        if z_cols is not None:
            Z = _compact_columns(Z, z_cols)
        tree = build_label_tree(
            Z, fanouts, spherical=self.spherical, max_iter=self.max_iter, tol=self.tol,
            seed=seed,
            n_threads=effective_n_threads(self.n_jobs),
            n_jobs=self.n_jobs, verbose=self.verbose,
        )
        if self.clustering == "binary" and tree.n_levels > 2:
            step = int(round(math.log2(self.branching_factor)))
            binary_depth = tree.n_levels - 1
            tree = tree.keep_levels(range(binary_depth, 0, -step))
        self.tree_ = tree
        self.n_labels_ = n_labels
        centroids = self._leaf_centroids(Z, tree)
        if z_cols is not None:
            centroids = _expand_columns(centroids, z_cols, z_width)
        self.leaf_centroids_ = centroids
        return self

    def _computed_vectors(self, X, y, sample_weight, label_features, seed):
        """The computed label representation of rows ``X`` with labels ``y``,
        and the label encoder of ``y`` (None for an indicator)."""
        label_encoder = None
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                f"is None: representation={self.representation!r} needs fit(X, "
                "Y) with the labels Y of the rows of X."
            )
        check_sparse_structure(X)
        check_sparse_structure(y, "y")
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
        Y = y
        if not _is_indicator(Y):  # label collections or 1-D labels
            label_encoder = TargetEncoder()
            Y = label_encoder.fit_transform(Y)
        else:
            Y = _binary_indicator_of(Y)
        cols = _wide_columns(X)
        if cols is None:
            Z = self._label_vectors(X, Y, sample_weight, label_features, seed)
        else:  # huge, mostly unused feature ids (e.g. hashed features)
            Z = self._label_vectors(_compact_columns(X, cols), Y, sample_weight,
                                    None, seed)
            if self.representation == "pifa":
                Z = _expand_columns(Z, cols, X.shape[1])
            if label_features is not None:
                Z = combine_label_features(Z, label_features)
        return Z, label_encoder

    def label_vectors(self, X, y, *, sample_weight=None):
        """The label vectors ``fit`` would cluster, without clustering them.

        Used by tree ensembles, whose members cluster the same vectors with
        different seeds. Takes what ``fit`` takes (a computed representation
        only); the seed of ``"spectral"`` comes from ``random_state`` as in
        ``fit``.

        Returns
        -------
        Z : csr_matrix or ndarray of shape (n_labels, d)
            One row per label (the columns of ``y``), as ``fit`` computes it.
        """
        if self.representation == "precomputed":
            raise ValueError("label_vectors needs a computed representation, not "
                             "'precomputed'.")
        self._validate_params()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        probe = clone(self)  # validate_data sets n_features_in_ on it, not on self
        Z, _ = probe._computed_vectors(X, y, sample_weight, None, seed)
        return Z

    def _label_vectors(self, X, Y, sample_weight, label_features, seed):
        """The label representation of ``X`` and ``Y``, rows weighted."""
        if sample_weight is not None:
            n_rows = Y.shape[0] if hasattr(Y, "shape") else len(Y)
            if n_rows != X.shape[0]:
                raise ValueError(f"X has {X.shape[0]} rows but Y has {n_rows}.")
            weights = check_sample_weight(sample_weight, X.shape[0])
            if np.all(weights == 1):
                sample_weight = None
        if sample_weight is None:
            return compute_label_representation(
                X, Y, self.representation, label_features=label_features,
                n_components=self.n_components, random_state=seed)
        if self.representation == "pifa":
            # Row i counted weights[i] times: its features scaled by the weight.
            scale = weights.astype(X.dtype)
            X = (sp.diags(scale) @ X).tocsr() if sp.issparse(X) else X * scale[:, None]
            return compute_label_representation(
                X, Y, "pifa", label_features=label_features)
        keep = np.flatnonzero(weights)
        Y = sp.csr_matrix(Y)[keep]
        if self.representation == "spectral":
            return compute_label_representation(
                None, Y, "spectral", label_features=label_features,
                n_components=self.n_components, random_state=seed)
        # "pii": a row repeated w times is, for cosines, one coordinate x sqrt(w).
        Yb = sp.csr_matrix(Y, dtype=np.float64, copy=True)
        Yb.sum_duplicates()
        Yb.data = (Yb.data != 0).astype(np.float64)
        Yb.eliminate_zeros()
        if Yb.nnz == 0:
            raise ValueError("Y has no positive entries in the rows of nonzero weight.")
        Z = _finish_sparse((sp.diags(np.sqrt(weights[keep])) @ Yb).T.tocsr())
        if label_features is not None:
            Z = combine_label_features(Z, label_features)
        return Z

    @staticmethod
    def _warn_empty_labels(Z):
        row_nnz = Z.getnnz(axis=1) if sp.issparse(Z) else np.count_nonzero(Z, axis=1)
        n_empty = int(np.sum(row_nnz == 0))
        if n_empty:
            warnings.warn(
                f"{n_empty} labels have an all-zero vector (no positive instance); "
                "they are placed in leaves by the balance constraint only.",
                UserWarning,
                stacklevel=5,
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

        Note that ``transform`` maps labels, not the features ``X`` of ``fit``
        (the indexer is a label-side estimator; see ``__sklearn_tags__``).

        Parameters
        ----------
        Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
            A label indicator; when ``fit`` got label collections or 1-D labels,
            labels in that form are taken too (labels unseen at fit dropped).
        level : int, default=-1
            Cluster level: 1 = the root's children, -1 = the leaf clusters.

        Returns
        -------
        Y_level : sparse matrix of shape (n_samples, n_clusters(level))
            Entry (i, c): the number of row i's labels inside cluster c.
        """
        check_is_fitted(self)
        model = self._frozen()
        check_sparse_structure(Y, "Y")
        encoder = getattr(model, "_label_encoder", None)
        if encoder is not None and not _is_indicator(Y):
            Y = encoder.transform(Y)
        else:
            Y = _binary_indicator_of(Y, "Y")
        return model.tree_.transform(Y, level)

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
        check_sparse_structure(Z, "Z")
        Z = check_precomputed(Z)
        C = self._frozen().leaf_centroids_
        if Z.shape[1] != C.shape[1]:
            raise ValueError(
                f"Z has {Z.shape[1]} columns; the label vectors of fit had {C.shape[1]}."
            )
        c_cols = _wide_columns(C)
        if c_cols is not None:  # only the columns the centroids use matter
            C = _compact_columns(C, c_cols)
            Z = _compact_columns(Z, c_cols) if sp.issparse(Z) else Z[:, c_cols]
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
        # It has ``transform``, so scikit-learn treats it as a transformer; but
        # ``transform`` maps label indicators (not X) to cluster relevance, and
        # the output is counts, whatever the dtype of X.
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags

    # ------------------------------------ saved state (skxmr._persistence)
    def _get_label_state(self):
        """The form of the labels given to ``fit`` (``TargetEncoder.get_state()``),
        or None for an indicator; for ``skxmr.save``."""
        encoder = getattr(self, "_label_encoder", None)
        return None if encoder is None else encoder.get_state()

    def _set_label_state(self, state):
        """Restore :meth:`_get_label_state` output; for ``skxmr.load``. Raises
        ``ValueError`` when the state is inconsistent."""
        self._label_encoder = None if state is None else TargetEncoder.from_state(state)

# ----------------------------------------- the indexer= parameter of the models
def tree_is_given(indexer):
    """Whether an ``indexer`` parameter already holds its tree (a LabelTree, a
    cluster chain or a fitted indexer), so that building it needs no rows."""
    return isinstance(indexer, (LabelTree, list)) or hasattr(indexer, "tree_")


def build_tree(indexer, X, Y, rng, weights=None, verbose=0):
    """The label tree an ``indexer`` parameter asks for, on rows ``X`` and labels ``Y``.

    A LabelTree is used as is, a list of assignment matrices read as a cluster
    chain, a fitted indexer (with ``tree_``) gives its tree (``X`` is not read
    then: see :func:`tree_is_given`); an unfitted one (None: ``LabelIndexer()``)
    is cloned, seeded from ``rng`` when its ``random_state`` is None, and fitted
    (with ``weights`` when its ``fit`` takes ``sample_weight``).
    """
    if isinstance(indexer, LabelTree):
        tree = indexer
    elif isinstance(indexer, list):
        tree = LabelTree.from_chain(indexer)  # assignment matrices
    elif hasattr(indexer, "tree_"):
        tree = indexer.tree_  # a fitted indexer: its tree is used as is
    else:
        indexer = LabelIndexer(verbose=verbose) if indexer is None else clone(indexer)
        if indexer.get_params().get("random_state", 0) is None:
            indexer.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
        if weights is not None and has_fit_parameter(indexer, "sample_weight"):
            tree = indexer.fit(X, Y, sample_weight=weights).tree_
        else:
            tree = indexer.fit(X, Y).tree_
    if tree.n_labels != Y.shape[1]:
        raise ValueError(
            f"the label tree has {tree.n_labels} labels but y has {Y.shape[1]}."
        )
    return tree
