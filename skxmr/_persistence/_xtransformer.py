"""Codec of a fitted :class:`~skxmr.XTransformerClassifier`.

Next to the manifest, its directory holds::

    ranker.*.npy               # the XRLinearClassifier ranker_, its arrays as in
                               # an XRLinearClassifier model, prefixed "ranker."
    vectorizer.terms.npy       # unicode, the TF-IDF vocabulary in column order
    vectorizer.idf.npy         # float64, its idf_
    neighbors.embeddings.npy   # float32, neighbor_embeddings_ (n_neighbors > 0)
    neighbors.labels.*.npy     # float32 CSR, neighbor_labels_ (n_neighbors > 0)
    neighbors.hnsw.npy         # uint8, neighbor_index_ serialised by faiss (HNSW
                               # search only)
    preliminary_tree.*.npy     # preliminary_tree_, when there is one
    zero_shot.embeddings.npy   # float32, zero_shot_embeddings_ (labels added by
    zero_shot.offsets.npy      # text only), float32 zero_shot_offsets_, int64
    zero_shot.columns.npy      # zero_shot_columns_ (only when there are some)
    ranker_columns.npy         # int64, the column of classes_ of each ranker label
                               # (only when they differ from the ranker's own)
    classes*                   # the model's targets, when labels were added
                               # (else those of the ranker)
    encoder/                   # encoder_, saved by sentence-transformers
                               # (safetensors weights, JSON configs, tokenizer)

The manifest's ``folders.encoder`` lists every file under ``encoder/`` with
its SHA-256; the container checks them (regular files only), then
sentence-transformers loads the folder offline (``local_files_only=True``, no
remote code): safetensors weights, never a pickle. Only a ``TfidfVectorizer``
(or None) with plain parameters is savable as the vectorizer; a
``SentenceTransformer`` given as the ``encoder`` parameter is saved as the
fitted ``encoder_``, a name or path as is.
"""

import os

import numpy as np

from skxmr._xtransformer._encoder import (
    embedding_dimension,
    import_sentence_transformers,
    quiet_transformers,
)
from skxmr._xtransformer._ann import hnsw_from_bytes, hnsw_to_bytes
from skxmr._persistence import _vectorizer, _xrlinear
from skxmr._persistence._codec import params_from_json, params_to_json, plain
from skxmr._persistence._errors import ModelFormatError, check_int, check_keys
from skxmr._persistence._indexer import check_fitted, indexer_from_json, indexer_to_json
from skxmr._persistence._parts import (
    get_tree,
    put_tree,
    restore,
    targets_from_json,
    targets_to_json,
)
from skxmr._xrlinear import XRLinearClassifier
from skxmr._xtransformer import XTransformerClassifier

_FITTED_ENCODER = {"fitted_encoder_": True}
_HISTORY_KEYS = ("level", "n_nodes", "steps", "loss_start", "loss_end")
_ATTRIBUTES = ("ranker", "n_neighbor_rows", "vectorizer_", "embedding_dim_", "device_",
               "preliminary_tree_", "fine_tune_history_")
# since the "auto" settings and the HNSW search; older models lack them
_CHOSEN = ("embedding_weight_", "n_neighbors_", "neighbor_weight_", "weight_search_",
           "neighbor_index_")
# written only for a model with labels added by add_labels (zero-shot labels, or
# classes_ / neighbour-vote columns that differ from the ranker's)
_ADDED = ("targets", "n_labels", "n_zero_shot", "ranker_columns", "n_vote_features")


def _neighbors(reader, n_rows, dim, n_labels):
    """(neighbor_embeddings_, neighbor_labels_), or (None, None) when n_rows is null."""
    if n_rows is None:
        return None, None
    n_rows = check_int(n_rows, f"{reader.meta_file}: n_neighbor_rows", 1)
    bank = reader.array("neighbors.embeddings", (np.dtype(np.float32),), 2,
                        (n_rows, dim), finite=True)
    labels = reader.sparse("neighbors.labels", "csr", (n_rows, n_labels),
                           (np.dtype(np.float32),))
    return np.asarray(bank), labels


