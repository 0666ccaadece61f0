"""Safe persistence of :class:`~skxmr.XTransformerClassifier` (see
:mod:`skxmr._persistence` for the format it extends).

An XTransformerClassifier model directory holds, next to ``skxmr_model.json``:

::

    ranker.*.npy               # the XRLinearClassifier ranker_, its arrays as in
                               # an XRLinearClassifier model, prefixed "ranker."
    vectorizer.terms.npy       # unicode, the TF-IDF vocabulary in column order
    vectorizer.idf.npy         # float64, its idf_
    neighbors.embeddings.npy   # float32, neighbor_embeddings_ (n_neighbors > 0)
    neighbors.labels.*.npy     # float32 CSR, neighbor_labels_ (n_neighbors > 0)
    encoder/                   # encoder_, saved by sentence-transformers
                               # (safetensors weights, JSON configs, tokenizer)

The JSON ``attributes`` hold the ranker's own ``params``/``attributes``, the
vectorizer's parameters, ``embedding_dim_``, ``device_``, the fine-tuning
history, ``n_neighbor_rows`` (rows of the neighbour bank, or null), and
``encoder_files``: the relative path and SHA-256 of every file under
``encoder/``. Loading checks that ``encoder/`` holds exactly those
regular files (no symbolic links) with those checksums, then loads it with
sentence-transformers offline (``local_files_only=True``, no remote code):
safetensors weights, never a pickle. Only ``TfidfVectorizer`` (or None) with
plain parameters is savable as the vectorizer; a ``SentenceTransformer`` given
as the ``encoder`` parameter is saved as the fitted ``encoder_`` (for a frozen
model the same weights), a name or path as is.
"""

import hashlib
import os
import stat
import tempfile

import numpy as np

from skxmr._encoder import (
    embedding_dimension,
    import_sentence_transformers,
    quiet_transformers,
)
from skxmr._persistence import (
    ModelFormatError,
    _check_fitted,
    _check_keys,
    _dump_xrlinear,
    _get_tree,
    _indexer_from_json,
    _indexer_to_json,
    _int,
    _load_xrlinear,
    _params_from_json,
    _params_to_json,
    _plain,
    _put_tree,
)
from skxmr._xrlinear import XRLinearClassifier
from skxmr._xtransformer import XTransformerClassifier

_FITTED_ENCODER = {"fitted_encoder_": True}
_HISTORY_KEYS = ("level", "n_nodes", "steps", "loss_start", "loss_end")


class _Prefixed:
    """A writer or reader whose array names all start with ``prefix``."""

    def __init__(self, inner, prefix):
        self._inner = inner
        self._prefix = prefix

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def add(self, name, array):
        self._inner.add(self._prefix + name, array)

    def add_sparse(self, prefix, M):
        self._inner.add_sparse(self._prefix + prefix, M)

    def array(self, name, *args, **kwargs):
        return self._inner.array(self._prefix + name, *args, **kwargs)

    def sparse(self, prefix, *args, **kwargs):
        return self._inner.sparse(self._prefix + prefix, *args, **kwargs)


# ------------------------------------------------------------ the vectorizer
def _vectorizer_params_to_json(vectorizer, where):
    from sklearn.feature_extraction.text import TfidfVectorizer

    if type(vectorizer) is not TfidfVectorizer:
        raise TypeError(
            f"{where} of type {type(vectorizer).__name__} cannot be saved in the safe "
            "format (only None, 'tfidf' or a TfidfVectorizer); use pickle or joblib."
        )
    out = {}
    for key, value in vectorizer.get_params(deep=False).items():
        if key == "ngram_range":
            value = [int(v) for v in value]
        elif key == "dtype":
            value = np.dtype(value).name
        elif key == "stop_words" and isinstance(value, (list, tuple, frozenset, set)):
            value = sorted(str(v) for v in value)
        elif key == "vocabulary" and value is not None:
            raise TypeError(f"{where}: a fixed vocabulary cannot be saved; use pickle.")
        out[key] = value if isinstance(value, list) else _plain(value, f"{where}.{key}")
    return {"class": "TfidfVectorizer", "params": out}


