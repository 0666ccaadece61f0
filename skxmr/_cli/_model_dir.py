"""The command line's model directory: the classifier and its TF-IDF vectorizer.

A model directory ``MODEL`` written by ``skxmr train`` holds

- ``classifier/``: the :class:`~skxmr.XRLinearClassifier`, written with
  :func:`skxmr.save` (never unpickled);
- for a model trained on texts, the TF-IDF vectorizer: ``vectorizer.json``
  (its parameters and vocabulary) and ``vectorizer_idf.npy``;
- ``skxmr_cli_model.json``: what ``skxmr train`` wrote, every file with its
  size. ``skxmr train -o MODEL`` replaces an existing directory only when it
  is such a complete model (every listed file present with its size, nothing
  else in it) or an empty directory, so it never deletes or overwrites a file
  it did not write. (A model written by an earlier skxmr, without the
  manifest, is replaced when it holds only ``classifier/`` and the vectorizer
  files and all of them load.)

The vectorizer is read and written by ONE pair of functions,
:func:`save_vectorizer` and :func:`load_vectorizer`; they are the only code
that knows its file format (the planned ``skxmr._persistence`` pair of the
same names can replace them).
"""

import json
import os
import secrets
import shutil
import stat
from pathlib import Path

import numpy as np

from skxmr._version import __version__
from skxmr._cli._console import CLIError

__all__ = ["TFIDF_DEFAULTS", "make_vectorizer", "save_vectorizer", "load_vectorizer",
           "load_model", "check_model_output", "save_model"]

MANIFEST = "skxmr_cli_model.json"
_FORMAT = "skxmr-cli-model"
_FORMAT_VERSION = 1
_CLASSIFIER = "classifier"
_VECTORIZER_JSON = "vectorizer.json"
_VECTORIZER_IDF = "vectorizer_idf.npy"

# The TF-IDF of ``skxmr train`` on a .tsv (the command-line defaults), as stored.
TFIDF_DEFAULTS = {"sublinear_tf": True, "min_df": 2, "ngram_range": [1, 2],
                  "max_features": 200_000, "dtype": "float32"}


