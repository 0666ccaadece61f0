"""XR-Linear training: level training sets, matching sets, and ONE level loop.

``fit_levels`` walks the tree top-down: for each level it takes the level's
targets (``Y_t``), the matching set of every row (teacher forcing, matcher-aware
negatives or both) and hands them to a *level trainer*, which returns the
level's weights. Every way of training calls that one loop:

- locally (OpenMP threads): :func:`local_level_trainer`;
- as joblib units (e.g. on a Dask cluster), teacher forcing: the subtree below
  each node of a split level is a unit that runs ``fit_levels`` on its own rows
  (``_train_subtree``), and the top levels' nodes are cut into node-range units;
- as joblib units, matcher-aware: ``fit_levels`` here, with a level trainer that
  cuts each level into node-range units (``_unit_level_trainer``).

Every node draws the random stream of its index in its level and the level's
seed (``node_offset``), so the weights do not depend on how the work was cut:
the model is identical, bit for bit, to the local fit with the same seeds.
Inputs here are trusted: ``X`` is a checked CSR matrix, ``Y`` a CSR 0/1
indicator, the parameters validated by the estimator.
"""

import numpy as np
import scipy.sparse as sp

from skxmr._beam import BeamSearcher
from skxmr._linear_solver import _train_binary_nodes, solver_rows
from skxmr._progress import progress
from skxmr.utils import _units

__all__ = ["train_levels", "fit_levels", "level_training_sets", "train_level_nodes",
           "matching_sets"]

# Training entries (node, row) per solver call: bounds the per-entry arrays.
_BATCH_ENTRIES = 1_000_000


# ------------------------------------------------------------- training sets
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
    matched = binary_csc(matching)[:, parents]
    positive = binary_csc(Y_level)
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


def binary_csc(M):
    """A canonical CSC 0/1 (int8) copy of the nonzero pattern of ``M``."""
    M = sp.csc_matrix(M, copy=True)
    M.sum_duplicates()
    M.eliminate_zeros()
    return sp.csc_matrix((np.ones(M.nnz, dtype=np.int8), M.indices, M.indptr),
                         shape=M.shape)