def _load_encoder(folder):
    sentence_transformers = import_sentence_transformers()
    try:
        with quiet_transformers(verbose=0):
            return sentence_transformers.SentenceTransformer(
                folder, device="cpu", local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds on bad files
        raise ModelFormatError(f"{folder}: the encoder cannot be loaded: "
                               f"{type(exc).__name__}: {exc}") from None


def dump(model, writer):
    check_fitted(model, ("ranker_", "encoder_", "classes_", "embedding_dim_"))
    ranker_params, ranker_attributes = _xrlinear.dump(model.ranker_,
                                                      writer.prefixed("ranker."))

    def encoder_param(value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        return dict(_FITTED_ENCODER)

    def vectorizer_param(value):
        if value is None or isinstance(value, str):
            return value
        return _vectorizer.params_to_json(value, "XTransformerClassifier.vectorizer")

    def ranker_param(value):
        if value is None:
            return None
        if type(value) is not XRLinearClassifier:
            raise TypeError("only an XRLinearClassifier ranker can be saved in the "
                            "safe format; use pickle or joblib.")
        return params_to_json(
            value, "XTransformerClassifier.ranker",
            indexer=lambda v: indexer_to_json(v, model, writer.prefixed("param.")))

    params = params_to_json(
        model, "XTransformerClassifier", encoder=encoder_param,
        vectorizer=vectorizer_param, ranker=ranker_param,
        indexer=lambda v: indexer_to_json(v, model, writer),
        device=lambda v: str(v))
    vectorizer = None
    if model.vectorizer_ is not None:
        vectorizer = _vectorizer.params_to_json(model.vectorizer_,
                                                "XTransformerClassifier.vectorizer_")
        vectorizer["n_terms"] = _vectorizer.put_fitted(writer, model.vectorizer_)
    preliminary = getattr(model, "preliminary_tree_", None)
    if preliminary is not None:
        put_tree(writer, "preliminary_tree", preliminary)
    bank = getattr(model, "neighbor_embeddings_", None)
    if bank is not None:
        writer.add("neighbors.embeddings", np.asarray(bank, dtype=np.float32))
        writer.add_sparse("neighbors.labels", model.neighbor_labels_)
    index = getattr(model, "neighbor_index_", None)
    if index is not None:
        writer.add("neighbors.hnsw", hnsw_to_bytes(index))
    encoder = model.encoder_

    def save_encoder(folder):
        with quiet_transformers(verbose=0):
            encoder.save(folder, create_model_card=False, safe_serialization=True)

    writer.add_folder("encoder", save_encoder)
    attributes = {
        "ranker": {"params": ranker_params, "attributes": ranker_attributes},
        "n_neighbor_rows": None if bank is None else int(bank.shape[0]),
        "vectorizer_": vectorizer,
        "embedding_dim_": int(model.embedding_dim_),
        "device_": str(model.device_),
        "preliminary_tree_": preliminary is not None,
        "fine_tune_history_": [{key: plain(entry[key], "fine_tune_history_")
                                for key in _HISTORY_KEYS}
                               for entry in model.fine_tune_history_],
        "embedding_weight_": float(model.embedding_weight_),
        "n_neighbors_": int(model.n_neighbors_),
        "neighbor_weight_": float(model.neighbor_weight_),
        "weight_search_": [[[float(c[0]), int(c[1]), float(c[2])], float(score)]
                           for c, score in model.weight_search_],
        "neighbor_index_": index is not None,
    }
    attributes.update(_dump_added(model, writer, bank))
    return params, attributes


def _dump_added(model, writer, bank):
    """The ``_ADDED`` attributes (and their arrays) of a model whose labels
    grew by ``add_labels``; nothing for any other."""
    zs_columns, zs_embeddings, zs_offsets = model._zero_shot_state()
    columns = getattr(model, "_ranker_columns", None)
    n_labels = len(model.classes_)
    n_votes = getattr(model, "_n_votes", None)
    if bank is None or n_votes is None:
        n_votes = None
    if not (zs_columns.size or columns is not None or n_labels != len(
            model.ranker_.classes_) or (n_votes is not None and n_votes != n_labels)):
        return {}
    if zs_columns.size:
        writer.add("zero_shot.columns", np.asarray(zs_columns, dtype=np.int64))
        writer.add("zero_shot.embeddings", np.asarray(zs_embeddings, dtype=np.float32))
        writer.add("zero_shot.offsets", np.asarray(zs_offsets, dtype=np.float32))
    if columns is not None:
        writer.add("ranker_columns", np.asarray(columns, dtype=np.int64))
    return {"targets": targets_to_json(model._get_target_state(), writer, n_labels),
            "n_labels": n_labels,
            "n_zero_shot": int(zs_columns.size),
            "ranker_columns": columns is not None,
            "n_vote_features": n_votes}


def _load_added(attributes, reader, n_ranker, dim):
    """(target state or None, zero-shot columns, embeddings, offsets, ranker
    columns or None, n_vote_features or None), checked."""
    where = reader.meta_file
    if "targets" not in attributes:
        return None, None, None, None, None, None
    present = [key for key in _ADDED if key in attributes]
    if len(present) != len(_ADDED):
        raise ModelFormatError(f"{where}: attributes has {present} but not all of "
                               f"{list(_ADDED)}.")
    n_zero = check_int(attributes["n_zero_shot"], f"{where}: n_zero_shot", 0)
    has_columns = attributes["ranker_columns"]
    if type(has_columns) is not bool:
        raise ModelFormatError(f"{where}: ranker_columns must be a bool.")
    n_labels = check_int(attributes["n_labels"], f"{where}: n_labels", n_ranker)
    obj = attributes["targets"]
    state = targets_from_json(obj, reader, n_labels)
    n_votes = attributes["n_vote_features"]
    if n_votes is not None:
        n_votes = check_int(n_votes, f"{where}: n_vote_features", 1, n_labels)
    zs_columns = np.zeros(0, dtype=np.int64)
    zs_embeddings = np.zeros((0, dim), dtype=np.float32)
    zs_offsets = np.zeros(0, dtype=np.float32)
    if n_zero:
        zs_columns = np.asarray(reader.array("zero_shot.columns", (np.dtype(np.int64),),
                                             1, (n_zero,)))
        zs_embeddings = np.asarray(reader.array(
            "zero_shot.embeddings", (np.dtype(np.float32),), 2, (n_zero, dim),
            finite=True))
        zs_offsets = np.asarray(reader.array("zero_shot.offsets", (np.dtype(np.float32),),
                                             1, (n_zero,), finite=True))
        if np.any(zs_offsets >= 1) or np.any(zs_offsets < -1):
            raise ModelFormatError(f"{where}: zero_shot.offsets must lie in [-1, 1).")
    columns = None
    if has_columns:
        columns = np.asarray(reader.array("ranker_columns", (np.dtype(np.int64),), 1,
                                          (n_ranker,)))
    ranked = np.arange(n_ranker) if columns is None else columns
    every = np.concatenate([ranked, zs_columns])
    if every.size != n_labels or not np.array_equal(np.sort(every), np.arange(n_labels)):
        raise ModelFormatError(f"{where}: the ranker's columns and the zero-shot "
                               f"columns must cover the {n_labels} labels once each.")
    return state, zs_columns, zs_embeddings, zs_offsets, columns, n_votes


def _chosen(attributes, model, where):
    """(embedding_weight_, n_neighbors_, neighbor_weight_, weight_search_,
    has_index) of the attributes; from the parameters for an older model."""
    if not any(key in attributes for key in _CHOSEN):
        for name in ("embedding_weight", "n_neighbors", "neighbor_weight"):
            if getattr(model, name) == "auto":
                raise ModelFormatError(f"{where}: {name}='auto' but no chosen value.")
        return (model.embedding_weight, model.n_neighbors, model.neighbor_weight, [],
                False)
    ew, nn, nw = (attributes["embedding_weight_"], attributes["n_neighbors_"],
                  attributes["neighbor_weight_"])
    nn = check_int(nn, f"{where}: n_neighbors_", 0)
    for name, value in (("embedding_weight_", ew), ("neighbor_weight_", nw)):
        if type(value) not in (int, float) or not 0 < value < float("inf"):
            raise ModelFormatError(f"{where}: {name} must be a positive number.")
    for name, value in (("embedding_weight", ew), ("n_neighbors", nn),
                        ("neighbor_weight", nw)):
        if getattr(model, name) not in ("auto", value):
            raise ModelFormatError(f"{where}: {name}_={value} but the parameter is "
                                   f"{getattr(model, name)!r}.")
    search = attributes["weight_search_"]
    try:
        search = [((float(c[0]), int(c[1]), float(c[2])), float(score))
                  for c, score in search]
    except (TypeError, ValueError, IndexError):
        raise ModelFormatError(f"{where}: invalid weight_search_.") from None
    if type(attributes["neighbor_index_"]) is not bool:
        raise ModelFormatError(f"{where}: neighbor_index_ must be a bool.")
    return float(ew), nn, float(nw), search, attributes["neighbor_index_"]


def load(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    check_keys(attributes, _ATTRIBUTES + tuple(k for k in _CHOSEN + _ADDED
                                               if k in attributes),
               where, "attributes")
    ranker_meta = attributes["ranker"]
    check_keys(ranker_meta, ("params", "attributes"), where, "attributes.ranker")
    ranker = _xrlinear.load(ranker_meta, reader.prefixed("ranker."))

    def encoder_param(value):
        if value == _FITTED_ENCODER:
            return None  # set to the loaded encoder_ below
        if value is None or isinstance(value, str):
            return value
        raise ModelFormatError(f"{where}: params.encoder must be null, a string or "
                               f"{_FITTED_ENCODER}.")

    def vectorizer_param(value):
        if value is None or value == "tfidf":
            return value
        if isinstance(value, dict):
            return _vectorizer.params_from_json(value, f"{where}: params.vectorizer")
        raise ModelFormatError(f"{where}: params.vectorizer must be null, 'tfidf' or "
                               "an object.")

    def ranker_param(value):
        if value is None:
            return None
        return params_from_json(
            XRLinearClassifier, value, f"{where}: params.ranker",
            indexer=lambda v: indexer_from_json(v, reader.prefixed("param."),
                                                getattr(ranker, "tree_", None)))

    def device_param(value):
        if not isinstance(value, str):
            raise ModelFormatError(f"{where}: params.device must be a string.")
        return value

    model = params_from_json(
        XTransformerClassifier, meta["params"], f"{where}: params",
        encoder=encoder_param, vectorizer=vectorizer_param, ranker=ranker_param,
        indexer=lambda v: indexer_from_json(v, reader, getattr(ranker, "tree_", None)),
        device=device_param)
    spec = attributes["vectorizer_"]
    vectorizer = None
    if spec is not None:
        if not isinstance(spec, dict):
            raise ModelFormatError(f"{where}: attributes.vectorizer_ must be an object.")
        spec = dict(spec)
        n_terms = check_int(spec.pop("n_terms", None), f"{where}: vectorizer_.n_terms",
                            1)
        vectorizer = _vectorizer.get_fitted(
            reader, _vectorizer.params_from_json(spec, f"{where}: attributes."
                                                 "vectorizer_"), n_terms)
    dim = check_int(attributes["embedding_dim_"], f"{where}: embedding_dim_", 1, 1 << 20)
    n_sparse = 0 if vectorizer is None else len(vectorizer.vocabulary_)
    state, zs_columns, zs_embeddings, zs_offsets, columns, n_added_votes = _load_added(
        attributes, reader, len(ranker.classes_), dim)
    n_labels = len(ranker.classes_) if state is None else len(state["classes"])
    bank, bank_labels = _neighbors(reader, attributes["n_neighbor_rows"], dim, n_labels)
    n_votes = 0 if bank is None else (n_added_votes or n_labels)
    if ranker.n_features_in_ != dim + n_sparse + n_votes:
        raise ModelFormatError(
            f"{where}: the ranker has {ranker.n_features_in_} features, not "
            f"embedding_dim_ + terms + neighbour labels = {dim + n_sparse + n_votes}.")
    ew, n_neighbors, nw, search, has_index = _chosen(attributes, model, where)
    if (bank is None) != (n_neighbors == 0):
        raise ModelFormatError(f"{where}: n_neighbors={n_neighbors} but the model "
                               f"{'lacks' if bank is None else 'has'} a neighbour bank.")
    index = None
    if has_index:
        if bank is None:
            raise ModelFormatError(f"{where}: an HNSW index without a neighbour bank.")
        data = reader.array("neighbors.hnsw", (np.dtype(np.uint8),), 1)
        try:
            index = hnsw_from_bytes(np.asarray(data), bank.shape[0], dim)
        except ValueError as exc:
            raise ModelFormatError(f"{where}: neighbors.hnsw: {exc}") from None
    history = attributes["fine_tune_history_"]
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and set(h) == set(_HISTORY_KEYS) for h in history):
        raise ModelFormatError(f"{where}: invalid fine_tune_history_.")
    if type(attributes["preliminary_tree_"]) is not bool:
        raise ModelFormatError(f"{where}: preliminary_tree_ must be a bool.")
    if not isinstance(attributes["device_"], str):
        raise ModelFormatError(f"{where}: device_ must be a string.")
    preliminary = (get_tree(reader, "preliminary_tree")
                   if attributes["preliminary_tree_"] else None)
    encoder = _load_encoder(reader.folder("encoder"))
    if embedding_dimension(encoder) != dim:
        raise ModelFormatError(f"{where}: the encoder makes embeddings of dimension "
                               f"{embedding_dimension(encoder)}, not {dim}.")
    if meta["params"].get("encoder") == _FITTED_ENCODER:
        model.encoder = encoder
    model.encoder_ = encoder
    model.vectorizer_ = vectorizer
    model.neighbor_embeddings_, model.neighbor_labels_ = bank, bank_labels
    model.neighbor_index_ = index
    model.embedding_weight_, model.n_neighbors_, model.neighbor_weight_ = ew, n_neighbors, nw
    model.weight_search_ = search
    model.ranker_ = ranker
    # The text model answers in the form y had at fit: the ranker's form, and
    # its own classes when labels were added.
    if state is None:
        model._set_target_state(ranker._get_target_state())
    else:
        restore(model._set_target_state, state, where, "attributes.targets")
    if zs_columns is None:
        zs_columns = np.zeros(0, dtype=np.int64)
        zs_embeddings = np.zeros((0, dim), dtype=np.float32)
        zs_offsets = np.zeros(0, dtype=np.float32)
    model.zero_shot_columns_ = zs_columns
    model.zero_shot_embeddings_ = zs_embeddings
    model.zero_shot_offsets_ = zs_offsets
    model._ranker_columns = columns
    model._n_votes = None if bank is None else n_votes
    model.tree_ = getattr(ranker, "tree_", None)
    model.preliminary_tree_ = preliminary
    model.fine_tune_history_ = history
    model.embedding_dim_ = dim
    model.device_ = "cpu"  # loaded on the CPU; predict moves it where `device` says
    return model
