"""XRLinearClassifier: recursive linear matcher/ranker over a label tree (XR-Linear).

Training resolves the label tree (``indexer``: a ``LabelIndexer`` or a given
``LabelTree``), then trains one binary linear model per tree node, level by
level (``skxmr._xrlinear_training``); inference is beam search down the tree
(``skxmr._beam``). This module holds the estimator only: its parameters, the
validation of its inputs (through the shared base) and the searcher it predicts
with.
"""

import threading
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from skxmr._base import XMRClassifierBase
from skxmr import _ensemble
from skxmr._beam import BeamSearcher
from skxmr._indexer import LabelIndexer, build_tree, tree_is_given
from skxmr._label_addition import add_labels_to_tree
from skxmr._label_tree import LabelTree
from skxmr._postprocess import post_processor_constraint
from skxmr._targets import TargetEncoder
from skxmr._xrlinear_training import train_levels
from skxmr.utils import effective_n_threads
from skxmr.utils.validation import check_sample_weight, n_jobs_constraint

# Guards the lazy build of a fitted model's BeamSearcher (rare and short-lived),
# so that threads predicting at once with a fresh model share one build.
_SEARCHER_LOCK = threading.Lock()


def _is_single_csr_row(X, n_features):
    """Whether X is one CSR row of float32/float64 with the fitted width (the
    one-query fast path: the kernel checks the indices, finiteness is checked)."""
    return (
        sp.issparse(X) and X.format == "csr" and X.shape == (1, n_features)
        and X.dtype in (np.float32, np.float64)
        and X.indptr[0] == 0 and X.indptr[1] == X.data.shape[0]
    )


