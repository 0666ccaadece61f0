"""New labels for a fitted single-tree XR-Linear model, without a refit.

The algorithm, on ONE fitted tree model (``tree_``, ``coef_``, ``_targets``,
``classes_`` and the solver settings of an ``XRLinearClassifier``):

1. ``y`` is read in the form ``fit`` took; labels the model does not know are
   new and get the next columns (``TargetEncoder.extended``: the old labels
   keep theirs).
2. Placement: the rows with a new label are routed down the cluster levels by
   the model's own beam search (its ``beam_size``); a new label goes below the
   leaf cluster that collects the largest summed path score over its rows.
3. New leaves: the new labels are not added to that leaf but to NEW leaf
   clusters, siblings of it under its parent: the new labels that land under
   one parent are cut by balanced 2-means on their PIFA vectors into groups of
   at most ``max_leaf_size``, one new leaf each. No leaf overflows, and no old
   leaf changes. Each new leaf gets its own cluster model, trained as ``fit``
   trains a node of that level: on its parent's matching set among the given
   rows, its positives the rows with one of its labels.
4. Each new label's model is trained on its leaf's matching set among the
   given rows, as the model's ``negative_sampling`` defines it: the rows with a
   label in the leaf ("tfn": rows of the new labels of that leaf), the rows
   beam search routes to the leaf ("man"), or both; with the model's solver
   settings. Rows with only old labels are the negatives of the new leaves
   under the parents they reach; they change no old model.

The models of the old labels and of the old cluster nodes stay as they were
(``refresh="none"``); ``refresh="path"`` also retrains the ancestors of the new
leaves on the given rows. A tree without cluster levels has no leaf to add: its
new labels join the root. Everything here builds new arrays: the caller's model
is changed only by the attribute assignments of :func:`add_labels_to_tree`,
which the estimator runs on a scratch copy (see ``XRLinearClassifier.add_labels``).
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from skxmr._beam import BeamSearcher
from skxmr._linear_solver import solver_rows
from skxmr._xrlinear_training import binary_csc, train_level_nodes
from skxmr.utils import effective_n_threads
from skxmr.utils.validation import check_sample_weight

__all__ = ["add_labels_to_tree", "route_to_leaves", "place_labels",
           "group_new_labels", "train_label_columns", "replace_columns",
           "default_max_leaf_size"]


def route_to_leaves(model, X, n_threads, coef=None, tree=None):
    """Rows x leaf clusters (CSR): the path score of each leaf cluster that beam
    search over the cluster levels keeps for each row (``beam_size`` per row).
    A tree without cluster levels has one "leaf", the root: every row scores 1.
    ``coef`` and ``tree``: those to search (default: the model's)."""
    coef = model.coef_ if coef is None else coef
    tree = model.tree_ if tree is None else tree
    return _route(model, X, n_threads, coef, tree, tree.n_levels - 1)


def _route(model, X, n_threads, coef, tree, level):
    """Rows x nodes of ``level`` (0: the root) kept by beam search over levels
    ``1 .. level`` (path scores, CSR)."""
    if level == 0:
        return sp.csr_matrix(np.ones((X.shape[0], 1), dtype=np.float32))
    upper = tree.truncate(level)
    searcher = BeamSearcher(coef[:level], upper, bias=model.bias,
                            n_threads=n_threads)
    beam, k, code, power = searcher._params(model.beam_size, model.beam_size,
                                            model.post_processor)
    found, scores = searcher._search(X, beam, k, code, power, n_threads)
    keep = found >= 0
    rows = np.repeat(np.arange(found.shape[0]), found.shape[1])[keep.ravel()]
    return sp.csr_matrix(
        (np.maximum(scores[keep], np.float32(1e-12)).astype(np.float32),
         (rows, found[keep])), shape=(X.shape[0], upper.n_labels))


def refresh_ancestors(model, tree, coef, X, Y, leaves, weights, seed, n_threads,
                      top=1):
    """Retrain the cluster models of ``leaves`` (indices within the last
    cluster level of ``tree``) and of their ancestors on the rows ``X`` (labels
    ``Y`` over ``tree``'s labels), level by level from the top, each on its
    parent's matching set among these rows (teacher forcing and the rows beam
    search routes to the parent). Returns the new weights (a new list) and the
    most solver iterations of a node."""
    T = tree.n_levels
    coef = list(coef)
    if T < 2:
        return coef, 0
    nodes_at = {T - 1: np.unique(leaves)}
    for t in range(T - 2, top - 1, -1):
        nodes_at[t] = np.unique(tree.parents(t + 1)[nodes_at[t + 1]])
    X_rows = solver_rows(X)
    tfn = model.negative_sampling == "tfn"
    n_iter = 0
    for t in range(max(top, 1), T):
        nodes = nodes_at[t]
        clusters, local, counts = np.unique(tree.parents(t)[nodes], return_inverse=True,
                                            return_counts=True)
        if t == 1:  # the top level: every row (no beam search needed)
            matching = sp.csc_matrix(np.ones((X.shape[0], 1), dtype=np.int8))
        else:
            taught = sp.csc_matrix(tree.transform(Y, t - 1))[:, clusters]
            # Teacher forcing needs no routing: only "man" reads the routes.
            routed = None if tfn else sp.csc_matrix(
                _route(model, X, n_threads, coef, tree, t - 1))[:, clusters]
            matching = _matching(model, taught, routed)
        Y_level = sp.csc_matrix(tree.transform(Y, t))[:, nodes]
        # Siblings share their rows at the top level and under teacher forcing
        # (a node's positives are rows of its parent's matching set), so the
        # solver builds each parent's rows once; the weights do not change.
        W, it = train_level_nodes(
            X_rows, matching, Y_level, counts, local.astype(np.int64),
            model._solver_params(), weights=weights, seed=seed + t,
            n_threads=n_threads, shared_rows=t == 1 or tfn)
        coef[t - 1] = replace_columns(coef[t - 1], nodes, W)
        n_iter = max(n_iter, it)
    return coef, n_iter


def _rows_below(tree, Y, parents):
    """Rows of ``Y`` with a label below one of ``parents`` (nodes of the level
    above the leaves; every row for a tree with one cluster level)."""
    if tree.n_levels <= 2:
        return None
    below = sp.csc_matrix(tree.transform(Y, tree.n_levels - 2))[:, np.unique(parents)]
    return np.flatnonzero(np.asarray(below.sum(axis=1)).ravel() > 0)


def _take_rows(X, Y, weights, rows):
    """``X``, ``Y`` and ``weights`` restricted to ``rows`` (None: all)."""
    if rows is None:
        return X, Y, weights
    return X[rows], sp.csr_matrix(Y)[rows], None if weights is None else weights[rows]


def place_labels(routes, Y_new, leaf_sizes):
    """Leaf cluster of each new label: the one with the largest summed routing
    score over the label's rows (``Y_new``: rows x new labels); a label whose
    rows reach no leaf (or that has no rows) joins the smallest leaf."""
    S = sp.csr_matrix(sp.csc_matrix(Y_new).T @ routes)
    leaves = np.full(Y_new.shape[1], int(np.argmin(leaf_sizes)), dtype=np.int64)
    has = np.diff(S.indptr) > 0
    if np.any(has):
        best = np.asarray(S[np.flatnonzero(has)].argmax(axis=1)).ravel()
        leaves[has] = best
    return leaves


def new_label_vectors(X, Y_new):
    """PIFA vectors (CSR, unit rows) of the new labels on the rows that have
    one (``X``, ``Y_new``: those rows, the new labels' columns): what their
    leaves are grouped by."""
    from skxmr._embedding import _pifa

    if X.shape[0] == 0:
        return sp.csr_matrix((Y_new.shape[1], X.shape[1]), dtype=np.float32)
    return sp.csr_matrix(_pifa(X, sp.csr_matrix(binary_csc(Y_new), dtype=np.float64)))


def group_new_labels(parents, Z_new, max_leaf_size, rng):
    """New leaf clusters for the new labels: those placed under one parent
    (``parents``, a node of the level above the leaves per new label) are cut
    by balanced 2-means on their PIFA vectors (``Z_new``) into groups of at
    most ``max_leaf_size``. Returns the parent of each new leaf and the new
    leaf of each new label."""
    leaf_parents = []
    label_leaves = np.empty(parents.size, dtype=np.int64)
    for parent in np.unique(parents):
        members = np.flatnonzero(parents == parent)
        vectors = Z_new[members]
        vectors = vectors[:, np.unique(vectors.indices)]
        if members.size > max_leaf_size:
            groups = _pieces(vectors, np.arange(members.size), max_leaf_size, rng)
        else:
            groups = [np.arange(members.size)]
        for group in groups:
            label_leaves[members[group]] = len(leaf_parents)
            leaf_parents.append(int(parent))
    return np.asarray(leaf_parents, dtype=np.int64), label_leaves


def train_label_columns(model, tree, X, Y, label_nodes, routes, weights, seed,
                        n_threads, shared_rows=None):
    """Weights (CSC, one column per label node of ``label_nodes``, sorted) of the
    labels at those nodes of ``tree``, each trained on its leaf's matching set
    among the rows ``X``: rows with a label of the leaf (``Y``: rows x labels of
    ``tree``) or routed to the leaf (``routes``, rows x leaf clusters; not read,
    and may be None, under teacher forcing). Returns the weights and the most
    solver iterations of a node.

    ``shared_rows`` (None: when it holds, i.e. for "tfn" or a tree without
    cluster levels): let the solver build the rows of a leaf once for all its
    new labels (they train on the same rows); the weights are the same either
    way."""
    label_nodes = np.asarray(label_nodes, dtype=np.int64)
    parents = tree.parents(tree.n_levels)[label_nodes]
    clusters, local, counts = np.unique(parents, return_inverse=True,
                                        return_counts=True)
    tfn = model.negative_sampling == "tfn"
    if tree.n_levels == 1:
        matching = sp.csc_matrix(np.ones((X.shape[0], 1), dtype=np.int8))
    else:
        taught = sp.csc_matrix(tree.transform(Y, -1))[:, clusters]
        routed = None if tfn else sp.csc_matrix(routes)[:, clusters]
        matching = _matching(model, taught, routed)
    if shared_rows is None:
        shared_rows = tfn or tree.n_levels == 1
    Y_level = sp.csc_matrix(Y)[:, tree.label_perm[label_nodes]]
    return train_level_nodes(
        solver_rows(X), matching, Y_level, counts, local.astype(np.int64),
        model._solver_params(), weights=weights, seed=seed, n_threads=n_threads,
        shared_rows=shared_rows)


def _matching(model, taught, routed):
    """The matching sets the model's ``negative_sampling`` asks for: the rows
    with a label below the parent ("tfn"), the rows beam search routes to it
    ("man"), or both ("tfn+man")."""
    if model.negative_sampling == "tfn":
        return binary_csc(taught)
    if model.negative_sampling == "man":
        return binary_csc(routed)
    return binary_csc(taught + routed)


def replace_columns(W, columns, new):
    """``W`` (CSC) with its ``columns`` replaced by the columns of ``new``."""
    index = np.arange(W.shape[1])
    index[np.asarray(columns, dtype=np.int64)] = W.shape[1] + np.arange(new.shape[1])
    return _columns(sp.hstack([W, new], format="csc"), index)


def _columns(W, index):
    out = sp.csc_matrix(W, dtype=np.float32)[:, np.asarray(index, dtype=np.int64)]
    out = sp.csc_matrix(out, dtype=np.float32)
    out.sort_indices()
    return out


def default_max_leaf_size(model):
    """The indexer's ``max_leaf_size`` when it has one, else that of the default
    ``LabelIndexer`` (100) or the largest leaf of the tree, the larger."""
    size = getattr(model.indexer, "max_leaf_size", None)
    if model.indexer is None:
        from skxmr._indexer import LabelIndexer

        size = LabelIndexer().max_leaf_size
    largest = int(model.tree_.leaf_sizes().max()) if model.tree_.n_levels > 1 else 0
    return int(size) if size is not None else max(100, largest)


def _bisect(vectors, rng, n_iter=10):
    """Balanced 2-means (spherical) of the rows of ``vectors``: a boolean mask
    of the second half (sizes differ by at most one)."""
    n = vectors.shape[0]
    centers = vectors[rng.choice(n, 2, replace=False)]
    if sp.issparse(centers):
        centers = centers.toarray()
    second = np.zeros(n, dtype=bool)
    for _ in range(n_iter):
        gap = np.asarray(vectors @ (centers[1] - centers[0])).ravel()
        order = np.argsort(-gap, kind="stable")
        second = np.zeros(n, dtype=bool)
        second[order[: n // 2]] = True
        new = np.vstack([np.asarray(vectors[~second].sum(axis=0)),
                         np.asarray(vectors[second].sum(axis=0))])
        new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
        if np.allclose(new, centers):
            break
        centers = new
    return second


def _pieces(vectors, nodes, max_size, rng):
    """Split ``nodes`` (rows of ``vectors``) into groups of at most ``max_size``."""
    if nodes.size <= max_size:
        return [nodes]
    second = _bisect(vectors[nodes], rng)
    return (_pieces(vectors, nodes[~second], max_size, rng)
            + _pieces(vectors, nodes[second], max_size, rng))


def add_labels_to_tree(model, X, y, sample_weight=None, *, max_leaf_size=None,
                       refresh="none"):
    """Add the new labels of ``y`` to the fitted single-tree ``model`` (in place:
    run it on a scratch copy). Returns the number of new labels.

    ``X`` and ``y`` as ``fit`` takes them; see the module docstring.
    """
    n_threads = effective_n_threads(model.n_jobs)
    X = model._check_X(X, reset=False)
    targets, Y, n_new = model._targets.extended(y)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {Y.shape[0]}.")
    if n_new == 0:
        raise ValueError(
            "y holds no new label: every label of y is already in classes_. "
            "add_labels adds labels; refit the model to retrain the old ones.")
    if max_leaf_size is None:
        max_leaf_size = default_max_leaf_size(model)
    weights = check_sample_weight(sample_weight, X.shape[0])
    if np.any(weights == 0):
        keep = np.flatnonzero(weights)
        X, Y, weights = X[keep], Y[keep], weights[keep]
    weights = None if np.all(weights == 1) else weights
    X = sp.csr_matrix(X, dtype=X.dtype)
    tree = model.tree_
    n_old = tree.n_labels
    Y_new = sp.csr_matrix(Y[:, n_old:])
    empty = np.flatnonzero(np.diff(sp.csc_matrix(Y_new).indptr) == 0)
    if empty.size:
        warnings.warn(
            f"{empty.size} new label(s) have no row (e.g. "
            f"{targets.classes_[n_old + empty[0]]!r}): they are trained on "
            "negatives only.", UserWarning, stacklevel=3)
    carry = np.flatnonzero(np.diff(Y_new.indptr) > 0)
    if tree.n_levels > 1 and carry.size == X.shape[0]:
        warnings.warn(
            "every row of X has a new label: the new leaf clusters get no "
            "negatives and will outscore the old ones. Pass the rows of the new "
            "labels together with training rows of the old labels.",
            UserWarning, stacklevel=3)
    tfn = model.negative_sampling == "tfn"
    leaf_sizes = tree.leaf_sizes() if tree.n_levels > 1 else np.array([n_old])
    # Placement reads the routes of the rows with a new label only: beam search
    # runs on those rows alone (each row's beam is its own).
    routed = (route_to_leaves(model, X[carry], n_threads) if carry.size
              else sp.csr_matrix((0, leaf_sizes.size), dtype=np.float32))
    leaves = place_labels(routed, Y_new[carry], leaf_sizes)
    rng = check_random_state(model.random_state)
    seed = rng.randint(np.iinfo(np.int32).max)
    coef = list(model.coef_)
    n_iter = 0
    label_rows = None
    if tree.n_levels == 1:  # no cluster level: the new labels join the root
        grown, order = tree.with_labels(leaves)
        routes = None
    else:
        above = (np.zeros(leaf_sizes.size, dtype=np.int64) if tree.n_levels == 2
                 else tree.parents(tree.n_levels - 1))
        leaf_parents, label_leaves = group_new_labels(
            above[leaves], new_label_vectors(X[carry], Y_new[carry]),
            max_leaf_size, rng)
        grown, leaf_order, order = tree.with_new_leaves(leaf_parents, label_leaves)
        blank = sp.csc_matrix((coef[-2].shape[0], leaf_parents.size), dtype=np.float32)
        coef[-2] = _columns(sp.hstack([coef[-2], blank], format="csc"), leaf_order)
        new_leaves = np.flatnonzero(leaf_order >= leaf_sizes.size)
        # The new leaves' cluster models, on their parents' matching sets
        # ("path": their ancestors' too). Under teacher forcing those are the
        # rows with a label below the parents: the other rows change nothing
        # (the solver sees the same rows in the same order).
        rows = (_rows_below(grown, Y, leaf_parents) if tfn and refresh == "none"
                else None)
        Xc, Yc, wc = _take_rows(X, Y, weights, rows)
        coef, n_iter = refresh_ancestors(
            model, grown, coef, Xc, Yc, new_leaves, wc, seed + 1, n_threads,
            top=1 if refresh == "path" else grown.n_levels - 1)
        # "man" trains on the routes through the new leaves; under teacher
        # forcing a new label's matching set is the rows of the new labels of
        # its leaf, all of them rows with a new label.
        routes = None if tfn else route_to_leaves(model, X, n_threads, coef=coef,
                                                  tree=grown)
        label_rows = carry if tfn else None
    new_nodes = np.flatnonzero(order >= n_old)
    Xc, Yc, wc = _take_rows(X, Y, weights, label_rows)
    W_new, it = train_label_columns(model, grown, Xc, Yc, new_nodes, routes,
                                    wc, seed, n_threads)
    n_iter = max(n_iter, it)
    # W_new is in node order; hstack wants the new labels in id order.
    by_id = np.empty(new_nodes.size, dtype=np.int64)
    by_id[order[new_nodes] - n_old] = np.arange(new_nodes.size)
    last = _columns(sp.hstack([coef[-1], W_new[:, by_id]], format="csc"), order)
    coef = coef[:-1] + [last]
    model.coef_ = coef  # a new list: the cached searcher is rebuilt
    model.tree_ = grown
    model._targets = targets
    model.classes_ = targets.classes_
    model.n_iter_ = max(int(model.n_iter_), int(n_iter))
    model._searcher()
    return n_new
