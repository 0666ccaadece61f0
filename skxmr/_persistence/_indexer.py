"""Codec of a fitted :class:`~skxmr.LabelIndexer`, and of the ``indexer=``
parameter of the classifiers (None, a LabelIndexer's parameters, a LabelTree or
a chain of assignment matrices)."""

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from skxmr._indexer import LabelIndexer
from skxmr._label_tree import LabelTree
from skxmr._persistence._codec import (
    names_from_json,
    names_to_json,
    params_from_json,
    params_to_json,
    shape_from_json,
)
from skxmr._persistence._errors import ModelFormatError, check_int, check_keys
from skxmr._persistence._parts import (
    get_tree,
    put_tree,
    restore,
    targets_from_json,
    targets_to_json,
)
from skxmr.utils import effective_n_threads

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ATTRIBUTES = ("n_features_in_", "feature_names_in_", "n_labels_", "n_levels",
               "leaf_centroids_", "label_encoder")


def check_fitted(model, attributes):
    if not all(hasattr(model, a) for a in attributes):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted; call fit before saving it."
        )


def check_n_jobs(est):
    """n_jobs as the estimators will use it (0 passes their constraints)."""
    if est.n_jobs is not None and abs(est.n_jobs) >= 2**31:
        raise ValueError(f"n_jobs={est.n_jobs} is out of range.")
    effective_n_threads(est.n_jobs)


# ------------------------------------------------------- the fitted indexer
def dump(model, writer):
    check_fitted(model, ("tree_", "n_labels_", "n_features_in_"))
    params = params_to_json(model, "LabelIndexer")
    tree = model.tree_
    put_tree(writer, "tree", tree)
    n_features = int(model.n_features_in_)
    C = getattr(model, "leaf_centroids_", None)
    centroids = None
    if C is not None:
        if sp.issparse(C):
            if C.format not in ("csr", "csc"):
                C = C.tocsr()
            fmt = C.format
        else:
            C = np.asarray(C)
            fmt = "dense"
        if C.ndim != 2 or C.dtype not in _FLOAT_DTYPES:
            raise ValueError("leaf_centroids_ must be a 2-D float32 or float64 matrix.")
        if fmt == "dense":
            writer.add("leaf_centroids", C)
        else:
            writer.add_sparse("leaf_centroids", C)
        centroids = {"format": fmt, "shape": [int(d) for d in C.shape]}
    state = model._get_label_state()
    attributes = {
        "n_features_in_": n_features,
        "feature_names_in_": names_to_json(model, n_features),
        "n_labels_": int(model.n_labels_),
        "n_levels": int(tree.n_levels),
        "leaf_centroids_": centroids,
        "label_encoder": None if state is None else targets_to_json(
            state, writer, tree.n_labels, prefix="label_encoder."),
    }
    return params, attributes


