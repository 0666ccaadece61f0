"""Codec of a fitted :class:`~skxmr.XRLinearClassifier`.

The weights have one source of truth on disk, ``coef_`` (one CSC matrix per
tree level, ``coef.<t>.*``, its values in float32, float16 or int8 with a
per-column scale, its indices plain or varint-coded, see :func:`put_weights`;
always float32 once loaded): the beam-search layout is not stored; the
estimator builds it from ``coef_`` at the first prediction, as after ``fit`` or
unpickling. Loading checks everything that layout relies on: the shapes against
the tree, finite weights, indices in range, sorted and unique within a column.
"""

import numpy as np
import scipy.sparse as sp

from skxmr._persistence._codec import (
    names_from_json,
    names_to_json,
    params_from_json,
    params_to_json,
    plain,
)
from skxmr._persistence._errors import ModelFormatError, check_int, check_keys
from skxmr._persistence._indexer import (
    check_fitted,
    check_n_jobs,
    indexer_from_json,
    indexer_to_json,
)
from skxmr._persistence._parts import (
    get_tree,
    put_tree,
    restore,
    targets_from_json,
    targets_to_json,
)
from skxmr._postprocess import get_post_processor
from skxmr._xrlinear import XRLinearClassifier

_ATTRIBUTES = ("n_features_in_", "feature_names_in_", "n_levels", "n_iter_", "targets")
# An ensemble (n_estimators > 1) stores each member's tree and weights under
# ``member.<i>.`` (``member.<i>.tree.*``, ``member.<i>.coef.<t>.*``) and, in
# place of ``n_levels``, one entry per member: its seed, levels and n_iter_.
_ENSEMBLE_ATTRIBUTES = ("n_features_in_", "feature_names_in_", "members", "n_iter_",
                        "targets")
_MEMBER_KEYS = ("random_state", "n_levels", "n_iter_")


def _check_params(est):
    check_n_jobs(est)
    get_post_processor(est.post_processor)


WEIGHT_DTYPES = ("float32", "float16", "int8")
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def put_weights(writer, prefix, W, weights, index_coding="plain"):
    """Write the canonical float32 CSC ``W`` as ``<prefix>.*`` in ``weights``
    precision, its indices as ``index_coding`` says (see ``Writer.add_sparse``).

    ``"float32"``: as is. ``"float16"``: the values rounded to float16 (an
    overflow raises). ``"int8"``: ``round(127 * w / s_j)`` with the per-column
    scale ``s_j = max_i |w_ij|`` in ``<prefix>.scale`` (float32, one per
    column); the weights that round to 0 are dropped. :func:`get_weights`
    reads all three back as float32.
    """
    if weights == "float32":
        writer.add_sparse(prefix, W, index_coding=index_coding)
        return
    if weights == "float16":
        data = W.data.astype(np.float16)
        if not np.isfinite(data).all():
            raise ValueError(f"weights above {_FLOAT16_MAX:g} in magnitude overflow "
                             "float16; save with weights='int8' or 'float32'.")
        writer.add_sparse(prefix, W, data=data, index_coding=index_coding)
        return
    col = np.repeat(np.arange(W.shape[1]), np.diff(W.indptr))
    scale = np.zeros(W.shape[1], dtype=np.float32)
    np.maximum.at(scale, col, np.abs(W.data))
    safe = np.where(scale > 0, scale, 1).astype(np.float64)
    q = np.rint(W.data / safe[col] * 127).astype(np.int8)
    Q = sp.csc_matrix((q, W.indices, W.indptr), shape=W.shape)
    Q.eliminate_zeros()
    writer.add_sparse(prefix, Q, index_coding=index_coding)
    writer.add(f"{prefix}.scale", scale)


def get_weights(reader, prefix, shape):
    """The float32 CSC matrix :func:`put_weights` wrote (any of its precisions:
    the dtype of ``<prefix>.data`` tells which; the reader casts float16)."""
    W = reader.sparse(prefix, "csc", shape,
                      (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int8)),
                      finite=True, canonical=True)
    if W.dtype != np.int8:
        return W
    scale = reader.array(f"{prefix}.scale", (np.dtype(np.float32),), 1, (shape[1],),
                         finite=True)
    data = W.data.astype(np.float32)
    data *= np.repeat(np.asarray(scale) / np.float32(127), np.diff(W.indptr))
    return sp.csc_matrix((data, W.indices, W.indptr), shape=shape)


def dump(model, writer, weights="float32", index_coding="plain"):
    ensemble = model.n_estimators > 1
    check_fitted(model, (("estimators_",) if ensemble else ("tree_", "coef_"))
                 + ("classes_", "n_features_in_"))
    params = params_to_json(model, "XRLinearClassifier",
                            indexer=lambda v: indexer_to_json(v, model, writer))
    n_features = int(model.n_features_in_)
    if ensemble:
        trees = {"members": _dump_members(model, writer, n_features, weights,
                                          index_coding)}
        n_labels = len(model.classes_)
    else:
        entry = _dump_tree(model, writer, n_features, weights, index_coding)
        trees = {"n_levels": entry["n_levels"]}
        n_labels = model.tree_.n_labels
    n_iter = getattr(model, "n_iter_", None)
    attributes = {
        "n_features_in_": n_features,
        "feature_names_in_": names_to_json(model, n_features),
        **trees,
        "n_iter_": None if n_iter is None else plain(n_iter, "n_iter_"),
        "targets": targets_to_json(model._get_target_state(), writer, n_labels),
    }
    return params, attributes


def _dump_members(model, writer, n_features, weights, index_coding):
    """Write every tree of an ensemble under ``member.<i>.``; their entries."""
    members = model.estimators_
    if not isinstance(members, list) or len(members) != model.n_estimators:
        raise ValueError(f"estimators_ must be a list of {model.n_estimators} models.")
    entries = []
    for i, member in enumerate(members):
        check_fitted(member, ("tree_", "coef_"))
        if member.tree_.n_labels != len(model.classes_):
            raise ValueError(f"estimators_[{i}] has {member.tree_.n_labels} labels, "
                             f"the ensemble {len(model.classes_)}.")
        seed = member.random_state
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"estimators_[{i}].random_state must be an int seed.")
        entry = _dump_tree(member, writer.prefixed(f"member.{i}."), n_features,
                           weights, index_coding)
        entries.append({"random_state": int(seed), **entry})
    return entries


def _dump_tree(model, writer, n_features, weights, index_coding):
    """Write one tree and its level weights; returns ``{n_levels, n_iter_}``."""
    tree = model.tree_
    put_tree(writer, "tree", tree)
    coef = model.coef_
    if not isinstance(coef, list) or len(coef) != tree.n_levels:
        raise ValueError(f"coef_ must be a list of {tree.n_levels} matrices.")
    for t, (W, size) in enumerate(zip(coef, tree.level_sizes), start=1):
        expected = (n_features + 1, int(size))
        if not (sp.issparse(W) and W.format == "csc" and W.dtype == np.float32
                and W.shape == expected):
            raise ValueError(
                f"coef_[{t - 1}] must be a float32 CSC matrix of shape {expected}."
            )
        if not np.isfinite(W.data).all():
            raise ValueError(f"coef_[{t - 1}] has non-finite weights.")
        if not W.has_canonical_format:  # a sorted copy: the files are canonical
            W = W.copy()
            W.sum_duplicates()
        put_weights(writer, f"coef.{t}", W, weights, index_coding)
    n_iter = getattr(model, "n_iter_", None)
    return {"n_levels": int(tree.n_levels),
            "n_iter_": None if n_iter is None else plain(n_iter, "n_iter_")}


def load(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    ensemble = isinstance(attributes, dict) and "members" in attributes
    check_keys(attributes, _ENSEMBLE_ATTRIBUTES if ensemble else _ATTRIBUTES, where,
               "attributes")
    n_iter = attributes["n_iter_"]
    if n_iter is not None:
        n_iter = check_int(n_iter, f"{where}: n_iter_")
    n_features = check_int(attributes["n_features_in_"], f"{where}: n_features_in_", 1,
                           2**31 - 2)
    if ensemble:
        model, members = _load_members(meta, reader, attributes["members"], n_features)
        n_labels = members[0][0].n_labels
    else:
        tree, coef = _load_tree(reader, attributes["n_levels"], n_features, where)
        model = params_from_json(XRLinearClassifier, meta["params"], f"{where}: params",
                                 check=_check_params,
                                 indexer=lambda v: indexer_from_json(v, reader, tree))
        if model.n_estimators != 1:
            raise ModelFormatError(f"{where}: n_estimators is {model.n_estimators} "
                                   "but the model has one tree.")
        n_labels = tree.n_labels
    state = targets_from_json(attributes["targets"], reader, n_labels)
    names = names_from_json(attributes["feature_names_in_"], n_features, where)
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = names
    if n_iter is not None:
        model.n_iter_ = n_iter
    restore(model._set_target_state, state, where, "attributes.targets")
    if not ensemble:
        model.tree_ = tree
        model.coef_ = coef
        return model
    model.estimators_ = []
    for tree, coef, member_n_iter, seed in members:
        member = model._member(seed)
        member.tree_, member.coef_ = tree, coef
        if member_n_iter is not None:
            member.n_iter_ = member_n_iter
        model.estimators_.append(member)
    return model


def _load_tree(reader, n_levels, n_features, where):
    n_levels = check_int(n_levels, f"{where}: n_levels", 1, 10_000)
    tree = get_tree(reader, "tree")
    if tree.n_levels != n_levels:
        raise ModelFormatError(f"{where}: n_levels is {n_levels} but the tree has "
                               f"{tree.n_levels} levels.")
    coef = [get_weights(reader, f"coef.{t}", (n_features + 1, int(size)))
            for t, size in enumerate(tree.level_sizes, start=1)]
    return tree, coef


def _load_members(meta, reader, entries, n_features):
    """The ensemble's parameters and its members' ``(tree, coef, n_iter_,
    seed)``, checked against each other."""
    where = reader.meta_file
    if not isinstance(entries, list) or not 2 <= len(entries) <= 10_000:
        raise ModelFormatError(f"{where}: members must be a list of at least 2.")
    members = []
    for i, entry in enumerate(entries):
        name = f"{where}: members[{i}]"
        check_keys(entry, _MEMBER_KEYS, name, "the member")
        seed = check_int(entry["random_state"], f"{name}.random_state", 0, 2**32 - 1)
        n_iter = entry["n_iter_"]
        if n_iter is not None:
            n_iter = check_int(n_iter, f"{name}.n_iter_")
        tree, coef = _load_tree(reader.prefixed(f"member.{i}."), entry["n_levels"],
                                n_features, name)
        if i and tree.n_labels != members[0][0].n_labels:
            raise ModelFormatError(f"{name}: its tree has {tree.n_labels} labels, the "
                                   f"first member's {members[0][0].n_labels}.")
        members.append((tree, coef, n_iter, seed))
    model = params_from_json(XRLinearClassifier, meta["params"], f"{where}: params",
                             check=_check_params,
                             indexer=lambda v: indexer_from_json(v, reader, None))
    if model.n_estimators != len(members):
        raise ModelFormatError(f"{where}: n_estimators is {model.n_estimators} but "
                               f"the model has {len(members)} members.")
    return model, members
