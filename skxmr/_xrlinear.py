"""XRLinearClassifier: recursive linear matcher/ranker over a label tree (XR-Linear).

WORK IN PROGRESS (issue 4): training (tfn, man and tfn+man matching sets) and beam
search inference work; the speed targets, benchmarks and the full scikit-learn
contract are not done yet.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from skxmr._beam import BeamSearcher, scores_to_csr
from skxmr._indexer import LabelIndexer
from skxmr._label_tree import LabelTree
from skxmr._linear_solver import train_binary_nodes
from skxmr._postprocess import POST_PROCESSORS
from skxmr._targets import TargetEncoder
from skxmr.metrics import precision_at_k
from skxmr.utils import effective_n_threads


def level_training_sets(matching, Y_level, parents):
    """Per-node training rows and signs for one tree level.

    Node l (a column of ``Y_level``) trains on the rows whose matching set holds
    its parent ``parents[l]`` (a nonzero in column ``parents[l]`` of ``matching``),
    plus its own positives; the sign is +1 where ``Y_level[i, l] != 0``, else -1.
    With teacher forcing (``matching`` = the parents' relevance) the positives are
    already matched.

    Returns ``node_ptr`` (n_nodes + 1,), ``rows`` and ``signs`` (node_ptr[-1],),
    rows sorted within each node.
    """
    n_rows = np.int64(Y_level.shape[0])
    n_nodes = len(parents)
    M = sp.csc_matrix(matching)
    M.sort_indices()
    sizes = np.diff(M.indptr)[parents]
    starts = M.indptr[:-1][parents]
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    matched_rows = M.indices[offsets + np.arange(sizes.sum())].astype(np.int64)
    matched_nodes = np.repeat(np.arange(n_nodes, dtype=np.int64), sizes)
    # Positives as (node, row) keys; node-major keys sort by node, then row.
    P = sp.csc_matrix(Y_level)
    P.eliminate_zeros()
    P.sort_indices()
    pos_nodes = np.repeat(np.arange(n_nodes, dtype=np.int64), np.diff(P.indptr))
    pos_keys = pos_nodes * n_rows + P.indices
    keys = np.union1d(matched_nodes * n_rows + matched_rows, pos_keys)
    nodes = keys // n_rows
    rows = keys - nodes * n_rows
    node_ptr = np.concatenate([[0], np.cumsum(np.bincount(nodes, minlength=n_nodes))])
    positive = np.isin(keys, pos_keys, assume_unique=True)
    signs = np.where(positive, 1.0, -1.0).astype(np.float32)
    return node_ptr.astype(np.int64), rows, signs


def _balanced_runs(sizes, n_threads, runs_per_thread=8):
    """Boundaries of runs of consecutive nodes: each group of ``sizes`` is cut into
    runs of at most ``ceil(total / (runs_per_thread * n_threads))`` nodes, so the
    threads can share the work evenly."""
    total = int(np.sum(sizes))
    longest = max(1, -(-total // (runs_per_thread * n_threads)))
    bounds = [0]
    for size in sizes:
        start = bounds[-1]
        bounds.extend(range(start + longest, start + size, longest))
        bounds.append(start + size)
    return np.asarray(bounds, dtype=np.int64)


def _indicator(labels, n_cols):
    """CSR 0/1 matrix with ones at ``labels`` (n, k; -1 = none)."""
    keep = labels >= 0
    rows = np.repeat(np.arange(labels.shape[0]), labels.shape[1])[keep.ravel()]
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, labels[keep])),
                         shape=(labels.shape[0], n_cols))


class XRLinearClassifier(ClassifierMixin, BaseEstimator):
    """Recursive linear matcher/ranker over a label tree (XR-Linear, PECOS).

    WORK IN PROGRESS: see the module docstring.

    Parameters
    ----------
    indexer : LabelIndexer, LabelTree or None, default=None
        How to build the label tree (None: ``LabelIndexer()``, fitted on X and y);
        a fitted ``LabelIndexer`` or a ``LabelTree`` (e.g. ``LabelTree.from_chain``
        of a PECOS cluster chain) is used as is.
    loss : {"squared_hinge", "hinge", "log"}, default="squared_hinge"
    C : float, default=1.0
    Cp, Cn : float, default=1.0
        Extra cost factors of positive and negative instances.
    bias : float, default=1.0
    tol : float, default=0.1
    max_iter : int, default=100
    threshold : float, default=0.1
        Trained weights with ``|w| < threshold`` are dropped.
    negative_sampling : {"tfn", "man", "tfn+man"}, default="tfn"
        Matching sets that pick each node's training rows: "tfn" (teacher
        forcing: the parents of the row's true labels), "man" (matcher-aware: the
        parents that beam search with the trained upper levels retrieves for the
        row, plus the node's own positives) or their union.
    beam_size : int, default=10
    top_k : int, default=10
    post_processor : str, default="l3-hinge"
    n_jobs : int, default=None
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0
    """

    _parameter_constraints: dict = {
        "indexer": [HasMethods(["fit"]), LabelTree, None],
        "loss": [StrOptions({"squared_hinge", "hinge", "log"})],
        "C": [Interval(Real, 0, None, closed="neither")],
        "Cp": [Interval(Real, 0, None, closed="neither")],
        "Cn": [Interval(Real, 0, None, closed="neither")],
        "bias": [Interval(Real, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "threshold": [Interval(Real, 0, None, closed="left")],
        "negative_sampling": [StrOptions({"tfn", "man", "tfn+man"})],
        "beam_size": [Interval(Integral, 1, None, closed="left")],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "post_processor": [str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, indexer=None, *, loss="squared_hinge", C=1.0, Cp=1.0, Cn=1.0,
                 bias=1.0, tol=0.1, max_iter=100, threshold=0.1,
                 negative_sampling="tfn", beam_size=10, top_k=10,
                 post_processor="l3-hinge", n_jobs=None, random_state=None, verbose=0):
        self.indexer = indexer
        self.loss = loss
        self.C = C
        self.Cp = Cp
        self.Cn = Cn
        self.bias = bias
        self.tol = tol
        self.max_iter = max_iter
        self.threshold = threshold
        self.negative_sampling = negative_sampling
        self.beam_size = beam_size
        self.top_k = top_k
        self.post_processor = post_processor
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Build the label tree and train one linear model per tree node."""
        if self.post_processor not in POST_PROCESSORS:
            raise ValueError(
                f"post_processor must be one of {sorted(POST_PROCESSORS)}, "
                f"got {self.post_processor!r}."
            )
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
        self._targets = TargetEncoder()
        Y = self._targets.fit_transform(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but y has {Y.shape[0]}."
            )
        self.classes_ = self._targets.classes_
        weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(
            sample_weight, dtype=np.float64)
        if weights.shape != (X.shape[0],) or not np.all(np.isfinite(weights)) or np.any(
                weights <= 0):
            raise ValueError("sample_weight must be positive and finite, one per row.")
        rng = check_random_state(self.random_state)
        self.tree_ = self._build_tree(X, Y, rng)
        n_threads = effective_n_threads(self.n_jobs)
        tree = self.tree_
        X_csr = sp.csr_matrix(X)
        Y_prev = sp.csr_matrix(np.ones((X.shape[0], 1), dtype=np.float32))
        self.coef_ = []
        for level in range(1, tree.n_levels + 1):
            if level < tree.n_levels:
                Y_level = tree.transform(Y, level)
            else:
                Y_level = Y[:, tree.label_perm]  # labels in tree node order
            matching = self._matching_sets(X_csr, Y_prev, level, n_threads)
            node_ptr, rows, signs = level_training_sets(matching, Y_level,
                                                        tree.parents(level))
            cost = (self.C * weights[rows] * np.where(signs > 0, self.Cp, self.Cn))
            # Teacher forcing: siblings train on the same rows (their parent's
            # matching set), so the solver builds that row set once per parent.
            groups = None
            if level == 1 or self.negative_sampling == "tfn":
                groups = _balanced_runs(tree.children_counts(level - 1), n_threads)
            self.coef_.append(train_binary_nodes(
                X_csr, node_ptr, rows, signs, cost, groups=groups, loss=self.loss,
                bias=self.bias,
                tol=self.tol, max_iter=self.max_iter, threshold=self.threshold,
                random_state=rng.randint(np.iinfo(np.int32).max), n_threads=n_threads,
            ))
            Y_prev = Y_level
        return self

    def _matching_sets(self, X, Y_prev, level, n_threads):
        """Rows x nodes of ``level - 1`` that each row's training is restricted to."""
        if level == 1 or self.negative_sampling == "tfn":
            return Y_prev
        # Matcher-aware: beam search with the levels trained so far.
        tree = self.tree_
        upper = LabelTree(tree.level_ptr[: level + 1],
                          tree.child_ptr[: tree.level_ptr[level - 1] + 1],
                          np.arange(tree.level_sizes[level - 2]))
        searcher = BeamSearcher(self.coef_, upper, bias=self.bias)
        found, _ = searcher.search(X, beam_size=self.beam_size, top_k=self.beam_size,
                                   post_processor=self.post_processor,
                                   n_threads=n_threads)
        matched = _indicator(found, upper.n_labels)
        if self.negative_sampling == "man":
            return matched
        union = (matched + Y_prev).tocsr()
        union.data[:] = 1
        return union

    def _build_tree(self, X, Y, rng):
        if isinstance(self.indexer, LabelTree):
            tree = self.indexer
        elif hasattr(self.indexer, "tree_"):
            tree = self.indexer.tree_  # a fitted indexer: its tree is used as is
        else:
            indexer = LabelIndexer() if self.indexer is None else clone(self.indexer)
            if indexer.get_params().get("random_state", 0) is None:
                indexer.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
            tree = indexer.fit(X, Y).tree_
        if tree.n_labels != Y.shape[1]:
            raise ValueError(
                f"the label tree has {tree.n_labels} labels but y has {Y.shape[1]}."
            )
        return tree

    def predict_topk(self, X, k=None):
        """Top-k label indices and scores, each of shape (n_samples, k)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64],
                          reset=False)
        k = self.top_k if k is None else k
        return self._searcher().search(
            X, beam_size=self.beam_size, top_k=k, post_processor=self.post_processor,
            n_threads=effective_n_threads(self.n_jobs),
        )

    def _searcher(self):
        # The prepared weights are built once per fitted model (not pickled).
        searcher = getattr(self, "_beam_searcher", None)
        if searcher is None or searcher[0] is not self.coef_:
            searcher = (self.coef_, BeamSearcher(self.coef_, self.tree_, bias=self.bias))
            self._beam_searcher = searcher
        return searcher[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_beam_searcher", None)
        return state

    def decision_function(self, X):
        """CSR (n_samples, n_labels) holding the top-k scores of each row."""
        labels, scores = self.predict_topk(X)
        return scores_to_csr(labels, scores, self.tree_.n_labels)

    def predict(self, X):
        """Top-k label sets in the form ``y`` had at fit."""
        labels, _ = self.predict_topk(X)
        return self._targets.inverse_transform(labels, self.tree_.n_labels)

    def score(self, X, y, sample_weight=None):
        """Precision@1 of the ranking against ``y`` (in the form ``y`` had at fit)."""
        return precision_at_k(self._targets.transform(y), self.predict_topk(X, k=1), k=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags
