"""Codec of a fitted :class:`~skxmr.XRLinearClassifier`.

The weights have one source of truth on disk, ``coef_`` (one float32 CSC matrix
per tree level, ``coef.<t>.*``): the beam-search layout is not stored; the
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


def _check_params(est):
    check_n_jobs(est)
    get_post_processor(est.post_processor)


def dump(model, writer):
    check_fitted(model, ("tree_", "coef_", "classes_", "n_features_in_"))
    tree = model.tree_
    put_tree(writer, "tree", tree)
    params = params_to_json(model, "XRLinearClassifier",
                            indexer=lambda v: indexer_to_json(v, model, writer))
    n_features = int(model.n_features_in_)
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
        writer.add_sparse(f"coef.{t}", W)
    n_iter = getattr(model, "n_iter_", None)
    attributes = {
        "n_features_in_": n_features,
        "feature_names_in_": names_to_json(model, n_features),
        "n_levels": int(tree.n_levels),
        "n_iter_": None if n_iter is None else plain(n_iter, "n_iter_"),
        "targets": targets_to_json(model._get_target_state(), writer, tree.n_labels),
    }
    return params, attributes


def load(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    check_keys(attributes, _ATTRIBUTES, where, "attributes")
    n_iter = attributes["n_iter_"]
    if n_iter is not None:
        n_iter = check_int(n_iter, f"{where}: n_iter_")
    n_features = check_int(attributes["n_features_in_"], f"{where}: n_features_in_", 1,
                           2**31 - 2)
    n_levels = check_int(attributes["n_levels"], f"{where}: n_levels", 1, 10_000)
    tree = get_tree(reader, "tree")
    if tree.n_levels != n_levels:
        raise ModelFormatError(f"{where}: n_levels is {n_levels} but the tree has "
                               f"{tree.n_levels} levels.")
    model = params_from_json(XRLinearClassifier, meta["params"], f"{where}: params",
                             check=_check_params,
                             indexer=lambda v: indexer_from_json(v, reader, tree))
    coef = [reader.sparse(f"coef.{t}", "csc", (n_features + 1, int(size)),
                          (np.dtype(np.float32),), finite=True, canonical=True)
            for t, size in enumerate(tree.level_sizes, start=1)]
    state = targets_from_json(attributes["targets"], reader, tree.n_labels)
    names = names_from_json(attributes["feature_names_in_"], n_features, where)
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = names
    if n_iter is not None:
        model.n_iter_ = n_iter
    restore(model._set_target_state, state, where, "attributes.targets")
    model.tree_ = tree
    model.coef_ = coef
    return model
