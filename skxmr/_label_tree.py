"""The label tree as flat arrays, and its exchange format (a chain of assignment
matrices, the layout PECOS saves)."""

import numpy as np
import scipy.sparse as sp


class LabelTree:
    """A B-ary tree over labels, stored as flat arrays.

    Nodes are numbered level by level: level 0 is the root (node 0); levels
    ``1 .. n_levels - 1`` are clusters; level ``n_levels`` holds the labels, one node
    per label. All leaves (labels) are at the same depth. The children of a node are
    contiguous: the children of node ``g`` are the nodes ``child_ptr[g]`` to
    ``child_ptr[g + 1] - 1``, all on the next level. Label node ``level_ptr[-2] + p``
    stands for label ``label_perm[p]`` (an index into the columns of ``Y``).

    Parameters
    ----------
    level_ptr : array of int, shape (n_levels + 2,)
        Level t holds nodes ``level_ptr[t]`` to ``level_ptr[t + 1] - 1``;
        ``level_ptr[0] = 0``, ``level_ptr[1] = 1`` (the root).
    child_ptr : array of int, shape (level_ptr[-2] + 1,)
        Child ranges of the internal nodes (root and clusters).
    label_perm : array of int, shape (n_labels,)
        The label of each label node, in node order: a permutation of the labels.

    Attributes
    ----------
    n_levels : int
        Number of levels below the root; the last one holds the labels.
    n_labels : int
    level_sizes : ndarray
        Number of nodes per level below the root (the last entry is n_labels).

    Examples
    --------
    A root with two leaf clusters of two labels each; the first cluster holds
    labels 2 and 0, the second labels 1 and 3:

    >>> from skxmr import LabelTree
    >>> tree = LabelTree(level_ptr=[0, 1, 3, 7], child_ptr=[1, 3, 5, 7],
    ...                  label_perm=[2, 0, 1, 3])
    >>> tree
    LabelTree(n_labels=4, level_sizes=[2, 4])
    >>> tree.label_to_cluster(1).tolist()  # cluster of labels 0, 1, 2, 3
    [0, 1, 0, 1]
    >>> [m.shape for m in tree.to_chain()]  # PECOS's cluster-chain layout
    [(2, 1), (4, 2)]
    """

    def __init__(self, level_ptr, child_ptr, label_perm):
        self.level_ptr = np.ascontiguousarray(level_ptr, dtype=np.int64)
        self.child_ptr = np.ascontiguousarray(child_ptr, dtype=np.int64)
        self.label_perm = np.ascontiguousarray(label_perm, dtype=np.int64)
        self._check()

    # ------------------------------------------------------------------ checks
    def _check(self):
        lp, cp, perm = self.level_ptr, self.child_ptr, self.label_perm
        if lp.ndim != 1 or lp.size < 3 or lp[0] != 0 or lp[1] != 1:
            raise ValueError("level_ptr must start with [0, 1] and have >= 3 entries.")
        if np.any(np.diff(lp) < 1):
            raise ValueError("every level of the tree must hold at least one node.")
        n_internal = lp[-2]
        if cp.shape != (n_internal + 1,) or cp[0] != 1 or cp[-1] != lp[-1]:
            raise ValueError("child_ptr does not match level_ptr.")
        if np.any(np.diff(cp) < 1):
            raise ValueError("every internal node of the tree needs at least one child.")
        # The children of level t must be exactly the nodes of level t + 1.
        if not np.array_equal(cp[lp[:-2]], lp[1:-1]):
            raise ValueError("children must lie on the level below their parent.")
        if perm.shape != (lp[-1] - lp[-2],):
            raise ValueError("label_perm must have one entry per label node.")
        if not np.array_equal(np.sort(perm), np.arange(perm.size)):
            raise ValueError("label_perm must be a permutation of the labels.")

    # -------------------------------------------------------------- properties
    @property
    def n_levels(self):
        return self.level_ptr.size - 2

    @property
    def n_labels(self):
        return self.label_perm.size

    @property
    def level_sizes(self):
        return np.diff(self.level_ptr)[1:]

    def children_counts(self, level):
        """Number of children of each node of ``level`` (0 = root)."""
        level = self._level_index(level, allow_root=True, allow_labels=False)
        lo, hi = self.level_ptr[level], self.level_ptr[level + 1]
        return np.diff(self.child_ptr[lo : hi + 1])

    def leaf_sizes(self):
        """Number of labels in each leaf cluster (the last cluster level)."""
        return self.children_counts(self.n_levels - 1)

    def _level_index(self, level, allow_root=False, allow_labels=True):
        n = self.n_levels
        if not isinstance(level, (int, np.integer)):
            raise TypeError(f"level must be an int, got {type(level).__name__}.")
        if level < 0:
            level += n + 1
        lowest = 0 if allow_root else 1
        highest = n if allow_labels else n - 1
        if not lowest <= level <= highest:
            raise ValueError(
                f"level must lie in [{lowest}, {highest}] (or be negative), got "
                f"{level} for a tree with {n} levels below the root."
            )
        return int(level)

    # -------------------------------------------------------------- structure
    def _cluster_level(self, level):
        """Cluster level from the root (1..n_levels-1) or the bottom (-1 = leaves)."""
        if not isinstance(level, (int, np.integer)):
            raise TypeError(f"level must be an int, got {type(level).__name__}.")
        n_cluster_levels = self.n_levels - 1
        index = level + n_cluster_levels + 1 if level < 0 else level
        if not 1 <= index <= n_cluster_levels:
            raise ValueError(
                f"level must lie in [1, {n_cluster_levels}] or "
                f"[-{n_cluster_levels}, -1] for this tree, got {level}."
            )
        return int(index)

    def parents(self, level):
        """Parent (a node index within ``level - 1``) of each node of ``level``."""
        level = self._level_index(level)
        counts = self.children_counts(level - 1)
        return np.repeat(np.arange(counts.size, dtype=np.int64), counts)

    def label_to_cluster(self, level=-1):
        """Node index within cluster ``level`` (default: leaves) of each label.

        Returns an array of shape (n_labels,), indexed by the original label id.
        """
        level = self._level_index(level)
        if level == self.n_levels:
            nodes = np.arange(self.n_labels, dtype=np.int64)
        else:
            nodes = np.arange(self.n_labels, dtype=np.int64)
            for t in range(self.n_levels, level, -1):
                nodes = self.parents(t)[nodes]
        out = np.empty(self.n_labels, dtype=np.int64)
        out[self.label_perm] = nodes
        return out

    def assignment_matrix(self, level=-1):
        """Sparse (n_labels, n_nodes(level)) 0/1 matrix: label -> its cluster."""
        level = self._level_index(level)
        clusters = self.label_to_cluster(level)
        n_nodes = self.level_sizes[level - 1]
        return sp.csr_matrix(
            (np.ones(self.n_labels, dtype=np.float32), clusters,
             np.arange(self.n_labels + 1)),
            shape=(self.n_labels, n_nodes),
        )

    def transform(self, Y, level=-1):
        """Instance-by-label indicator -> instance-by-cluster relevance at ``level``.

        ``Y_t = Y M_t`` with ``M_t`` the label-to-cluster assignment: entry (i, c)
        counts the relevant labels of row i inside cluster c (float32 CSR).
        ``level`` counts from the root (1 = the root's children); negative values
        count from the bottom (-1 = the leaf clusters).
        """
        level = self._cluster_level(level)
        Y = sp.csr_matrix(Y) if sp.issparse(Y) else sp.csr_matrix(np.asarray(Y))
        if Y.shape[1] != self.n_labels:
            raise ValueError(
                f"Y has {Y.shape[1]} columns but the tree has {self.n_labels} labels."
            )
        M = self.assignment_matrix(level)
        Y_bin = Y.astype(np.float32, copy=True)
        Y_bin.data = (Y_bin.data != 0).astype(np.float32)
        Y_bin.eliminate_zeros()
        return (Y_bin @ M).tocsr()

    # ------------------------------------------------------------ chain layout
    def to_chain(self):
        """The tree as a list of child-to-parent assignment matrices.

        ``chain[t]`` (CSC, float32) has shape ``(n_nodes(t + 1), n_nodes(t))`` with a
        1 at (child, parent); ``chain[0]`` has one column (the root) and the last
        matrix has one row per label, indexed by the original label id: the layout
        PECOS saves as its cluster chain.
        """
        chain = []
        for level in range(1, self.n_levels + 1):
            parents = self.parents(level)
            n_child = parents.size
            rows = np.arange(n_child)
            if level == self.n_levels:
                rows = self.label_perm
            chain.append(
                sp.csc_matrix(
                    (np.ones(n_child, dtype=np.float32), (rows, parents)),
                    shape=(n_child, self.level_sizes[level - 2] if level > 1 else 1),
                )
            )
        return chain

    @classmethod
    def from_chain(cls, chain):
        """Build a tree from a list of child-to-parent assignment matrices.

        ``chain[t]`` has shape ``(n_nodes(t + 1), n_nodes(t))``; ``chain[0]`` has one
        column; each row has exactly one nonzero (its parent); every parent has a
        child. Children are reordered so that siblings are contiguous; the order of
        the labels within a leaf and of clusters within a parent is kept.
        """
        if isinstance(chain, sp.spmatrix) or sp.issparse(chain):
            chain = [chain]
        chain = list(chain)
        if not chain:
            raise ValueError("the chain must hold at least one matrix.")
        mats = []
        for t, C in enumerate(chain):
            if not sp.issparse(C):
                C = np.asarray(C)
                if C.ndim != 2:
                    raise ValueError(f"chain[{t}] must be a 2-D matrix.")
            C = sp.csr_matrix(C)
            C.eliminate_zeros()
            expected_cols = 1 if t == 0 else mats[-1].shape[0]
            if C.shape[1] != expected_cols:
                raise ValueError(
                    f"chain[{t}] has {C.shape[1]} columns; expected {expected_cols} "
                    "(the rows of the previous matrix)."
                )
            if np.any(np.diff(C.indptr) != 1):
                raise ValueError(f"every row of chain[{t}] needs exactly one parent.")
            if np.unique(C.indices).size != C.shape[1]:
                raise ValueError(f"some node of level {t} has no child in chain[{t}].")
            mats.append(C)
        tree, _ = cls._from_checked_chain(mats)
        return tree

    @classmethod
    def _from_checked_chain(cls, mats):
        """The tree of a checked chain (CSR, one parent per row) and, for every
        level below the root, the original row id of each node in node order."""
        level_sizes = [1] + [C.shape[0] for C in mats]
        level_ptr = np.concatenate([[0], np.cumsum(level_sizes)])
        # Walk down: node positions of each level in parent order (stable).
        position = np.zeros(1, dtype=np.int64)  # root's position
        child_ptr_parts = []
        orders = []
        for C in mats:
            parent_pos = position[C.indices]  # each child's parent position
            order = np.argsort(parent_pos, kind="stable")  # original child ids in order
            counts = np.bincount(parent_pos, minlength=C.shape[1])
            child_ptr_parts.append(counts)
            position = np.empty(C.shape[0], dtype=np.int64)
            position[order] = np.arange(C.shape[0])
            orders.append(order)
        counts = np.concatenate(child_ptr_parts)
        child_ptr = np.concatenate([[1], 1 + np.cumsum(counts)])
        return cls(level_ptr, child_ptr, orders[-1]), orders


    # ------------------------------------------------------- growing the tree
    def _rebuilt(self, parents_per_level, n_old_labels):
        """A tree from the parent of every node of every level (within-level
        indices; the label level's rows: this tree's label nodes in node order,
        then new labels ``n_old_labels ..``); the order of siblings is kept.
        Returns the tree and, per level, the row of each node in node order."""
        mats = []
        n_above = 1
        for parents in parents_per_level:
            parents = np.asarray(parents, dtype=np.int64)
            mats.append(sp.csr_matrix(
                (np.ones(parents.size, dtype=np.float32), parents,
                 np.arange(parents.size + 1)), shape=(parents.size, n_above)))
            n_above = parents.size
        tree, orders = LabelTree._from_checked_chain(mats)
        rows = orders[-1]
        old = rows < n_old_labels
        perm = np.where(old, self.label_perm[np.where(old, rows, 0)], rows)
        return LabelTree(tree.level_ptr, tree.child_ptr, perm), orders

    def with_labels(self, leaves):
        """The tree with one new label per entry of ``leaves``: label
        ``n_labels + i`` joins leaf cluster ``leaves[i]`` (an index within the
        last cluster level; 0, the root, for a tree without cluster levels),
        after the leaf's labels and the new ones before it.

        Returns the tree and ``order``: for each label node of the new tree, its
        column in ``[this tree's label nodes (node order), new labels]``, so
        that ``W[:, order]`` lays out the weights of a model of the new tree.
        """
        leaves = np.asarray(leaves, dtype=np.int64).ravel()
        n_leaves = int(self.level_ptr[-2] - self.level_ptr[-3])
        if leaves.size and (leaves.min() < 0 or leaves.max() >= n_leaves):
            raise ValueError(f"leaf clusters must lie in [0, {n_leaves - 1}].")
        levels = [self.parents(t) for t in range(1, self.n_levels + 1)]
        levels[-1] = np.concatenate([levels[-1], leaves])
        tree, orders = self._rebuilt(levels, self.n_labels)
        return tree, orders[-1]

    def with_new_leaves(self, leaf_parents, label_leaves):
        """The tree with new leaf clusters holding new labels: new leaf ``j``
        is a child of node ``leaf_parents[j]`` of the level above the leaves
        (0, the root, for a tree with one cluster level), after that node's
        other children; label ``n_labels + i`` is a child of new leaf
        ``label_leaves[i]``. Needs a tree with cluster levels.

        Returns the tree, ``leaf_order`` (for each leaf cluster of the new tree,
        its column in ``[this tree's leaf clusters, new leaves]``) and
        ``label_order`` (likewise for the label nodes, as in
        :meth:`with_labels`).
        """
        if self.n_levels < 2:
            raise ValueError("a tree without cluster levels has no leaf level.")
        leaf_parents = np.asarray(leaf_parents, dtype=np.int64).ravel()
        label_leaves = np.asarray(label_leaves, dtype=np.int64).ravel()
        n_above = 1 if self.n_levels == 2 else int(self.level_sizes[-3])
        if leaf_parents.size and (leaf_parents.min() < 0 or leaf_parents.max() >= n_above):
            raise ValueError(f"leaf parents must lie in [0, {n_above - 1}].")
        if label_leaves.size and (label_leaves.min() < 0
                                  or label_leaves.max() >= leaf_parents.size):
            raise ValueError(f"new leaves must lie in [0, {leaf_parents.size - 1}].")
        if np.any(np.bincount(label_leaves, minlength=leaf_parents.size) == 0):
            raise ValueError("every new leaf must get a label.")
        n_leaves = int(self.level_sizes[-2])
        levels = [self.parents(t) for t in range(1, self.n_levels + 1)]
        levels[-2] = np.concatenate([levels[-2], leaf_parents])
        levels[-1] = np.concatenate([levels[-1], n_leaves + label_leaves])
        tree, orders = self._rebuilt(levels, self.n_labels)
        return tree, orders[-2], orders[-1]

    def split_leaf(self, leaf, groups):
        """The tree with leaf cluster ``leaf`` cut in pieces.

        ``groups`` lists disjoint sets of the leaf's label nodes (indices within
        the label level); those of ``groups[0]`` and those in no group stay in
        ``leaf``; each further group becomes a new leaf cluster, a sibling placed
        after the children of the leaf's parent. Needs a tree with cluster
        levels (``n_levels >= 2``).

        Returns the tree, ``cluster_order`` (for each node of the new last
        cluster level, the old leaf cluster whose upper-level weights it takes:
        new pieces take those of ``leaf``) and ``label_order`` (for each label
        node of the new tree, its old label node).
        """
        if self.n_levels < 2:
            raise ValueError("a tree without cluster levels has no leaf to split.")
        n_leaves = int(self.level_sizes[-2])
        leaf = int(leaf)
        levels = [self.parents(t) for t in range(1, self.n_levels + 1)]
        label_parents = levels[-1].copy()
        source = list(range(n_leaves))
        for group in groups[1:]:
            group = np.asarray(group, dtype=np.int64)
            if group.size == 0:
                continue
            if np.any(label_parents[group] != leaf):
                raise ValueError("every group must hold label nodes of the leaf.")
            label_parents[group] = len(source)
            source.append(leaf)
        levels[-2] = np.concatenate(
            [levels[-2], np.full(len(source) - n_leaves, levels[-2][leaf])])
        levels[-1] = label_parents
        tree, orders = self._rebuilt(levels, self.n_labels)
        cluster_order = np.asarray(source, dtype=np.int64)[orders[-2]]
        return tree, cluster_order, orders[-1]

    # ---------------------------------------------------------------- helpers
    def keep_levels(self, levels):
        """A coarser tree keeping only the given cluster levels (1-based).

        The label level is always kept. Used to group binary levels into B-ary ones.
        """
        keep = sorted({self._level_index(t, allow_labels=False) for t in levels})
        keep.append(self.n_levels)
        chain = self.to_chain()
        # chain[s] maps level s + 1 to level s; compose them between kept levels.
        composed = []
        previous = 0
        for t in keep:
            M = None
            for s in range(t - 1, previous - 1, -1):  # from level t up to previous
                M = chain[s] if M is None else M @ chain[s]
            composed.append(sp.csr_matrix(M))
            previous = t
        return LabelTree.from_chain(composed)

    def truncate(self, level):
        """The tree cut below ``level`` (1 .. n_levels): the nodes of ``level``
        become its labels, numbered in node order (``label_perm`` the identity).

        The upper levels of a model trained on this tree are a model of the
        truncated one (matcher-aware training searches them for each row).
        """
        level = self._level_index(level, allow_labels=True)
        return LabelTree(self.level_ptr[: level + 2],
                         self.child_ptr[: self.level_ptr[level] + 1],
                         np.arange(self.level_sizes[level - 1]))

    def descendant_ranges(self, level, node):
        """Within-level ranges ``(start, stop)`` of the descendants of ``node`` (an
        index within ``level``) at each of the levels ``level + 1 .. n_levels``."""
        level = self._level_index(level, allow_labels=False)
        g0 = self.level_ptr[level] + node
        g1 = g0 + 1
        ranges = []
        for t in range(level + 1, self.n_levels + 1):
            g0, g1 = self.child_ptr[g0], self.child_ptr[g1]
            ranges.append((int(g0 - self.level_ptr[t]), int(g1 - self.level_ptr[t])))
        return ranges

    def subtree(self, level, node):
        """The subtree rooted at ``node`` (an index within ``level``), its labels
        numbered in node order, and its :meth:`descendant_ranges` in this tree."""
        ranges = self.descendant_ranges(level, node)
        level = self._level_index(level, allow_labels=False)
        counts = [np.array([ranges[0][1] - ranges[0][0]])]
        for t, (a, b) in zip(range(level + 1, self.n_levels), ranges[:-1]):
            counts.append(self.children_counts(t)[a:b])
        sizes = [1] + [b - a for a, b in ranges]
        level_ptr = np.concatenate([[0], np.cumsum(sizes)])
        child_ptr = np.concatenate([[1], 1 + np.cumsum(np.concatenate(counts))])
        return LabelTree(level_ptr, child_ptr, np.arange(sizes[-1])), ranges

    def equals(self, other):
        """True when both trees have the same arrays."""
        return (
            isinstance(other, LabelTree)
            and np.array_equal(self.level_ptr, other.level_ptr)
            and np.array_equal(self.child_ptr, other.child_ptr)
            and np.array_equal(self.label_perm, other.label_perm)
        )

    def __repr__(self):
        sizes = ", ".join(str(s) for s in self.level_sizes)
        return f"LabelTree(n_labels={self.n_labels}, level_sizes=[{sizes}])"

