"""Balanced k-means levels -> a LabelTree: the Python face of ``_cython/_kmeans``.

``tree_fanouts`` gives the fan-out of each level, ``split_levels`` splits the
nodes of a level (and the levels below it) with the k-means kernel, and
``build_label_tree`` builds the whole tree, locally or, when a joblib backend
is active, with the subtrees below the top levels as units
(``build_label_tree_units``). The tree does not depend on how it was built.
"""

import math

import numpy as np
import scipy.sparse as sp

from skxmr._cython._kmeans import _split_level
from skxmr._label_tree import LabelTree
from skxmr._progress import progress
from skxmr.utils import effective_n_threads
from skxmr.utils import _units


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
                     n_threads=1, n_jobs=None, verbose=0):
    """Recursive balanced k-means of the rows of ``Z`` with the given fan-outs.

    Every node of a level is split into ``min(fanout, n_labels_in_node)`` children
    of sizes differing by at most one. Returns a :class:`LabelTree`. ``verbose``
    shows a progress bar of the levels split (of the local build).

    When a joblib backend other than the default is active (e.g. inside
    ``joblib.parallel_config(backend="dask")``), the subtrees below the top
    levels are built as joblib units (:func:`build_label_tree_units`); the tree is
    the same. ``n_jobs`` is then each unit's ``n_jobs`` (see ``skxmr.utils._units``).
    """
    Z = _label_vectors_csr(Z)
    n_labels = Z.shape[0]
    if _units.units_active() and len(fanouts) > 1:
        counts, order = build_label_tree_units(
            Z, fanouts, spherical=spherical, max_iter=max_iter, tol=tol, seed=seed,
            n_threads=n_threads, n_jobs=n_jobs)
    else:
        order = np.arange(n_labels, dtype=np.intp)
        node_ptr = np.array([0, n_labels], dtype=np.intp)
        counts, order, node_ptr = split_levels(
            Z, order, node_ptr, fanouts, first_level=0, spherical=spherical,
            max_iter=max_iter, tol=tol, seed=seed, n_threads=n_threads,
            verbose=verbose)
        counts.append(np.diff(node_ptr))  # labels per leaf
    return _tree_from_counts(counts, order)


def _label_vectors_csr(Z):
    """``Z`` as CSR float32 with sorted indices (the k-means kernel's input)."""
    Z = sp.csr_matrix(Z, dtype=np.float32)
    if not Z.has_sorted_indices:
        Z = Z.sorted_indices()
    return Z


def _tree_from_counts(counts, order):
    """The LabelTree of the children counts of each level (the last entry: labels
    per leaf) and the labels in leaf order."""
    level_sizes = [1] + [int(c.sum()) for c in counts]
    child_ptr = np.concatenate([[1], 1 + np.cumsum(np.concatenate(counts))])
    level_ptr = np.concatenate([[0], np.cumsum(level_sizes)])
    return LabelTree(level_ptr, child_ptr, order)


def split_levels(Z, order, node_ptr, fanouts, *, first_level, spherical, max_iter,
                 tol, seed, n_threads, node_offsets=None, verbose=0):
    """Split the nodes of ``node_ptr`` (over the rows ``order`` of CSR ``Z``) level
    by level with ``fanouts``; the first split is tree level ``first_level``.

    ``node_offsets[i]``: global index of the first node split at level
    ``first_level + i`` (0 by default), so that a piece of a level draws the
    random streams the whole level would. Returns the children counts of each
    level, the rows regrouped leaf by leaf and the leaves' ``node_ptr``.
    ``verbose``: a progress bar of the levels.
    """
    data = np.ascontiguousarray(Z.data, dtype=np.float32)
    indices = np.ascontiguousarray(Z.indices, dtype=np.int32)
    indptr = np.ascontiguousarray(Z.indptr, dtype=np.intp)
    order = np.ascontiguousarray(order, dtype=np.intp)
    node_ptr = np.ascontiguousarray(node_ptr, dtype=np.intp)
    counts = []
    for i, fanout in enumerate(progress(fanouts, desc="label tree levels",
                                        unit="level", verbose=verbose)):
        level = first_level + i
        n_children = np.minimum(fanout, np.diff(node_ptr)).astype(np.intp)
        new_order = np.empty_like(order)
        node_ptr = _split_level(
            data, indices, indptr, Z.shape[1], order, node_ptr, n_children, new_order,
            max_iter, tol, spherical, (seed + level * 1_000_003) % 2**63, n_threads,
            0 if node_offsets is None else int(node_offsets[i]),
        ).astype(np.intp)
        order = new_order
        counts.append(n_children)
    return counts, order, node_ptr


