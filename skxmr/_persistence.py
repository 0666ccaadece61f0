"""Safe persistence of fitted skxmr models: :func:`save` and :func:`load`.

A model is saved as a directory of plain NumPy ``.npy`` arrays (written and
read with ``allow_pickle=False``) and one JSON file holding the parameters,
the small fitted state, the format version and a SHA-256 checksum of every
array file. Loading never unpickles, never evaluates anything and imports
nothing named by the file: the class name in the JSON is looked up in a fixed
whitelist (``XRLinearClassifier``, ``LabelIndexer``, ``XTransformerClassifier``;
``LabelIndexer`` and ``LabelTree`` for the ``indexer`` parameter; the text
model's parts are described in :mod:`skxmr._persistence_text`). Every array goes through the
validators the model relies on (``LabelTree``, ``BeamSearcher.
from_chunked_levels``, scipy's full ``check_format``) and is checked against
the dtypes and shapes the format prescribes, so a damaged or hostile model
directory raises :class:`ModelFormatError` (a ``ValueError``) naming the file
and the problem, and never reaches the Cython kernels.

On-disk layout (format version 1)
---------------------------------
::

    model/                         # the directory given to save()
        skxmr_model.json           # metadata, see below
        tree.level_ptr.npy         # int64, LabelTree arrays of tree_
        tree.child_ptr.npy         # int64
        tree.label_perm.npy        # int64
        coef.<t>.data.npy          # float32   coef_[t - 1] (CSC), t = 1 .. n_levels,
        coef.<t>.indices.npy       # int32 or int64 (same dtype for both)
        coef.<t>.indptr.npy        #   shape (n_features + 1, n_nodes_t)
        search.<t>.chunk_ptr.npy   # int64     the beam-search layout of level t
        search.<t>.row_feat.npy    # int32     (BeamSearcher.chunked_levels), so
        search.<t>.row_ptr.npy     # int64     that a loaded model predicts at
        search.<t>.entries.npy     # structured (child int32, val float32)
        search.<t>.slot_ptr.npy    # int64     once, on the mapped pages
        search.<t>.slots.npy       # int32, shape (n_slots, 2)
        classes.npy                # classes_, when it is not an object array
        indexer.*.npy              # only for a LabelTree or chain ``indexer``

``skxmr_model.json`` holds exactly these keys::

    {"format": "skxmr-model", "format_version": 1, "skxmr_version": "...",
     "class": "XRLinearClassifier",
     "params": {...get_params(deep=False), JSON scalars...},
     "attributes": {"n_features_in_": ..., "feature_names_in_": [...] or null,
                    "n_levels": ..., "n_iter_": ... or null,
                    "targets": {"kind": ..., "dtype": ...,
                                "classes": [...] or null}},
     "arrays": {"tree.level_ptr": {"dtype": "<i8", "shape": [4],
                                   "sha256": "..."}, ...}}

A ``LabelIndexer`` model has ``tree.*`` and ``leaf_centroids.*`` arrays
(``data``/``indices``/``indptr`` when sparse, one 2-D array when dense) and the
attributes ``n_features_in_``, ``feature_names_in_``, ``n_labels_``,
``n_levels``, ``leaf_centroids_`` (format and shape, or null) and
``label_encoder`` (null, or the ``targets`` object of the labels given to
``fit`` as collections or 1-D labels, its array ``label_encoder.classes``).

What is saved, and limits
-------------------------
* Parameters must be None, bool, int, float (finite) or str; NumPy scalars are
  saved as the Python equivalents. ``random_state`` must be an int or None: a
  ``RandomState`` instance raises ``ValueError`` at save time (its state would
  not be saved; set an int, or use pickle).
* ``indexer``: None; a ``LabelIndexer`` (saved as its parameters only: a
  fitted one comes back unfitted, since after ``fit`` only ``tree_`` matters;
  refitting the loaded model then fits it anew); a ``LabelTree`` (stored as
  arrays, or as a reference to ``tree_`` when equal to it); a list of
  assignment matrices (stored as CSR/CSC arrays; dense or other sparse
  formats come back as ``scipy.sparse.csr_matrix``). Any other indexer raises
  ``TypeError``: ``model.set_params(indexer=model.tree_)`` makes such a model
  savable.
* Labels (``classes_``) are stored as an ``.npy`` array when numeric or
  strings, otherwise (object arrays) in the JSON, each label with its exact
  type: str, int, float, bool, None, bytes, tuples of these, and NumPy scalars
  of those kinds; other labels raise ``ValueError`` at save time.
* Only these exact classes are supported (not subclasses, not pipelines):
  pickle and joblib work for every skxmr estimator, but unpickling runs code,
  so only unpickle trusted files.
* ``mmap_mode="r"`` (or ``"c"``, copy-on-write) memory-maps every array of the
  model: the weight arrays (``coef_`` and the beam-search layout) are used in
  place, so the mapped pages are shared between processes. ``verify=True``
  hashes every file (reads every page); ``verify=False`` skips that, but the
  validation still reads the index arrays and the beam-search layout
  (vectorised checks, much faster than hashing; not the values of ``coef_``).
* ``save`` writes into a new directory next to ``path`` and renames it into
  place, so ``path`` never holds a half-written model; when replacing an
  existing model directory, ``path`` is briefly absent between two renames
  (the old model is then removed). A crash may leave a hidden
  ``.<name>.<random>.tmp`` directory next to ``path``.
"""

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import stat
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from numpy.lib import format as npy_format
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import MultiLabelBinarizer

