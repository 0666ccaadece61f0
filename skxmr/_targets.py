"""Targets in every form scikit-learn users pass them, to and from a CSR indicator.

Forms: a sparse indicator, a dense 0/1 indicator, label collections of any hashable
labels (as ``MultiLabelBinarizer`` takes), or 1-D multiclass labels.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import MultiLabelBinarizer


class TargetEncoder:
    """Remembers the form of ``y`` at fit and maps label columns back to it.

    Attributes
    ----------
    kind : {"sparse", "dense", "sets", "multiclass"}
    classes_ : ndarray
        The label of each column.
    """

    def fit_transform(self, y):
        """Return ``Y`` (CSR float32 0/1 indicator) and remember the form of ``y``."""
        if sp.issparse(y):
            Y = sp.csr_matrix(y, dtype=np.float32, copy=True)
            self.kind = "sparse"
            self.dtype = y.dtype
            self.classes_ = np.arange(Y.shape[1])
        elif isinstance(y, np.ndarray) and y.ndim == 2 and y.dtype.kind in "biuf":
            if y.dtype.kind == "f" and not np.isfinite(y).all():
                raise ValueError("y contains NaN or infinity.")
            Y = sp.csr_matrix(y, dtype=np.float32)
            self.kind = "dense"
            self.dtype = y.dtype
            self.classes_ = np.arange(Y.shape[1])
        else:
            items = list(y)
            if not items:
                raise ValueError("y is empty.")
            if _is_collection(items[0]):
                self.kind = "sets"
                self._binarizer = MultiLabelBinarizer(sparse_output=True)
                Y = self._binarizer.fit_transform(items).tocsr().astype(np.float32)
                self.classes_ = self._binarizer.classes_
            else:
                arr = np.asarray(items)
                if arr.ndim != 1:
                    raise ValueError(
                        "y must be an indicator matrix, label collections or 1-D labels."
                    )
                self.kind = "multiclass"
                self.classes_, codes = np.unique(arr, return_inverse=True)
                Y = sp.csr_matrix(
                    (np.ones(len(codes), dtype=np.float32), codes,
                     np.arange(len(codes) + 1)),
                    shape=(len(codes), len(self.classes_)),
                )
        if Y.dtype.kind == "f" and not np.isfinite(Y.data).all():
            raise ValueError("y contains NaN or infinity.")
        Y.sum_duplicates()
        Y.data = (Y.data != 0).astype(np.float32)
        Y.eliminate_zeros()
        if Y.nnz == 0:
            raise ValueError("y has no positive label at all; nothing to learn.")
        return Y

    def transform(self, y):
        """Map a ``y`` of the fitted form to the fitted columns (unknown labels dropped)."""
        if self.kind in ("sparse", "dense"):
            Y = sp.csr_matrix(y, dtype=np.float32)
            if Y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {Y.shape[1]} columns; the model has {len(self.classes_)} labels."
                )
            Y.data = (Y.data != 0).astype(np.float32)
            Y.eliminate_zeros()
            return Y
        return label_sets_to_indicator(y, self.classes_,
                                       multiclass=self.kind == "multiclass")

    def inverse_transform(self, labels, n_labels):
        """Top-k label indices (n, k; -1 = none) -> predictions in the fitted form."""
        n, k = labels.shape
        keep = labels >= 0
        if self.kind == "multiclass":
            return self.classes_[np.maximum(labels[:, 0], 0)]
        if self.kind == "sets":
            return [tuple(self.classes_[row[mask]]) for row, mask in zip(labels, keep)]
        rows = np.repeat(np.arange(n), k)[keep.ravel()]
        P = sp.csr_matrix(
            (np.ones(rows.size, dtype=self.dtype), (rows, labels[keep])),
            shape=(n, n_labels),
        )
        P.sort_indices()
        return P.toarray() if self.kind == "dense" else P


def label_sets_to_indicator(y, classes, multiclass=None):
    """Label collections (or 1-D multiclass labels) -> CSR float32 indicator over
    ``classes``; labels not in ``classes`` have no column and are dropped.
    ``multiclass=None`` tells the two forms apart by the first item."""
    items = list(y)
    if multiclass is None:
        multiclass = bool(items) and not _is_collection(items[0])
    if multiclass:
        items = [[label] for label in items]  # multiclass 1-D y
    known = set(np.asarray(classes).tolist())
    sets = [[label for label in labels if label in known] for labels in items]
    binarizer = MultiLabelBinarizer(classes=list(classes), sparse_output=True)
    return binarizer.fit_transform(sets).tocsr().astype(np.float32)


def _is_collection(value):
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))
