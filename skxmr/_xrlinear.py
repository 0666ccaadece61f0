"""XRLinearClassifier: recursive linear matcher/ranker over a label tree (XR-Linear).

Training builds a label tree (``LabelIndexer`` or a given ``LabelTree``), then
trains one binary linear model per tree node, level by level, each node on the
rows of its parent's matching set (teacher forcing, matcher-aware negatives or
both); inference is beam search down the tree (``skxmr._beam``).
"""

import threading
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from skxmr._beam import BeamSearcher, scores_to_csr
from skxmr._distributed import train_levels_units, units_active
from skxmr._indexer import LabelIndexer
from skxmr._label_tree import LabelTree
from skxmr._linear_solver import train_binary_nodes
from skxmr._postprocess import POST_PROCESSORS
from skxmr._progress import progress
from skxmr._targets import TargetEncoder
from skxmr.utils.validation import check_sample_weight, check_sparse_structure
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
    matched = _binary_csc(matching)[:, parents]
    positive = _binary_csc(Y_level)
    positive.data *= 2
    # 1: matched negative, 2: unmatched positive, 3: matched positive. Both are
    # canonical, so the sum is too: rows sorted and unique within each node.
    union = (matched + positive).tocsc()
    if not union.has_canonical_format:
        union.sum_duplicates()
    node_ptr = union.indptr.astype(np.int64)
    rows = union.indices.astype(np.int64)
    signs = np.where(union.data >= 2, 1.0, -1.0).astype(np.float32)
    return node_ptr, rows, signs


# Training entries (node, row) per solver call: bounds the per-entry arrays.
_BATCH_ENTRIES = 1_000_000

# Guards the lazy build of a fitted model's BeamSearcher (rare and short-lived),
# so that threads predicting at once with a fresh model share one build.
_SEARCHER_LOCK = threading.Lock()


def _binary_csc(M):
    """A canonical CSC 0/1 (int8) copy of the nonzero pattern of ``M``."""
    M = sp.csc_matrix(M, copy=True)
    M.sum_duplicates()
    M.eliminate_zeros()
    return sp.csc_matrix((np.ones(M.nnz, dtype=np.int8), M.indices, M.indptr),
                         shape=M.shape)