def _vectorizer_from_json(value, where):
    from sklearn.feature_extraction.text import TfidfVectorizer

    _check_keys(value, ("class", "params"), where, "the vectorizer")
    if value["class"] != "TfidfVectorizer":
        raise ModelFormatError(f"{where}: unknown vectorizer class "
                               f"{value['class']!r:.40}.")
    params = value["params"]
    if not isinstance(params, dict):
        raise ModelFormatError(f"{where}: the vectorizer parameters must be an object.")
    known = TfidfVectorizer().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelFormatError(f"{where}: unknown TfidfVectorizer parameters {unknown}.")
    kwargs = {}
    try:
        for key, item in params.items():
            if key == "ngram_range":
                if (not isinstance(item, list) or len(item) != 2
                        or not all(type(v) is int for v in item)):
                    raise ValueError("ngram_range must be a list of two ints")
                item = tuple(item)
            elif key == "dtype":
                if item not in ("float32", "float64"):
                    raise ValueError(f"dtype {item!r:.20} is not float32 or float64")
                item = np.dtype(item).type
            elif key == "stop_words" and isinstance(item, list):
                if not all(type(v) is str for v in item):
                    raise ValueError("stop_words must be strings")
            elif item is not None and type(item) not in (bool, int, float, str):
                raise ValueError(f"parameter {key!r} has an unsupported type")
            kwargs[key] = item
        vectorizer = TfidfVectorizer(**kwargs)
        vectorizer._validate_params()
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: invalid vectorizer parameters: {exc}") \
            from None
    return vectorizer


def _put_fitted_vectorizer(writer, vectorizer):
    vocabulary = vectorizer.vocabulary_
    terms = np.empty(len(vocabulary), dtype=object)
    for term, column in vocabulary.items():
        terms[column] = term
    writer.add("vectorizer.terms", terms.astype(str))
    writer.add("vectorizer.idf", np.asarray(vectorizer.idf_, dtype=np.float64))


def _get_fitted_vectorizer(reader, vectorizer, n_terms):
    terms = reader.array("vectorizer.terms", "U", 1, (n_terms,))
    idf = reader.array("vectorizer.idf", (np.dtype(np.float64),), 1, (n_terms,))
    vocabulary = {str(term): i for i, term in enumerate(terms)}
    if len(vocabulary) != n_terms:
        raise ModelFormatError(f"{reader.path}/vectorizer.terms.npy: repeated terms.")
    if not np.all(np.isfinite(idf)):
        raise ModelFormatError(f"{reader.path}/vectorizer.idf.npy: non-finite idf.")
    vectorizer.vocabulary_ = vocabulary
    vectorizer.idf_ = np.array(idf)
    return vectorizer


# ------------------------------------------------------- the neighbour bank
def _get_neighbors(reader, n_rows, dim, n_labels):
    """(neighbor_embeddings_, neighbor_labels_), or (None, None) when n_rows is null."""
    if n_rows is None:
        return None, None
    n_rows = _int(n_rows, f"{reader.meta_file}: n_neighbor_rows", 1)
    bank = reader.array("neighbors.embeddings", (np.dtype(np.float32),), 2, (n_rows, dim))
    labels = reader.sparse("neighbors.labels", "csr", (n_rows, n_labels),
                           (np.dtype(np.float32),))
    if not (np.all(np.isfinite(bank)) and np.all(np.isfinite(labels.data))):
        raise ModelFormatError(f"{reader.path}/neighbors.*.npy: non-finite values.")
    return np.asarray(bank), labels


# --------------------------------------------------------------- the encoder
def _file_digest(file):
    sha = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _encoder_files(folder):
    """``{relative path: None}`` of every file under ``folder``; symbolic links and
    other non-regular entries raise ModelFormatError."""
    files = {}
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in dirs + names:
            full = os.path.join(root, name)
            mode = os.lstat(full).st_mode
            if stat.S_ISDIR(mode) and name in dirs:
                continue
            if not stat.S_ISREG(mode):
                raise ModelFormatError(f"{full}: not a regular file (symbolic links and "
                                       "special files are refused).")
            files[os.path.relpath(full, folder).replace(os.sep, "/")] = None
    return files