def load(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    check_keys(attributes, _ATTRIBUTES, where, "attributes")
    n_features = check_int(attributes["n_features_in_"], f"{where}: n_features_in_", 1)
    n_labels = check_int(attributes["n_labels_"], f"{where}: n_labels_", 1)
    n_levels = check_int(attributes["n_levels"], f"{where}: n_levels", 1, 10_000)
    model = params_from_json(LabelIndexer, meta["params"], f"{where}: params",
                             check=check_n_jobs)
    tree = get_tree(reader, "tree")
    if tree.n_levels != n_levels or tree.n_labels != n_labels:
        raise ModelFormatError(f"{where}: n_levels/n_labels_ do not match the tree.")
    spec = attributes["leaf_centroids_"]
    centroids = None
    if spec is not None:
        check_keys(spec, ("format", "shape"), where, "attributes.leaf_centroids_")
        shape = shape_from_json(spec["shape"], where)
        if shape[0] != tree.leaf_sizes().size:
            raise ModelFormatError(f"{where}: leaf_centroids_ must have one row per "
                                   "leaf cluster.")
        if spec["format"] == "dense":
            centroids = reader.array("leaf_centroids", _FLOAT_DTYPES, 2, shape,
                                     finite=True)
        elif spec["format"] in ("csr", "csc"):
            centroids = reader.sparse("leaf_centroids", spec["format"], shape,
                                      _FLOAT_DTYPES)
        else:
            raise ModelFormatError(f"{where}: unknown leaf_centroids_ format "
                                   f"{spec['format']!r:.20}.")
    state = attributes["label_encoder"]
    if state is not None:
        state = targets_from_json(state, reader, n_labels, "label_encoder.",
                                  "attributes.label_encoder")
    names = names_from_json(attributes["feature_names_in_"], n_features, where)
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = names
    restore(model._set_label_state, state, where, "attributes.label_encoder")
    model.tree_ = tree
    model.n_labels_ = n_labels
    if centroids is not None:
        model.leaf_centroids_ = centroids
    return model


# ---------------------------------------------------- the indexer parameter
def indexer_to_json(indexer, model, writer):
    if indexer is None:
        return None
    if type(indexer) is LabelIndexer:
        return {"class": "LabelIndexer",
                "params": params_to_json(indexer, "XRLinearClassifier.indexer")}
    if type(indexer) is LabelTree:
        same = indexer is model.tree_ or indexer.equals(model.tree_)
        if not same:
            put_tree(writer, "indexer", indexer)
        return {"class": "LabelTree", "same_as_tree_": same}
    if isinstance(indexer, list):
        matrices = []
        for i, C in enumerate(indexer):
            if not sp.issparse(C):
                C = np.asarray(C)
                if C.ndim != 2:
                    raise ValueError(f"indexer[{i}] must be a 2-D matrix.")
            if C.dtype.kind not in "biuf":
                raise TypeError(f"indexer[{i}] has dtype {C.dtype}; cannot be saved.")
            if not sp.issparse(C) or C.format not in ("csr", "csc"):
                C = sp.csr_matrix(C)
            writer.add_sparse(f"indexer.chain.{i}", C)
            matrices.append({"format": C.format, "shape": [int(d) for d in C.shape]})
        return {"class": "chain", "matrices": matrices}
    raise TypeError(
        f"an indexer of type {type(indexer).__name__} cannot be saved in the safe "
        "format (only None, LabelIndexer, LabelTree or a list of assignment "
        "matrices). After fit only tree_ is used: model.set_params(indexer="
        "model.tree_) makes the model savable; or use pickle/joblib."
    )


def indexer_from_json(value, reader, tree):
    where = reader.meta_file
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{where}: params.indexer must be null or an object.")
    kind = value.get("class")
    if kind == "LabelIndexer":
        check_keys(value, ("class", "params"), where, "params.indexer")
        return params_from_json(LabelIndexer, value["params"],
                                f"{where}: params.indexer", check=check_n_jobs)
    if kind == "LabelTree":
        check_keys(value, ("class", "same_as_tree_"), where, "params.indexer")
        if type(value["same_as_tree_"]) is not bool:
            raise ModelFormatError(f"{where}: params.indexer.same_as_tree_ must be a "
                                   "bool.")
        return tree if value["same_as_tree_"] else get_tree(reader, "indexer")
    if kind == "chain":
        check_keys(value, ("class", "matrices"), where, "params.indexer")
        specs = value["matrices"]
        if not isinstance(specs, list) or not 1 <= len(specs) <= 1000:
            raise ModelFormatError(f"{where}: params.indexer.matrices must be a list.")
        chain = []
        for i, spec in enumerate(specs):
            check_keys(spec, ("format", "shape"), where,
                       f"params.indexer.matrices[{i}]")
            if spec["format"] not in ("csr", "csc"):
                raise ModelFormatError(f"{where}: unknown matrix format "
                                       f"{spec['format']!r:.20}.")
            shape = shape_from_json(spec["shape"], where)
            chain.append(reader.sparse(f"indexer.chain.{i}", spec["format"], shape,
                                       "biuf"))
        try:
            LabelTree.from_chain(chain)
        except (ValueError, TypeError, IndexError) as exc:
            raise ModelFormatError(f"{where}: the indexer chain is not a valid label "
                                   f"tree: {exc}") from None
        return chain
    raise ModelFormatError(
        f"{where}: indexer class {kind!r:.40} is not one skxmr can load "
        "(LabelIndexer, LabelTree or chain)."
    )
