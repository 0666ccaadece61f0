"""Training cut into independent units, run through joblib (e.g. on a Dask cluster).

``XRLinearClassifier.fit`` and ``LabelIndexer.fit`` take this path when a joblib
backend other than the default (``"loky"``) or ``"sequential"`` is active, for
instance inside ``joblib.parallel_config(backend="dask")`` with a
``dask.distributed.Client``; otherwise nothing here runs and the fit stays one
process with OpenMP threads.

Units (see ``doc/scaling_out.rst``):

- XR-Linear, ``negative_sampling="tfn"``: the subtree below each node ``u`` of a
  split level ``s`` trains on its own: every node of it trains on rows that are
  positive for some label below ``u``. A unit gets only those rows of ``X`` (and
  of ``y``), renumbered, and trains levels ``s + 1 .. n_levels`` of its subtree.
  The nodes of the top levels ``1 .. s`` are cut into runs of consecutive nodes
  (node-range units) with the rows of their parents; the top level's units all
  need every row and share one copy of ``X``. All units are submitted at once.
- XR-Linear, ``"man"`` / ``"tfn+man"``: the matching sets of a level come from
  beam search over all rows with the levels above, so the calling process
  computes them level by level, and each level's nodes are cut into node-range
  units that get the rows their parents' matching sets (and positives) touch.
- LabelIndexer: the calling process splits the top levels; the subtree of each
  node of the split level is a unit that gets the label vectors of its labels.

Every node keeps the random stream it has in a local fit (``node_offset``: the
node's index in its level, and the level's seed), so the model is identical,
bit for bit, to the local fit with the same ``random_state``.

With joblib's dask backend the units are submitted to the backend's client as
futures, each unit's arrays scattered once to one worker (``_DaskUnits``: joblib's
own dask backend waits forever when a worker dies); with other backends (e.g.
``"threading"``) they go through ``joblib.Parallel``. Nothing here imports dask
unless its backend is active.
"""

import joblib
import numpy as np
import scipy.sparse as sp

from skxmr._label_tree import LabelTree
from skxmr.utils import effective_n_threads

__all__ = ["units_active", "train_levels_units", "build_label_tree_units"]

# Test seam: when set (in a worker process), called at the start of every unit.
_unit_hook = None

# Units per joblib worker slot (more, smaller units balance the load better).
_UNITS_PER_SLOT = 4


def _local_backend_classes():
    backends = joblib.parallel.BACKENDS
    return tuple(backends[name] for name in ("loky", "sequential") if name in backends)


def units_active():
    """Whether training should be cut into joblib units: a joblib backend other
    than the default one (``"loky"``) or ``"sequential"`` is active."""
    backend, _ = joblib.parallel.get_active_backend()
    return not isinstance(backend, _local_backend_classes())


def _slots():
    """Units the active joblib backend runs at once (at least 1)."""
    backend, n_jobs = joblib.parallel.get_active_backend()
    if not isinstance(n_jobs, int) or n_jobs == 0:
        n_jobs = -1
    try:
        return max(1, int(backend.effective_n_jobs(n_jobs)))
    except Exception:  # pragma: no cover - a backend without workers yet
        return 1


