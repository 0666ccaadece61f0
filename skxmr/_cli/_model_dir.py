"""The command line's model directory: the classifier and its TF-IDF vectorizer.

A model directory ``MODEL`` written by ``skxmr train`` holds

- ``classifier/``: the :class:`~skxmr.XRLinearClassifier`, written with
  :func:`skxmr.save` (never unpickled);
- for a model trained on texts, ``vectorizer/``: the fitted TF-IDF vectorizer,
  written with the package's ``skxmr._persistence.save_vectorizer`` (the same
  container as the classifier: checksummed, atomic, plain data);
- ``skxmr_cli_model.json``: what ``skxmr train`` wrote, every file with its
  size. ``skxmr train -o MODEL`` replaces an existing directory only when it
  is such a complete model (every listed file present with its size, nothing
  else in it) or an empty directory, so it never deletes or overwrites a file
  it did not write. (A model written by an earlier skxmr, without the
  manifest, is replaced when it holds only ``classifier/`` and the old
  vectorizer files and its classifier loads.)

Model directories of format 1 (an earlier skxmr, whose TF-IDF lived in
``vectorizer.json`` and ``vectorizer_idf.npy``) are refused with a clear
error: re-train them with ``skxmr train``.
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

__all__ = ["TFIDF_DEFAULTS", "make_vectorizer", "load_model", "check_model_output",
           "save_model"]

MANIFEST = "skxmr_cli_model.json"
_FORMAT = "skxmr-cli-model"
_FORMAT_VERSION = 2
_READ_VERSIONS = (1, 2)  # format 1 is recognised (to refuse or replace it), not read
_CLASSIFIER = "classifier"
_VECTORIZER = "vectorizer"
_OLD_VECTORIZER_FILES = ("vectorizer.json", "vectorizer_idf.npy")  # format 1

# The TF-IDF of ``skxmr train`` on a .tsv (the command-line defaults).
TFIDF_DEFAULTS = {"sublinear_tf": True, "min_df": 2, "ngram_range": [1, 2],
                  "max_features": 200_000, "dtype": "float32"}


# ================================================================ vectorizer
def make_vectorizer(params):
    """An unfitted ``TfidfVectorizer`` from the ``train`` options' ``params``
    (the keys of :data:`TFIDF_DEFAULTS`; argparse has checked the values)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=params["sublinear_tf"], min_df=params["min_df"],
                           ngram_range=tuple(params["ngram_range"]),
                           max_features=params["max_features"], dtype=np.float32)


def _is_int(value, low):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _older_format(folder):
    return CLIError(f"{folder}: a model directory written by an older skxmr (its "
                    "TF-IDF vectorizer is in the old format 1); re-train it with "
                    "'skxmr train'")


def _load_vectorizer(folder):
    from skxmr._persistence import load_vectorizer

    try:
        return load_vectorizer(folder / _VECTORIZER)
    except (ValueError, OSError, TypeError) as exc:
        raise CLIError(f"{folder}: damaged vectorizer ({exc})") from None


# ============================================================ model directory
def load_model(path):
    """``(classifier, vectorizer or None)`` from a model directory."""
    import skxmr

    folder = Path(path)
    if not folder.is_dir():
        raise CLIError(f"{folder}: no such model directory")
    manifest = _read_manifest(folder)
    if manifest is None and os.path.lexists(folder / _OLD_VECTORIZER_FILES[0]):
        raise _older_format(folder)
    try:
        model = skxmr.load(folder / _CLASSIFIER)
    except (ValueError, OSError) as exc:
        raise CLIError(f"{folder}: {exc}") from None
    if manifest is not None:
        has_vectorizer = manifest["vectorizer"]
        old = manifest["format_version"] == 1
    else:  # a model written before the manifest (format 1)
        old = has_vectorizer = os.path.lexists(folder / _OLD_VECTORIZER_FILES[0])
    if has_vectorizer and old:
        raise _older_format(folder)
    vectorizer = _load_vectorizer(folder) if has_vectorizer else None
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
    if manifest.get("format_version") not in _READ_VERSIONS:
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
    import skxmr

    entries = set(os.listdir(folder))
    if _CLASSIFIER not in entries or not entries <= {_CLASSIFIER, *_OLD_VECTORIZER_FILES}:
        return False
    if len(entries & set(_OLD_VECTORIZER_FILES)) == 1:
        return False
    if not stat.S_ISDIR(os.lstat(os.path.join(folder, _CLASSIFIER)).st_mode):
        return False
    try:
        skxmr.load(os.path.join(folder, _CLASSIFIER))
    except (ValueError, TypeError, OSError):
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
            from skxmr._persistence import save_vectorizer

            save_vectorizer(vectorizer, tmp / _VECTORIZER)
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