def _balanced_runs(sizes, rows_per_node, n_threads, runs_per_thread=8,
                   lockstep_nodes=16):
    """Boundaries of runs of consecutive nodes for the solver's ``groups``.

    Group ``g`` has ``sizes[g]`` nodes of ``rows_per_node[g]`` training rows each
    (siblings share their parent's rows). Each group is cut into runs of about
    ``total work / (runs_per_thread * n_threads)`` rows, so that the threads share
    the work evenly even when parents differ a lot in size; but a run keeps at
    least ``lockstep_nodes`` nodes (or the group's share of one thread, if less),
    since the solver trains the nodes of a run together, faster the more there
    are (lockstep). The weights do not depend on the cut.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    work = sizes * np.maximum(np.asarray(rows_per_node, dtype=np.int64), 1)
    target = max(1, -(-int(work.sum()) // (runs_per_thread * n_threads)))
    bounds = [0]
    for size, rows in zip(sizes.tolist(), np.maximum(rows_per_node, 1).tolist()):
        start = bounds[-1]
        longest = max(1, target // rows, min(lockstep_nodes, -(-size // n_threads)))
        bounds.extend(range(start + longest, start + size, longest))
        bounds.append(start + size)
    return np.asarray(bounds, dtype=np.int64)


def _indicator(labels, n_cols):
    """CSR 0/1 matrix with ones at ``labels`` (n, k; -1 = none)."""
    keep = labels >= 0
    rows = np.repeat(np.arange(labels.shape[0]), labels.shape[1])[keep.ravel()]
    return sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, labels[keep])),
                         shape=(labels.shape[0], n_cols))


# ---------------------------------------------------------------- one level
def train_level_nodes(X, matching, Y_level, counts, parents, params, *, weights=None,
                      seed=0, n_threads=1, node_offset=0, shared_rows=True):
    """Weights of every node of one tree level (CSC, one column per node), and the
    most solver iterations one of its nodes ran.

    ``counts`` holds the number of children of each parent (a column of
    ``matching``) and ``parents`` the parent of each node (a column of
    ``Y_level``); ``params`` the solver settings (``loss``, ``C``, ``Cp``, ``Cn``,
    ``bias``, ``tol``, ``max_iter``, ``threshold``). Node ``j`` draws the random
    stream of node ``node_offset + j`` of the level, so that the nodes of a level
    may be trained in any pieces (batches here, units of a joblib backend) and
    give the same weights. ``shared_rows``: siblings train on the same rows
    (teacher forcing, or the top level), so the solver builds that row set once
    per parent (the result does not depend on it).

    Parents are taken in consecutive batches of about ``_BATCH_ENTRIES`` training
    entries (node, row), so the per-entry arrays stay bounded on big levels.
    """
    X = solver_rows(X)
    counts = np.asarray(counts, dtype=np.int64)
    child_start = np.concatenate([[0], np.cumsum(counts)])
    matching = binary_csc(matching)
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
        W, node_iter = _train_binary_nodes(
            X, node_ptr, rows, signs, cost, groups=groups, loss=params["loss"],
            bias=params["bias"], tol=params["tol"], max_iter=params["max_iter"],
            threshold=params["threshold"], random_state=seed, n_threads=n_threads,
            node_offset=int(node_offset + c0), return_n_iter=True,
        )
        blocks.append(W)
        n_iter = max(n_iter, int(node_iter.max(initial=0)))
        del node_ptr, rows, signs, cost
        p0 = p1
    return _hstack(blocks), n_iter


def _hstack(blocks):
    if len(blocks) == 1:
        return blocks[0]
    W = sp.hstack(blocks, format="csc")
    W.has_sorted_indices = True
    return W


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
    upper = tree.truncate(level - 1)
    searcher = BeamSearcher(coef[: level - 1], upper, bias=bias)
    beam, k, code, power = searcher._params(beam_size, beam_size, post_processor)
    found, _ = searcher._search(X, beam, k, code, power, n_threads)
    matched = _indicator(found, upper.n_labels)
    if negative_sampling == "man":
        return matched
    union = (matched + Y_prev).tocsr()
    union.data[:] = 1
    return union


def level_targets(Y, tree, level):
    """``Y_t``: rows x nodes of ``level`` (the labels in tree node order at the
    last level)."""
    if level < tree.n_levels:
        return tree.transform(Y, level)
    return sp.csr_matrix(Y)[:, tree.label_perm]


def _top_matching(n_rows):
    """The matching set of the top level: every row reaches the root."""
    return sp.csr_matrix(np.ones((n_rows, 1), dtype=np.float32))


# ------------------------------------------------------------ the level loop
def fit_levels(X, Y, tree, train_level, *, negative_sampling="tfn", beam_size=10,
               post_processor="l3-hinge", bias=1.0, n_threads=1, verbose=0):
    """Train the levels of ``tree`` top-down; returns the weights (one CSC matrix
    per level) and the most solver iterations of a node.

    ``train_level(level, matching, Y_level)`` trains the nodes of ``level`` on
    the rows' matching sets (rows x nodes of ``level - 1``) and their targets
    (rows x nodes of ``level``) and returns ``(W, n_iter)``; the rest of the
    arguments say how the matching sets are found (:func:`matching_sets`).
    """
    Y_prev = _top_matching(X.shape[0])
    coef = []
    n_iter = 0
    for level in progress(range(1, tree.n_levels + 1), desc="XR-Linear levels",
                          unit="level", verbose=verbose):
        Y_level = level_targets(Y, tree, level)
        matching = matching_sets(X, Y_prev, level, coef, tree,
                                 negative_sampling=negative_sampling,
                                 beam_size=beam_size, post_processor=post_processor,
                                 bias=bias, n_threads=n_threads)
        W, it = train_level(level, matching, Y_level)
        coef.append(W)
        n_iter = max(n_iter, it)
        Y_prev = Y_level
    return coef, n_iter


def local_level_trainer(X, tree, seeds, weights, params, *, negative_sampling,
                        n_threads, offsets=None):
    """The level trainer of a local fit (OpenMP threads): level ``t`` with seed
    ``seeds[t - 1]``, its node ``j`` the stream of node ``offsets[t - 1] + j``."""
    X = solver_rows(X)

    def train_level(level, matching, Y_level):
        return train_level_nodes(
            X, matching, Y_level, tree.children_counts(level - 1), tree.parents(level),
            params, weights=weights, seed=seeds[level - 1], n_threads=n_threads,
            node_offset=0 if offsets is None else offsets[level - 1],
            shared_rows=level == 1 or negative_sampling == "tfn")

    return train_level


def train_levels(X, Y, tree, seeds, weights, params, *, negative_sampling, beam_size,
                 post_processor, n_jobs, n_threads, verbose=0):
    """Weights of every level of ``tree`` and the most solver iterations of a
    node: locally, or as joblib units when a joblib backend is active (see
    ``skxmr.utils._units``). Same weights either way.

    ``X`` is CSR, ``Y`` the CSR label indicator (columns: labels), ``seeds[t - 1]``
    the seed of level ``t``, ``weights`` the row weights or None.
    """
    search = dict(negative_sampling=negative_sampling, beam_size=beam_size,
                  post_processor=post_processor, bias=params["bias"],
                  n_threads=n_threads, verbose=verbose)
    if not _units.units_active():
        trainer = local_level_trainer(X, tree, seeds, weights, params,
                                      negative_sampling=negative_sampling,
                                      n_threads=n_threads)
        return fit_levels(X, Y, tree, trainer, **search)
    if negative_sampling == "tfn" and tree.n_levels >= 2:
        return _train_tfn_units(X, Y, tree, seeds, weights, params, n_jobs)
    trainer = _unit_level_trainer(X, tree, seeds, weights, params,
                                  negative_sampling=negative_sampling, n_jobs=n_jobs)
    return fit_levels(X, Y, tree, trainer, **search)


# ----------------------------------------------------------- joblib units
def _train_subtree(X, Y, tree, seeds, offsets, weights, params, n_jobs):
    """Unit: train every level of ``tree`` (teacher forcing) on rows ``X`` and
    label indicator ``Y`` (columns in the tree's label node order). Level ``t`` of
    the unit uses seed ``seeds[t - 1]``, its node ``j`` the stream of node
    ``offsets[t - 1] + j``. Returns the weight blocks, one per level, and the most
    solver iterations of a node."""
    from skxmr.utils import effective_n_threads

    n_threads = effective_n_threads(n_jobs)
    trainer = local_level_trainer(X, tree, seeds, weights, params,
                                  negative_sampling="tfn", n_threads=n_threads,
                                  offsets=offsets)
    return fit_levels(X, Y, tree, trainer, n_threads=n_threads)


def _train_nodes_unit(X, matching, Y_level, counts, parents, seed, offset, weights,
                      params, shared_rows, n_jobs):
    """Unit: a run of consecutive nodes of one level."""
    from skxmr.utils import effective_n_threads

    return train_level_nodes(
        X, matching, Y_level, counts, parents, params, weights=weights, seed=seed,
        n_threads=effective_n_threads(n_jobs), node_offset=offset,
        shared_rows=shared_rows)


def _unit_level_trainer(X, tree, seeds, weights, params, *, negative_sampling,
                        n_jobs):
    """A level trainer that cuts each level into node-range units (the matching
    sets are found here, by beam search over every row, level by level)."""
    unit_jobs = _units.unit_n_jobs(n_jobs)
    n_pieces = _units.UNITS_PER_SLOT * _units.slots()

    def train_level(level, matching, Y_level):
        jobs, costs, _ = _node_range_units(
            X, binary_csc(matching), Y_level, tree.children_counts(level - 1),
            seeds[level - 1], weights, params,
            level == 1 or negative_sampling == "tfn", unit_jobs, n_pieces)
        results = _units.start_units(jobs, costs)()
        return _hstack([W for W, _ in results]), max(it for _, it in results)

    return train_level


def _split_level_for(X, Y, tree, n_slots):
    """The split level of a teacher-forcing fit: the first level (at most
    ``T - 1``) with at least ``_units.UNITS_PER_SLOT * n_slots`` nodes whose largest
    subtree unit has at most ``1 / n_slots`` of the estimated work of all subtree
    units (with long-tailed labels a head cluster can hold a large share, which
    would cap the speed-up); else ``T - 1``. A unit's work is estimated as the
    nonzeros of its rows times the nodes of its subtree."""
    last = tree.n_levels - 1
    weight = np.diff(X.indptr).astype(np.float64) + 1  # nonzeros (+1) per row
    for t in range(1, last + 1):
        n_nodes = int(tree.level_sizes[t - 1])
        if n_nodes < _units.UNITS_PER_SLOT * n_slots and t < last:
            continue
        if t == last:
            return t
        Y_t = sp.csc_matrix(tree.transform(Y, t))
        Y_t.data[:] = 1
        rows_weight = np.asarray(Y_t.T @ weight).ravel()
        below = np.zeros(n_nodes)
        owner = np.arange(n_nodes)
        for level in range(t + 1, tree.n_levels + 1):
            owner = owner[tree.parents(level)]
            below += np.bincount(owner, minlength=n_nodes)
        cost = rows_weight * below
        if cost.max() * n_slots <= cost.sum():
            return t
    return last


def _train_tfn_units(X, Y, tree, seeds, weights, params, n_jobs):
    """Teacher forcing as units: one subtree unit per node of the split level
    ``s`` (it trains levels ``s + 1 ..`` of its subtree), and the nodes of the top
    levels ``1 .. s`` in node-range units; all submitted at once."""
    unit_jobs = _units.unit_n_jobs(n_jobs)
    s = _split_level_for(X, Y, tree, _units.slots())
    units, costs = tfn_units(X, Y, tree, s, seeds, weights, params, unit_jobs)
    jobs = [(_train_subtree, unit) for unit in units]
    # The top levels 1..s: each level's nodes in ranges of about one subtree's
    # work (the top level needs every row: those units share one copy of X).
    target = max(1.0, sum(costs) / len(costs))
    level_jobs = []
    Y_prev = _top_matching(X.shape[0])
    for t in range(1, s + 1):
        matching = sp.csc_matrix(Y_prev)
        Y_level = level_targets(Y, tree, t)
        n_pieces = int(np.ceil(_level_cost(X, matching, tree.children_counts(t - 1))
                               / target))
        t_jobs, t_costs, _ = _node_range_units(
            X, matching, sp.csc_matrix(Y_level), tree.children_counts(t - 1),
            seeds[t - 1], weights, params, True, unit_jobs, max(1, n_pieces))
        level_jobs.append(len(t_jobs))
        jobs += t_jobs
        costs += t_costs
        Y_prev = Y_level
    results = _units.start_units(jobs, costs)()
    subtrees, pieces = results[:len(units)], results[len(units):]
    coef = []
    for n_pieces in level_jobs:
        coef.append(_hstack([W for W, _ in pieces[:n_pieces]]))
        pieces = pieces[n_pieces:]
    for level_index in range(tree.n_levels - s):
        coef.append(_hstack([blocks_u[level_index] for blocks_u, _ in subtrees]))
    n_iter = max(it for _, it in results)
    return coef, n_iter


def tfn_units(X, Y, tree, s, seeds, weights, params, unit_jobs):
    """The subtree units of a teacher-forcing fit split below level ``s``: one
    per node ``u`` of level ``s``, the arguments of ``_train_subtree`` (the rows
    of ``X`` and ``Y`` positive for some label below ``u``, renumbered; the
    subtree; the seeds and node offsets of its levels), and a cost estimate of
    each (nonzeros of its rows times its nodes)."""
    Y_csc = sp.csc_matrix(tree.transform(Y, s))
    Y_csc.sum_duplicates()
    Y_nodes = sp.csr_matrix(Y)[:, tree.label_perm].tocsc()  # labels in node order
    units, costs = [], []
    row_nnz = np.diff(X.indptr)
    for u in range(tree.level_sizes[s - 1]):
        rows = Y_csc.indices[Y_csc.indptr[u]:Y_csc.indptr[u + 1]]
        subtree, ranges = tree.subtree(s, u)
        a, b = ranges[-1]
        units.append((X[rows], Y_nodes[:, a:b].tocsr()[rows], subtree,
                      seeds[s:], [r[0] for r in ranges],
                      None if weights is None else weights[rows], params, unit_jobs))
        costs.append(float(row_nnz[rows].sum() + rows.size)
                     * sum(hi - lo for lo, hi in ranges))
    return units, costs


def _parent_costs(X, matching):
    """Nonzeros (plus rows) of the matching set of each parent (CSC column)."""
    entry = np.diff(X.indptr)[matching.indices].astype(np.float64) + 1
    cum = np.concatenate([[0.0], np.cumsum(entry)])
    return cum[matching.indptr[1:]] - cum[matching.indptr[:-1]]


def _level_cost(X, matching, counts):
    return float(np.sum(_parent_costs(X, matching) * counts))


def _node_range_units(X, matching, Y_level, counts, seed, weights, params, shared_rows,
                      unit_jobs, n_pieces):
    """Units of one level: its nodes cut into at most ``n_pieces`` runs of
    consecutive nodes of about equal work (a parent's children may be cut), each
    with the rows of its parents' matching sets and of its nodes' positives.

    ``matching`` (rows x parents) and ``Y_level`` (rows x nodes) are CSC.
    Returns the jobs (``_train_nodes_unit`` and its arguments), their costs and
    the node bounds. A unit that needs every row gets ``X`` itself, so that the
    units of the top level share one copy.
    """
    matching = sp.csc_matrix(matching)
    matching.sum_duplicates()
    Y_level = sp.csc_matrix(Y_level)
    counts = np.asarray(counts, dtype=np.int64)
    n_nodes = int(counts.sum())
    child_start = np.concatenate([[0], np.cumsum(counts)])
    parents = np.repeat(np.arange(counts.size), counts)
    node_cost = np.maximum(_parent_costs(X, matching)[parents], 1.0)
    cum = np.cumsum(node_cost)
    n_pieces = max(1, min(int(n_pieces), n_nodes))
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n_pieces) / n_pieces,
                           side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [n_nodes]]))
    jobs, costs = [], []
    for c0, c1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        p0, p1 = int(parents[c0]), int(parents[c1 - 1]) + 1
        counts_u = counts[p0:p1].copy()
        counts_u[0] -= c0 - child_start[p0]
        counts_u[-1] -= child_start[p1] - c1
        M = matching[:, p0:p1]
        P = Y_level[:, c0:c1]
        rows = np.union1d(M.indices, P.indices)
        if rows.size == X.shape[0]:
            X_u, M_u, P_u, w_u = X, M.tocsr(), P.tocsr(), weights
        else:
            X_u, M_u, P_u = X[rows], M.tocsr()[rows], P.tocsr()[rows]
            w_u = None if weights is None else weights[rows]
        jobs.append((_train_nodes_unit, (X_u, M_u, P_u, counts_u, parents[c0:c1] - p0,
                                         seed, c0, w_u, params, shared_rows,
                                         unit_jobs)))
        costs.append(float(cum[c1 - 1] - (cum[c0 - 1] if c0 else 0.0)))
    return jobs, costs, bounds