from skxmr._beam import BeamSearcher
from skxmr._cython._beam_search import ENTRY_DTYPE
from skxmr._indexer import LabelIndexer
from skxmr._label_tree import LabelTree
from skxmr._postprocess import get_post_processor
from skxmr._targets import TargetEncoder
from skxmr._version import __version__
from skxmr._xrlinear import XRLinearClassifier
from skxmr._xtransformer import XTransformerClassifier
from skxmr.utils import effective_n_threads

__all__ = ["ModelFormatError", "load", "save"]

FORMAT = "skxmr-model"
FORMAT_VERSION = 1
METADATA = "skxmr_model.json"

_TOP_KEYS = {"format", "format_version", "skxmr_version", "class", "params",
             "attributes", "arrays"}
# Array names: lowercase dotted words; the file is ``<name>.npy``.
_NAME = re.compile(r"[a-z_]+(\.[a-z0-9_]+)*\Z")
_SEARCH_FIELDS = ("chunk_ptr", "row_feat", "row_ptr", "entries", "slot_ptr", "slots")
_SEARCH_DTYPES = tuple(np.dtype(d) for d in (np.int64, np.int32, np.int64, ENTRY_DTYPE,
                                             np.int64, np.int32))
# Sub-directories a model may hold besides its arrays (an XTransformerClassifier's
# encoder, in the sentence-transformers layout; see skxmr._persistence_text).
_FOLDERS = ("encoder",)
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MAX_DIM = 2**62
_MAX_LABEL_DEPTH = 32


class ModelFormatError(ValueError):
    """A model directory is damaged, inconsistent, hostile or of another format.

    Raised by :func:`load` with a message naming the file and the problem
    (missing or truncated file, checksum mismatch, unknown or newer format
    version, unknown keys, wrong dtypes or shapes, arrays the validators
    reject). A subclass of ``ValueError``.

    Examples
    --------
    >>> import os, tempfile
    >>> import skxmr
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "skxmr_model.json"), "w") as f:
    ...     _ = f.write("not JSON")
    >>> try:
    ...     skxmr.load(folder)
    ... except skxmr.ModelFormatError as exc:
    ...     print(type(exc).__name__, isinstance(exc, ValueError))
    ModelFormatError True
    """


# ======================================================================= save
def save(model, path):
    """Save a fitted model to the directory ``path`` in skxmr's safe format.

    Arrays go to ``.npy`` files (no pickle), parameters and metadata to
    ``skxmr_model.json`` with the format version and the SHA-256 of every
    array file (the layout is described in :mod:`skxmr._persistence`).

    Parameters
    ----------
    model : XRLinearClassifier, LabelIndexer or XTransformerClassifier
        A fitted model of exactly one of these classes. Other estimators
        (pipelines, subclasses) raise ``TypeError``: use pickle or joblib.
    path : str or os.PathLike
        The model directory. It is created (with its parents) when missing.
        An existing empty directory or a previous skxmr model directory is
        replaced without ever exposing a half-written model: the new model is
        written to a temporary directory next to it, then renamed into place
        (a previous model is moved aside first, so ``path`` is briefly
        absent, then removed). Anything else that exists at ``path`` raises
        ``FileExistsError`` and is left untouched.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The model is not fitted.
    TypeError
        Unsupported model, parameter or ``indexer`` type.
    ValueError
        A ``RandomState`` instance as ``random_state``, non-finite float
        parameters, or labels that cannot be stored safely.
    FileExistsError
        ``path`` is a file, or a non-empty directory that is not an skxmr
        model directory.

    See Also
    --------
    load : Read a saved model, optionally memory-mapped.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> import skxmr
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(300, 200, 30, random_state=0)
    >>> model = skxmr.XRLinearClassifier(random_state=0).fit(X, Y)
    >>> tmp = tempfile.mkdtemp()
    >>> skxmr.save(model, os.path.join(tmp, "model"))
    >>> sorted(os.listdir(os.path.join(tmp, "model")))[:3]
    ['classes.npy', 'coef.1.data.npy', 'coef.1.indices.npy']
    >>> shutil.rmtree(tmp)
    """
    dumper = _DUMPERS.get(type(model))
    if dumper is None:
        raise TypeError(
            "skxmr.save supports fitted XRLinearClassifier, LabelIndexer and "
            "XTransformerClassifier models "
            f"(exactly these classes), not {type(model).__name__}. Use pickle or "
            "joblib for other estimators (pipelines, subclasses): they work for every "
            "skxmr model, but unpickling can run code, so load only trusted files."
        )
    writer = _Writer()
    params, attributes = dumper(model, writer)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skxmr_version": __version__,
        "class": type(model).__name__,
        "params": params,
        "attributes": attributes,
    }
    try:
        _write_model_dir(path, writer.arrays, meta, writer.folders)
    finally:
        for staging in writer.folders.values():
            shutil.rmtree(os.path.dirname(staging), ignore_errors=True)


