"""Codecs of the pieces several models share: a ``LabelTree`` and the saved
state of a target encoder (``TargetEncoder.get_state()``)."""

import os

import numpy as np

from skxmr._label_tree import LabelTree
from skxmr._persistence._codec import (
    decode_label,
    dtype_name,
    encode_label,
    parse_dtype,
)
from skxmr._persistence._errors import ModelFormatError, check_keys

_TARGET_KINDS = ("sparse", "dense", "frame", "sets", "multiclass")


# -------------------------------------------------------------------- tree
def put_tree(writer, prefix, tree):
    if type(tree) is not LabelTree:
        raise TypeError(f"{prefix} must be a LabelTree, got {type(tree).__name__}.")
    writer.add(f"{prefix}.level_ptr", tree.level_ptr)
    writer.add(f"{prefix}.child_ptr", tree.child_ptr)
    writer.add(f"{prefix}.label_perm", tree.label_perm)


def get_tree(reader, prefix):
    """The tree, checked by LabelTree's own validators."""
    arrays = [reader.array(f"{prefix}.{name}", (np.dtype(np.int64),), 1)
              for name in ("level_ptr", "child_ptr", "label_perm")]
    try:
        return LabelTree(*[np.asarray(a) for a in arrays])
    except (ValueError, TypeError, IndexError) as exc:
        raise ModelFormatError(
            f"{os.path.join(reader.path, prefix)}.*.npy: invalid label tree: {exc}"
        ) from None


# ----------------------------------------------------------------- targets
def targets_to_json(state, writer, n_labels, prefix=""):
    """A ``TargetEncoder.get_state()`` dict as JSON (labels in ``<prefix>classes``
    when numeric or str, else in the JSON with their exact types)."""
    kind = state["kind"]
    classes = np.asarray(state["classes"])
    if classes.ndim != 1 or classes.shape[0] != n_labels:
        raise ValueError(f"classes_ must have shape ({n_labels},), got "
                         f"{classes.shape}.")
    out = {"kind": kind, "dtype": None, "classes": None}
    if kind in ("sparse", "dense", "frame"):
        out["dtype"] = dtype_name(state["dtype"], "the dtype of y")
    elif kind not in _TARGET_KINDS:
        raise ValueError(f"unknown target kind {kind!r}.")
    if classes.dtype.kind in "biufU" and classes.dtype.fields is None:
        writer.add(f"{prefix}classes", classes)
    elif classes.dtype.kind == "O":
        out["classes"] = [encode_label(v) for v in classes]
    else:
        raise ValueError(
            f"labels of dtype {classes.dtype} cannot be saved in the safe format; use "
            "pickle or joblib for this model."
        )
    return out


def targets_from_json(obj, reader, n_labels, prefix="", what="attributes.targets"):
    """The state dict :func:`targets_to_json` wrote (checked: it goes to
    ``TargetEncoder.from_state`` through :func:`restore`)."""
    where = reader.meta_file
    check_keys(obj, ("kind", "dtype", "classes"), where, what)
    kind = obj["kind"]
    if kind not in _TARGET_KINDS:
        raise ModelFormatError(f"{where}: unknown target kind {kind!r:.40}.")
    dtype = None
    if kind in ("sparse", "dense", "frame"):
        dtype = parse_dtype(obj["dtype"], where)
        if dtype.kind not in "biuf":
            raise ModelFormatError(f"{where}: the dtype of y must be numeric.")
    elif obj["dtype"] is not None:
        raise ModelFormatError(f"{where}: {what}.dtype must be null for {kind!r} "
                               "targets.")
    if obj["classes"] is None:
        classes = reader.array(f"{prefix}classes", "biufU", 1, (n_labels,))
    else:
        labels = obj["classes"]
        if not isinstance(labels, list) or len(labels) != n_labels:
            raise ModelFormatError(f"{where}: {what}.classes must be a list of "
                                   f"{n_labels} labels.")
        classes = np.empty(n_labels, dtype=object)
        try:
            for i, label in enumerate(labels):
                classes[i] = decode_label(label)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise ModelFormatError(f"{where}: {what}.classes: {exc}") from None
    return {"kind": kind, "dtype": dtype, "classes": classes}


def restore(setter, state, where, what):
    """``setter(state)`` (an estimator's own state method), its ``ValueError``
    or ``TypeError`` as ModelFormatError."""
    try:
        setter(state)
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"{where}: invalid {what}: {exc}") from None
