"""The model directory as a container of files; it knows no estimator.

A container is a directory holding one manifest, ``skxmr_model.json``, plain
``.npy`` arrays (never pickled) and, optionally, sub-directories of opaque files
(an encoder in the sentence-transformers layout). The manifest lists every file
with its dtype, shape and SHA-256 (sub-directories: every file's SHA-256), and
carries a ``digest``: the SHA-256 of the canonical JSON of the manifest without
that field, so that the metadata (parameters, labels, ...) is checksummed like
the arrays.

Writing (:func:`write_model_dir`) stages everything in a new sibling directory,
writes every file with exclusive creation (an existing file is never opened for
writing), fsyncs, and renames the staged directory into place; a previous model
is replaced only when it is a complete skxmr model directory (its manifest lists
exactly its files).

Reading (:class:`Reader`) refuses every entry that is not a regular file
(symbolic links, FIFOs, devices, directories where a file is expected) before
opening it, and checks each array's header, size, dtype, shape and checksum.

A sparse matrix is stored as ``<prefix>.data/indices/indptr``, or, with
``index_coding="varint"``, as ``<prefix>.data`` and ``<prefix>.indices_varint``:
one uint8 stream of LEB128 varints holding, per column (CSC) or row (CSR), its
number of entries and the gaps between its consecutive indices (the layout is
described in ``skxmr._cython._varint``); about 1.1 to 1.4 bytes an entry on the
benchmark models instead of 4 (int32) or 8 (int64). The reader decodes it into
the usual int32 arrays (int64 when the shape or the number of entries needs
it), in memory, whatever ``mmap_mode`` says. Format version 3 is version 2 plus
these streams; a directory without one is written as version 2, so that older
skxmr releases still read it.
"""

import hashlib
import json
import math
import os
import re
import secrets
import shutil
import stat

import numpy as np
import scipy.sparse as sp
from numpy.lib import format as npy_format

from skxmr._cython._varint import (
    VARINT_ERRORS,
    decode_index_stream,
    encode_index_stream,
)
from skxmr._persistence._codec import dtype_name, parse_dtype
from skxmr._persistence._errors import ModelFormatError, check_int, check_keys
from skxmr._version import __version__

FORMAT = "skxmr-model"
FORMAT_VERSION = 3  # the newest this skxmr writes; it reads 2 and 3
OLDEST_VERSION = 2
VARINT_VERSION = 3  # the first version with ``<prefix>.indices_varint`` streams
INDEX_CODINGS = ("plain", "varint")
METADATA = "skxmr_model.json"
TOP_KEYS = ("format", "format_version", "skxmr_version", "class", "params",
            "attributes", "arrays", "folders", "digest")

# Array names: lowercase dotted words; the file is ``<name>.npy``.
_NAME = re.compile(r"[a-z_]+(\.[a-z0-9_]+)*\Z")
_FOLDER = re.compile(r"[a-z_]+\Z")
_FILE_IN_FOLDER = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*\Z")
_INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_SHA = re.compile(r"[0-9a-f]{64}\Z")
_BLOCK = 1 << 20
_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