# ================================================================ vectorizer
def make_vectorizer(params):
    """An unfitted ``TfidfVectorizer`` from stored-form ``params`` (see
    :data:`TFIDF_DEFAULTS`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    params = _check_tfidf_params(params, "TF-IDF parameters")
    return TfidfVectorizer(sublinear_tf=params["sublinear_tf"], min_df=params["min_df"],
                           ngram_range=tuple(params["ngram_range"]),
                           max_features=params["max_features"], dtype=np.float32)


def _stored_params(vectorizer):
    return {"sublinear_tf": bool(vectorizer.sublinear_tf),
            "min_df": int(vectorizer.min_df),
            "ngram_range": [int(n) for n in vectorizer.ngram_range],
            "max_features": (None if vectorizer.max_features is None
                             else int(vectorizer.max_features)),
            "dtype": "float32"}


def _is_int(value, low):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_tfidf_params(params, where):
    if not isinstance(params, dict) or set(params) != set(TFIDF_DEFAULTS):
        raise CLIError(f"{where}: expected the keys {sorted(TFIDF_DEFAULTS)}")
    ngrams = params["ngram_range"]
    ok = (isinstance(params["sublinear_tf"], bool) and _is_int(params["min_df"], 1)
          and (params["max_features"] is None or _is_int(params["max_features"], 1))
          and isinstance(ngrams, (list, tuple)) and len(ngrams) == 2
          and _is_int(ngrams[0], 1) and _is_int(ngrams[1], ngrams[0])
          and params["dtype"] == "float32")
    if not ok:
        raise CLIError(f"{where}: invalid TF-IDF parameters {params}")
    return params


def save_vectorizer(vectorizer, folder):
    """Write a fitted TF-IDF ``vectorizer`` into the directory ``folder``
    (``vectorizer.json`` and ``vectorizer_idf.npy``; plain data, no pickle)."""
    folder = Path(folder)
    vocabulary = {str(term): int(i) for term, i in vectorizer.vocabulary_.items()}
    (folder / _VECTORIZER_JSON).write_text(json.dumps(
        {"params": _stored_params(vectorizer), "vocabulary": vocabulary}),
        encoding="utf-8")
    np.save(folder / _VECTORIZER_IDF, np.asarray(vectorizer.idf_, dtype=np.float64),
            allow_pickle=False)


def load_vectorizer(folder, verify=True):
    """The fitted ``TfidfVectorizer`` saved by :func:`save_vectorizer` in
    ``folder``; :class:`CLIError` when its files are missing or damaged.
    ``verify`` also checks every idf value (finite, at least 1)."""
    folder = Path(folder)
    try:
        spec = json.loads((folder / _VECTORIZER_JSON).read_text(encoding="utf-8"))
        idf = np.load(folder / _VECTORIZER_IDF, allow_pickle=False)
        params = spec["params"]
        vocabulary = {str(k): int(v) for k, v in spec["vocabulary"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CLIError(f"{folder}: damaged vectorizer files ({exc})") from None
    params = _check_tfidf_params(params, f"{folder / _VECTORIZER_JSON}")
    if idf.ndim != 1 or idf.dtype != np.float64 or idf.shape[0] != len(vocabulary) \
            or sorted(vocabulary.values()) != list(range(len(vocabulary))):
        raise CLIError(f"{folder}: inconsistent vectorizer files")
    if verify and not (np.isfinite(idf).all() and (idf >= 1).all()):
        raise CLIError(f"{folder}: damaged vectorizer files (idf values)")
    vectorizer = make_vectorizer(params)
    vectorizer.vocabulary_ = vocabulary
    vectorizer.idf_ = idf
    return vectorizer


# ============================================================ model directory
def load_model(path):
    """``(classifier, vectorizer or None)`` from a model directory."""
    import skxmr

    folder = Path(path)
    if not folder.is_dir():
        raise CLIError(f"{folder}: no such model directory")
    manifest = _read_manifest(folder)
    try:
        model = skxmr.load(folder / _CLASSIFIER)
    except (ValueError, OSError) as exc:
        raise CLIError(f"{folder}: {exc}") from None
    if manifest is not None:
        has_vectorizer = manifest["vectorizer"]
    else:  # a model written before the manifest
        has_vectorizer = (folder / _VECTORIZER_JSON).exists()
    vectorizer = load_vectorizer(folder) if has_vectorizer else None
    return model, vectorizer


def _read_manifest(folder):
    """The manifest's content, None when there is none; CLIError when damaged."""
    file = Path(folder) / MANIFEST
    if not os.path.lexists(file):
        return None
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
        ok = (isinstance(manifest, dict) and manifest.get("format") == _FORMAT
              and isinstance(manifest.get("files"), dict)
              and isinstance(manifest.get("vectorizer"), bool)
              and all(isinstance(k, str) and _is_int(v, 0)
                      for k, v in manifest["files"].items()))
    except (OSError, ValueError) as exc:
        raise CLIError(f"{file}: damaged model manifest ({exc})") from None
    if not ok:
        raise CLIError(f"{file}: damaged model manifest")
    if manifest.get("format_version") != _FORMAT_VERSION:
        raise CLIError(f"{file}: model format version "
                       f"{manifest.get('format_version')!r}, this skxmr reads "
                       f"{_FORMAT_VERSION}")
    return manifest


def _tree_files(folder):
    """``{relative path: size}`` of the regular files under ``folder``, or None
    when it holds anything else (a link, a special file)."""
    files = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            full = os.path.join(root, name)
            mode = os.lstat(full).st_mode
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if stat.S_ISREG(mode):
                files[rel] = os.lstat(full).st_size
            elif not stat.S_ISDIR(mode):
                return None
    return files


