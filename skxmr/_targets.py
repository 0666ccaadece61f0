"""Targets in every form scikit-learn users pass them, to and from a CSR indicator.

Forms: a sparse indicator, a dense 0/1 indicator, a pandas DataFrame 0/1 indicator
(its column names are the labels), label collections of any hashable labels (as
``MultiLabelBinarizer`` takes), or 1-D multiclass labels (also a pandas Series).
"""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr.utils.validation import check_sparse_structure


class TargetEncoder:
    """Remembers the form of ``y`` at fit and maps label columns back to it.

    Attributes
    ----------
    kind : {"sparse", "dense", "frame", "sets", "multiclass"}
        "frame": a pandas DataFrame indicator (``classes_``: its column names;
        ``inverse_transform`` answers with a DataFrame of those columns).
    classes_ : ndarray
        The label of each column.
    """

    def fit_transform(self, y):
        """Return ``Y`` (CSR float32 0/1 indicator) and remember the form of ``y``."""
        if y is None:
            raise ValueError("y is None; pass the labels of the training rows.")
        if isinstance(y, (str, bytes)):
            raise ValueError(
                f"y must hold one entry per row, got a single string {y[:40]!r}."
            )
        columns = None
        if not sp.issparse(y) and getattr(y, "ndim", 1) == 2 and hasattr(y, "to_numpy"):
            columns = getattr(y, "columns", None)
            y = _frame_values(y)  # a pandas DataFrame indicator
        elif (not sp.issparse(y) and not isinstance(y, (list, tuple, np.ndarray))
              and hasattr(y, "__array__")):
            y = np.asarray(y)  # a pandas Series or another array-like
        if isinstance(y, np.ndarray) and y.ndim == 2 and y.shape[1] == 1:
            # As in scikit-learn, one column is a column vector of labels, not an
            # indicator of a single label.
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please "
                "change the shape of y to (n_samples,), for example using ravel(); "
                "it is read as one label per row.",
                DataConversionWarning, stacklevel=3,
            )
            y = y.ravel()
        if sp.issparse(y):
            if y.ndim != 2:
                raise ValueError(f"a sparse y must be 2-D, got shape {y.shape}.")
            check_sparse_structure(y, "y")
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
            if columns is not None:
                self.kind = "frame"
                self.classes_ = _column_labels(columns)
        elif isinstance(y, np.ndarray) and y.ndim not in (1, 2):
            raise ValueError(
                "y must be a 2-D indicator matrix, a sequence of label collections or "
                f"1-D labels; got a {y.ndim}-D array."
            )
        else:
            Y = self._fit_labels(y)
        Y = binary_indicator(Y, "y")
        if Y.nnz == 0:
            raise ValueError("y has no positive label at all; nothing to learn.")
        return Y

    def extended(self, y):
        """An encoder with the classes of this one followed by the labels of ``y``
        that it does not know, and ``y`` in its columns (additive: this encoder is
        not changed; the old labels keep their columns).

        ``y`` has the fitted form. Indicators (sparse, dense) may have more
        columns than ``classes_``: the extra ones are new labels. A DataFrame's
        extra column names, and the unknown labels of label collections or 1-D
        labels (sorted, when they compare), are appended in that order.

        Returns
        -------
        encoder : TargetEncoder
        Y : CSR float32 0/1 indicator over ``encoder.classes_``
        n_new : int
            Number of new classes (the last ``n_new`` columns).
        """
        n_old = len(self.classes_)
        probe = TargetEncoder()
        Y_probe = probe.fit_transform(y)
        kinds = {self.kind, probe.kind}
        if self.kind != probe.kind and kinds != {"sparse", "dense"}:
            raise ValueError(
                f"y has the form {probe.kind!r} but the model was fitted on "
                f"{self.kind!r} labels; pass y in the form fit took.")
        encoder = TargetEncoder()
        encoder.kind = self.kind
        if self.kind in ("sparse", "dense"):
            encoder.dtype = self.dtype
            if Y_probe.shape[1] < n_old:
                raise ValueError(
                    f"y has {Y_probe.shape[1]} columns; the model has {n_old} labels "
                    "(new labels are extra columns after them).")
            encoder.classes_ = np.arange(Y_probe.shape[1])
            return encoder, Y_probe, Y_probe.shape[1] - n_old
        if self.kind == "frame":
            encoder.dtype = self.dtype
        old = set(np.asarray(self.classes_).tolist())
        new = [label for label in probe.classes_.tolist() if label not in old]
        if self.kind == "frame":
            missing = old - set(probe.classes_.tolist())
            if missing:
                raise ValueError(
                    "the DataFrame y lacks columns of the model's labels: "
                    f"{sorted(map(str, missing))[:5]}.")
        else:
            _check_distinct_labels(list(self.classes_.tolist()) + new)
        encoder.classes_ = _append_classes(self.classes_, new)
        if self.kind == "sets":
            encoder._binarizer = MultiLabelBinarizer(
                classes=encoder.classes_.tolist(), sparse_output=True).fit([])
        return encoder, encoder.transform(y), len(new)

    def with_new_labels(self, labels):
        """An encoder with the classes of this one followed by ``labels`` (new
        labels named without rows, e.g. zero-shot labels; additive: this encoder
        is not changed). For an indicator (sparse, dense), the new labels are
        column numbers and must be the next ones, ``n_labels ..``, in any
        order (they are sorted); otherwise each must be a label this encoder
        does not know, of a type that does not merge with the known ones.

        Returns
        -------
        encoder : TargetEncoder
        order : list
            The new labels in the order of their columns.
        """
        labels = list(labels)
        n_old = len(self.classes_)
        encoder = TargetEncoder()
        encoder.kind = self.kind
        if self.kind in ("sparse", "dense", "frame"):
            encoder.dtype = self.dtype
        if len(set(labels)) != len(labels):
            raise ValueError("the new labels repeat.")
        if self.kind in ("sparse", "dense"):
            if not all(isinstance(label, (int, np.integer)) and not isinstance(label, bool)
                       for label in labels) or sorted(int(v) for v in labels) != list(
                    range(n_old, n_old + len(labels))):
                raise ValueError(
                    f"the model was fitted on an indicator y of {n_old} columns: new "
                    f"labels are the next column numbers {n_old} .. "
                    f"{n_old + len(labels) - 1}, got {labels[:5]!r}.")
            encoder.classes_ = np.arange(n_old + len(labels))
            return encoder, list(range(n_old, n_old + len(labels)))
        known = set(np.asarray(self.classes_).tolist())
        old = [label for label in labels if label in known]
        if old:
            raise ValueError(f"{len(old)} of the new labels are already in classes_ "
                             f"(e.g. {old[0]!r}).")
        _check_distinct_labels(list(self.classes_.tolist()) + labels)
        encoder.classes_ = _append_classes(self.classes_, labels)
        if self.kind == "sets":
            encoder._binarizer = MultiLabelBinarizer(
                classes=encoder.classes_.tolist(), sparse_output=True).fit([])
        return encoder, labels

    @classmethod
    def with_classes(cls, y, classes):
        """An encoder of the form of ``y`` over the given ``classes`` (e.g. those
        of a fitted ranker), and ``y`` in those columns (labels not in
        ``classes`` dropped). For an indicator ``y``, ``classes`` must be its
        columns ``0 .. n_labels - 1``."""
        encoder = cls()
        Y = encoder.fit_transform(y)
        classes = np.asarray(classes)
        if encoder.kind == "frame":
            if not (classes.shape == encoder.classes_.shape
                    and np.array_equal(classes, encoder.classes_)):
                encoder.classes_ = classes
                Y = encoder.transform(y)
            return encoder, Y
        if encoder.kind in ("sparse", "dense"):
            if Y.shape[1] != classes.shape[0]:
                raise ValueError(
                    f"y has {Y.shape[1]} columns; the model has {classes.shape[0]} "
                    "labels.")
            return encoder, Y
        if classes.shape != encoder.classes_.shape or not np.array_equal(
                classes, encoder.classes_):
            encoder.classes_ = classes
            Y = encoder.transform(y)
        return encoder, Y

    def _fit_labels(self, y):
        """Label collections (one per row) or 1-D multiclass labels -> CSR."""
        items = list(y)
        if not items:
            raise ValueError("y is empty.")
        is_collection = [_is_collection(item) for item in items]
        if any(is_collection) and not all(is_collection):
            first = is_collection.index(not is_collection[0])
            raise ValueError(
                "y mixes label collections and single labels: item 0 is a "
                f"{type(items[0]).__name__} and item {first} a "
                f"{type(items[first]).__name__}. Pass one collection of labels per row "
                "(e.g. [['a'], ['a', 'b'], []]) or one label per row."
            )
        try:
            if is_collection[0]:
                self.kind = "sets"
                _check_distinct_labels(label for labels in items for label in labels)
                self._binarizer = MultiLabelBinarizer(sparse_output=True)
                Y = self._binarizer.fit_transform(items).tocsr().astype(np.float32)
                self.classes_ = self._binarizer.classes_
                return Y
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            if all(isinstance(item, (str, np.str_)) for item in items):
                arr = arr.astype(str)
            elif all(isinstance(item, (int, float, np.number, bool)) for item in items):
                _check_distinct_labels(items)
                arr = np.asarray(items)
                _check_1d_labels(arr)
            self.kind = "multiclass"
            self.classes_, codes = np.unique(arr, return_inverse=True)
        except TypeError as exc:
            raise TypeError(
                "the labels in y must be hashable and comparable with each other (so "
                f"that they can be sorted), e.g. all str or all int: {exc}"
            ) from exc
        return sp.csr_matrix(
            (np.ones(len(codes), dtype=np.float32), codes.ravel(),
             np.arange(len(codes) + 1)),
            shape=(len(codes), len(self.classes_)),
        )

    def transform(self, y):
        """Map a ``y`` of the fitted form to the fitted columns (unknown labels dropped)."""
        if self.kind == "frame":
            return frame_to_indicator(y, self.classes_)
        if (not sp.issparse(y) and not isinstance(y, (list, tuple, np.ndarray))
                and hasattr(y, "__array__")):
            y = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if (self.kind == "multiclass" and isinstance(y, np.ndarray) and y.ndim == 2
                and y.shape[1] == 1):
            y = y.ravel()  # a column vector of labels
        if self.kind == "multiclass" and getattr(y, "ndim", 1) != 1:
            raise ValueError(
                "the model was fitted on one label per row (1-D y); got y of shape "
                f"{getattr(y, 'shape', None)}."
            )
        if self.kind in ("sparse", "dense"):
            check_sparse_structure(y, "y")
            Y = sp.csr_matrix(y, dtype=np.float32, copy=True)
            if Y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {Y.shape[1]} columns; the model has {len(self.classes_)} labels."
                )
            return binary_indicator(Y, "y")
        return label_sets_to_indicator(y, self.classes_,
                                       multiclass=self.kind == "multiclass")

    def inverse_transform(self, labels, n_labels, index=None):
        """Top-k label indices (n, k; -1 = none) -> predictions in the fitted form
        (``index``: the row index of a DataFrame answer, default 0 .. n - 1)."""
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
        if self.kind == "frame":
            import pandas as pd  # a DataFrame y was given at fit

            return pd.DataFrame(P.toarray(), columns=self.classes_.tolist(),
                                index=index)
        return P.toarray() if self.kind == "dense" else P

    # ------------------------------------------------- saved state (skxmr.save)
    def get_state(self):
        """The fitted state: ``{"kind", "dtype" (None unless an indicator),
        "classes"}``; :meth:`from_state` rebuilds the encoder from it."""
        return {"kind": self.kind,
                "dtype": np.dtype(self.dtype)
                if self.kind in ("sparse", "dense", "frame") else None,
                "classes": self.classes_}

    @classmethod
    def from_state(cls, state):
        """An encoder from :meth:`get_state` output; ``ValueError`` when it is
        inconsistent (unknown kind, non-numeric indicator dtype, indicator
        classes other than ``0 .. n - 1``, repeated labels)."""
        kind, dtype, classes = state["kind"], state["dtype"], state["classes"]
        if kind not in ("sparse", "dense", "frame", "sets", "multiclass"):
            raise ValueError(f"unknown target kind {kind!r:.40}.")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise ValueError("classes must be a 1-D array.")
        self = cls()
        self.kind = kind
        if kind == "frame":
            if dtype is None or np.dtype(dtype).kind not in "biuf":
                raise ValueError("the dtype of an indicator y must be numeric.")
            if len(set(classes.tolist())) != classes.size:
                raise ValueError("the labels repeat.")
            self.dtype = np.dtype(dtype)
        elif kind in ("sparse", "dense"):
            if dtype is None or np.dtype(dtype).kind not in "biuf":
                raise ValueError("the dtype of an indicator y must be numeric.")
            if classes.dtype.kind not in "iu" or not np.array_equal(
                    classes, np.arange(classes.size)):
                raise ValueError("the classes of an indicator y must be 0 .. "
                                 f"{classes.size - 1}.")
            self.dtype = np.dtype(dtype)
        elif dtype is not None:
            raise ValueError(f"{kind!r} targets have no dtype.")
        else:
            if len(set(classes.tolist())) != classes.size:
                raise ValueError("the labels repeat.")
            if kind == "sets":  # as fit leaves it
                self._binarizer = MultiLabelBinarizer(
                    classes=classes.tolist(), sparse_output=True).fit([])
        self.classes_ = classes
        return self