# ======================================================================= load
def load(path, *, mmap_mode=None, verify=True):
    """Load a model saved by :func:`save`, without unpickling anything.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    mmap_mode : {None, "r", "c"}, default=None
        None reads the arrays into memory. ``"r"`` memory-maps them read-only:
        a large model opens without reading its weights into private memory,
        and its pages are shared by every process mapping the same files.
        ``"c"`` maps them copy-on-write (changes stay in memory).
    verify : bool, default=True
        Check the SHA-256 of every array file against the metadata; this
        reads every page of the files. ``verify=False`` skips it, for fast
        opening of trusted files; the arrays are still validated (dtypes,
        shapes, index ranges), so inconsistent arrays raise all the same.

    Returns
    -------
    model : XRLinearClassifier, LabelIndexer or XTransformerClassifier
        The fitted model, ready to predict (an ``XRLinearClassifier`` gets
        its beam-search layout from the files, so the first prediction does
        not rebuild it). Predictions equal those of the saved model bit for
        bit.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a directory.
    ModelFormatError
        (a ``ValueError``) a missing, truncated, damaged or inconsistent file,
        a checksum mismatch, an unknown class, unknown keys, or a format
        version this skxmr cannot read; the message names the file.

    See Also
    --------
    save : Write a model in this format.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> import numpy as np
    >>> import skxmr
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(300, 200, 30, random_state=0)
    >>> model = skxmr.XRLinearClassifier(random_state=0).fit(X, Y)
    >>> tmp = tempfile.mkdtemp()
    >>> skxmr.save(model, os.path.join(tmp, "model"))
    >>> restored = skxmr.load(os.path.join(tmp, "model"), mmap_mode="r")
    >>> isinstance(restored.classes_, np.memmap)
    True
    >>> (restored.predict(X) != model.predict(X)).nnz
    0
    >>> del restored
    >>> shutil.rmtree(tmp)
    """
    if mmap_mode not in (None, "r", "c"):
        raise ValueError(f"mmap_mode must be None, 'r' or 'c', got {mmap_mode!r}.")
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such model directory.")
    meta_file = os.path.join(path, METADATA)
    meta = _read_metadata(meta_file)
    _check_header(meta, meta_file)
    loader = _LOADERS.get(meta["class"])
    if loader is None:
        raise ModelFormatError(
            f"{meta_file}: class {meta['class']!r} is not one skxmr can load "
            f"(one of {sorted(_LOADERS)})."
        )
    reader = _Reader(path, meta_file, meta["arrays"], mmap_mode, bool(verify))
    model = loader(meta, reader)
    reader.check_all_used()
    return model


# ================================================================ file access
class _Writer:
    """Collects the arrays of a model (name -> C-contiguous array)."""

    def __init__(self):
        self.arrays = {}
        self.folders = {}  # name -> a staging directory moved into the model

    def add_folder(self, name, staging):
        """Move the directory ``staging`` into the model as ``name/``."""
        assert name in _FOLDERS and name not in self.folders, name
        self.folders[name] = staging

    def add(self, name, array):
        assert _NAME.match(name) and name not in self.arrays, name
        array = np.ascontiguousarray(array)
        _dtype_name(array.dtype, name)  # raises for dtypes the format lacks
        self.arrays[name] = array

    def add_sparse(self, prefix, M):
        index_dtype = np.result_type(M.indices.dtype, M.indptr.dtype)
        self.add(f"{prefix}.data", M.data)
        self.add(f"{prefix}.indices", M.indices.astype(index_dtype, copy=False))
        self.add(f"{prefix}.indptr", M.indptr.astype(index_dtype, copy=False))


class _HashingFile:
    """A write-only file object that hashes what goes through it."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()

    def write(self, data):
        self.sha.update(data)
        return self.raw.write(data)


def _write_array(file, array):
    with open(file, "xb") as raw:
        out = _HashingFile(raw)
        npy_format.write_array(out, array, allow_pickle=False)
        raw.flush()
        os.fsync(raw.fileno())
    return {"dtype": _dtype_name(array.dtype, file), "shape": list(array.shape),
            "sha256": out.sha.hexdigest()}


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_model_dir(path, arrays, meta, folders=None):
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    if not name:
        raise ValueError(f"{path}: the path must name a model directory.")
    existing = _existing_target(path)
    os.makedirs(parent, exist_ok=True)
    while True:  # a fresh directory next to path (same file system: rename works)
        tmp = os.path.join(parent, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            os.mkdir(tmp)
            break
        except FileExistsError:
            continue
    try:
        meta["arrays"] = {
            key: _write_array(os.path.join(tmp, key + ".npy"), array)
            for key, array in arrays.items()
        }
        for name, staging in (folders or {}).items():
            shutil.move(staging, os.path.join(tmp, name))
            _fsync_tree(os.path.join(tmp, name))
        text = _dumps(meta)
        with open(os.path.join(tmp, METADATA), "x", encoding="ascii") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if existing is None:
            os.rename(tmp, path)
        elif existing == "empty":
            os.rmdir(path)
            os.rename(tmp, path)
        else:  # replace a previous model: move it aside, move the new one in
            old = tmp[: -len(".tmp")] + ".old"
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(parent)


def _fsync_tree(folder):
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(root)


def _dumps(meta):
    """The metadata as JSON text: indented, one line per array entry."""
    arrays = meta["arrays"]
    head = {key: value for key, value in meta.items() if key != "arrays"}
    text = json.dumps(head, indent=1, allow_nan=False)[: -len("\n}")]
    entries = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry, allow_nan=False)}"
                         for name, entry in arrays.items())
    return f'{text},\n "arrays": {{\n{entries}\n }}\n}}'


def _existing_target(path):
    """None (nothing at path), "empty" (an empty directory) or "model" (a previous
    skxmr model directory); FileExistsError for anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise FileExistsError(
            f"{path} exists and is not a directory (or is a symbolic link); "
            "skxmr.save writes a model directory there. Choose another path or "
            "remove it first."
        )
    entries = os.listdir(path)
    if not entries:
        return "empty"
    if _is_model_dir(path, entries):
        return "model"
    raise FileExistsError(
        f"{path} is a non-empty directory that is not an skxmr model directory; "
        "refusing to overwrite it. Choose another path or remove it first."
    )