def _balanced_runs(sizes, rows_per_node, n_threads, runs_per_thread=8):
    """Boundaries of runs of consecutive nodes for the solver's ``groups``.

    Group ``g`` has ``sizes[g]`` nodes of ``rows_per_node[g]`` training rows each
    (siblings share their parent's rows). Each group is cut into runs of about
    ``total work / (runs_per_thread * n_threads)`` rows (at least one node), so
    that the threads share the work evenly even when parents differ a lot in size.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    work = sizes * np.maximum(np.asarray(rows_per_node, dtype=np.int64), 1)
    target = max(1, -(-int(work.sum()) // (runs_per_thread * n_threads)))
    bounds = [0]
    for size, rows in zip(sizes.tolist(), np.maximum(rows_per_node, 1).tolist()):
        start = bounds[-1]
        longest = max(1, target // rows)
        bounds.extend(range(start + longest, start + size, longest))
        bounds.append(start + size)
    return np.asarray(bounds, dtype=np.int64)


def _is_single_csr_row(X, n_features):
    """Whether X is one CSR row of float32/float64 with the fitted width (the
    one-query fast path: the kernel checks the indices, finiteness is checked)."""
    return (
        sp.issparse(X) and X.format == "csr" and X.shape == (1, n_features)
        and X.dtype in (np.float32, np.float64)
        and X.indptr[0] == 0 and X.indptr[1] == X.data.shape[0]
    )


def _indicator(labels, n_cols):
    """CSR 0/1 matrix with ones at ``labels`` (n, k; -1 = none)."""
    keep = labels >= 0
    rows = np.repeat(np.arange(labels.shape[0]), labels.shape[1])[keep.ravel()]
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, labels[keep])),
                         shape=(labels.shape[0], n_cols))


def train_level_nodes(X, matching, Y_level, counts, parents, params, *, weights=None,
                      seed=0, n_threads=1, node_offset=0, shared_rows=True):
    """Weights of every node of one tree level (CSC, one column per node), and the
    most solver iterations one of its nodes ran.

    ``counts`` holds the number of children of each parent (a column of
    ``matching``) and ``parents`` the parent of each node (a column of
    ``Y_level``); ``params`` the solver settings (``loss``, ``C``, ``Cp``, ``Cn``,
    ``bias``, ``tol``, ``max_iter``, ``threshold``). Node ``j`` draws the random
    stream of node ``node_offset + j`` of the level, so that the nodes of a level
    may be trained in any pieces (batches here, distributed units in
    ``skxmr._distributed``) and give the same weights. ``shared_rows``: siblings
    train on the same rows (teacher forcing, or the top level), so the solver
    builds that row set once per parent (the result does not depend on it).

    Parents are taken in consecutive batches of about ``_BATCH_ENTRIES`` training
    entries (node, row), so the per-entry arrays stay bounded on big levels.
    """
    counts = np.asarray(counts, dtype=np.int64)
    child_start = np.concatenate([[0], np.cumsum(counts)])
    matching = _binary_csc(matching)
    Y_level = sp.csc_matrix(Y_level)
    # Cumulative (node, row) entries up to each parent (at least one per node).
    total = np.cumsum(counts * np.maximum(np.diff(matching.indptr), 1))
    blocks = []
    n_iter = 0
    p0 = 0
    while p0 < counts.size:
        done = total[p0 - 1] if p0 else 0
        p1 = max(p0 + 1, int(np.searchsorted(total, done + _BATCH_ENTRIES,
                                             side="right")))
        c0, c1 = child_start[p0], child_start[p1]
        node_ptr, rows, signs = level_training_sets(
            matching[:, p0:p1], Y_level[:, c0:c1], parents[c0:c1] - p0)
        cost = np.where(signs > 0, params["C"] * params["Cp"],
                        params["C"] * params["Cn"])
        if weights is not None:
            cost *= weights[rows]
        groups = None
        if shared_rows:
            batch_counts = counts[p0:p1]
            first = np.minimum(child_start[p0:p1] - c0, len(node_ptr) - 2)
            groups = _balanced_runs(batch_counts, np.diff(node_ptr)[first],
                                    n_threads)
        W, node_iter = train_binary_nodes(
            X, node_ptr, rows, signs, cost, groups=groups, loss=params["loss"],
            bias=params["bias"], tol=params["tol"], max_iter=params["max_iter"],
            threshold=params["threshold"], random_state=seed, n_threads=n_threads,
            node_offset=int(node_offset + c0), return_n_iter=True,
        )
        blocks.append(W)
        n_iter = max(n_iter, int(node_iter.max(initial=0)))
        del node_ptr, rows, signs, cost
        p0 = p1
    if len(blocks) == 1:
        return blocks[0], n_iter
    W = sp.hstack(blocks, format="csc")
    W.has_sorted_indices = True
    return W, n_iter


def matching_sets(X, Y_prev, level, coef, tree, *, negative_sampling, beam_size,
                  post_processor, bias, n_threads):
    """Rows x nodes of ``level - 1`` that each row's training is restricted to.

    Teacher forcing (and the top level): ``Y_prev``, the relevance of the level
    above. Matcher-aware: the nodes that beam search with the trained levels
    ``coef`` (``coef[t - 1]`` for levels ``t < level``) retrieves for each row;
    "tfn+man": the union of both.
    """
    if level == 1 or negative_sampling == "tfn":
        return Y_prev
    upper = LabelTree(tree.level_ptr[: level + 1],
                      tree.child_ptr[: tree.level_ptr[level - 1] + 1],
                      np.arange(tree.level_sizes[level - 2]))
    searcher = BeamSearcher(coef[: level - 1], upper, bias=bias)
    found, _ = searcher.search(X, beam_size=beam_size, top_k=beam_size,
                               post_processor=post_processor, n_threads=n_threads)
    matched = _indicator(found, upper.n_labels)
    if negative_sampling == "man":
        return matched
    union = (matched + Y_prev).tocsr()
    union.data[:] = 1
    return union


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


class XRLinearClassifier(ClassifierMixin, BaseEstimator):
    """Recursive linear matcher/ranker over a label tree (XR-Linear, as in PECOS).

    Extreme multilabel ranking in three stages: the labels are clustered into a
    B-ary tree (semantic label indexing, ``indexer``); one binary linear model
    per tree node is trained, level by level, on the rows that reach the node's
    parent (matching); at prediction time beam search walks down the tree,
    keeping the ``beam_size`` best nodes per level, and ranks the labels it
    reaches by their path scores (ranking). A row may have any number of
    relevant labels; ``predict`` returns the ``top_k`` best ones.

    Parameters
    ----------
    indexer : LabelIndexer, LabelTree, list of sparse matrices or None, \
            default=None
        How to build the label tree. None: ``LabelIndexer()`` (PIFA label
        vectors, branching factor 16, leaves of at most 100 labels), fitted on
        ``X`` and ``y``. An unfitted ``LabelIndexer`` (or any estimator with
        ``fit(X, Y)`` and a ``tree_``) is cloned and fitted, so a search can
        tune ``indexer__branching_factor`` and the like; a fitted one, or a
        ``LabelTree`` (e.g. ``LabelTree.from_chain`` of a PECOS cluster chain),
        is used as is and must have one label per column of ``y``. A list of
        assignment matrices (the cluster-chain layout: one 0/1 matrix per level,
        children x parents, the last one labels x leaf clusters) is read with
        ``LabelTree.from_chain``.
    loss : {"squared_hinge", "hinge", "log"}, default="squared_hinge"
        Loss of every node's binary linear model (L2-regularised, solved by
        dual coordinate descent).
    C : float, default=1.0
        Cost of the loss against the regularisation (> 0): larger values fit
        the training rows more closely.
    Cp : float, default=1.0
        Extra cost factor of the positive rows of a node (> 0).
    Cn : float, default=1.0
        Extra cost factor of the negative rows of a node (> 0).
    bias : float, default=1.0
        Value of the constant feature appended to every row (>= 0); its weight
        is the node's (regularised) bias. 0: no bias term.
    tol : float, default=0.1
        Stopping tolerance of each node's solver (> 0).
    max_iter : int, default=100
        Most passes of each node's solver over its rows.
    threshold : float, default=0.1
        Trained weights with ``|w| < threshold`` are dropped (bias weights
        included), which keeps ``coef_`` sparse and prediction fast; 0 keeps
        every nonzero weight.
    negative_sampling : {"tfn", "man", "tfn+man"}, default="tfn"
        Which rows train a node (its matching set): the rows that reach its
        parent, plus the node's own positives. "tfn" (teacher forcing): a row
        reaches the parents of its true labels. "man" (matcher-aware): a row
        reaches the parents that beam search with the levels trained so far
        retrieves for it (hard negatives, slower to train). "tfn+man": both.
        The top level always trains on every row.
    beam_size : int, default=10
        Nodes kept per level by beam search (at prediction, and to find the
        "man" matching sets). Larger beams are slower and rank more exactly;
        a beam as large as the widest level is an exhaustive search.
    top_k : int, default=10
        Labels returned per row by ``predict``, ``predict_topk`` (unless ``k``
        is given) and ``decision_function``; capped at the number of labels.
    post_processor : str, default="l3-hinge"
        How node scores ``s`` become path scores: ``"l3-hinge"`` (any
        ``"lP-hinge"``: ``exp(-max(0, 1 - s) ** P)``, multiplied along the
        path), ``"sigmoid"`` (multiplied), ``"log-sigmoid"`` (summed) or
        ``"noop"`` (raw scores). See ``skxmr._postprocess``.
    n_jobs : int, default=None
        OpenMP threads for training and prediction (None: all available CPUs;
        -1: all; -2: all but one). The model does not depend on it. When
        ``fit`` runs as units on a joblib backend (see Notes), the threads of
        each unit, resolved where the unit runs (None: the worker's default;
        dask's workers set ``OMP_NUM_THREADS=1``).
    random_state : int, RandomState instance or None, default=None
        Seeds the label tree (when the indexer's own ``random_state`` is None)
        and the solvers' visiting orders. A fixed value gives the same model,
        bit for bit, for any ``n_jobs``, locally or on a cluster.
    verbose : int, default=0
        0: silent. 1 or more: ``fit`` shows a progress bar of the tree levels
        trained on stderr (tqdm when installed, else plain lines), and the
        default indexer shows one of the tree levels built.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        The label of each column: ``0 .. n_labels - 1`` for an indicator ``y``,
        the sorted distinct labels for label collections or 1-D labels.
    tree_ : LabelTree
        The label tree: ``tree_.n_levels`` levels below the root, the last one
        holding the labels (label node ``p`` is label ``tree_.label_perm[p]``,
        i.e. ``classes_[tree_.label_perm[p]]``).
    coef_ : list of scipy.sparse.csc_matrix
        One float32 matrix per tree level, ``coef_[t - 1]`` of shape
        ``(n_features + 1, n_nodes_t)`` for levels ``t = 1 .. tree_.n_levels``.
        Column ``j`` holds the weights of node ``j`` of the level (in tree node
        order, so the children of a parent are contiguous columns; in the last
        level, label node order); the last row holds the bias weights. A node's
        score is ``[x, bias] @ coef_[t - 1][:, j]``.
    n_features_in_ : int
        Number of features (columns of ``X``) seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during ``fit``, when ``X`` has string
        column names (a pandas DataFrame).
    n_iter_ : int
        The most solver iterations (passes) one node ran, over all nodes;
        ``max_iter`` means some node stopped before reaching ``tol``.

    See Also
    --------
    LabelIndexer : The semantic label indexing used to build ``tree_``.
    skxmr.metrics.make_topk_scorer : Top-k scorers for model selection.

    Notes
    -----
    Rows without labels (all-zero rows of an indicator, empty label
    collections) are kept: they are negatives for every node of the top level
    (which trains on all rows) and, with ``negative_sampling="tfn"``, for
    nothing below it; with "man" or "tfn+man" they are also negatives for the
    children of the clusters beam search retrieves for them. In ``score`` (as
    in ``skxmr.metrics``) a row without labels counts as a miss.

    Labels without training rows (all-zero columns of an indicator ``y``) are
    kept in ``classes_`` and in the tree (the indexer warns that they have an
    all-zero label vector and places them by balance alone). Their nodes are
    trained on negatives only, so they get low scores: in practice they rank
    below the labels relevant to a row and seldom enter the top-k. Label
    collections and 1-D labels only have columns for the labels they contain.

    ``sample_weight`` means repeated rows: it scales each row's cost in every
    node's loss, and an indexer whose ``fit`` takes ``sample_weight`` (as
    ``LabelIndexer``, PIFA and PII) gets the weights too, so an integer weight
    ``w`` gives the model of the row repeated ``w`` times, up to the solvers'
    ``tol``. A weight of 0 leaves the row out altogether.

    Scaling out: inside ``joblib.parallel_config(backend=...)`` with a backend
    other than ``"loky"`` (the default) or ``"sequential"`` -- typically
    ``"dask"`` with a ``dask.distributed`` client -- ``fit`` cuts its work into
    independent units (the subtrees below a tree level, each with only the rows
    it needs, and runs of nodes of the levels above; runs of nodes per level for
    ``"man"`` and ``"tfn+man"``),
    runs them on the backend's workers and stitches the result: the same model,
    bit for bit, as the local fit. The label tree is built the same way. A
    worker that dies is replaced and its units run again, or ``fit`` raises a
    ``RuntimeError`` and leaves the estimator unfitted. ``skxmr.predict_dask``
    predicts on Dask collections. See ``doc/scaling_out.rst``.

    ``predict`` answers in the form ``y`` had at fit: a sparse indicator (CSR,
    the dtype of ``y``) or a dense ndarray indicator with ones at the top-k
    labels, a list of tuples of labels (best first) for label collections, or
    the best label of each row (ndarray) for 1-D ``y``. A list of lists is
    always read as label collections, never as a 0/1 indicator; a 2-D array of
    one column is, as in scikit-learn, a column vector of labels (1-D ``y``,
    with a ``DataConversionWarning``). ``predict(X, threshold=t)`` keeps only
    the top-k labels whose path score is at least ``t``. ``decision_function``
    returns a sparse matrix holding the top-k scores of each row, also for two
    classes: a dense score for every label is what extreme multilabel ranking
    avoids. Floats that are not integers are rejected as 1-D ``y`` (a
    regression target). All prediction methods accept ``X`` with 0 rows and
    may be called from several threads at once.

    Examples
    --------
    >>> from skxmr import XRLinearClassifier
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(2000, 1000, 200, random_state=0)
    >>> model = XRLinearClassifier(top_k=3, random_state=0).fit(X[:1500], Y[:1500])
    >>> model.tree_
    LabelTree(n_labels=200, level_sizes=[2, 200])
    >>> labels, scores = model.predict_topk(X[1500:1502])
    >>> labels
    array([[ 24, 165, 163],
           [ 24, 164, 156]])
    >>> [row.indices.tolist() for row in Y[1500:1502]]  # the true labels
    [[24], [24, 35, 84, 102, 164]]
    >>> round(model.score(X[1500:], Y[1500:]), 3)  # precision@1
    0.954
    """

    _parameter_constraints: dict = {
        "indexer": [HasMethods(["fit"]), LabelTree, list, None],
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
        """Build the label tree and train one linear model per tree node.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training instances (e.g. TF-IDF rows); CSR float32 is used as is.
        y : sparse matrix, ndarray, sequence of label collections or 1-D labels
            A sparse or dense (NumPy) 0/1 indicator of shape (n_samples,
            n_labels), one collection of hashable labels per row (as
            ``MultiLabelBinarizer`` takes; a list of lists is always read as
            label collections), or one label per row (multiclass). ``predict``
            answers in the same form.
        sample_weight : array-like of shape (n_samples,) or float, default=None
            Non-negative weight of each row, with the meaning of repeated rows:
            it scales the row's cost (``C``) in every node's loss and is passed
            to the indexer when its ``fit`` takes ``sample_weight`` (as
            ``LabelIndexer``'s does). Rows of weight 0 are left out of training
            altogether (the label tree included).

        Returns
        -------
        self : XRLinearClassifier
            The fitted classifier.
        """
        if self.post_processor not in POST_PROCESSORS:
            raise ValueError(
                f"post_processor must be one of {sorted(POST_PROCESSORS)} (or any "
                f"'lP-hinge' with an integer P >= 1), got {self.post_processor!r}."
            )
        n_threads = effective_n_threads(self.n_jobs)
        check_sparse_structure(X)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64])
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None."
            )
        self._targets = TargetEncoder()
        Y = self._targets.fit_transform(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but y has {Y.shape[0]}."
            )
        self.classes_ = self._targets.classes_
        weights = check_sample_weight(sample_weight, X.shape[0])
        if np.any(weights == 0):  # a zero weight is the same as leaving the row out
            keep = np.flatnonzero(weights)
            X, Y, weights = X[keep], Y[keep], weights[keep]
            if Y.nnz == 0:
                raise ValueError(
                    "the rows of nonzero sample_weight have no positive label at all; "
                    "nothing to learn."
                )
        uniform_weights = bool(np.all(weights == 1))
        rng = check_random_state(self.random_state)
        distributed = units_active()
        try:
            self.tree_ = build_tree(self.indexer, X, Y, rng,
                                    None if uniform_weights else weights,
                                    verbose=self.verbose)
        except BaseException:
            if distributed:  # a unit failed: leave no partly fitted model
                self._forget_fit()
            raise
        tree = self.tree_
        X_csr = sp.csr_matrix(X)
        if distributed:  # a joblib backend is set: train as units (e.g. on dask)
            seeds = [rng.randint(np.iinfo(np.int32).max) for _ in range(tree.n_levels)]
            try:
                self.coef_, self.n_iter_ = train_levels_units(
                    X_csr, Y, tree, seeds, None if uniform_weights else weights,
                    self._solver_params(), negative_sampling=self.negative_sampling,
                    beam_size=self.beam_size, post_processor=self.post_processor,
                    n_jobs=self.n_jobs)
            except BaseException:
                self._forget_fit()  # never leave a partly fitted model behind
                raise
            self._searcher()
            return self
        Y_prev = sp.csr_matrix(np.ones((X.shape[0], 1), dtype=np.float32))
        self.coef_ = []
        self.n_iter_ = 0
        for level in progress(range(1, tree.n_levels + 1), desc="XR-Linear levels",
                              unit="level", verbose=self.verbose):
            if level < tree.n_levels:
                Y_level = tree.transform(Y, level)
            else:
                Y_level = Y[:, tree.label_perm]  # labels in tree node order
            matching = self._matching_sets(X_csr, Y_prev, level, n_threads)
            W, n_iter = self._train_level(
                X_csr, matching, Y_level, level, None if uniform_weights else weights,
                rng.randint(np.iinfo(np.int32).max), n_threads)
            self.coef_.append(W)
            self.n_iter_ = max(self.n_iter_, n_iter)
            Y_prev = Y_level
        del X_csr, Y_prev, Y_level, matching
        self._searcher()  # the inference layout, ready for the first query
        return self

    def _forget_fit(self):
        """Drop every fitted attribute (after a failed fit)."""
        for name in list(vars(self)):
            if (name.endswith("_") and not name.startswith("__")) or name in (
                    "_targets", "_beam_searcher"):
                delattr(self, name)

    def _solver_params(self):
        """The per-node solver settings, as ``train_level_nodes`` takes them."""
        return dict(loss=self.loss, C=self.C, Cp=self.Cp, Cn=self.Cn, bias=self.bias,
                    tol=self.tol, max_iter=self.max_iter, threshold=self.threshold)

    def _train_level(self, X, matching, Y_level, level, weights, seed, n_threads):
        """Weights of every node of ``level`` (CSC, one column per node), and the
        most solver iterations one of its nodes ran."""
        tree = self.tree_
        return train_level_nodes(
            X, matching, Y_level, tree.children_counts(level - 1), tree.parents(level),
            self._solver_params(), weights=weights, seed=seed, n_threads=n_threads,
            shared_rows=level == 1 or self.negative_sampling == "tfn",
        )

    def _matching_sets(self, X, Y_prev, level, n_threads):
        """Rows x nodes of ``level - 1`` that each row's training is restricted to."""
        return matching_sets(X, Y_prev, level, self.coef_, self.tree_,
                             negative_sampling=self.negative_sampling,
                             beam_size=self.beam_size,
                             post_processor=self.post_processor, bias=self.bias,
                             n_threads=n_threads)

    def predict_topk(self, X, k=None):
        """Top-k label indices and scores, each of shape (n_samples, k).

        Labels are column indices of ``y`` as seen at fit (``classes_[labels]``
        gives the original labels), best first; when the beam reaches fewer than
        ``k`` labels a row ends with label -1 and score 0. A single CSR row takes a
        fast path with light validation (one-query serving). ``X`` with 0 rows
        gives arrays of 0 rows. Safe to call from several threads at once.
        """
        k = self.top_k if k is None else k
        if _is_single_csr_row(X, getattr(self, "n_features_in_", None)):
            check_is_fitted(self)
            labels, scores = self._searcher()._predict_one_fast(
                X.indices, X.data, beam_size=self.beam_size, top_k=k,
                post_processor=self.post_processor)
            return labels[None, :], scores[None, :]
        check_is_fitted(self)
        check_sparse_structure(X)
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float32, np.float64],
                          reset=False, ensure_min_samples=0)
        return self._searcher().search(
            X, beam_size=self.beam_size, top_k=k, post_processor=self.post_processor,
            n_threads=effective_n_threads(self.n_jobs),
        )

    def _searcher(self):
        # The prepared weights are built once per fitted model (not pickled); the
        # lock makes threads that ask at once share one build.
        searcher = getattr(self, "_beam_searcher", None)
        if searcher is not None and searcher[0] is self.coef_:
            return searcher[1]
        with _SEARCHER_LOCK:
            searcher = getattr(self, "_beam_searcher", None)
            if searcher is None or searcher[0] is not self.coef_:
                searcher = (self.coef_, BeamSearcher(
                    self.coef_, self.tree_, bias=self.bias,
                    n_threads=effective_n_threads(self.n_jobs)))
                self._beam_searcher = searcher
        return searcher[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_beam_searcher", None)
        return state

    def decision_function(self, X):
        """Top-k scores of each row, as a sparse matrix.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : scipy.sparse.csr_matrix of shape (n_samples, n_labels)
            Row ``i`` holds the path scores of its ``top_k`` best labels (in the
            columns of ``classes_``) and nothing else: a dense matrix of every
            label's score is what extreme multilabel ranking avoids.
        """
        labels, scores = self.predict_topk(X)
        return scores_to_csr(labels, scores, self.tree_.n_labels)

    def predict(self, X, threshold=None):
        """Top-k label sets, or the labels scoring at least ``threshold``, in the
        form ``y`` had at fit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        threshold : float, default=None
            None: every row gets its ``top_k`` best labels. A number: every row
            gets those of its ``top_k`` best labels whose path score is at least
            ``threshold``, so rows get from 0 to ``top_k`` labels. Path scores
            depend on ``post_processor`` (``"l3-hinge"`` and ``"sigmoid"``: in
            (0, 1]; see ``predict_topk`` for the scores themselves). Not the
            ``threshold`` parameter of the model, which prunes weights at fit.

        Returns
        -------
        y_pred
            As ``y`` at fit: a sparse (CSR) or dense 0/1 indicator of shape
            (n_samples, n_labels) in the dtype of ``y``, or a list of tuples of
            labels, best first. For 1-D ``y`` (one label per row): the best label
            of each row, an ndarray of shape (n_samples,) like ``classes_``; with
            a ``threshold``, an object ndarray holding the best label where its
            score is at least ``threshold`` and None where it is not.
        """
        if threshold is not None:
            if (isinstance(threshold, bool) or not isinstance(threshold, Real)
                    or np.isnan(threshold)):
                raise ValueError(
                    f"threshold must be None or a number, got {threshold!r}.")
        labels, scores = self.predict_topk(X)
        if threshold is None:
            return self._targets.inverse_transform(labels, self.tree_.n_labels)
        below = scores < threshold
        if self._targets.kind == "multiclass":
            out = np.empty(labels.shape[0], dtype=object)
            if labels.shape[1]:
                out[:] = list(self.classes_[np.maximum(labels[:, 0], 0)])
                out[below[:, 0] | (labels[:, 0] < 0)] = None
            return out
        labels = np.where(below, -1, labels)
        return self._targets.inverse_transform(labels, self.tree_.n_labels)

    def score(self, X, y, sample_weight=None):
        """Precision@1 of the ranking against ``y`` (in the form ``y`` had at fit).

        With ``sample_weight``, the weighted mean over rows of whether the best
        label of the row is relevant.
        """
        Y = self._targets.transform(y)
        if sample_weight is None:
            return precision_at_k(Y, self.predict_topk(X, k=1), k=1)
        weights = check_sample_weight(sample_weight, Y.shape[0])
        labels, _ = self.predict_topk(X, k=1)
        if labels.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {labels.shape[0]} rows but y has {Y.shape[0]}.")
        best = labels[:, 0]
        hit = np.zeros(Y.shape[0])
        found = best >= 0
        hit[found] = np.asarray(Y[np.flatnonzero(found), best[found]]).ravel() != 0
        return float(np.average(hit, weights=weights))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags


    # ------------------------------------ saved state (skxmr._persistence)
    def _get_target_state(self):
        """The form of ``y`` at fit (``TargetEncoder.get_state()``), the one
        piece of fitted state that is not a public attribute; for ``skxmr.save``."""
        return self._targets.get_state()

    def _set_target_state(self, state):
        """Restore :meth:`_get_target_state` output (and ``classes_``); for
        ``skxmr.load``. Raises ``ValueError`` when the state is inconsistent."""
        self._targets = TargetEncoder.from_state(state)
        self.classes_ = self._targets.classes_