def _append_classes(classes, new):
    """``classes`` followed by the labels ``new``, as one 1-D array that keeps
    the old labels as they were (an object array when the types differ)."""
    classes = np.asarray(classes)
    if not new:
        return classes.copy()
    added = np.asarray(new)
    same = (classes.dtype.kind == added.dtype.kind and classes.dtype.kind in "iuU")
    if same:
        return np.concatenate([classes, added])
    out = np.empty(classes.size + len(new), dtype=object)
    out[:classes.size] = list(classes.tolist())
    out[classes.size:] = list(new)
    return out


def _frame_values(frame):
    """The values of a DataFrame ``y``: one numeric dtype when every column is
    numeric or bool (``to_numpy`` would give objects for mixed int/bool)."""
    dtypes = list(getattr(frame, "dtypes", []))
    if dtypes and all(np.dtype(d).kind in "biuf" for d in dtypes
                      if isinstance(d, np.dtype)) and all(
            isinstance(d, np.dtype) for d in dtypes):
        return frame.to_numpy(dtype=np.result_type(*dtypes))
    return frame.to_numpy()


def _column_labels(columns):
    """The column names of a DataFrame as distinct labels (an ndarray)."""
    names = list(columns)
    if len(set(names)) != len(names):
        raise ValueError("y is a DataFrame with repeated column names; its column "
                         "names are the labels, so they must be distinct.")
    labels = np.empty(len(names), dtype=object)
    labels[:] = names
    if all(isinstance(name, (str, np.str_)) for name in names):
        return labels.astype(str)
    if all(isinstance(name, (int, np.integer)) and not isinstance(name, bool)
           for name in names):
        return labels.astype(np.int64)
    return labels