# ------------------------------------------- the same build, as joblib units
def _level_node_sizes(n_labels, fanouts):
    """Sizes of the nodes of every level (the balanced split is deterministic:
    child ``c`` of a node of ``n`` labels split ``f`` ways gets
    ``n // f + (c < n % f)`` labels)."""
    sizes = [np.array([n_labels], dtype=np.int64)]
    for fanout in fanouts:
        parent = sizes[-1]
        f = np.minimum(fanout, parent)
        child = np.arange(int(f.sum())) - np.repeat(np.cumsum(f) - f, f)
        n = np.repeat(parent, f)
        ff = np.repeat(f, f)
        sizes.append(n // ff + (child < n % ff))
    return sizes


def _build_subtree(Z, fanouts, first_level, offsets, spherical, max_iter, tol, seed,
                   n_jobs):
    """Unit: split the labels ``Z`` (rows) with ``fanouts`` from ``first_level``
    on; returns the children counts of each level and the leaf order (local
    rows) with the labels per leaf last."""
    counts, order, node_ptr = split_levels(
        Z, np.arange(Z.shape[0], dtype=np.intp), np.array([0, Z.shape[0]], np.intp),
        fanouts, first_level=first_level, spherical=spherical, max_iter=max_iter,
        tol=tol, seed=seed, n_threads=effective_n_threads(n_jobs),
        node_offsets=offsets)
    counts.append(np.diff(node_ptr))
    return counts, order


def build_label_tree_units(Z, fanouts, *, spherical, max_iter, tol, seed, n_threads,
                           n_jobs=None):
    """``build_label_tree`` with the subtrees below a split level as joblib units.

    Returns the children counts of every level (the labels per leaf last) and
    the labels in leaf order, as the local build gives them. ``n_threads``:
    threads of the top levels (here); ``n_jobs``: the indexer's ``n_jobs``, for
    the units.
    """
    n_labels = Z.shape[0]
    sizes = _level_node_sizes(n_labels, fanouts)
    slots = _units.slots()
    s = len(fanouts) - 1
    for t in range(1, len(fanouts)):
        if sizes[t].size >= _units.UNITS_PER_SLOT * slots:
            s = t
            break
    # Top levels here (few, large nodes: the kernel's threads work inside them).
    counts, order, node_ptr = split_levels(
        Z, np.arange(n_labels, dtype=np.intp), np.array([0, n_labels], np.intp),
        fanouts[:s], first_level=0, spherical=spherical, max_iter=max_iter, tol=tol,
        seed=seed, n_threads=n_threads)
    # Node offsets of each unit at each lower level: nodes of the units before it.
    n_units = node_ptr.size - 1
    unit_nodes = [np.ones(n_units, dtype=np.int64)]
    for t in range(s, len(fanouts) - 1):
        f = np.minimum(fanouts[t], sizes[t])
        owner = np.repeat(np.arange(n_units), unit_nodes[-1])
        unit_nodes.append(np.bincount(owner, weights=f, minlength=n_units)
                          .astype(np.int64))
    offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in unit_nodes]
    unit_jobs = _units.unit_n_jobs(n_jobs)
    units, costs = [], []
    for u in range(n_units):
        labels = order[node_ptr[u]:node_ptr[u + 1]]
        Z_u = Z[labels]
        units.append((Z_u, list(fanouts[s:]), s, [int(o[u]) for o in offsets],
                      spherical, max_iter, tol, seed, unit_jobs))
        costs.append(float(Z_u.nnz + labels.size))
    results = _units.start_units([(_build_subtree, unit) for unit in units], costs)()
    n_levels_below = len(fanouts) - s + 1
    for level_index in range(n_levels_below):
        counts.append(np.concatenate([res[0][level_index] for res in results]))
    order = np.concatenate([order[node_ptr[u]:node_ptr[u + 1]][res[1]]
                            for u, res in enumerate(results)])
    return counts, order