# ============================================================== file access
def _kind(mode):
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def open_regular(file):
    """Open ``file`` for reading when it is a regular file: anything else (a
    symbolic link, FIFO, device, socket or directory) is refused before it is
    opened, so that a FIFO cannot block and a link cannot lead outside."""
    try:
        before = os.lstat(file)
    except FileNotFoundError:
        raise ModelFormatError(f"{file}: the file is missing.") from None
    except OSError as exc:
        raise ModelFormatError(f"{file}: cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(before.st_mode):
        raise ModelFormatError(
            f"{file}: cannot be opened: it is a {_kind(before.st_mode)}, not a regular "
            "file (symbolic links, FIFOs, devices and directories are refused)."
        )
    try:
        fd = os.open(file, _READ_FLAGS)
    except OSError as exc:
        raise ModelFormatError(
            f"{file}: cannot be opened ({exc.strerror}; symbolic links are refused)."
        ) from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (
            before.st_dev, before.st_ino):
        os.close(fd)
        raise ModelFormatError(f"{file}: not a regular file (it changed while it "
                               "was opened).")
    return os.fdopen(fd, "rb")


def file_digest(file):
    """SHA-256 (hex) of a regular file."""
    sha = hashlib.sha256()
    with open_regular(file) as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            sha.update(block)
    return sha.hexdigest()


def _fsync(path, flags=0):
    """Flush ``path`` (a file or a directory) to disk, opened read-only (never
    for writing); silently skipped where the platform cannot (e.g. directories
    on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_dir(path):
    _fsync(path)


def _fsync_file(file):
    _fsync(file, getattr(os, "O_NOFOLLOW", 0))


def folder_files(folder):
    """``{relative path: absolute path}`` of every file under ``folder``;
    symbolic links and special files raise ModelFormatError."""
    files = {}
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    stack.append(entry.path)
                elif stat.S_ISREG(mode):
                    rel = os.path.relpath(entry.path, folder).replace(os.sep, "/")
                    files[rel] = entry.path
                else:
                    raise ModelFormatError(
                        f"{entry.path}: a {_kind(mode)}, not a regular file (symbolic "
                        "links and special files are refused).")
    return files


# ================================================================ manifest
def canonical_json(meta):
    """The text the manifest digest covers: everything but ``digest``."""
    body = {key: value for key, value in meta.items() if key != "digest"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def manifest_digest(meta):
    return hashlib.sha256(canonical_json(meta).encode("ascii")).hexdigest()


def _dumps(meta):
    """The manifest as JSON text: indented, one line per file entry."""
    head = {k: v for k, v in meta.items() if k not in ("arrays", "folders", "digest")}
    text = json.dumps(head, indent=1, allow_nan=False)[: -len("\n}")]
    parts = [text]
    for key in ("arrays", "folders"):
        entries = ",\n".join(
            f"  {json.dumps(name)}: {json.dumps(entry, allow_nan=False)}"
            for name, entry in meta[key].items())
        parts.append(f' "{key}": {{\n{entries}\n }}' if entries else f' "{key}": {{}}')
    parts.append(f' "digest": {json.dumps(meta["digest"])}\n}}')
    return ",\n".join(parts)


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


def read_manifest(meta_file):
    """The parsed JSON of ``meta_file`` (no check of its content)."""
    try:
        with open_regular(meta_file) as f:
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
        raise ModelFormatError(f"{meta_file}: not valid JSON metadata ({exc}).") \
            from None


def check_header(meta, meta_file):
    """Format name and version first (so that an older or newer model gets a
    message saying so), then the top-level keys."""
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
            f"this skxmr ({__version__}) reads format versions {OLDEST_VERSION} to "
            f"{FORMAT_VERSION}. "
            "Upgrade skxmr to load it."
        )
    if version < OLDEST_VERSION:
        raise ModelFormatError(
            f"{meta_file}: format version {version} was written by an older skxmr "
            f"(skxmr_version {str(meta.get('skxmr_version'))[:40]!r}); this skxmr "
            f"({__version__}) reads format versions {OLDEST_VERSION} to "
            f"{FORMAT_VERSION} only (version 1 "
            "kept the weights twice and did not checksum the metadata). Re-train the "
            "model, or load it with the skxmr that wrote it and save it again with "
            "this one (e.g. through a pickle you trust)."
        )
    check_keys(meta, TOP_KEYS, meta_file, "the metadata")
    if not isinstance(meta["class"], str):
        raise ModelFormatError(f"{meta_file}: \"class\" must be a string.")
    for key in ("arrays", "folders"):
        if not isinstance(meta[key], dict):
            raise ModelFormatError(f"{meta_file}: \"{key}\" must be a JSON object.")
    if not isinstance(meta["digest"], str) or not _SHA.match(meta["digest"]):
        raise ModelFormatError(f"{meta_file}: invalid digest.")


# ================================================================== writing
class Writer:
    """Collects what a model consists of: arrays (name -> C-contiguous array)
    and sub-directories (name -> a function that fills a given directory)."""

    def __init__(self):
        self.arrays = {}
        self.folders = {}
        self.format_version = OLDEST_VERSION  # raised by what the model needs

    def add(self, name, array):
        if not _NAME.match(name) or name in self.arrays:
            raise ValueError(f"invalid or repeated array name {name!r}.")
        array = np.ascontiguousarray(array)
        dtype_name(array.dtype, name)  # raises for dtypes the format lacks
        self.arrays[name] = array

    def add_sparse(self, prefix, M, *, data=None, index_coding="plain"):
        """A CSR or CSC matrix as ``<prefix>.data/indices/indptr``, or with
        ``index_coding="varint"`` as ``<prefix>.data/indices_varint`` (then its
        indices must be sorted and unique within each column or row, else
        ``ValueError``). ``data``, when given, is stored in place of ``M.data``
        (values of a dtype scipy.sparse cannot hold, e.g. float16)."""
        data = M.data if data is None else data
        if data.shape != M.data.shape:
            raise ValueError(f"{prefix}: data must have shape {M.data.shape}.")
        index_dtype = np.result_type(M.indices.dtype, M.indptr.dtype)
        indices = M.indices.astype(index_dtype, copy=False)
        indptr = M.indptr.astype(index_dtype, copy=False)
        if index_coding == "plain":
            self.add(f"{prefix}.data", data)
            self.add(f"{prefix}.indices", indices)
            self.add(f"{prefix}.indptr", indptr)
            return
        if index_coding != "varint":
            raise ValueError(f"index_coding must be one of {INDEX_CODINGS}, got "
                             f"{index_coding!r:.40}.")
        stream, (code, entry) = encode_index_stream(np.ascontiguousarray(indptr),
                                                    np.ascontiguousarray(indices))
        if code:
            raise ValueError(f"{prefix}: {VARINT_ERRORS[code]} (at {entry}); "
                             "only valid matrices with sorted indices (sum_duplicates) "
                             "can be varint-coded.")
        self.add(f"{prefix}.data", data)
        self.add(f"{prefix}.indices_varint", stream)
        self.format_version = max(self.format_version, VARINT_VERSION)

    def add_folder(self, name, fill):
        """``fill(directory)`` writes the files of the sub-directory ``name``."""
        if not _FOLDER.match(name) or name in self.folders:
            raise ValueError(f"invalid or repeated folder name {name!r}.")
        self.folders[name] = fill

    def prefixed(self, prefix):
        return _Prefixed(self, prefix)


class _Prefixed:
    """A writer or reader view whose array names all start with ``prefix``."""

    def __init__(self, inner, prefix):
        self._inner = inner
        self._prefix = prefix

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def add(self, name, array):
        self._inner.add(self._prefix + name, array)

    def add_sparse(self, prefix, M, **kwargs):
        self._inner.add_sparse(self._prefix + prefix, M, **kwargs)

    def array(self, name, *args, **kwargs):
        return self._inner.array(self._prefix + name, *args, **kwargs)

    def sparse(self, prefix, *args, **kwargs):
        return self._inner.sparse(self._prefix + prefix, *args, **kwargs)

    def prefixed(self, prefix):
        return _Prefixed(self._inner, self._prefix + prefix)


class _HashingFile:
    """A write-only file object that hashes what goes through it."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()

    def write(self, data):
        self.sha.update(data)
        return self.raw.write(data)


def write_array(file, array):
    """Write a new ``.npy`` file (exclusive creation) and fsync it; its entry."""
    with os.fdopen(os.open(file, _CREATE_FLAGS, 0o644), "wb") as raw:
        out = _HashingFile(raw)
        npy_format.write_array(out, array, allow_pickle=False)
        raw.flush()
        os.fsync(raw.fileno())
    return {"dtype": dtype_name(array.dtype, file), "shape": list(array.shape),
            "sha256": out.sha.hexdigest()}


def _write_folder(folder, fill):
    os.mkdir(folder)
    fill(folder)
    table = {}
    for rel, full in sorted(folder_files(folder).items()):
        table[rel] = file_digest(full)
        _fsync_file(full)
    for root, _, _ in os.walk(folder):
        _fsync_dir(root)
    return table


def _leftover_pattern(name):
    # this version's staging names, and those of format version 1's save
    return re.compile(rf"\.{re.escape(name)}\.(skxmr-[0-9a-f]{{12}}\.(new|old)"
                      rf"|[0-9a-f]{{12}}\.(tmp|old))\Z")


def _only_skxmr_files(folder):
    """True when ``folder`` holds nothing but what a model save writes: the
    manifest, valid ``.npy`` names and sub-directories of regular files."""
    try:
        with os.scandir(folder) as it:
            for entry in it:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode) and _FOLDER.match(entry.name):
                    folder_files(entry.path)  # raises for links and special files
                elif not (stat.S_ISREG(mode) and (
                        entry.name == METADATA or (entry.name.endswith(".npy")
                                                   and _NAME.match(entry.name[:-4])))):
                    return False
    except (OSError, ModelFormatError):
        return False
    return True