def frame_to_indicator(y, classes):
    """A DataFrame 0/1 indicator (columns: labels, matched by name, in any order)
    or a matrix with one column per label of ``classes`` -> CSR float32 in the
    columns of ``classes``."""
    columns = getattr(y, "columns", None) if not sp.issparse(y) else None
    if columns is not None:
        names = _column_labels(columns)
        if set(names.tolist()) != set(np.asarray(classes).tolist()):
            missing = sorted(map(str, set(np.asarray(classes).tolist())
                                 - set(names.tolist())))[:5]
            extra = sorted(map(str, set(names.tolist())
                               - set(np.asarray(classes).tolist())))[:5]
            raise ValueError(
                "the columns of the DataFrame y are not the labels of the model "
                f"(missing: {missing}, unknown: {extra}).")
        y = _frame_values(y[list(np.asarray(classes).tolist())])
    elif not sp.issparse(y):
        y = np.asarray(y)
    check_sparse_structure(y, "y")
    if getattr(y, "ndim", 0) != 2:
        raise ValueError(f"y must be a 2-D indicator of the model's {len(classes)} "
                         f"labels, got shape {getattr(y, 'shape', None)}.")
    Y = sp.csr_matrix(y, dtype=np.float32, copy=True)
    if Y.shape[1] != len(classes):
        raise ValueError(f"y has {Y.shape[1]} columns; the model has {len(classes)} "
                         "labels.")
    return binary_indicator(Y, "y")


