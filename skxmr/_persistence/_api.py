"""skxmr.save and skxmr.load: a registered codec over the container."""

import os

from skxmr._persistence._container import (
    INDEX_CODINGS,
    Reader,
    Writer,
    write_model_dir,
)
from skxmr._persistence._errors import ModelFormatError
from skxmr._persistence._registry import CODECS, codec_of
from skxmr._persistence._xrlinear import WEIGHT_DTYPES
from skxmr._xrlinear import XRLinearClassifier


def save(model, path, *, weights="float32", index_coding="auto"):
    """Save a fitted model to the directory ``path`` in skxmr's safe format.

    Arrays go to ``.npy`` files (no pickle), parameters and metadata to
    ``skxmr_model.json`` with the format version, the SHA-256 of every file and
    a digest of the metadata itself (the layout is described in
    :mod:`skxmr._persistence`).

    Parameters
    ----------
    model : XRLinearClassifier, LabelIndexer or XTransformerClassifier
        A fitted model of exactly one of these classes. Other estimators
        (pipelines, subclasses) raise ``TypeError``: use pickle or joblib.
    path : str or os.PathLike
        The model directory. It is created (with its parents) when missing.
        The new model is written to a new directory next to it, then renamed
        into place, so ``path`` never holds a half-written model, and no file
        is ever rewritten in place (a process that memory-maps the previous
        model keeps reading its old files). An existing empty directory, or a
        complete skxmr model directory (its manifest lists exactly the files
        it holds), is replaced; anything else at ``path`` raises
        ``FileExistsError`` and is left untouched. Hidden leftovers of an
        interrupted save of the same ``path`` are removed.
    weights : {"float32", "float16", "int8"}, default="float32"
        The precision of an ``XRLinearClassifier``'s stored weights, for a
        smaller model directory to serve: ``"float16"`` rounds each weight to
        float16; ``"int8"`` stores ``round(127 * w / s)`` with one float32 scale
        ``s`` (the largest magnitude) per label column, and drops the weights
        that round to 0. :func:`load` reads them back as float32 ``coef_`` (the
        memory use after loading is the float32 model's); the scores change by
        the rounding (measured in benchmarks/RESULTS.md). Other models take
        only ``"float32"``.
    index_coding : {"auto", "plain", "varint"}, default="auto"
        How an ``XRLinearClassifier``'s weight matrices store their row
        (feature) indices and column pointers. ``"plain"``: as the int32 (or
        int64) arrays of the CSC matrices, 4 bytes a weight, which
        ``load(mmap_mode="r")`` maps in place. ``"varint"``: per column, its
        number of weights and the gaps between consecutive row indices as
        LEB128 varints (one byte below 128, two below 16384), about 1.1 to 1.4
        bytes a weight on the benchmark models; :func:`load` decodes them
        into the usual int32 arrays, in memory even with ``mmap_mode`` (about
        5 ns a weight), and the loaded model predicts exactly what a
        ``"plain"`` one does. ``"auto"`` is ``"varint"`` for ``"float16"`` and
        ``"int8"`` weights, whose directories are meant to be small (about
        0.4x and 0.3x of the float32 one with it), and ``"plain"`` for
        ``"float32"``, which stays memory-mappable. A directory with varint
        indices is written in format version 3, which earlier skxmr releases
        refuse to load, with a message asking for an upgrade; the others stay
        in version 2. Other models take only ``"auto"`` and ``"plain"``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The model is not fitted.
    TypeError
        Unsupported model, parameter or ``indexer`` type.
    ValueError
        A ``RandomState`` instance as ``random_state``, non-finite float
        parameters or weights, or labels that cannot be stored safely.
    FileExistsError
        ``path`` is a file, or a non-empty directory that is not a complete
        skxmr model directory.

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
    codec = codec_of(model)
    if codec is None:
        raise TypeError(
            "skxmr.save supports fitted XRLinearClassifier, LabelIndexer and "
            "XTransformerClassifier models "
            f"(exactly these classes), not {type(model).__name__}. Use pickle or "
            "joblib for other estimators (pipelines, subclasses): they work for every "
            "skxmr model, but unpickling can run code, so load only trusted files."
        )
    if not (isinstance(weights, str) and weights in WEIGHT_DTYPES):
        raise ValueError(f"weights must be one of {WEIGHT_DTYPES}, got {weights!r:.40}.")
    codings = ("auto", *INDEX_CODINGS)
    if not (isinstance(index_coding, str) and index_coding in codings):
        raise ValueError(f"index_coding must be one of {codings}, got "
                         f"{index_coding!r:.40}.")
    if index_coding == "auto":
        index_coding = "plain" if weights == "float32" else "varint"
    writer = Writer()
    if weights == "float32" and index_coding == "plain":
        params, attributes = codec.dump(model, writer)
    elif type(model) is XRLinearClassifier:
        params, attributes = codec.dump(model, writer, weights=weights,
                                        index_coding=index_coding)
    else:
        option = (f"weights={weights!r}" if weights != "float32"
                  else f"index_coding={index_coding!r}")
        raise ValueError(f"{option} is supported for XRLinearClassifier only, not "
                         f"{type(model).__name__}.")
    write_model_dir(path, writer, {"class": type(model).__name__, "params": params,
                                   "attributes": attributes})


def load(path, *, mmap_mode=None, verify=True):
    """Load a model saved by :func:`save`, without unpickling anything.

    Parameters
    ----------
    path : str or os.PathLike
        The model directory.
    mmap_mode : {None, "r", "c"}, default=None
        None reads the arrays into memory. ``"r"`` memory-maps them read-only:
        ``coef_`` and the other large arrays are used in place from the files,
        shared by every process mapping them (weights saved as ``"float16"``
        or ``"int8"`` are read into memory as float32 ``coef_``, and indices
        saved with ``index_coding="varint"`` are decoded into memory; the
        other arrays are still mapped). ``"c"`` maps them copy-on-write
        (changes stay in memory). The beam-search layout is built from
        ``coef_`` at the first prediction, in each process's own memory.
    verify : bool, default=True
        Check the SHA-256 of every file and the digest of the metadata; this
        reads every page of the files. It guards against accidental damage
        (truncation, flipped bits, edits), not against someone who can also
        rewrite the checksums. ``verify=False`` skips it, for fast opening of
        trusted files; the content is still validated (dtypes, shapes, index
        ranges, finite weights), so inconsistent files raise all the same.

    Returns
    -------
    model : XRLinearClassifier, LabelIndexer or XTransformerClassifier
        The fitted model, ready to predict. Predictions equal those of the
        saved model bit for bit.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a directory.
    ModelFormatError
        (a ``ValueError``) a missing, truncated, non-regular, damaged or
        inconsistent file, a checksum mismatch, an unknown class, unknown
        keys, or a format version this skxmr cannot read (older or newer);
        the message names the file.

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
    reader = Reader(path, mmap_mode, verify)
    codec = CODECS.get(reader.meta["class"])
    if codec is None:
        raise ModelFormatError(
            f"{reader.meta_file}: class {reader.meta['class']!r:.60} is not one skxmr "
            f"can load (one of {sorted(CODECS)})."
        )
    model = codec.load(reader.meta, reader)
    reader.check_all_used()
    return model
