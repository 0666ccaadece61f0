"""Many small binary L2-regularised linear models trained at once (one per tree node).

Python side of :mod:`skxmr._cython._solver`: validates and converts the inputs, then
calls the parallel kernel, which trains every node's model by dual coordinate descent.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_random_state

from skxmr._cython._solver import LOSSES, _groups_share_rows, _train_nodes
from skxmr.utils.validation import check_sparse_structure
from skxmr.utils import effective_n_threads

__all__ = ["train_binary_nodes"]

_MAX_FEATURES = 2**31 - 2  # feature ids and the bias row must fit in int32
_MAX_NODE_NNZ = 2**32  # positions inside one node are packed in 32 bits


def train_binary_nodes(
    X,
    node_ptr,
    rows,
    y,
    cost,
    *,
    loss="squared_hinge",
    bias=1.0,
    tol=0.1,
    max_iter=100,
    threshold=0.0,
    random_state=None,
    n_threads=1,
    return_n_iter=False,
    groups=None,
    node_offset=0,
):
    """Train one binary linear model per node, all nodes in parallel.

    Node ``k`` is the problem on the instances ``rows[node_ptr[k]:node_ptr[k + 1]]``
    (rows of ``X``; the same row may appear in many nodes, or twice in one), with
    labels ``y`` and costs ``cost`` over the same range. Its model ``(w, w_b)``
    minimises the primal

    ``0.5 |w|^2 + 0.5 w_b^2 + sum_i cost_i * loss(y_i (w.x_i + bias * w_b))``

    i.e. the bias is an ordinary (regularised) feature of constant value ``bias``,
    as in liblinear; ``bias=0`` means no bias term.

    Parameters
    ----------
    X : sparse matrix of shape (n_samples, n_features)
        Instances, converted to CSR float32 (float64 input is accepted and cast;
        int32 or int64 indices; unsorted indices are fine; duplicate entries are
        summed). Dense arrays are accepted too.
    node_ptr : array-like of int, shape (n_nodes + 1,)
        Non-decreasing, ``node_ptr[0] == 0`` and ``node_ptr[-1] == len(rows)``.
    rows : array-like of int, shape (n_entries,)
        Row of ``X`` of each entry, ``0 <= rows < n_samples``.
    y : array-like, shape (n_entries,)
        ``+1`` (positive) or ``-1`` (negative) per entry.
    cost : array-like of float, shape (n_entries,)
        Per-entry cost ``C_i > 0`` (``C`` times class and relevance weights).
    loss : {"squared_hinge", "hinge", "log"}, default="squared_hinge"
        ``max(0, 1 - m)^2``, ``max(0, 1 - m)`` or ``log(1 + exp(-m))`` of the margin m.
    bias : float, default=1.0
        Value of the constant feature (>= 0); its weight is stored in row
        ``n_features`` of the result, so a score is ``[x, bias] @ W[:, k]``.
    tol : float, default=0.1
        Stopping tolerance (absolute). Hinge losses: stop when the spread of the
        projected gradients over one outer iteration, ``max PG - min PG``, is at
        most ``tol`` (liblinear's ``eps``), re-checked without shrinking. Log loss:
        stop when ``max_i |dual gradient_i|`` over one outer iteration is at most
        ``tol``.
    max_iter : int, default=100
        Maximum number of outer iterations (passes over a node's variables).
    threshold : float, default=0.0
        Weights with ``|w_j| < threshold`` are dropped, the bias weight included
        (the comparison uses the float32 value). Exact zeros are never stored.
    random_state : int, RandomState instance or None, default=None
        Seeds the random visiting orders. Node ``k``'s stream depends on this
        seed and ``k``, except for (squared) hinge nodes whose rows use at least
        4096 distinct features: those visit their rows in the orders of one
        stream that depends on the seed alone (nodes with the same rows see the
        same orders and are solved together, see ``groups``). Either way the
        result does not depend on ``n_threads``.
    n_threads : int or None, default=1
        OpenMP threads (``None``: all CPUs; negative: as ``n_jobs``).
    return_n_iter : bool, default=False
        Also return the number of outer iterations each node ran.
    groups : array-like of int, shape (n_groups + 1,), default=None
        Optional ``group_ptr`` over nodes: non-decreasing, ``groups[0] == 0`` and
        ``groups[-1] == n_nodes``; the nodes ``groups[g]..groups[g + 1] - 1`` must
        all have the same row list (same ``rows`` slice; only ``y`` and ``cost``
        differ), as the children of one parent in XR-Linear. Each group then
        builds its local copy of the rows once and trains its nodes on it
        (groups run in parallel; when there are fewer groups than threads, groups
        are split into runs of consecutive nodes so that every thread has work).
        With the (squared) hinge loss, the nodes of a group whose rows use at
        least 4096 distinct features are solved in lockstep: the weights of up to
        32 nodes are stored side by side, so that each row's entries multiply
        contiguous weights of all of them. The result is bit-identical to
        ``groups=None``. ``None``: one group per node.
    node_offset : int, default=0
        Node ``k`` draws the random stream of node ``node_offset + k`` (where its
        stream depends on the node, see ``random_state``): training the nodes of
        a larger problem in consecutive batches, each with its offset and the
        same ``random_state``, gives the same weights as one call.

    Returns
    -------
    W : scipy.sparse.csc_matrix of shape (n_features + 1, n_nodes), float32
        Column ``k`` holds node ``k``'s weights, sorted by row; the bias weight is in
        row ``n_features``. A node with no instances has an empty column.
    n_iter : ndarray of shape (n_nodes,), int
        Only with ``return_n_iter=True``; ``max_iter`` means the node did not
        reach ``tol``. Nodes with no instances report 0.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skxmr._linear_solver import train_binary_nodes
    >>> X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    >>> W = train_binary_nodes(X, node_ptr=[0, 3, 5], rows=[0, 1, 2, 0, 1],
    ...                        y=[1, -1, 1, -1, 1], cost=np.ones(5), tol=1e-6)
    >>> W.shape
    (3, 2)
    >>> scores = sp.hstack([X, np.ones((3, 1))]) @ W
    >>> bool(scores[0, 0] > 0 and scores[1, 0] < 0 and scores[1, 1] > 0)
    True
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
    bias = _check_real(bias, "bias", low=0.0)
    tol = _check_real(tol, "tol", low=0.0)
    threshold = _check_real(threshold, "threshold", low=0.0)
    if not isinstance(max_iter, Integral) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    if max_iter > np.iinfo(np.intc).max:
        raise ValueError("max_iter is too large")
    n_threads = effective_n_threads(n_threads)

    check_sparse_structure(X)  # before scipy touches the arrays
    X = check_array(X, accept_sparse="csr", dtype=[np.float32, np.float64],
                    ensure_all_finite=True, ensure_min_samples=0,
                    ensure_min_features=0, accept_large_sparse=True, input_name="X")
    if not sp.issparse(X):
        X = sp.csr_matrix(X)
    X = solver_rows(X)
    n_samples = X.shape[0]

    node_ptr = _check_int_array(node_ptr, "node_ptr")
    rows = _check_int_array(rows, "rows")
    if node_ptr.shape[0] < 1:
        raise ValueError("node_ptr must have at least one element (n_nodes + 1)")
    if node_ptr[0] != 0 or node_ptr[-1] != rows.shape[0]:
        raise ValueError(
            f"node_ptr must start at 0 and end at len(rows)={rows.shape[0]}; "
            f"got {node_ptr[0]} and {node_ptr[-1]}")
    if np.any(np.diff(node_ptr) < 0):
        raise ValueError("node_ptr must be non-decreasing")
    if rows.shape[0] and (rows.min() < 0 or rows.max() >= n_samples):
        raise ValueError(f"rows must lie in [0, {n_samples}) (the rows of X)")

    y = np.asarray(y)
    cost = np.asarray(cost)
    for name, arr in (("y", y), ("cost", cost)):
        if arr.ndim != 1 or arr.shape[0] != rows.shape[0]:
            raise ValueError(
                f"{name} must be 1-D with len(rows)={rows.shape[0]} entries; got shape "
                f"{arr.shape}")
    if y.dtype.kind not in "iuf" or not np.all((y == 1) | (y == -1)):
        raise ValueError("y must contain only +1 and -1")
    if cost.dtype.kind not in "iuf":
        raise ValueError(f"cost must be numeric, got dtype {cost.dtype}")
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if not np.all(np.isfinite(cost)) or np.any(cost <= 0):
        raise ValueError("cost must be finite and > 0")
    if (isinstance(node_offset, bool) or not isinstance(node_offset, Integral)
            or node_offset < 0):
        raise ValueError(f"node_offset must be a non-negative integer, got {node_offset!r}")
    if groups is not None:
        _check_group_rows(groups, node_ptr, rows)
    return _train_binary_nodes(
        X, node_ptr, rows, y, cost, loss=loss, bias=bias, tol=tol,
        max_iter=int(max_iter), threshold=threshold, random_state=random_state,
        n_threads=n_threads, return_n_iter=return_n_iter, groups=groups,
        node_offset=int(node_offset))


class SolverRows:
    """Training rows in the kernel's layout: canonical CSR with float32 values.

    Built once per fit by :func:`solver_rows` and shared by every solver call
    of it (``X.shape`` is the original matrix's)."""

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, shape


def solver_rows(X):
    """Trusted: a validated CSR ``X`` (float32/float64, consistent arrays) in the
    solver kernel's layout (duplicates summed, values in float32). A
    :class:`SolverRows` is returned as is."""
    if isinstance(X, SolverRows):
        return X
    n_features = X.shape[1]
    if n_features > _MAX_FEATURES:
        raise ValueError(f"X has {n_features} features; at most {_MAX_FEATURES} are supported")
    if not X.has_canonical_format:
        # Duplicate entries would break |x_i|^2; sum them (this also sorts indices).
        X = X.copy()
        X.sum_duplicates()
    with np.errstate(over="ignore"):
        data = np.ascontiguousarray(X.data, dtype=np.float32)
    if X.dtype != np.float32 and not np.isfinite(data).all():
        raise ValueError("X has values too large for float32")
    index_dtype = np.result_type(X.indices.dtype, X.indptr.dtype)
    if index_dtype not in (np.int32, np.int64):
        index_dtype = np.int64
    indices = np.ascontiguousarray(X.indices, dtype=index_dtype)
    indptr = np.ascontiguousarray(X.indptr, dtype=index_dtype)
    return SolverRows(data, indices, indptr, X.shape)


def _train_binary_nodes(X, node_ptr, rows, y, cost, *, loss, bias, tol, max_iter,
                        threshold, random_state, n_threads, return_n_iter=False,
                        groups=None, node_offset=0):
    """Trusted twin of :func:`train_binary_nodes`: ``X`` a :class:`SolverRows` (or
    a checked CSR matrix), the node arrays consistent, ``y`` +1/-1, ``cost`` > 0,
    parameters checked, groups made of nodes with identical rows."""
    X = solver_rows(X)
    n_features = X.shape[1]
    node_ptr = np.ascontiguousarray(node_ptr, dtype=np.intp)
    rows = np.ascontiguousarray(rows, dtype=np.intp)
    y = np.asarray(y).astype(np.int8)
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if rows.shape[0]:
        row_nnz = np.diff(X.indptr).astype(np.int64)
        # Cheap bound first; the exact per-node count only when it may matter.
        if int(row_nnz.max()) * int(np.diff(node_ptr).max()) >= _MAX_NODE_NNZ:
            cum = np.concatenate([[0], np.cumsum(row_nnz[rows])])
            if np.any(cum[node_ptr[1:]] - cum[node_ptr[:-1]] >= _MAX_NODE_NNZ):
                raise ValueError("a node has 2**32 nonzeros or more; split it")
    n_nodes = node_ptr.shape[0] - 1
    group_ptr = _group_ptr(groups, n_nodes, n_threads)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int64).max,
                                                        dtype=np.int64))
    n_iter = np.zeros(n_nodes, dtype=np.intc)
    W_indptr, W_indices, W_data = _train_nodes(
        X.data, X.indices, X.indptr, n_features, node_ptr, group_ptr, rows, y, cost,
        LOSSES[loss],
        bias, tol, int(max_iter), threshold, seed, n_iter, n_threads,
        int(node_offset),
    )
    W = sp.csc_matrix((W_data, W_indices, W_indptr), shape=(n_features + 1, n_nodes))
    W.has_sorted_indices = True
    if return_n_iter:
        return W, n_iter
    return W