def binary_indicator(Y, name="y"):
    """THE y contract of an indicator matrix, for every estimator: a CSR float32
    ``Y`` (changed in place) with finite values; an entry stored twice counts
    once; negative entries are refused (0 = not relevant, anything else =
    relevant). Returns the 0/1 CSR matrix."""
    if Y.nnz and not np.isfinite(Y.data).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    Y.sum_duplicates()
    if Y.nnz and Y.data.min() < 0:
        raise ValueError(
            f"{name} is an indicator matrix, so it must hold 0 (not relevant) and 1 "
            "(relevant); it has negative values (a -1/+1 indicator? map -1 to 0)."
        )
    Y.data = (Y.data != 0).astype(np.float32)
    Y.eliminate_zeros()
    return Y


def _label_kind(label):
    if isinstance(label, (bool, np.bool_)):
        return "bool"
    if isinstance(label, (int, np.integer)):
        return "int"
    if isinstance(label, (float, np.floating)):
        return "float"
    return None


def _check_distinct_labels(labels):
    """Refuse labels of different types that Python takes as one (``1``, ``1.0``
    and ``True`` are equal and hash alike, so they would merge into one class)."""
    seen = {}
    for label in labels:
        kind = _label_kind(label)
        if kind is None:
            continue
        first = seen.setdefault(label, (kind, label))
        if first[0] != kind:
            raise ValueError(
                f"y holds the labels {first[1]!r} ({first[0]}) and {label!r} ({kind}), "
                "which Python takes as one and the same label; they would merge into "
                "one class. Use one type for the labels (e.g. all int or all str)."
            )


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


def _check_1d_labels(y):
    """Reject 1-D float labels that are NaN, infinite or continuous (regression
    targets): a classifier needs discrete labels."""
    if y.dtype.kind != "f":
        return
    if np.isnan(y).any():
        raise ValueError("Input y contains NaN.")
    if np.isinf(y).any():
        raise ValueError("Input y contains infinity.")
    if np.any(y != np.round(y)):
        raise ValueError(
            "Unknown label type: continuous. y holds non-integer floats (a "
            "regression target?); a classifier needs discrete labels such as ints "
            "or str."
        )


def _is_collection(value):
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray))
