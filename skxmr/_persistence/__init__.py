"""Safe persistence of fitted skxmr models: :func:`save` and :func:`load`.

A model is saved as a directory of plain NumPy ``.npy`` arrays (written and
read with ``allow_pickle=False``), optional sub-directories of opaque files (an
XTransformerClassifier's encoder) and one JSON manifest holding the class name,
the parameters, the small fitted state, the format version, the SHA-256 of
every file and a digest of the manifest itself.

Modules (each does one job; none imports the one above it):

* ``_errors``: :class:`ModelFormatError` and two JSON checks;
* ``_codec``: JSON value codecs (parameters, random_state, labels with their
  exact types, feature names, shapes, dtype names);
* ``_container``: the directory as files; knows no estimator (atomic writes,
  checksums, header checks, regular files only, arrays with dtype/shape checks);
* ``_parts``: codecs of shared pieces (LabelTree, target encoder state);
* ``_indexer``, ``_xrlinear``, ``_vectorizer``, ``_xtransformer``: each class's
  state, written and read through public fitted attributes and the objects'
  own state methods (``TargetEncoder.get_state``/``from_state``);
* ``_registry``: ``{class name: codec}``; ``_api``: :func:`save`, :func:`load`.

On-disk layout (format versions 2 and 3)
----------------------------------------
::

    model/                         # the directory given to save()
        skxmr_model.json           # the manifest, see below
        tree.level_ptr.npy         # int64, LabelTree arrays of tree_
        tree.child_ptr.npy         # int64
        tree.label_perm.npy        # int64
        coef.<t>.data.npy          # float32   coef_[t - 1] (CSC), t = 1 .. n_levels,
        coef.<t>.indices.npy       # int32 or int64 (same dtype for both)
        coef.<t>.indptr.npy        #   shape (n_features + 1, n_nodes_t)
        coef.<t>.indices_varint.npy  # uint8, in place of indices + indptr with
                                   #   index_coding="varint" (format version 3)
        coef.<t>.scale.npy         # float32, one per column, weights="int8" only
        classes.npy                # classes_, when it is not an object array
        indexer.*.npy              # only for a LabelTree or chain ``indexer``

``coef_`` is the one source of truth for the weights: the beam-search layout
is built from it at the first prediction (version 1 also stored that layout,
``search.*.npy``, which could disagree with ``coef_`` and doubled the size).
``coef.<t>.data`` is float32, float16 (``weights="float16"``) or int8 (then
``w = data * scale / 127`` per column). ``coef.<t>.indices_varint`` holds, for
each column in order, LEB128 varints: its number of weights, then the gaps
``row_k - row_{k-1} - 1`` (``row_0 = -1``) between its row indices; it is
decoded in memory by ``skxmr._cython._varint`` (every byte bounds-checked, a
corrupt stream raises ModelFormatError). An ensemble stores each tree under
``member.<i>.`` (``member.<i>.tree.*``, ``member.<i>.coef.<t>.*``).
``skxmr_model.json`` holds exactly these keys::

    {"format": "skxmr-model", "format_version": 2 or 3, "skxmr_version": "...",
     "class": "XRLinearClassifier",
     "params": {...get_params(deep=False), JSON scalars...},
     "attributes": {"n_features_in_": ..., "feature_names_in_": [...] or null,
                    "n_levels": ..., "n_iter_": ... or null,
                    "targets": {"kind": ..., "dtype": ...,
                                "classes": [...] or null}},
     "arrays": {"tree.level_ptr": {"dtype": "<i8", "shape": [4],
                                   "sha256": "..."}, ...},
     "folders": {"encoder": {"config.json": "<sha256>", ...}} or {},
     "digest": "<sha256 of the canonical JSON of all the other keys>"}

The canonical JSON is ``json.dumps(manifest without "digest", sort_keys=True,
separators=(",", ":"), ensure_ascii=True)``. A ``LabelIndexer`` model has
``tree.*`` and ``leaf_centroids.*`` arrays (``data``/``indices``/``indptr``
when sparse, one 2-D array when dense) and the attributes ``n_features_in_``,
``feature_names_in_``, ``n_labels_``, ``n_levels``, ``leaf_centroids_``
(format and shape, or null) and ``label_encoder`` (null, or the ``targets``
object of the labels given to ``fit`` as collections or 1-D labels, its array
``label_encoder.classes``). The XTransformerClassifier's parts are described
in :mod:`skxmr._persistence._xtransformer`.

Format versions: version 3 is version 2 plus the varint streams, and is
written only for a directory that has one (the others stay version 2, which
older skxmr releases read). A directory of another version raises
ModelFormatError saying so (newer: upgrade skxmr; version 1: re-train, or
re-save with this skxmr).

What is guaranteed
------------------
* No code execution: loading never unpickles, never evaluates anything and
  imports nothing named by the file; the class name is looked up in a fixed
  registry (``XRLinearClassifier``, ``LabelIndexer``,
  ``XTransformerClassifier``). The encoder is read by sentence-transformers
  offline from safetensors files, without remote code.
* No reads outside the directory: only the files the manifest names, inside
  it; every entry must be a regular file (checked with ``lstat`` before it is
  opened, then opened with ``O_NOFOLLOW | O_NONBLOCK`` and re-checked with
  ``fstat``), so symbolic links, FIFOs (which would block), devices and
  directories are refused.
* Validation, with or without ``verify``: dtypes and shapes against the
  manifest and against each other, ``.npy`` headers and file sizes, CSR/CSC
  pointers, indices in range (sorted and unique in ``coef_``), varint streams
  (no read past their end, no varint over 64 bits, counts and indices in
  range, no trailing bytes), finite
  weights, centroids, idf and embeddings, LabelTree's own validators, labels
  consistent with the number of labels and unique, parameters through the
  estimators' own constraints. A damaged or hostile directory raises
  :class:`ModelFormatError` (a ``ValueError``) naming the file and the
  problem, and never reaches the compiled kernels.
* ``verify=True`` (default): every file's SHA-256 and the manifest's digest
  are checked, so an accidental change of any byte (truncation, bit rot, a
  hand edit of ``skxmr_model.json``) is reported. This is *integrity*, not
  *authenticity*: the digests sit next to the data, so whoever can rewrite the
  files can rewrite the digests too. Validation (above) is what keeps such a
  directory from crashing the process; it cannot tell a forged model from a
  genuine one. Sign or protect the directory if that matters.
* Writes: ``save`` stages the model in a new hidden sibling directory, creates
  every file anew (exclusive creation, never an existing file opened for
  writing), fsyncs, and renames the directory into place; a previous model is
  moved aside and removed, so a process that memory-maps it keeps its pages.
  Only an empty directory or a complete skxmr model (its manifest lists
  exactly its files) is replaced; anything else raises ``FileExistsError``.
  Leftovers of an interrupted save (``.<name>.skxmr-<hex>.new``/``.old``)
  holding only skxmr files are removed by the next save of the same path.

What is not guaranteed
----------------------
* Another program truncating or rewriting in place a file that a process
  has memory-mapped (``mmap_mode="r"``) makes that process fail with SIGBUS
  at the next access of a lost page: the operating system's behaviour,
  outside skxmr's control. Replace model directories with ``skxmr.save`` (or
  another rename-into-place) instead.
* Between the two renames of a replacement, ``path`` is briefly absent; a
  crash just there leaves the previous model under its hidden ``.old`` name.
* Parameters must be None, bool, int, float (finite) or str; ``random_state``
  an int or None; labels str, int, float, bool, None, bytes, tuples of these or
  NumPy scalars of such kinds; other values raise at save time. Only the exact
  classes above are supported (not subclasses, not pipelines): pickle and
  joblib work for every skxmr estimator, but unpickling runs code.
"""

from skxmr._persistence._api import load, save
from skxmr._persistence._errors import ModelFormatError
from skxmr._persistence._vectorizer import load_vectorizer, save_vectorizer

__all__ = ["ModelFormatError", "load", "load_vectorizer", "save", "save_vectorizer"]