class XRLinearClassifier(XMRClassifierBase):
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
        tune ``indexer__branching_factor`` and the like (also from the default
        None: ``set_params(indexer__...)`` first makes it ``LabelIndexer()``,
        which fits the same tree); a fitted one, or a
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
    n_estimators : int, default=1
        Number of trees. 1: a single tree (``tree_``, ``coef_``). More: an
        ensemble of that many trees, each with its own label tree and linear
        models (``estimators_``), built from the same label vectors (computed
        once) with its own seed; prediction searches every tree with the same
        beam and merges their top-k lists (``combination``). More accurate,
        and about ``n_estimators`` times the cost to fit, store and predict.
        See ``doc/ensembles.rst``.
    combination : {"average", "rank", "softmax", "sigmoid"}, default="average"
        How an ensemble merges its trees' top-k lists into one: a label's score
        is the mean over the trees of its path score ("average"), of
        ``1 - r / k'`` for rank ``r`` in the tree's list of ``k'`` ("rank"), of
        the softmax of the tree's scores over its list ("softmax") or of the
        sigmoid of its score ("sigmoid"); 0 from a tree whose list misses it.
        Each tree lists ``2 * top_k`` labels. Not used when ``n_estimators=1``.
    diversity : {"seed", "branching"}, default="seed"
        What differs between an ensemble's trees: the clustering seed only
        ("seed"), or also the branching factor ("branching": the indexer's
        ``branching_factor`` times 1, 1/4 and 4 in turn, i.e. 16, 4, 64 by
        default). Not used when ``n_estimators=1``.
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
    estimators_ : list of XRLinearClassifier
        Only when ``n_estimators > 1``: the trees of the ensemble, each a
        fitted single-tree model (with its own ``tree_`` and ``coef_``); the
        ensemble itself has no ``tree_`` or ``coef_``.

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
    the dtype of ``y``), a dense ndarray indicator or a pandas DataFrame one
    (the columns of a DataFrame ``y``) with ones at the top-k labels, a list
    of tuples of labels (best first) for label collections, or the best label
    of each row (ndarray) for 1-D ``y``. A list of lists is
    always read as label collections, never as a 0/1 indicator; a 2-D array of
    one column is, as in scikit-learn, a column vector of labels (1-D ``y``,
    with a ``DataConversionWarning``). ``predict(X, threshold=t)`` keeps only
    the top-k labels whose path score is at least ``t``. ``decision_function``
    returns a sparse matrix holding the top-k scores of each row, also for two
    classes: a dense score for every label is what extreme multilabel ranking
    avoids. Floats that are not integers are rejected as 1-D ``y`` (a
    regression target). All prediction methods accept ``X`` with 0 rows and
    may be called from several threads at once.

    Model selection: the estimator-type tag is None (not "classifier"), so
    that ``GridSearchCV``, ``cross_val_score`` and the like take label lists
    with an integer ``cv`` (folds are ``KFold``; see ``doc/model_selection.rst``).

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
        "post_processor": post_processor_constraint(),
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "combination": [StrOptions(set(_ensemble.COMBINATIONS))],
        "diversity": [StrOptions(set(_ensemble.DIVERSITIES))],
        "n_jobs": n_jobs_constraint(),
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # The prepared inference layout belongs to the fitted state (see _searcher).
    _private_fitted_state = ("_targets", "_beam_searcher")
    # indexer=None is a LabelIndexer(): indexer__* parameters reach it (_base).
    _default_sub_estimators = {"indexer": LabelIndexer}

    def __init__(self, indexer=None, *, loss="squared_hinge", C=1.0, Cp=1.0, Cn=1.0,
                 bias=1.0, tol=0.1, max_iter=100, threshold=0.1,
                 negative_sampling="tfn", beam_size=10, top_k=10,
                 post_processor="l3-hinge", n_estimators=1, combination="average",
                 diversity="seed", n_jobs=None, random_state=None, verbose=0):
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
        self.n_estimators = n_estimators
        self.combination = combination
        self.diversity = diversity
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
            n_labels), a pandas DataFrame indicator (its column names are the
            labels), one collection of hashable labels per row (as
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
            The fitted classifier. A fit that fails (or is interrupted) leaves
            the classifier as it was.
        """
        return self._transactional_fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        """The fit, on a scratch copy (see ``XMRClassifierBase``)."""
        n_threads = effective_n_threads(self.n_jobs)
        X = self._check_X(X, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None."
            )
        targets = TargetEncoder()
        Y = targets.fit_transform(y)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows but y has {Y.shape[0]}."
            )
        weights = check_sample_weight(sample_weight, X.shape[0])
        if np.any(weights == 0):  # a zero weight is the same as leaving the row out
            keep = np.flatnonzero(weights)
            X, Y, weights = X[keep], Y[keep], weights[keep]
            if Y.nnz == 0:
                raise ValueError(
                    "the rows of nonzero sample_weight have no positive label at all; "
                    "nothing to learn."
                )
        weights = None if np.all(weights == 1) else weights
        rng = check_random_state(self.random_state)
        self._targets = targets
        self.classes_ = targets.classes_
        if self.n_estimators == 1:
            self.tree_, self.coef_, self.n_iter_ = self._fit_tree(
                X, Y, weights, rng, self.indexer, n_threads)
            self._searcher()  # the inference layout, ready for the first query
            return
        self.estimators_ = self._fit_ensemble(X, Y, weights, rng, n_threads)
        self.n_iter_ = max(member.n_iter_ for member in self.estimators_)

    def _fit_tree(self, X, Y, weights, rng, indexer, n_threads):
        """One tree and its level weights: ``(tree, coef, n_iter)``."""
        tree = build_tree(indexer, X, Y, rng, weights, verbose=self.verbose)
        seeds = [rng.randint(np.iinfo(np.int32).max) for _ in range(tree.n_levels)]
        coef, n_iter = train_levels(
            sp.csr_matrix(X), Y, tree, seeds, weights, self._solver_params(),
            negative_sampling=self.negative_sampling, beam_size=self.beam_size,
            post_processor=self.post_processor, n_jobs=self.n_jobs,
            n_threads=n_threads, verbose=self.verbose)
        return tree, coef, n_iter

    def _fit_ensemble(self, X, Y, weights, rng, n_threads):
        """The members of an ensemble (see ``skxmr._ensemble``), in order; each
        is seeded by a seed drawn up front, so the model is the same for any
        ``n_jobs`` and on any backend."""
        if tree_is_given(self.indexer):
            raise ValueError(
                f"n_estimators={self.n_estimators} needs an indexer that builds the "
                "trees (None or an unfitted LabelIndexer): a given tree or fitted "
                "indexer would make every member the same tree.")
        seeds = _ensemble.member_seeds(rng, self.n_estimators)
        base, indexers = _ensemble.member_indexers(
            self.indexer, self.n_estimators, seeds, self.diversity, self.verbose)
        vectors = None
        if _ensemble.shares_representation(self.indexer):
            if base.random_state is None:  # the representation's own seed
                base.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
            vectors = base.label_vectors(X, Y, sample_weight=weights)  # computed once
        members = []
        for seed, indexer in zip(seeds, indexers):
            if vectors is not None:
                indexer = indexer.fit(vectors)  # the member's own clustering
            member = self._member(int(seed))
            member.tree_, member.coef_, member.n_iter_ = self._fit_tree(
                X, Y, weights, check_random_state(int(seed)), indexer, n_threads)
            members.append(member)
        return members

    def _member(self, seed):
        """An unfitted single-tree model with this ensemble's parameters."""
        member = clone(self).set_params(n_estimators=1, random_state=seed, verbose=0)
        member._targets = self._targets
        member.classes_ = self.classes_
        member.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            member.feature_names_in_ = self.feature_names_in_
        return member

    def add_labels(self, X, y, sample_weight=None, *, max_leaf_size=None,
                   refresh="none"):
        """Add new labels to the fitted model, without refitting it.

        The labels of ``y`` that are not in ``classes_`` go below the parent of
        the leaf cluster that the model's beam search reaches for their rows,
        in new leaf clusters of at most ``max_leaf_size`` labels (grouped by
        their PIFA vectors); each new leaf gets a cluster model and each new
        label a linear model, trained as ``fit`` trains them, on the rows of
        ``X``. The old labels' models and the old cluster models stay as they
        were. See ``doc/adding_labels.rst`` (and ``skxmr._label_addition``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows with the fitted features. Pass the rows of the new labels
            together with training rows of the old labels (e.g. the whole
            training set): those are the negatives of the new leaf clusters,
            which would otherwise outscore the old ones.
        y : as in ``fit``
            Their labels, in the form ``fit`` took: the new labels are those
            not in ``classes_`` (for an indicator, the columns after the old
            ones). There must be at least one.
        sample_weight : array-like of shape (n_samples,), default=None
            As in ``fit``.
        max_leaf_size : int, default=None
            The most new labels in one new leaf cluster. None: the indexer's
            ``max_leaf_size`` (100 for the default one).
        refresh : {"none", "path"}, default="none"
            "none": the old cluster models stay as they were. "path": the
            ancestors of the new leaves are retrained too, on the rows of
            ``X`` (so that the new rows count as their positives); only sound
            when ``X`` holds the training rows of those clusters, e.g. the
            whole training set with the new labels.

        Returns
        -------
        self : XRLinearClassifier
            With the new labels appended to ``classes_``. A call that fails
            leaves the model as it was.
        """
        check_is_fitted(self)
        if max_leaf_size is not None and (
                isinstance(max_leaf_size, bool) or not isinstance(max_leaf_size, Integral)
                or max_leaf_size < 1):
            raise ValueError(f"max_leaf_size must be an int >= 1 or None, got "
                             f"{max_leaf_size!r}.")
        if refresh not in ("none", "path"):
            raise ValueError(f"refresh must be 'none' or 'path', got {refresh!r}.")
        work = self._fitted_copy()
        if self.n_estimators == 1:
            add_labels_to_tree(work, X, y, sample_weight, max_leaf_size=max_leaf_size,
                               refresh=refresh)
        else:  # each tree places and trains the new labels on its own
            work.estimators_ = [member._fitted_copy() for member in self.estimators_]
            for member in work.estimators_:
                add_labels_to_tree(member, X, y, sample_weight,
                                   max_leaf_size=max_leaf_size, refresh=refresh)
            work._targets = work.estimators_[0]._targets
            work.classes_ = work._targets.classes_
            for member in work.estimators_:
                member._targets, member.classes_ = work._targets, work.classes_
            work.n_iter_ = max(member.n_iter_ for member in work.estimators_)
        self._publish_from(work)
        return self

    def _solver_params(self):
        """The per-node solver settings, as the training module takes them."""
        return dict(loss=self.loss, C=self.C, Cp=self.Cp, Cn=self.Cn, bias=self.bias,
                    tol=self.tol, max_iter=self.max_iter, threshold=self.threshold)

    def _predict_topk(self, X, k):
        """Top-k of a (frozen) fitted model; validates X. A single CSR row takes
        a fast path with light validation (one-query serving)."""
        k = self.top_k if k is None else k
        if self.n_estimators > 1 and hasattr(self, "estimators_"):
            return self._predict_topk_ensemble(X, k)
        if _is_single_csr_row(X, self.n_features_in_):
            labels, scores = self._searcher()._predict_one_fast(
                X.indices, X.data, beam_size=self.beam_size, top_k=k,
                post_processor=self.post_processor)
            return labels[None, :], scores[None, :]
        X = self._check_X(X, reset=False)
        searcher = self._searcher()
        beam, k, code, power = searcher._params(self.beam_size, k, self.post_processor)
        return searcher._search(X, beam, k, code, power,
                                effective_n_threads(self.n_jobs))

    def _predict_topk_ensemble(self, X, k):
        """Every member's beam search, then the merge of their lists."""
        one_row = _is_single_csr_row(X, self.n_features_in_)
        if not one_row:
            X = self._check_X(X, reset=False)
        n_threads = effective_n_threads(self.n_jobs)
        results = []
        for member in self.estimators_:
            searcher = member._searcher()
            beam, k_out, code, power = searcher._params(
                self.beam_size, k, self.post_processor)
            k_member = min(_ensemble.CANDIDATE_FACTOR * k_out, searcher.n_labels)
            if one_row:  # the one-query fast path of each tree
                labels, scores = searcher._predict_one_fast(
                    X.indices, X.data, beam_size=self.beam_size, top_k=k_member,
                    post_processor=self.post_processor)
                results.append((labels[None, :], scores[None, :]))
            else:
                results.append(searcher._search(X, beam, k_member, code, power,
                                                n_threads))
        return _ensemble.combine_topk(results, len(self.classes_), k_out,
                                      self.combination, n_threads)

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