def _save_encoder(writer, encoder):
    staging = os.path.join(tempfile.mkdtemp(prefix="skxmr-encoder-"), "encoder")
    with quiet_transformers(verbose=0):
        encoder.save(staging, create_model_card=False, safe_serialization=True)
    table = {name: _file_digest(os.path.join(staging, name))
             for name in sorted(_encoder_files(staging))}
    writer.add_folder("encoder", staging)
    return table


def _load_encoder(reader, table):
    where = reader.meta_file
    folder = os.path.join(reader.path, "encoder")
    if not isinstance(table, dict) or not table or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise ModelFormatError(f"{where}: encoder_files must map file names to sha256.")
    if not os.path.isdir(folder) or os.path.islink(folder):
        raise ModelFormatError(f"{folder}: the encoder directory is missing.")
    found = _encoder_files(folder)
    if set(found) != set(table):
        extra = sorted(set(found) - set(table))[:3]
        missing = sorted(set(table) - set(found))[:3]
        raise ModelFormatError(f"{folder}: the files differ from encoder_files "
                               f"(unexpected {extra}, missing {missing}).")
    if reader.verify:
        for name, digest in table.items():
            if _file_digest(os.path.join(folder, name)) != digest:
                raise ModelFormatError(
                    f"{os.path.join(folder, name)}: checksum mismatch: the file is "
                    "damaged or was modified.")
    sentence_transformers = import_sentence_transformers()
    try:
        with quiet_transformers(verbose=0):
            return sentence_transformers.SentenceTransformer(
                folder, device="cpu", local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds on bad files
        raise ModelFormatError(f"{folder}: the encoder cannot be loaded: "
                               f"{type(exc).__name__}: {exc}") from None


# -------------------------------------------------------------- the estimator
def dump_xtransformer(model, writer):
    _check_fitted(model, ("ranker_", "encoder_", "classes_", "embedding_dim_"))
    ranker_params, ranker_attributes = _dump_xrlinear(model.ranker_,
                                                      _Prefixed(writer, "ranker."))

    def encoder_param(value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        return dict(_FITTED_ENCODER)

    def vectorizer_param(value):
        if value is None or isinstance(value, str):
            return value
        return _vectorizer_params_to_json(value, "XTransformerClassifier.vectorizer")

    def ranker_param(value):
        if value is None:
            return None
        if type(value) is not XRLinearClassifier:
            raise TypeError("only an XRLinearClassifier ranker can be saved in the "
                            "safe format; use pickle or joblib.")
        return _params_to_json(
            value, "XTransformerClassifier.ranker",
            indexer=lambda v: _indexer_to_json(v, model, _Prefixed(writer, "param.")))

    params = _params_to_json(
        model, "XTransformerClassifier", encoder=encoder_param,
        vectorizer=vectorizer_param, ranker=ranker_param,
        indexer=lambda v: _indexer_to_json(v, model, writer),
        device=lambda v: str(v))
    vectorizer = None
    if model.vectorizer_ is not None:
        vectorizer = _vectorizer_params_to_json(model.vectorizer_,
                                                "XTransformerClassifier.vectorizer_")
        vectorizer["n_terms"] = len(model.vectorizer_.vocabulary_)
        _put_fitted_vectorizer(writer, model.vectorizer_)
    preliminary = getattr(model, "preliminary_tree_", None)
    if preliminary is not None:
        _put_tree(writer, "preliminary_tree", preliminary)
    bank = getattr(model, "neighbor_embeddings_", None)
    if bank is not None:
        writer.add("neighbors.embeddings", np.asarray(bank, dtype=np.float32))
        writer.add_sparse("neighbors.labels", model.neighbor_labels_)
    attributes = {
        "ranker": {"params": ranker_params, "attributes": ranker_attributes},
        "n_neighbor_rows": None if bank is None else int(bank.shape[0]),
        "vectorizer_": vectorizer,
        "embedding_dim_": int(model.embedding_dim_),
        "device_": str(model.device_),
        "preliminary_tree_": preliminary is not None,
        "fine_tune_history_": [{key: _plain(entry[key], "fine_tune_history_")
                                for key in _HISTORY_KEYS}
                               for entry in model.fine_tune_history_],
        "encoder_files": _save_encoder(writer, model.encoder_),
    }
    return params, attributes


def load_xtransformer(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    _check_keys(attributes, ("ranker", "n_neighbor_rows", "vectorizer_",
                             "embedding_dim_", "device_",
                             "preliminary_tree_", "fine_tune_history_",
                             "encoder_files"), where, "attributes")
    ranker_meta = attributes["ranker"]
    _check_keys(ranker_meta, ("params", "attributes"), where, "attributes.ranker")
    ranker = _load_xrlinear(ranker_meta, _Prefixed(reader, "ranker."))

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
            return _vectorizer_from_json(value, f"{where}: params.vectorizer")
        raise ModelFormatError(f"{where}: params.vectorizer must be null, 'tfidf' or "
                               "an object.")

    def ranker_param(value):
        if value is None:
            return None
        return _params_from_json(
            XRLinearClassifier, value, f"{where}: params.ranker",
            indexer=lambda v: _indexer_from_json(v, _Prefixed(reader, "param."),
                                                 ranker.tree_))

    def device_param(value):
        if not isinstance(value, str):
            raise ModelFormatError(f"{where}: params.device must be a string.")
        return value

    model = _params_from_json(
        XTransformerClassifier, meta["params"], f"{where}: params",
        encoder=encoder_param, vectorizer=vectorizer_param, ranker=ranker_param,
        indexer=lambda v: _indexer_from_json(v, reader, ranker.tree_),
        device=device_param)
    spec = attributes["vectorizer_"]
    vectorizer = None
    if spec is not None:
        if not isinstance(spec, dict):
            raise ModelFormatError(f"{where}: attributes.vectorizer_ must be an object.")
        spec = dict(spec)
        n_terms = _int(spec.pop("n_terms", None), f"{where}: vectorizer_.n_terms", 1)
        vectorizer = _get_fitted_vectorizer(
            reader, _vectorizer_from_json(spec, f"{where}: attributes.vectorizer_"),
            n_terms)
    dim = _int(attributes["embedding_dim_"], f"{where}: embedding_dim_", 1, 1 << 20)
    n_sparse = 0 if vectorizer is None else len(vectorizer.vocabulary_)
    bank, bank_labels = _get_neighbors(reader, attributes["n_neighbor_rows"], dim,
                                       len(ranker.classes_))
    n_votes = 0 if bank is None else len(ranker.classes_)
    if ranker.n_features_in_ != dim + n_sparse + n_votes:
        raise ModelFormatError(
            f"{where}: the ranker has {ranker.n_features_in_} features, not "
            f"embedding_dim_ + terms + neighbour labels = {dim + n_sparse + n_votes}.")
    if (bank is None) != (model.n_neighbors == 0):
        raise ModelFormatError(f"{where}: n_neighbors={model.n_neighbors} but the model "
                               f"{'lacks' if bank is None else 'has'} a neighbour bank.")
    history = attributes["fine_tune_history_"]
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and set(h) == set(_HISTORY_KEYS) for h in history):
        raise ModelFormatError(f"{where}: invalid fine_tune_history_.")
    if type(attributes["preliminary_tree_"]) is not bool:
        raise ModelFormatError(f"{where}: preliminary_tree_ must be a bool.")
    if not isinstance(attributes["device_"], str):
        raise ModelFormatError(f"{where}: device_ must be a string.")
    preliminary = (_get_tree(reader, "preliminary_tree")
                   if attributes["preliminary_tree_"] else None)
    encoder = _load_encoder(reader, attributes["encoder_files"])
    if embedding_dimension(encoder) != dim:
        raise ModelFormatError(f"{where}: the encoder makes embeddings of dimension "
                               f"{embedding_dimension(encoder)}, not {dim}.")
    if meta["params"].get("encoder") == _FITTED_ENCODER:
        model.encoder = encoder
    model.encoder_ = encoder
    model.vectorizer_ = vectorizer
    model.neighbor_embeddings_, model.neighbor_labels_ = bank, bank_labels
    model.ranker_ = ranker
    model._targets = ranker._targets  # the ranker answers in the form y had at fit
    model.classes_ = ranker.classes_
    model.tree_ = ranker.tree_
    model.preliminary_tree_ = preliminary
    model.fine_tune_history_ = history
    model.embedding_dim_ = dim
    model.device_ = "cpu"  # loaded on the CPU; predict moves it where `device` says
    return model