def _check_group_rows(groups, node_ptr, rows):
    """Raise ``ValueError`` unless ``groups`` are runs of nodes with identical
    rows (``node_ptr``/``rows`` already checked)."""
    n_nodes = node_ptr.shape[0] - 1
    group_ptr = _check_int_array(groups, "groups")
    if group_ptr.shape[0] < 1 or group_ptr[0] != 0 or group_ptr[-1] != n_nodes:
        raise ValueError(
            f"groups must start at 0 and end at the number of nodes {n_nodes}")
    sizes = np.diff(group_ptr)
    if np.any(sizes < 0):
        raise ValueError("groups must be non-decreasing")
    group_ptr = group_ptr[np.r_[True, sizes > 0]]  # drop empty groups
    sizes = np.diff(group_ptr)
    # Every node must have the rows of its group's first node.
    first = np.repeat(group_ptr[:-1], sizes)  # (n_nodes,) first node of its group
    lengths = np.diff(node_ptr)
    if not np.array_equal(lengths, lengths[first]):
        raise ValueError("the nodes of a group must have the same number of rows")
    if not _groups_share_rows(node_ptr, group_ptr, rows):
        raise ValueError("the nodes of a group must have identical rows")


def _group_ptr(groups, n_nodes, n_threads):
    """The kernel's group pointer (intp) of checked ``groups``.

    ``None`` gives one group per node. When there are fewer groups than threads,
    each group is split into up to ``n_threads`` runs of consecutive nodes (each
    run builds its own copy of the rows).
    """
    if groups is None:
        return np.arange(n_nodes + 1, dtype=np.intp)
    group_ptr = np.ascontiguousarray(groups, dtype=np.intp)
    sizes = np.diff(group_ptr)
    group_ptr = group_ptr[np.r_[True, sizes > 0]]  # drop empty groups
    sizes = np.diff(group_ptr)
    n_groups = group_ptr.shape[0] - 1
    if 0 < n_groups < n_threads:
        # Split each group into up to n_threads runs of consecutive nodes.
        pieces = [np.linspace(group_ptr[g], group_ptr[g + 1],
                              min(n_threads, sizes[g]) + 1).round().astype(np.intp)[:-1]
                  for g in range(n_groups)]
        group_ptr = np.unique(np.r_[np.concatenate(pieces), n_nodes]).astype(np.intp)
    return np.ascontiguousarray(group_ptr, dtype=np.intp)


def _check_real(value, name, low):
    if not isinstance(value, Real) or isinstance(value, bool) or not np.isfinite(value) \
            or value < low:
        raise ValueError(f"{name} must be a finite real number >= {low}, got {value!r}")
    return float(value)


def _check_int_array(values, name):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.intp)
