"""The command line's model directory: the classifier and its TF-IDF vectorizer.

A model directory ``MODEL`` written by ``skxmr train`` holds

- ``classifier/``: the :class:`~skxmr.XRLinearClassifier`, written with
  :func:`skxmr.save` (never unpickled);
- ``vectorizer/``, for a model trained on texts: the fitted TF-IDF
  vectorizer, written with :func:`skxmr._persistence.save_vectorizer` (the
  same container: JSON parameters, ``.npy`` arrays, checksums, atomic writes,
  regular files only);
- ``skxmr_cli_model.json``: what ``skxmr train`` wrote, every file with its
  size (format version 2). ``skxmr train -o MODEL`` replaces an existing
  directory only when it is such a complete model (every listed file present
  with its size, nothing else in it) or an empty directory, so it never
  deletes or overwrites a file it did not write.

A model written by an older skxmr (manifest version 1, or no manifest, with
the vectorizer in its own ``vectorizer.json`` and ``vectorizer_idf.npy``)
cannot be read: ``predict`` and ``evaluate`` say "written by an older skxmr:
re-train". ``skxmr train -o`` replaces one (it is recognised by its manifest,
or, without one, by holding only those entries and a loadable classifier).
An older model trained on feature vectors (no vectorizer) is still read.
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
_CLASSIFIER = "classifier"
_VECTORIZER = "vectorizer"
# The files of the vectorizer of format version 1 (and of no manifest).
_OLD_VECTORIZER = ("vectorizer.json", "vectorizer_idf.npy")
_OLDER = "written by an older skxmr (its own vectorizer files): re-train it"

# The TF-IDF of ``skxmr train`` on a .tsv (the command-line defaults).
TFIDF_DEFAULTS = {"sublinear_tf": True, "min_df": 2, "ngram_range": [1, 2],
                  "max_features": 200_000, "dtype": "float32"}


# ================================================================ vectorizer
def make_vectorizer(params):
    """An unfitted ``TfidfVectorizer`` from ``params`` (the keys of
    :data:`TFIDF_DEFAULTS`, already checked by the option parser)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=params["sublinear_tf"], min_df=params["min_df"],
                           ngram_range=tuple(params["ngram_range"]),
                           max_features=params["max_features"], dtype=np.float32)


def _is_int(value, low):
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _load_vectorizer(folder):
    from skxmr._persistence import load_vectorizer

    try:
        return load_vectorizer(folder / _VECTORIZER)
    except (ValueError, OSError) as exc:
        raise CLIError(f"{folder}: damaged vectorizer ({exc})") from None


# ============================================================ model directory
def load_model(path):
    """``(classifier, vectorizer or None)`` from a model directory;
    :class:`CLIError` for a missing, damaged or older model."""
    import skxmr

    folder = Path(path)
    if not folder.is_dir():
        raise CLIError(f"{folder}: no such model directory")
    manifest = _read_manifest(folder)
    if manifest is None or manifest["format_version"] == 1:
        if (manifest is not None and manifest["vectorizer"]) or any(
                os.path.lexists(folder / name) for name in _OLD_VECTORIZER):
            raise CLIError(f"{folder}: {_OLDER}")
        has_vectorizer = False  # an older model of feature vectors: readable
    else:
        has_vectorizer = manifest["vectorizer"]
    try:
        model = skxmr.load(folder / _CLASSIFIER)
    except (ValueError, OSError) as exc:
        raise CLIError(f"{folder}: {exc}") from None
    vectorizer = _load_vectorizer(folder) if has_vectorizer else None
    return model, vectorizer


def _read_manifest(folder):
    """The manifest's content, None when there is none; CLIError when damaged
    or of a format version this skxmr does not know."""
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
    version = manifest.get("format_version")
    if version not in (1, _FORMAT_VERSION):
        newer = _is_int(version, _FORMAT_VERSION + 1)
        raise CLIError(f"{file}: model format version {version!r:.20}, this skxmr "
                       f"reads {_FORMAT_VERSION}"
                       + ("; upgrade skxmr" if newer else ""))
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
    # A model of an older skxmr, without the manifest: only the entries it
    # wrote, a loadable classifier and, for texts, both vectorizer files.
    import skxmr

    entries = set(os.listdir(folder))
    if _CLASSIFIER not in entries or not entries <= {_CLASSIFIER, *_OLD_VECTORIZER}:
        return False
    if len(entries) == 2:  # one of the two vectorizer files only
        return False
    if not stat.S_ISDIR(os.lstat(os.path.join(folder, _CLASSIFIER)).st_mode):
        return False
    try:
        skxmr.load(os.path.join(folder, _CLASSIFIER))
        return len(entries) == 1 or _is_old_vectorizer(folder)
    except (ValueError, TypeError, OSError):
        return False


def _is_old_vectorizer(folder):
    """Whether ``vectorizer.json`` and ``vectorizer_idf.npy`` look like what
    an older ``skxmr train`` wrote (regular files, its JSON keys, a 1-D idf)."""
    json_file, idf_file = (os.path.join(folder, name) for name in _OLD_VECTORIZER)
    if not all(stat.S_ISREG(os.lstat(f).st_mode) for f in (json_file, idf_file)):
        return False
    with open(json_file, encoding="utf-8") as f:
        spec = json.load(f)
    idf = np.load(idf_file, allow_pickle=False, mmap_mode="r")
    return (isinstance(spec, dict) and set(spec) == {"params", "vocabulary"}
            and isinstance(spec["vocabulary"], dict) and idf.ndim == 1
            and idf.shape[0] == len(spec["vocabulary"]))


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