def _is_model_dir(path, entries):
    if METADATA not in entries:
        return False
    for entry in entries:
        mode = os.lstat(os.path.join(path, entry)).st_mode
        if entry in _FOLDERS and stat.S_ISDIR(mode):
            continue
        if entry != METADATA and not (entry.endswith(".npy")
                                      and _NAME.match(entry[: -len(".npy")])):
            return False
        if not stat.S_ISREG(mode):
            return False
    try:
        meta = _read_metadata(os.path.join(path, METADATA))
    except (ModelFormatError, OSError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_BINARY", 0))


def _open_regular(file):
    """Open ``file`` for reading: a regular file, not a symbolic link."""
    try:
        fd = os.open(file, _OPEN_FLAGS)
    except FileNotFoundError:
        raise ModelFormatError(f"{file}: the file is missing.") from None
    except OSError as exc:
        raise ModelFormatError(
            f"{file}: cannot be opened ({exc.strerror}; symbolic links are refused)."
        ) from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise ModelFormatError(f"{file}: not a regular file.")
    return f


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constants(name):
    raise ValueError(f"{name} is not allowed")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite float")
    return value


def _read_metadata(meta_file):
    try:
        with _open_regular(meta_file) as f:
            raw = f.read()
    except ModelFormatError as exc:
        if not os.path.lexists(meta_file):
            raise ModelFormatError(
                f"{meta_file}: the file is missing (not an skxmr model directory)."
            ) from None
        raise exc
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                          parse_constant=_no_constants, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError
        raise ModelFormatError(
            f"{meta_file}: not valid JSON metadata ({exc})."
        ) from None


def _check_keys(obj, keys, where, what):
    if not isinstance(obj, dict):
        raise ModelFormatError(f"{where}: {what} must be a JSON object.")
    unknown = sorted(set(obj) - set(keys))
    missing = sorted(set(keys) - set(obj))
    if unknown or missing:
        problem = []
        if unknown:
            problem.append(f"unknown keys {unknown}")
        if missing:
            problem.append(f"missing keys {missing}")
        raise ModelFormatError(f"{where}: {what} has {' and '.join(problem)}.")


def _check_header(meta, meta_file):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFormatError(
            f"{meta_file}: not skxmr model metadata (no \"format\": {FORMAT!r})."
        )
    version = meta.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelFormatError(
            f"{meta_file}: invalid format_version {version!r} (expected an int >= 1)."
        )
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{meta_file}: format version {version} was written by a newer skxmr; "
            f"this skxmr ({__version__}) reads format version {FORMAT_VERSION}. "
            "Upgrade skxmr to load it."
        )
    _check_keys(meta, _TOP_KEYS, meta_file, "the metadata")
    if not isinstance(meta["class"], str):
        raise ModelFormatError(f"{meta_file}: \"class\" must be a string.")
    if not isinstance(meta["arrays"], dict):
        raise ModelFormatError(f"{meta_file}: \"arrays\" must be a JSON object.")


def _dtype_name(dtype, where):
    """The JSON name of a dtype the format allows."""
    dtype = np.dtype(dtype)
    if dtype == ENTRY_DTYPE:
        return "entry"
    if (dtype.fields is not None or dtype.subdtype is not None
            or dtype.kind not in "biufU"):
        raise TypeError(f"{where}: arrays of dtype {dtype} cannot be saved.")
    return dtype.str


def _parse_dtype(name, where):
    if name == "entry":
        return ENTRY_DTYPE
    if not isinstance(name, str) or len(name) > 16:
        raise ModelFormatError(f"{where}: invalid dtype {name!r:.40}.")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{where}: invalid dtype {name!r}.") from None
    if (dtype.fields is not None or dtype.subdtype is not None
            or dtype.kind not in "biufU" or dtype.str != name):
        raise ModelFormatError(f"{where}: dtype {name!r} is not allowed.")
    return dtype


def _int(value, where, low=0, high=_MAX_DIM):
    if type(value) is not int or not low <= value <= high:
        raise ModelFormatError(f"{where}: expected an int in [{low}, {high}], got "
                               f"{value!r:.40}.")
    return value


class _Reader:
    """Reads the arrays listed in the metadata, checking them on the way."""

    def __init__(self, path, meta_file, table, mmap_mode, verify):
        self.path = path
        self.meta_file = meta_file
        self.table = table
        self.mmap_mode = mmap_mode
        self.verify = verify
        self.used = set()

    def fail(self, message):
        return ModelFormatError(f"{self.meta_file}: {message}")

    def check_all_used(self):
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(f"unknown entries {unknown[:5]} in \"arrays\".")

    def array(self, name, dtypes, ndim, shape=None):
        """The array ``name``; ``dtypes``: allowed dtypes (tuple) or kinds (str);
        ``shape``: expected shape, None entries free."""
        self.used.add(name)
        file = os.path.join(self.path, name + ".npy")
        entry = self.table.get(name)
        if entry is None:
            raise self.fail(f"the array {name!r} is missing from \"arrays\".")
        _check_keys(entry, ("dtype", "shape", "sha256"), self.meta_file,
                    f"arrays[{name!r}]")
        dtype = _parse_dtype(entry["dtype"], file)
        if isinstance(dtypes, str):
            ok = dtype != ENTRY_DTYPE and dtype.kind in dtypes
        else:
            ok = any(dtype == d for d in dtypes)
        if not ok:
            raise ModelFormatError(
                f"{file}: dtype {entry['dtype']} is not allowed for this array "
                f"(expected {_describe(dtypes)})."
            )
        dims = entry["shape"]
        if not isinstance(dims, list) or len(dims) != ndim:
            raise ModelFormatError(f"{file}: expected a {ndim}-D shape in the "
                                   f"metadata, got {dims!r:.60}.")
        dims = tuple(_int(d, file) for d in dims)
        if shape is not None and any(e is not None and e != d
                                     for e, d in zip(shape, dims)):
            raise ModelFormatError(
                f"{file}: shape {dims} where "
                f"{tuple('*' if e is None else e for e in shape)} is expected."
            )
        digest = entry["sha256"]
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ModelFormatError(f"{file}: invalid sha256 in the metadata.")
        return self._read(file, dtype, dims, digest)

    def _read(self, file, dtype, shape, digest):
        with _open_regular(file) as f:
            try:
                version = npy_format.read_magic(f)
                if version == (1, 0):
                    header = npy_format.read_array_header_1_0(f)
                elif version == (2, 0):
                    header = npy_format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
            except Exception as exc:  # numpy's header parser raises many kinds
                raise ModelFormatError(f"{file}: not a valid .npy file ({exc}).") \
                    from None
            h_shape, fortran, h_dtype = header
            if fortran or h_dtype != dtype or tuple(h_shape) != shape:
                raise ModelFormatError(
                    f"{file}: the file holds {'a Fortran-order' if fortran else 'an'} "
                    f"array of dtype {h_dtype} and shape {tuple(h_shape)}; the "
                    f"metadata says dtype {dtype} and shape {shape}."
                )
            offset = f.tell()
            nbytes = math.prod(shape) * dtype.itemsize
            size = os.fstat(f.fileno()).st_size
            if size != offset + nbytes:
                problem = "truncated" if size < offset + nbytes else "trailing data"
                raise ModelFormatError(
                    f"{file}: {problem}: the file has {size} bytes, its header "
                    f"announces {offset + nbytes}."
                )
            if offset % 16:
                raise ModelFormatError(f"{file}: the array data is not aligned.")
            if self.verify:
                f.seek(0)
                sha = hashlib.sha256()
                for block in iter(lambda: f.read(1 << 20), b""):
                    sha.update(block)
                if sha.hexdigest() != digest:
                    raise ModelFormatError(
                        f"{file}: checksum mismatch (sha256 {sha.hexdigest()[:16]}..., "
                        f"the metadata lists {digest[:16]}...): the file is damaged "
                        "or was modified."
                    )
            if self.mmap_mode is not None and nbytes:
                return np.memmap(f, dtype=dtype, mode=self.mmap_mode, offset=offset,
                                 shape=shape, order="C")
            array = np.empty(shape, dtype=dtype)
            f.seek(offset)
            buffer = array.reshape(-1).view(np.uint8)
            done = 0
            while done < nbytes:
                n = f.readinto(buffer[done:])
                if not n:
                    raise ModelFormatError(f"{file}: truncated while reading.")
                done += n
            return array

    def sparse(self, prefix, fmt, shape, data_dtypes):
        """A CSR or CSC matrix from ``<prefix>.data/indices/indptr``, fully checked."""
        data = self.array(f"{prefix}.data", data_dtypes, 1)
        indices = self.array(f"{prefix}.indices", _INDEX_DTYPES, 1, data.shape)
        n_ptr = shape[1] if fmt == "csc" else shape[0]
        indptr = self.array(f"{prefix}.indptr", (indices.dtype,), 1, (n_ptr + 1,))
        file = os.path.join(self.path, f"{prefix}.*.npy")
        if indptr[0] != 0 or indptr[-1] != data.shape[0]:
            raise ModelFormatError(f"{file}: the pointers do not span the entries.")
        cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
        try:
            M = cls((data, indices, indptr), shape=shape, copy=False)
            M.check_format(full_check=True)
        except (ValueError, TypeError, IndexError, OverflowError) as exc:
            raise ModelFormatError(f"{file}: not a valid {fmt.upper()} matrix of shape "
                                   f"{shape}: {exc}") from None
        return M


def _describe(dtypes):
    if isinstance(dtypes, str):
        return f"dtype kinds {dtypes!r}"
    return " or ".join("entry" if d == ENTRY_DTYPE else str(d) for d in dtypes)


# ========================================================= parameters (JSON)
def _plain(value, where):
    """A JSON scalar for a constructor parameter."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; only finite numbers can be saved.")
        return value
    raise TypeError(
        f"{where} of type {type(value).__name__} cannot be saved in the safe format "
        "(only None, bool, int, float and str parameters); use pickle or joblib."
    )


def _random_state(value, where):
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise ValueError(
        f"{where} is a {type(value).__name__}; only an int or None random_state can be "
        "saved (the state of a random generator is not). Set an int or None with "
        "set_params before saving, or use pickle/joblib."
    )


def _params_to_json(est, where, **hooks):
    """The constructor parameters as JSON; ``hooks[key](value)`` encodes the
    parameters that are not plain scalars (e.g. ``indexer``)."""
    out = {}
    for key, value in est.get_params(deep=False).items():
        name = f"{where}.{key}"
        if key == "random_state":
            out[key] = _random_state(value, name)
        elif key in hooks:
            out[key] = hooks[key](value)
        else:
            out[key] = _plain(value, name)
    return out


def _params_from_json(cls, params, where, **hooks):
    """An estimator of ``cls`` from its JSON parameters, validated;
    ``hooks[key](value)`` decodes the parameters ``_params_to_json`` hooked."""
    if not isinstance(params, dict):
        raise ModelFormatError(f"{where}: the parameters must be a JSON object.")
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelFormatError(f"{where}: unknown parameters {unknown} for "
                               f"{cls.__name__}.")
    kwargs = {}
    for key, value in params.items():
        if key in hooks:
            kwargs[key] = hooks[key](value)
        elif type(value) is int and not -(2**62) <= value <= 2**62:
            raise ModelFormatError(f"{where}: parameter {key!r} is out of range.")
        elif value is None or type(value) in (bool, int, float, str):
            kwargs[key] = value
        else:
            raise ModelFormatError(f"{where}: parameter {key!r} has a value of "
                                   f"unsupported type {type(value).__name__}.")
    est = cls(**kwargs)
    try:
        est._validate_params()
        if est.n_jobs is not None and abs(est.n_jobs) >= 2**31:
            raise ValueError(f"n_jobs={est.n_jobs} is out of range.")
        effective_n_threads(est.n_jobs)  # n_jobs=0 passes the constraints
        if cls is XRLinearClassifier:
            get_post_processor(est.post_processor)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFormatError(f"{where}: invalid {cls.__name__} parameters: "
                               f"{exc}") from None
    return est


# ================================================================ labels (JSON)
def _encode_label(value, depth=0):
    """A label as JSON, keeping its exact type (see _decode_label)."""
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return value
    if kind is float:
        return ["float", value.hex()]
    if kind is bytes:
        return ["bytes", value.hex()]
    if kind is tuple and depth < _MAX_LABEL_DEPTH:
        return ["tuple", [_encode_label(v, depth + 1) for v in value]]
    if (isinstance(value, np.generic) and value.dtype.kind in "biufUS"
            and value.dtype.fields is None):
        return ["numpy", value.dtype.str, _encode_label(value.item(), depth + 1)]
    raise ValueError(
        f"the label {value!r:.60} of type {kind.__name__} cannot be saved in the safe "
        "format (labels must be str, int, float, bool, None, bytes, tuples of these, "
        "or NumPy scalars of such kinds); use pickle or joblib for this model."
    )


_NUMPY_LABEL_TYPES = {"b": bool, "i": int, "u": int, "f": float, "U": str, "S": bytes}


def _decode_label(x, depth=0):
    if x is None or type(x) in (str, bool, int):
        return x
    if type(x) is list and x and type(x[0]) is str and depth < _MAX_LABEL_DEPTH:
        tag = x[0]
        if tag == "float" and len(x) == 2 and type(x[1]) is str:
            return float.fromhex(x[1])
        if tag == "bytes" and len(x) == 2 and type(x[1]) is str:
            return bytes.fromhex(x[1])
        if tag == "tuple" and len(x) == 2 and type(x[1]) is list:
            return tuple(_decode_label(v, depth + 1) for v in x[1])
        if tag == "numpy" and len(x) == 3 and isinstance(x[1], str) and len(x[1]) <= 16:
            dtype = np.dtype(x[1])
            value = _decode_label(x[2], depth + 1)
            if (dtype.fields is not None or dtype.str != x[1]
                    or type(value) is not _NUMPY_LABEL_TYPES.get(dtype.kind)):
                raise ValueError(f"inconsistent NumPy label {x!r:.60}")
            return dtype.type(value)
    raise ValueError(f"unrecognised label encoding {x!r:.60}")


# ============================================================ shared pieces
def _check_fitted(model, attributes):
    if not all(hasattr(model, a) for a in attributes):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted; call fit before saving it."
        )


def _put_tree(writer, prefix, tree):
    if type(tree) is not LabelTree:
        raise TypeError(f"{prefix} must be a LabelTree, got {type(tree).__name__}.")
    writer.add(f"{prefix}.level_ptr", tree.level_ptr)
    writer.add(f"{prefix}.child_ptr", tree.child_ptr)
    writer.add(f"{prefix}.label_perm", tree.label_perm)


def _get_tree(reader, prefix):
    arrays = [reader.array(f"{prefix}.{name}", (np.dtype(np.int64),), 1)
              for name in ("level_ptr", "child_ptr", "label_perm")]
    try:
        return LabelTree(*arrays)
    except (ValueError, TypeError, IndexError) as exc:
        raise ModelFormatError(
            f"{os.path.join(reader.path, prefix)}.*.npy: invalid label tree: {exc}"
        ) from None


def _names_to_json(model, n_features):
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    names = list(names)
    if len(names) != n_features or not all(isinstance(n, str) for n in names):
        raise ValueError("feature_names_in_ must hold one str per feature.")
    return [str(n) for n in names]


def _names_from_json(names, n_features, where):
    if names is None:
        return None
    if (not isinstance(names, list) or len(names) != n_features
            or not all(type(n) is str for n in names)):
        raise ModelFormatError(
            f"{where}: feature_names_in_ must be null or a list of {n_features} "
            "strings."
        )
    out = np.empty(n_features, dtype=object)
    out[:] = names
    return out


def _shape_from_json(value, where):
    if not isinstance(value, list) or len(value) != 2:
        raise ModelFormatError(f"{where}: a matrix shape must be a list of 2 ints.")
    return tuple(_int(d, where) for d in value)


# ================================================== XRLinearClassifier
def _indexer_to_json(indexer, model, writer):
    if indexer is None:
        return None
    if type(indexer) is LabelIndexer:
        return {"class": "LabelIndexer",
                "params": _params_to_json(indexer, "XRLinearClassifier.indexer")}
    if type(indexer) is LabelTree:
        same = indexer is model.tree_ or indexer.equals(model.tree_)
        if not same:
            _put_tree(writer, "indexer", indexer)
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


def _indexer_from_json(value, reader, tree):
    where = reader.meta_file
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{where}: params.indexer must be null or an object.")
    kind = value.get("class")
    if kind == "LabelIndexer":
        _check_keys(value, ("class", "params"), where, "params.indexer")
        return _params_from_json(LabelIndexer, value["params"],
                                 f"{where}: params.indexer")
    if kind == "LabelTree":
        _check_keys(value, ("class", "same_as_tree_"), where, "params.indexer")
        if type(value["same_as_tree_"]) is not bool:
            raise ModelFormatError(f"{where}: params.indexer.same_as_tree_ must be a "
                                   "bool.")
        return tree if value["same_as_tree_"] else _get_tree(reader, "indexer")
    if kind == "chain":
        _check_keys(value, ("class", "matrices"), where, "params.indexer")
        specs = value["matrices"]
        if not isinstance(specs, list) or not 1 <= len(specs) <= 1000:
            raise ModelFormatError(f"{where}: params.indexer.matrices must be a list.")
        chain = []
        for i, spec in enumerate(specs):
            _check_keys(spec, ("format", "shape"), where,
                        f"params.indexer.matrices[{i}]")
            if spec["format"] not in ("csr", "csc"):
                raise ModelFormatError(f"{where}: unknown matrix format "
                                       f"{spec['format']!r:.20}.")
            shape = _shape_from_json(spec["shape"], where)
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


def _targets_to_json(targets, writer, n_labels, prefix=""):
    kind = getattr(targets, "kind", None)
    classes = np.asarray(targets.classes_)
    if classes.ndim != 1 or classes.shape[0] != n_labels:
        raise ValueError(
            f"classes_ must have shape ({n_labels},), got {classes.shape}."
        )
    out = {"kind": kind, "dtype": None, "classes": None}
    if kind in ("sparse", "dense"):
        out["dtype"] = _dtype_name(targets.dtype, "the dtype of y")
    elif kind not in ("sets", "multiclass"):
        raise ValueError(f"unknown target kind {kind!r}.")
    if classes.dtype.kind in "biufU" and classes.dtype.fields is None:
        writer.add(f"{prefix}classes", classes)
    elif classes.dtype.kind == "O":
        out["classes"] = [_encode_label(v) for v in classes]
    else:
        raise ValueError(
            f"labels of dtype {classes.dtype} cannot be saved in the safe format; use "
            "pickle or joblib for this model."
        )
    return out


def _targets_from_json(obj, reader, n_labels, prefix="", what="attributes.targets"):
    where = reader.meta_file
    _check_keys(obj, ("kind", "dtype", "classes"), where, what)
    kind = obj["kind"]
    if kind not in ("sparse", "dense", "sets", "multiclass"):
        raise ModelFormatError(f"{where}: unknown target kind {kind!r:.40}.")
    targets = TargetEncoder()
    targets.kind = kind
    if kind in ("sparse", "dense"):
        dtype = _parse_dtype(obj["dtype"], where)
        if dtype.kind not in "biuf":
            raise ModelFormatError(f"{where}: the dtype of y must be numeric.")
        targets.dtype = dtype
    elif obj["dtype"] is not None:
        raise ModelFormatError(f"{where}: {what}.dtype must be null for {kind!r} "
                               "targets.")
    if obj["classes"] is None:
        classes = reader.array(f"{prefix}classes", "biufU", 1, (n_labels,))
    else:
        labels = obj["classes"]
        if not isinstance(labels, list) or len(labels) != n_labels:
            raise ModelFormatError(f"{where}: {what}.classes must be a list of "
                                   f"{n_labels} labels.")
        classes = np.empty(n_labels, dtype=object)
        try:
            for i, label in enumerate(labels):
                classes[i] = _decode_label(label)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise ModelFormatError(f"{where}: {what}.classes: {exc}") from None
    if kind in ("sparse", "dense") and (
            classes.dtype.kind not in "iu"
            or not np.array_equal(classes, np.arange(n_labels))):
        raise ModelFormatError(f"{where}: the classes of an indicator y must be "
                               f"0 .. {n_labels - 1}.")
    targets.classes_ = classes
    if kind == "sets":  # as fit leaves it (only its classes_ matter after fit)
        binarizer = MultiLabelBinarizer(sparse_output=True)
        binarizer.classes_ = classes
        binarizer._cached_dict = None
        targets._binarizer = binarizer
    return targets


def _dump_xrlinear(model, writer):
    _check_fitted(model, ("tree_", "coef_", "classes_", "n_features_in_", "_targets"))
    tree = model.tree_
    _put_tree(writer, "tree", tree)
    params = _params_to_json(model, "XRLinearClassifier",
                             indexer=lambda v: _indexer_to_json(v, model, writer))
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
        writer.add_sparse(f"coef.{t}", W)
    for t, level in enumerate(model._searcher().chunked_levels, start=1):
        for field, array in zip(_SEARCH_FIELDS, level):
            writer.add(f"search.{t}.{field}", array)
    attributes = {
        "n_features_in_": n_features,
        "feature_names_in_": _names_to_json(model, n_features),
        "n_levels": int(tree.n_levels),
        "n_iter_": None if getattr(model, "n_iter_", None) is None
        else _plain(model.n_iter_, "n_iter_"),
        "targets": _targets_to_json(model._targets, writer, tree.n_labels),
    }
    return params, attributes


def _load_xrlinear(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    _check_keys(attributes, ("n_features_in_", "feature_names_in_", "n_levels",
                             "n_iter_", "targets"), where, "attributes")
    n_iter = attributes["n_iter_"]
    if n_iter is not None:
        n_iter = _int(n_iter, f"{where}: n_iter_")
    n_features = _int(attributes["n_features_in_"], f"{where}: n_features_in_", 1,
                      2**31 - 2)
    n_levels = _int(attributes["n_levels"], f"{where}: n_levels", 1, 10_000)
    tree = _get_tree(reader, "tree")
    if tree.n_levels != n_levels:
        raise ModelFormatError(f"{where}: n_levels is {n_levels} but the tree has "
                               f"{tree.n_levels} levels.")
    model = _params_from_json(XRLinearClassifier, meta["params"], f"{where}: params",
                              indexer=lambda v: _indexer_from_json(v, reader, tree))
    coef = [reader.sparse(f"coef.{t}", "csc", (n_features + 1, int(size)),
                          (np.dtype(np.float32),))
            for t, size in enumerate(tree.level_sizes, start=1)]
    levels = [
        tuple(reader.array(f"search.{t}.{field}", (dtype,),
                           2 if field == "slots" else 1)
              for field, dtype in zip(_SEARCH_FIELDS, _SEARCH_DTYPES))
        for t in range(1, n_levels + 1)
    ]
    try:
        searcher = BeamSearcher.from_chunked_levels(levels, tree, n_features=n_features,
                                                    bias=model.bias)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        level = re.match(r"chunked level (\d+):", str(exc))
        files = f"search.{level.group(1) if level else '*'}.*.npy"
        raise ModelFormatError(
            f"{os.path.join(reader.path, files)}: invalid beam-search layout: {exc}"
        ) from None
    try:  # the prediction parameters, as predict will check them
        searcher._params(model.beam_size, model.top_k, model.post_processor)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: params: {exc}") from None
    targets = _targets_from_json(attributes["targets"], reader, tree.n_labels)
    names = _names_from_json(attributes["feature_names_in_"], n_features, where)
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = names
    if n_iter is not None:
        model.n_iter_ = n_iter
    model._targets = targets
    model.classes_ = targets.classes_
    model.tree_ = tree
    model.coef_ = coef
    model._beam_searcher = (coef, searcher)  # what _searcher() builds, from the files
    return model


# ============================================================ LabelIndexer
def _dump_indexer(model, writer):
    _check_fitted(model, ("tree_", "n_labels_", "n_features_in_"))
    params = _params_to_json(model, "LabelIndexer")
    tree = model.tree_
    _put_tree(writer, "tree", tree)
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
    encoder = getattr(model, "_label_encoder", None)
    attributes = {
        "n_features_in_": n_features,
        "feature_names_in_": _names_to_json(model, n_features),
        "n_labels_": int(model.n_labels_),
        "n_levels": int(tree.n_levels),
        "leaf_centroids_": centroids,
        "label_encoder": None if encoder is None else _targets_to_json(
            encoder, writer, tree.n_labels, prefix="label_encoder."),
    }
    return params, attributes


def _load_indexer(meta, reader):
    where = reader.meta_file
    attributes = meta["attributes"]
    _check_keys(attributes, ("n_features_in_", "feature_names_in_", "n_labels_",
                             "n_levels", "leaf_centroids_", "label_encoder"), where,
                "attributes")
    n_features = _int(attributes["n_features_in_"], f"{where}: n_features_in_", 1)
    n_labels = _int(attributes["n_labels_"], f"{where}: n_labels_", 1)
    n_levels = _int(attributes["n_levels"], f"{where}: n_levels", 1, 10_000)
    model = _params_from_json(LabelIndexer, meta["params"], f"{where}: params")
    tree = _get_tree(reader, "tree")
    if tree.n_levels != n_levels or tree.n_labels != n_labels:
        raise ModelFormatError(f"{where}: n_levels/n_labels_ do not match the tree.")
    spec = attributes["leaf_centroids_"]
    centroids = None
    if spec is not None:
        _check_keys(spec, ("format", "shape"), where, "attributes.leaf_centroids_")
        shape = _shape_from_json(spec["shape"], where)
        if shape[0] != tree.leaf_sizes().size:
            raise ModelFormatError(f"{where}: leaf_centroids_ must have one row per "
                                   "leaf cluster.")
        if spec["format"] == "dense":
            centroids = reader.array("leaf_centroids", _FLOAT_DTYPES, 2, shape)
        elif spec["format"] in ("csr", "csc"):
            centroids = reader.sparse("leaf_centroids", spec["format"], shape,
                                      _FLOAT_DTYPES)
        else:
            raise ModelFormatError(f"{where}: unknown leaf_centroids_ format "
                                   f"{spec['format']!r:.20}.")
    encoder = attributes["label_encoder"]
    if encoder is not None:
        encoder = _targets_from_json(encoder, reader, n_labels, "label_encoder.",
                                     "attributes.label_encoder")
    names = _names_from_json(attributes["feature_names_in_"], n_features, where)
    model.n_features_in_ = n_features
    if names is not None:
        model.feature_names_in_ = names
    model._label_encoder = encoder  # labels of fit given as collections / 1-D
    model.tree_ = tree
    model.n_labels_ = n_labels
    if centroids is not None:
        model.leaf_centroids_ = centroids
    return model


_DUMPERS = {XRLinearClassifier: _dump_xrlinear, LabelIndexer: _dump_indexer}
_LOADERS = {"XRLinearClassifier": _load_xrlinear, "LabelIndexer": _load_indexer}

# The text model's format reuses the helpers above (imported last: no cycle).
from skxmr._persistence_text import dump_xtransformer, load_xtransformer

_DUMPERS[XTransformerClassifier] = dump_xtransformer
_LOADERS["XTransformerClassifier"] = load_xtransformer