def _unit_n_jobs(n_jobs):
    """OpenMP threads of one unit: ``n_jobs`` when given (resolved where the unit
    runs); None: the worker's own default (dask's nanny sets OMP_NUM_THREADS=1 in
    its workers, so one thread per worker thread), or, for a thread-based
    backend, this machine's threads shared between the concurrent units."""
    if n_jobs is not None:
        return n_jobs
    backend, _ = joblib.parallel.get_active_backend()
    if getattr(backend, "uses_threads", False):
        return max(1, effective_n_threads(None) // _slots())
    return None


def _call_unit(function, index, *args):
    """Run one unit; the index comes back with the result (results arrive in
    completion order)."""
    if _unit_hook is not None:
        _unit_hook()
    return index, function(*args)


def _start_units(jobs, costs):
    """Submit every unit ``(function, args)`` of ``jobs`` (largest cost first),
    all at once; returns a callable that waits and gives the results in order.

    With joblib's dask backend the units go to the backend's client as futures
    (see ``_DaskUnits``); with any other backend through ``joblib.Parallel``.
    An error raised by a unit itself is raised as is; no partial result is ever
    returned.
    """
    order = np.argsort(-np.asarray(costs, dtype=np.float64), kind="stable").tolist()
    if len(jobs) == 0:
        return lambda: []
    backend, _ = joblib.parallel.get_active_backend()
    client = getattr(backend, "client", None)
    if client is not None and type(backend).__name__ == "DaskDistributedBackend":
        return _DaskUnits(client, jobs, order).collect
    results = joblib.Parallel(return_as="generator_unordered", pre_dispatch="all",
                              batch_size=1)(
        joblib.delayed(_call_unit)(jobs[i][0], i, *jobs[i][1]) for i in order)

    def collect():
        out = [None] * len(jobs)
        for index, value in results:
            out[index] = value
        return out

    return collect


class _DaskUnits:
    """Units as futures of a ``dask.distributed`` client.

    joblib's dask backend never completes a job whose worker died (the task
    ends in error without calling joblib back), so ``Parallel`` would wait
    forever; the units are therefore submitted to the backend's own client.
    Each unit's arrays are scattered once, to one worker (the task then runs
    where its data is). A worker that dies while running a unit makes dask run
    the task again elsewhere (``distributed.scheduler.allowed-failures``); if
    the unit's scattered data died with it, or the task failed too often, the
    unit is submitted again, with its data scattered anew, up to
    ``_UNIT_RETRIES`` times, after which a ``RuntimeError`` says so.
    """

    def __init__(self, client, jobs, order):
        self.client = client
        self.jobs = jobs
        self._scattered = {}  # id(array) -> future: an array shared by units goes once
        self.futures = self._submit(order)

    def _submit(self, indices):
        futures = {}
        for i in indices:
            for attempt in range(_UNIT_RETRIES + 1):
                try:
                    futures[self._submit_one(i)] = i
                    break
                except Exception as exc:  # e.g. scattering to a dying worker
                    if not _worker_lost(exc):
                        raise
                    if attempt == _UNIT_RETRIES:
                        self._give_up(1, attempt + 1, exc)
                    self._scattered.clear()
                    self.client.wait_for_workers(1, timeout=60)
        return futures

    def _submit_one(self, i):
        function, args = self.jobs[i]
        args = list(args)
        big = [j for j, a in enumerate(args) if sp.issparse(a)
               or (isinstance(a, np.ndarray) and a.nbytes > 100_000)]
        new = [j for j in big if id(args[j]) not in self._scattered]
        if new:
            scattered = self.client.scatter([args[j] for j in new], hash=False)
            for j, future in zip(new, scattered):
                self._scattered[id(args[j])] = future
        for j in big:
            args[j] = self._scattered[id(args[j])]
        return self.client.submit(_call_unit, function, i, *args, pure=False)

    def _give_up(self, n_lost, failures, error):
        raise RuntimeError(
            f"{n_lost} of {len(self.jobs)} training units failed because a worker "
            f"died or lost their data, {failures} times in a row; the fit was "
            f"aborted and left no model ({type(error).__name__}: {error})"
        ) from error

    def collect(self):
        from distributed import as_completed

        out = [None] * len(self.jobs)
        failures = 0
        pending = dict(self.futures)
        try:
            while pending:
                lost = []
                for future in as_completed(list(pending)):
                    i = pending.pop(future)
                    try:
                        index, value = future.result()
                    except Exception as exc:
                        if not _worker_lost(exc):
                            raise
                        lost.append(i)
                        error = exc
                        continue
                    out[index] = value
                if lost:
                    failures += 1
                    if failures > _UNIT_RETRIES:
                        self._give_up(len(lost), failures, error)
                    self._scattered.clear()  # it may have died with the worker
                    pending = self._submit(lost)
        finally:
            if pending:
                self.client.cancel(list(pending))
        return out


# Resubmissions of the unfinished units after a worker was lost.
_UNIT_RETRIES = 2

# Exceptions (by class name, dask's or concurrent.futures') that mean a worker
# died or its data was lost, rather than an error of the unit itself.
_LOST_WORKER_ERRORS = {"KilledWorker", "FutureCancelledError", "CancelledError",
                       "CommClosedError"}


def _worker_lost(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ in _LOST_WORKER_ERRORS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# --------------------------------------------------------------------- XR-Linear
def _train_subtree(X, Y, tree, seeds, offsets, weights, params, n_jobs):
    """Unit: train every level of ``tree`` (teacher forcing) on rows ``X`` and
    label indicator ``Y`` (columns in the tree's label node order). Level ``t`` of
    the unit uses seed ``seeds[t - 1]``, its node ``j`` the stream of node
    ``offsets[t - 1] + j``. Returns the weight blocks, one per level, and the most
    solver iterations of a node."""
    from skxmr._xrlinear import train_level_nodes

    n_threads = effective_n_threads(n_jobs)
    Y_prev = sp.csr_matrix(np.ones((X.shape[0], 1), dtype=np.float32))
    blocks = []
    n_iter = 0
    for t in range(1, tree.n_levels + 1):
        Y_level = tree.transform(Y, t) if t < tree.n_levels else Y
        W, it = train_level_nodes(
            X, Y_prev, Y_level, tree.children_counts(t - 1), tree.parents(t), params,
            weights=weights, seed=seeds[t - 1], n_threads=n_threads,
            node_offset=offsets[t - 1], shared_rows=True)
        blocks.append(W)
        n_iter = max(n_iter, it)
        Y_prev = Y_level
    return blocks, n_iter


def _train_nodes_unit(X, matching, Y_level, counts, parents, seed, offset, weights,
                      params, shared_rows, n_jobs):
    """Unit: one batch of parents of one level (matcher-aware matching sets)."""
    from skxmr._xrlinear import train_level_nodes

    return train_level_nodes(
        X, matching, Y_level, counts, parents, params, weights=weights, seed=seed,
        n_threads=effective_n_threads(n_jobs), node_offset=offset,
        shared_rows=shared_rows)


def _upper_tree(tree, level):
    """The tree cut below ``level``: its nodes of ``level`` become the labels."""
    return LabelTree(tree.level_ptr[: level + 2],
                     tree.child_ptr[: tree.level_ptr[level] + 1],
                     np.arange(tree.level_sizes[level - 1]))


def _descendant_ranges(tree, level, node):
    """Within-level index ranges ``(start, stop)`` of the descendants of ``node``
    (an index within ``level``) at the levels ``level + 1 .. n_levels``."""
    g0 = tree.level_ptr[level] + node
    g1 = g0 + 1
    ranges = []
    for t in range(level + 1, tree.n_levels + 1):
        g0, g1 = tree.child_ptr[g0], tree.child_ptr[g1]
        ranges.append((int(g0 - tree.level_ptr[t]), int(g1 - tree.level_ptr[t])))
    return ranges


def _subtree(tree, level, ranges):
    """The LabelTree of one subtree (root = a node of ``level``), from its
    descendant ``ranges``; its labels are numbered in node order."""
    counts = [np.array([ranges[0][1] - ranges[0][0]])]
    for t, (a, b) in zip(range(level + 1, tree.n_levels), ranges[:-1]):
        counts.append(tree.children_counts(t)[a:b])
    sizes = [1] + [b - a for a, b in ranges]
    level_ptr = np.concatenate([[0], np.cumsum(sizes)])
    child_ptr = np.concatenate([[1], 1 + np.cumsum(np.concatenate(counts))])
    return LabelTree(level_ptr, child_ptr, np.arange(sizes[-1]))


def _split_level_for(X, Y, tree, slots):
    """The split level of a teacher-forcing fit: the first level (at most
    ``T - 1``) with at least ``_UNITS_PER_SLOT * slots`` nodes whose largest
    subtree unit has at most ``1 / slots`` of the estimated work of all subtree
    units (with long-tailed labels a head cluster can hold a large share, which
    would cap the speed-up); else ``T - 1``. A unit's work is estimated as the
    nonzeros of its rows times the nodes of its subtree."""
    last = tree.n_levels - 1
    weight = np.diff(X.indptr).astype(np.float64) + 1  # nonzeros (+1) per row
    for t in range(1, last + 1):
        n_nodes = int(tree.level_sizes[t - 1])
        if n_nodes < _UNITS_PER_SLOT * slots and t < last:
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
        if cost.max() * slots <= cost.sum():
            return t
    return last


def train_levels_units(X, Y, tree, seeds, weights, params, *, negative_sampling,
                       beam_size, post_processor, n_jobs):
    """Weights of every level of ``tree`` (a list of CSC matrices) and the most
    solver iterations of a node, trained as joblib units.

    ``X`` is CSR, ``Y`` the CSR label indicator (columns: labels), ``seeds[t - 1]``
    the seed of level ``t`` (as the local fit draws them), ``weights`` the row
    weights or None. The result equals the local fit's.
    """
    if negative_sampling == "tfn":
        return _train_tfn_units(X, Y, tree, seeds, weights, params, n_jobs)
    return _train_man_units(X, Y, tree, seeds, weights, params, n_jobs,
                            negative_sampling=negative_sampling, beam_size=beam_size,
                            post_processor=post_processor)


def _train_tfn_units(X, Y, tree, seeds, weights, params, n_jobs):
    T = tree.n_levels
    unit_jobs = _unit_n_jobs(n_jobs)
    if T < 2:  # one level: its nodes in ranges
        matching = sp.csc_matrix(np.ones((X.shape[0], 1), dtype=np.int8))
        Y_level = sp.csr_matrix(Y)[:, tree.label_perm].tocsc()
        jobs, costs, _ = _node_range_units(
            X, matching, Y_level, tree.children_counts(0), seeds[0], weights, params,
            True, unit_jobs, _UNITS_PER_SLOT * _slots())
        results = _start_units(jobs, costs)()
        return [_hstack([W for W, _ in results])], max(it for _, it in results)
    s = _split_level_for(X, Y, tree, _slots())
    units, costs = tfn_units(X, Y, tree, s, seeds, weights, params, unit_jobs)
    jobs = [(_train_subtree, unit) for unit in units]
    # The top levels 1..s: each level's nodes in ranges of about one subtree's
    # work (the top level needs every row: those units share one copy of X).
    target = max(1.0, sum(costs) / len(costs))
    level_jobs = []
    for t in range(1, s + 1):
        if t == 1:
            matching = sp.csc_matrix(np.ones((X.shape[0], 1), dtype=np.int8))
        else:
            matching = sp.csc_matrix(tree.transform(Y, t - 1))
        Y_level = sp.csc_matrix(tree.transform(Y, t))
        n_pieces = int(np.ceil(_level_cost(X, matching, tree.children_counts(t - 1))
                               / target))
        t_jobs, t_costs, _ = _node_range_units(
            X, matching, Y_level, tree.children_counts(t - 1), seeds[t - 1], weights,
            params, True, unit_jobs, max(1, n_pieces))
        level_jobs.append(len(t_jobs))
        jobs += t_jobs
        costs += t_costs
    results = _start_units(jobs, costs)()
    subtrees, pieces = results[:len(units)], results[len(units):]
    coef = []
    for n_pieces in level_jobs:
        coef.append(_hstack([W for W, _ in pieces[:n_pieces]]))
        pieces = pieces[n_pieces:]
    for level_index in range(T - s):
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
        ranges = _descendant_ranges(tree, s, u)
        a, b = ranges[-1]
        units.append((X[rows], Y_nodes[:, a:b].tocsr()[rows], _subtree(tree, s, ranges),
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


def _hstack(blocks):
    if len(blocks) == 1:
        return blocks[0]
    W = sp.hstack(blocks, format="csc")
    W.has_sorted_indices = True
    return W


def _train_man_units(X, Y, tree, seeds, weights, params, n_jobs, *,
                     negative_sampling, beam_size, post_processor):
    from skxmr._xrlinear import _binary_csc, matching_sets

    n_threads = effective_n_threads(n_jobs)
    unit_jobs = _unit_n_jobs(n_jobs)
    n_pieces = _UNITS_PER_SLOT * _slots()
    coef = []
    n_iter = 0
    Y_prev = sp.csr_matrix(np.ones((X.shape[0], 1), dtype=np.float32))
    for level in range(1, tree.n_levels + 1):
        if level < tree.n_levels:
            Y_level = tree.transform(Y, level)
        else:
            Y_level = sp.csr_matrix(Y)[:, tree.label_perm]
        # Beam search over every row with the levels trained so far: here.
        matching = matching_sets(X, Y_prev, level, coef, tree,
                                 negative_sampling=negative_sampling,
                                 beam_size=beam_size, post_processor=post_processor,
                                 bias=params["bias"], n_threads=n_threads)
        jobs, costs, _ = _node_range_units(
            X, _binary_csc(matching), Y_level, tree.children_counts(level - 1),
            seeds[level - 1], weights, params, level == 1, unit_jobs, n_pieces)
        results = _start_units(jobs, costs)()
        coef.append(_hstack([W for W, _ in results]))
        n_iter = max([n_iter] + [it for _, it in results])
        Y_prev = Y_level
    return coef, n_iter


# ------------------------------------------------------------------ LabelIndexer
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
    from skxmr._indexer import split_levels

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
    from skxmr._indexer import split_levels

    n_labels = Z.shape[0]
    sizes = _level_node_sizes(n_labels, fanouts)
    slots = _slots()
    s = len(fanouts) - 1
    for t in range(1, len(fanouts)):
        if sizes[t].size >= _UNITS_PER_SLOT * slots:
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
    unit_jobs = _unit_n_jobs(n_jobs)
    units, costs = [], []
    for u in range(n_units):
        labels = order[node_ptr[u]:node_ptr[u + 1]]
        Z_u = Z[labels]
        units.append((Z_u, list(fanouts[s:]), s, [int(o[u]) for o in offsets],
                      spherical, max_iter, tol, seed, unit_jobs))
        costs.append(float(Z_u.nnz + labels.size))
    results = _start_units([(_build_subtree, unit) for unit in units], costs)()
    n_levels_below = len(fanouts) - s + 1
    for level_index in range(n_levels_below):
        counts.append(np.concatenate([res[0][level_index] for res in results]))
    order = np.concatenate([order[node_ptr[u]:node_ptr[u + 1]][res[1]]
                            for u, res in enumerate(results)])
    return counts, order