def _remove_tree(path):
    shutil.rmtree(path)


def _rename(src, dst):
    os.rename(src, dst)


def clean_leftovers(parent, name):
    """Remove the staging and replaced-model directories that an interrupted
    save of ``parent/name`` left: hidden names of our pattern holding only the
    files a save writes (anything else is left alone)."""
    pattern = _leftover_pattern(name)
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    for entry in entries:
        full = os.path.join(parent, entry)
        if (pattern.match(entry) and stat.S_ISDIR(os.lstat(full).st_mode)
                and _only_skxmr_files(full)):
            shutil.rmtree(full, ignore_errors=True)


def is_complete_model(path):
    """True when ``path`` is a directory whose manifest (of any format version)
    lists exactly the files it holds."""
    try:
        entries = set(os.listdir(path))
        meta = read_manifest(os.path.join(path, METADATA))
    except (OSError, ModelFormatError):
        return False
    if not (isinstance(meta, dict) and meta.get("format") == FORMAT
            and isinstance(meta.get("arrays"), dict)):
        return False
    folders = meta.get("folders", {})
    if meta.get("format_version") == 1:  # its encoder table sat in the attributes
        files = (meta.get("attributes") or {}).get("encoder_files")
        folders = {"encoder": files} if isinstance(files, dict) else {}
    if not isinstance(folders, dict):
        return False
    expected = {METADATA} | {f"{n}.npy" for n in meta["arrays"]} | set(folders)
    if entries != expected:
        return False
    for entry in entries:
        mode = os.lstat(os.path.join(path, entry)).st_mode
        if entry in folders:
            table = folders[entry]
            try:
                found = folder_files(os.path.join(path, entry))
            except (OSError, ModelFormatError):
                return False
            if not stat.S_ISDIR(mode) or not isinstance(table, dict) or \
                    set(found) != set(table):
                return False
        elif not stat.S_ISREG(mode):
            return False
    return True


def _existing_target(path):
    """None (nothing at path), "empty" (an empty directory) or "model" (a complete
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
    if not os.listdir(path):
        return "empty"
    if is_complete_model(path):
        return "model"
    raise FileExistsError(
        f"{path} is a non-empty directory that is not an skxmr model directory (or "
        "holds files its manifest does not list); refusing to overwrite it, so that "
        "nothing skxmr did not write is deleted. Choose another path, or move those "
        "files away first."
    )


def write_model_dir(path, writer, meta):
    """Write the model ``meta`` (class, params, attributes) and the content of
    ``writer`` as the directory ``path``, atomically."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    if not name:
        raise ValueError(f"{path}: the path must name a model directory.")
    existing = _existing_target(path)
    os.makedirs(parent, exist_ok=True)
    clean_leftovers(parent, name)
    while True:  # a fresh directory next to path (same file system: rename works)
        token = secrets.token_hex(6)
        tmp = os.path.join(parent, f".{name}.skxmr-{token}.new")
        try:
            os.mkdir(tmp)
            break
        except FileExistsError:
            continue
    old = tmp[: -len(".new")] + ".old"
    try:
        meta = {"format": FORMAT, "format_version": writer.format_version,
                "skxmr_version": __version__, **meta}
        meta["arrays"] = {key: write_array(os.path.join(tmp, key + ".npy"), array)
                          for key, array in writer.arrays.items()}
        meta["folders"] = {key: _write_folder(os.path.join(tmp, key), fill)
                           for key, fill in writer.folders.items()}
        meta["digest"] = manifest_digest(meta)
        fd = os.open(os.path.join(tmp, METADATA), _CREATE_FLAGS, 0o644)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(_dumps(meta) + "\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if existing == "empty":
            os.rmdir(path)
        if existing == "model":  # move the previous model aside, the new one in
            _rename(path, old)
            try:
                _rename(tmp, path)
            except BaseException:
                _rename(old, path)
                raise
        else:
            _rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(parent)
    if existing == "model":
        try:  # unlinking keeps the pages of a process that maps the old files
            _remove_tree(old)
        except BaseException:
            shutil.rmtree(old, ignore_errors=True)  # a leftover is cleaned next save
            raise


# ================================================================== reading
def _describe(dtypes):
    if isinstance(dtypes, str):
        return f"dtype kinds {dtypes!r}"
    return " or ".join(str(d) for d in dtypes)


class Reader:
    """Reads a model directory: the manifest (checked, its digest verified when
    ``verify``), then the arrays and sub-directories it lists, each checked."""

    def __init__(self, path, mmap_mode=None, verify=True):
        self.path = path
        self.meta_file = os.path.join(path, METADATA)
        self.mmap_mode = mmap_mode
        self.verify = bool(verify)
        meta = read_manifest(self.meta_file)
        check_header(meta, self.meta_file)
        if self.verify:
            digest = manifest_digest(meta)
            if digest != meta["digest"]:
                raise ModelFormatError(
                    f"{self.meta_file}: checksum mismatch (the digest of the metadata "
                    f"is {digest[:16]}..., the file lists {meta['digest'][:16]}...): "
                    "the file is damaged or was modified."
                )
        self.meta = meta
        self.table = meta["arrays"]
        self.used = set()
        self.used_folders = set()

    def fail(self, message):
        return ModelFormatError(f"{self.meta_file}: {message}")

    def prefixed(self, prefix):
        return _Prefixed(self, prefix)

    def check_all_used(self):
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(f"unknown entries {unknown[:5]} in \"arrays\".")
        unknown = sorted(set(self.meta["folders"]) - self.used_folders)
        if unknown:
            raise self.fail(f"unknown entries {unknown[:5]} in \"folders\".")

    # ------------------------------------------------------------- arrays
    def array(self, name, dtypes, ndim, shape=None, finite=False):
        """The array ``name``; ``dtypes``: allowed dtypes (tuple) or kinds (str);
        ``shape``: expected shape, None entries free; ``finite``: float values
        must be finite."""
        self.used.add(name)
        file = os.path.join(self.path, name + ".npy")
        entry = self.table.get(name)
        if entry is None:
            raise self.fail(f"the array {name!r} is missing from \"arrays\".")
        check_keys(entry, ("dtype", "shape", "sha256"), self.meta_file,
                   f"arrays[{name!r}]")
        dtype = parse_dtype(entry["dtype"], file)
        ok = (dtype.kind in dtypes if isinstance(dtypes, str)
              else any(dtype == d for d in dtypes))
        if not ok:
            raise ModelFormatError(
                f"{file}: dtype {entry['dtype']} is not allowed for this array "
                f"(expected {_describe(dtypes)})."
            )
        dims = entry["shape"]
        if not isinstance(dims, list) or len(dims) != ndim:
            raise ModelFormatError(f"{file}: expected a {ndim}-D shape in the "
                                   f"metadata, got {dims!r:.60}.")
        dims = tuple(check_int(d, file) for d in dims)
        if shape is not None and any(e is not None and e != d
                                     for e, d in zip(shape, dims)):
            raise ModelFormatError(
                f"{file}: shape {dims} where "
                f"{tuple('*' if e is None else e for e in shape)} is expected."
            )
        digest = entry["sha256"]
        if not isinstance(digest, str) or not _SHA.match(digest):
            raise ModelFormatError(f"{file}: invalid sha256 in the metadata.")
        array = self._read(file, dtype, dims, digest)
        if finite and dtype.kind == "f" and not np.isfinite(array).all():
            raise ModelFormatError(f"{file}: non-finite values (NaN or infinity).")
        return array

    def _read(self, file, dtype, shape, digest):
        with open_regular(file) as f:
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
                for block in iter(lambda: f.read(_BLOCK), b""):
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

    def sparse(self, prefix, fmt, shape, data_dtypes, finite=True, canonical=False):
        """A CSR or CSC matrix from ``<prefix>.data/indices/indptr``, fully
        checked: pointers, indices in range, finite values (``finite``), and
        sorted indices without duplicates (``canonical``); or from
        ``<prefix>.data/indices_varint`` (always canonical), decoded."""
        if f"{prefix}.indices_varint" in self.table:
            return self._varint_sparse(prefix, fmt, shape, data_dtypes, finite)
        data = self.array(f"{prefix}.data", data_dtypes, 1, finite=finite)
        indices = self.array(f"{prefix}.indices", _INDEX_DTYPES, 1, data.shape)
        n_ptr = shape[1] if fmt == "csc" else shape[0]
        indptr = self.array(f"{prefix}.indptr", (indices.dtype,), 1, (n_ptr + 1,))
        file = os.path.join(self.path, f"{prefix}.*.npy")
        if indptr[0] != 0 or indptr[-1] != data.shape[0] or np.any(
                indptr[1:] < indptr[:-1]):
            raise ModelFormatError(f"{file}: the pointers do not span the entries.")
        n_minor = shape[0] if fmt == "csc" else shape[1]
        if indices.size and (indices.min() < 0 or indices.max() >= n_minor):
            raise ModelFormatError(f"{file}: indices out of range [0, {n_minor}).")
        if canonical and indices.size > 1:
            step = np.diff(indices.astype(np.int64))
            starts = np.zeros(indices.size - 1, dtype=bool)
            inner = indptr[1:-1]
            inner = inner[(inner > 0) & (inner < indices.size)]
            starts[inner - 1] = True  # a new column/row begins after these
            if np.any((step <= 0) & ~starts):
                raise ModelFormatError(f"{file}: indices are not sorted or repeat "
                                       "within a column.")
        cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
        if data.dtype == np.float16:  # scipy.sparse has no float16 matrices
            data = data.astype(np.float32)
        try:
            M = cls((data, indices, indptr), shape=shape, copy=False)
            M.check_format(full_check=True)
        except (ValueError, TypeError, IndexError, OverflowError) as exc:
            raise ModelFormatError(f"{file}: not a valid {fmt.upper()} matrix of shape "
                                   f"{shape}: {exc}") from None
        return M

    def _varint_sparse(self, prefix, fmt, shape, data_dtypes, finite):
        file = os.path.join(self.path, f"{prefix}.indices_varint.npy")
        if self.meta["format_version"] < VARINT_VERSION:
            raise ModelFormatError(f"{file}: varint-coded indices need format version "
                                   f"{VARINT_VERSION}; the manifest says "
                                   f"{self.meta['format_version']}.")
        data = self.array(f"{prefix}.data", data_dtypes, 1, finite=finite)
        stream = self.array(f"{prefix}.indices_varint", (np.dtype(np.uint8),), 1)
        n_major, n_minor = (shape[1], shape[0]) if fmt == "csc" else shape
        nnz = data.shape[0]
        if stream.shape[0] < n_major + nnz:  # a byte per count and per gap at least
            raise ModelFormatError(f"{file}: corrupt index stream: {stream.shape[0]} "
                                   f"bytes cannot hold {n_major} counts and {nnz} "
                                   "indices.")
        # scipy's choice: int32 when the shape and the entries fit, else int64
        fits = max(n_major, n_minor, nnz) <= np.iinfo(np.int32).max
        index_dtype = np.int32 if fits else np.int64
        indptr = np.empty(n_major + 1, dtype=index_dtype)
        indices = np.empty(nnz, dtype=index_dtype)
        code, where = decode_index_stream(np.asarray(stream), n_minor, indptr, indices)
        if code:
            raise ModelFormatError(f"{file}: corrupt index stream: "
                                   f"{VARINT_ERRORS[code]} (byte {where} of "
                                   f"{stream.shape[0]}).")
        if data.dtype == np.float16:  # scipy.sparse has no float16 matrices
            data = data.astype(np.float32)
        cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
        M = cls((data, indices, indptr), shape=shape, copy=False)
        M.has_canonical_format = True  # strictly increasing by construction
        return M

    # ------------------------------------------------------------ folders
    def folder(self, name):
        """The path of the sub-directory ``name``, after checking that it holds
        exactly the regular files its manifest lists (and, when ``verify``,
        their checksums)."""
        self.used_folders.add(name)
        table = self.meta["folders"].get(name)
        folder = os.path.join(self.path, name)
        if not isinstance(table, dict) or not table or not all(
                isinstance(k, str) and _FILE_IN_FOLDER.match(k) and ".." not in
                k.split("/") and isinstance(v, str) and _SHA.match(v)
                for k, v in table.items()):
            raise self.fail(f"folders[{name!r}] must map file names to sha256.")
        try:
            mode = os.lstat(folder).st_mode
        except FileNotFoundError:
            raise ModelFormatError(f"{folder}: the directory is missing.") from None
        if not stat.S_ISDIR(mode):
            raise ModelFormatError(f"{folder}: a {_kind(mode)}, not a directory; the "
                                   "directory is missing.")
        found = folder_files(folder)
        if set(found) != set(table):
            extra = sorted(set(found) - set(table))[:3]
            missing = sorted(set(table) - set(found))[:3]
            raise ModelFormatError(f"{folder}: the files differ from the manifest "
                                   f"(unexpected {extra}, missing {missing}).")
        if self.verify:
            for rel, digest in table.items():
                if file_digest(found[rel]) != digest:
                    raise ModelFormatError(
                        f"{found[rel]}: checksum mismatch: the file is damaged or "
                        "was modified.")
        return folder