def _is_complete_cli_model(folder):
    """Whether ``folder`` holds exactly what ``skxmr train`` wrote there."""
    try:
        manifest = _read_manifest(folder)
    except CLIError:
        return False
    if manifest is not None:
        files = _tree_files(folder)
        if files is None:
            return False
        files.pop(MANIFEST, None)
        return files == manifest["files"]
    # A model written before the manifest: only the known entries, all loadable.
    entries = set(os.listdir(folder))
    if _CLASSIFIER not in entries or not entries <= {
            _CLASSIFIER, _VECTORIZER_JSON, _VECTORIZER_IDF}:
        return False
    if (_VECTORIZER_JSON in entries) != (_VECTORIZER_IDF in entries):
        return False
    if not stat.S_ISDIR(os.lstat(os.path.join(folder, _CLASSIFIER)).st_mode):
        return False
    try:
        load_model(folder)
    except (CLIError, ValueError, TypeError, OSError):
        return False
    return True


def check_model_output(path, inputs=()):
    """Check, before any work, that ``skxmr train -o path`` may write there.

    Returns ``"new"`` (nothing there), ``"empty"`` (an empty directory) or
    ``"replace"`` (a complete model written by ``skxmr train``); raises
    :class:`CLIError` for anything else, touching nothing.
    """
    out = Path(path)
    if not out.name or out.name in (".", ".."):
        raise CLIError(f"{out}: the output must name a model directory")
    if os.path.lexists(out):
        if out.is_symlink() or not out.is_dir():
            raise CLIError(f"{out} exists and is not a skxmr model directory "
                           "(not a directory); refusing to replace it")
        if not os.listdir(out):
            kind = "empty"
        elif _is_complete_cli_model(out):
            kind = "replace"
        else:
            raise CLIError(f"{out} exists and is not a skxmr model directory written "
                           "by 'skxmr train' (or holds other files); refusing to "
                           "replace it: choose another directory or remove it")
    else:
        kind = "new"
    for data in inputs:
        data = Path(data).resolve()
        if data == out.resolve() or out.resolve() in data.parents:
            raise CLIError(f"{out}: the input {data} is inside the output directory; "
                           "refusing to replace it")
    parent = _existing_ancestor(out.parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{parent}: directory not writable")
    return kind


def _existing_ancestor(folder):
    folder = Path(os.path.abspath(folder))
    while not os.path.lexists(folder):
        folder = folder.parent
    if not folder.is_dir():
        raise CLIError(f"{folder} is not a directory")
    return folder


def save_model(path, model, vectorizer, inputs=()):
    """Write the model directory ``path`` (classifier, vectorizer, manifest).

    Everything is written into a new hidden directory next to ``path`` first
    and then renamed into place; an existing ``path`` is checked again with
    :func:`check_model_output` and replaced only when that allows it."""
    import skxmr

    out = Path(os.path.abspath(path))
    check_model_output(out, inputs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"{out.parent}: cannot create the directory "
                       f"({exc.strerror or exc})") from None
    tmp = _fresh_dir(out, "tmp")
    try:
        skxmr.save(model, tmp / _CLASSIFIER)
        if vectorizer is not None:
            save_vectorizer(vectorizer, tmp)
        files = _tree_files(tmp)
        manifest = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
                    "skxmr_version": __version__, "vectorizer": vectorizer is not None,
                    "files": dict(sorted(files.items()))}
        with open(tmp / MANIFEST, "x", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        kind = check_model_output(out, inputs)  # again: it may have changed
        if kind == "new":
            os.rename(tmp, out)
        elif kind == "empty":
            os.rmdir(out)
            os.rename(tmp, out)
        else:
            old = _fresh_dir(out, "old", create=False)
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fresh_dir(out, suffix, create=True):
    while True:
        candidate = out.parent / f".{out.name}.{secrets.token_hex(6)}.{suffix}"
        if not create:
            if not os.path.lexists(candidate):
                return candidate
            continue
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue

