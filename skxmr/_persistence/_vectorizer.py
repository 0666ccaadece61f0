"""Codec of a fitted scikit-learn ``TfidfVectorizer`` (its parameters as JSON,
its vocabulary and ``idf_`` as arrays), and :func:`save_vectorizer` /
:func:`load_vectorizer`, which keep one in a folder of its own in the container
format (for the command line's text models).
"""

import os

import numpy as np

from skxmr._persistence._codec import plain
from skxmr._persistence._container import Reader, Writer, write_model_dir
from skxmr._persistence._errors import ModelFormatError, check_int, check_keys

CLASS = "TfidfVectorizer"


def _tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer


# -------------------------------------------------------------- parameters
def params_to_json(vectorizer, where):
    if type(vectorizer) is not _tfidf():
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
        out[key] = value if isinstance(value, list) else plain(value, f"{where}.{key}")
    return {"class": CLASS, "params": out}


def params_from_json(value, where):
    check_keys(value, ("class", "params"), where, "the vectorizer")
    if value["class"] != CLASS:
        raise ModelFormatError(f"{where}: unknown vectorizer class "
                               f"{value['class']!r:.40}.")
    params = value["params"]
    if not isinstance(params, dict):
        raise ModelFormatError(f"{where}: the vectorizer parameters must be an object.")
    TfidfVectorizer = _tfidf()
    unknown = sorted(set(params) - set(TfidfVectorizer().get_params(deep=False)))
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
        vectorizer._validate_params()  # scikit-learn's own parameter validation
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: invalid vectorizer parameters: {exc}") \
            from None
    return vectorizer


# ------------------------------------------------------------ fitted state
def put_fitted(writer, vectorizer, prefix="vectorizer."):
    """The vocabulary (terms in column order) and ``idf_``; returns the term count."""
    vocabulary = vectorizer.vocabulary_
    terms = np.empty(len(vocabulary), dtype=object)
    for term, column in vocabulary.items():
        terms[column] = term
    writer.add(f"{prefix}terms", terms.astype(str))
    writer.add(f"{prefix}idf", np.asarray(vectorizer.idf_, dtype=np.float64))
    return len(vocabulary)


def get_fitted(reader, vectorizer, n_terms, prefix="vectorizer."):
    terms = reader.array(f"{prefix}terms", "U", 1, (n_terms,))
    idf = reader.array(f"{prefix}idf", (np.dtype(np.float64),), 1, (n_terms,),
                       finite=True)
    vocabulary = {str(term): i for i, term in enumerate(terms)}
    if len(vocabulary) != n_terms:
        raise ModelFormatError(f"{reader.path}/{prefix}terms.npy: repeated terms.")
    vectorizer.vocabulary_ = vocabulary
    vectorizer.idf_ = np.array(idf)
    return vectorizer


# ------------------------------------------------------ a folder of its own
def save_vectorizer(vectorizer, folder):
    """Save a fitted ``TfidfVectorizer`` as the directory ``folder`` (container
    format: JSON parameters, ``terms.npy`` and ``idf.npy``, checksummed, written
    atomically; an existing ``folder`` is replaced only when it is a complete
    saved vectorizer or model, else ``FileExistsError``)."""
    spec = params_to_json(vectorizer, "vectorizer")  # TypeError for other classes
    if not hasattr(vectorizer, "vocabulary_") or not hasattr(vectorizer, "idf_"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError("the vectorizer is not fitted; fit it before saving it.")
    writer = Writer()
    n_terms = put_fitted(writer, vectorizer, prefix="")
    write_model_dir(folder, writer, {"class": CLASS, "params": spec["params"],
                                     "attributes": {"n_terms": n_terms}})


def load_vectorizer(folder, verify=True):
    """The ``TfidfVectorizer`` :func:`save_vectorizer` wrote; ModelFormatError
    for a damaged folder or one that holds something else."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such vectorizer directory.")
    reader = Reader(folder, None, verify)
    meta = reader.meta
    if meta["class"] != CLASS:
        raise ModelFormatError(f"{reader.meta_file}: holds a {meta['class']!r:.40}, "
                               f"not a {CLASS}.")
    check_keys(meta["attributes"], ("n_terms",), reader.meta_file, "attributes")
    n_terms = check_int(meta["attributes"]["n_terms"], f"{reader.meta_file}: n_terms",
                        1)
    vectorizer = params_from_json({"class": CLASS, "params": meta["params"]},
                                  f"{reader.meta_file}: params")
    vectorizer = get_fitted(reader, vectorizer, n_terms, prefix="")
    reader.check_all_used()
    return vectorizer
