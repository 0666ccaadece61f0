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
from skxmr._persistence._parts import get_tree, put_tree
from skxmr._xrlinear import XRLinearClassifier
from skxmr._xtransformer import XTransformerClassifier

_FITTED_ENCODER = {"fitted_encoder_": True}
_HISTORY_KEYS = ("level", "n_nodes", "steps", "loss_start", "loss_end")
_ATTRIBUTES = ("ranker", "n_neighbor_rows", "vectorizer_", "embedding_dim_", "device_",
               "preliminary_tree_", "fine_tune_history_")
# since the "auto" settings and the HNSW search; older models lack them
_CHOSEN = ("embedding_weight_", "n_neighbors_", "neighbor_weight_", "weight_search_",
           "neighbor_index_")


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
    return params, attributes


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
    check_keys(attributes, _ATTRIBUTES + tuple(k for k in _CHOSEN if k in attributes),
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
    n_labels = len(ranker.classes_)
    bank, bank_labels = _neighbors(reader, attributes["n_neighbor_rows"], dim, n_labels)
    n_votes = 0 if bank is None else n_labels
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
    # The text model answers in the form y had at fit: the ranker's form.
    model._set_target_state(ranker._get_target_state())
    model.tree_ = getattr(ranker, "tree_", None)
    model.preliminary_tree_ = preliminary
    model.fine_tune_history_ = history
    model.embedding_dim_ = dim
    model.device_ = "cpu"  # loaded on the CPU; predict moves it where `device` says
    return model
