"""The ``skxmr`` command line: train, predict and evaluate from files.

Data files (``DATA``):

- an Extreme Classification Repository file (the first line ``n_rows n_features
  n_labels``, then ``labels features`` per row), read with
  :func:`skxmr.datasets.load_xmc_file`;
- a pair of ``.npz`` sparse matrices ``X.npz Y.npz`` (``scipy.sparse.save_npz``);
  for ``predict`` the ``X.npz`` alone;
- a text file ``.tsv`` with one document per line, ``label,label<TAB>text``
  (for ``predict``, lines without a tab are texts without labels). A model
  trained on texts holds its TF-IDF vectorizer.

A model is a directory written with :func:`skxmr.save` (never unpickled), plus,
for text models, ``vectorizer.json`` (the TF-IDF vocabulary and parameters) and
``vectorizer_idf.npy``.

Exit codes: 0 success, 1 a bad file or a failed step (one line on stderr,
no traceback), 2 bad command-line usage (argparse).

Progress: one line per step on stderr, and progress bars (tqdm, when installed)
for the long steps (training the tree levels, predicting in blocks of rows)
when stderr is a terminal or with ``--verbose``; ``--quiet`` prints nothing.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

_VECTORIZER_JSON = "vectorizer.json"
_VECTORIZER_IDF = "vectorizer_idf.npy"
_TFIDF_PARAMS = {"sublinear_tf": True, "min_df": 2, "ngram_range": [1, 2],
                 "max_features": 200_000, "dtype": "float32"}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


# ---------------------------------------------------------------- reading data
def read_data(paths, *, need_labels):
    """``(X or texts, Y or labels or None, kind)`` from the DATA arguments.

    ``kind`` is ``"matrix"`` (X is a CSR matrix, Y a CSR indicator) or
    ``"text"`` (X is a list of strings, Y a list of label lists).
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise CLIError(f"{path}: no such file")
    if len(paths) > 2:
        raise CLIError("DATA is one file (XMC format or .tsv) or two .npz files")
    if len(paths) == 2 or paths[0].suffix == ".npz":
        return _read_npz(paths, need_labels)
    if paths[0].suffix == ".tsv":
        return _read_tsv(paths[0], need_labels)
    from skxmr.datasets import load_xmc_file

    try:
        X, Y = load_xmc_file(paths[0])
    except (ValueError, OSError) as exc:
        raise CLIError(f"{paths[0]}: {exc}") from None
    return X, Y, "matrix"


def _read_npz(paths, need_labels):
    if any(p.suffix != ".npz" for p in paths):
        raise CLIError("two DATA files must both be .npz (X.npz Y.npz)")
    if need_labels and len(paths) != 2:
        raise CLIError("labels are needed: give X.npz and Y.npz")
    mats = []
    for path in paths:
        try:
            M = sp.load_npz(path)
        except Exception as exc:  # numpy/scipy raise many kinds for bad files
            raise CLIError(f"{path}: not a scipy sparse .npz file ({exc})") from None
        mats.append(sp.csr_matrix(M))
    X = mats[0]
    Y = mats[1] if len(mats) == 2 else None
    if Y is not None and Y.shape[0] != X.shape[0]:
        raise CLIError(f"{paths[0]} has {X.shape[0]} rows but {paths[1]} has "
                       f"{Y.shape[0]}")
    return X, Y, "matrix"


def _read_tsv(path, need_labels):
    texts, labels = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not UTF-8 text ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if "\t" in line:
            head, text = line.split("\t", 1)
            labels.append([t.strip() for t in head.split(",") if t.strip()])
        elif need_labels:
            raise CLIError(f"{path}, line {number}: expected 'labels<TAB>text'")
        else:
            text = line
            labels.append([])
        texts.append(text)
    if not texts:
        raise CLIError(f"{path}: no documents")
    return texts, labels, "text"


# ------------------------------------------------------------- saving models
def _save_vectorizer(vectorizer, folder):
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    (folder / _VECTORIZER_JSON).write_text(json.dumps(
        {"params": _TFIDF_PARAMS, "vocabulary": vocabulary}), encoding="utf-8")
    np.save(folder / _VECTORIZER_IDF, np.asarray(vectorizer.idf_, dtype=np.float64),
            allow_pickle=False)


def _load_vectorizer(folder):
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        spec = json.loads((folder / _VECTORIZER_JSON).read_text(encoding="utf-8"))
        idf = np.load(folder / _VECTORIZER_IDF, allow_pickle=False)
        params = dict(spec["params"])
        vocabulary = {str(k): int(v) for k, v in spec["vocabulary"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CLIError(f"{folder}: damaged vectorizer files ({exc})") from None
    if params != _TFIDF_PARAMS or idf.ndim != 1 or idf.shape[0] != len(vocabulary) \
            or sorted(vocabulary.values()) != list(range(len(vocabulary))):
        raise CLIError(f"{folder}: inconsistent vectorizer files")
    params["ngram_range"] = tuple(params["ngram_range"])
    params["dtype"] = np.float32
    vectorizer = TfidfVectorizer(**params)
    vectorizer.vocabulary_ = vocabulary
    vectorizer.idf_ = idf
    return vectorizer


def load_model(path):
    """``(classifier, vectorizer or None)`` from a model directory."""
    import skxmr

    folder = Path(path)
    if not folder.is_dir():
        raise CLIError(f"{folder}: no such model directory")
    try:
        model = skxmr.load(folder / "classifier")
    except (ValueError, OSError) as exc:
        raise CLIError(f"{folder}: {exc}") from None
    vectorizer = None
    if (folder / _VECTORIZER_JSON).exists():
        vectorizer = _load_vectorizer(folder)
    return model, vectorizer


# ------------------------------------------------------------------ commands
# Rows per predict_topk call when a progress bar is shown (rows are
# independent, so the blocks give the same labels and scores as one call).
_PREDICT_BLOCK = 8192


def progress_level(args):
    """Verbosity of the long steps: 0 with ``--quiet``, 1 with ``--verbose``,
    else 1 when stderr is a terminal."""
    if getattr(args, "quiet", False):
        return 0
    if getattr(args, "verbose", False):
        return 1
    return int(sys.stderr.isatty())


class _Steps:
    """One line per step on stderr (``--quiet`` silences them). A step that
    shows its own progress bar (``bar=True`` and ``verbose``) gets its line
    before the bar and its time after it."""

    def __init__(self, quiet, verbose=0):
        self.quiet = quiet
        self.verbose = verbose

    def run(self, message, func, *args, bar=False, **kwargs):
        start = time.perf_counter()
        own_line = bar and self.verbose
        if not self.quiet:
            print(f"{message} ...", end="\n" if own_line else "", file=sys.stderr,
                  flush=True)
        result = func(*args, **kwargs)
        if not self.quiet:
            elapsed = f"{time.perf_counter() - start:.1f} s"
            print(f"{message}: {elapsed}" if own_line else f" {elapsed}",
                  file=sys.stderr, flush=True)
        return result


def predict_topk(model, X, k=None, verbose=0):
    """``model.predict_topk(X, k)``, in blocks of rows with a progress bar when
    ``verbose`` and ``X`` has more than one block."""
    from skxmr._progress import progress

    n = X.shape[0]
    if not verbose or n <= _PREDICT_BLOCK:
        return model.predict_topk(X, k)
    parts = [model.predict_topk(X[i:i + _PREDICT_BLOCK], k)
             for i in progress(range(0, n, _PREDICT_BLOCK), desc="predicting",
                               unit="block", verbose=verbose)]
    return (np.concatenate([labels for labels, _ in parts]),
            np.concatenate([scores for _, scores in parts]))


def train(args):
    import skxmr
    from skxmr import LabelIndexer, XRLinearClassifier

    verbose = progress_level(args)
    steps = _Steps(args.quiet, verbose)
    X, Y, kind = steps.run("reading data", read_data, args.data, need_labels=True)
    vectorizer = None
    if kind == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer

        params = dict(_TFIDF_PARAMS, ngram_range=(1, 2), dtype=np.float32)
        vectorizer = TfidfVectorizer(**params)
        X = steps.run("TF-IDF features", vectorizer.fit_transform, X)
    model = XRLinearClassifier(
        LabelIndexer(branching_factor=args.branching_factor,
                     max_leaf_size=args.max_leaf_size, verbose=verbose),
        C=args.C, loss=args.loss, negative_sampling=args.negative_sampling,
        beam_size=args.beam_size, top_k=args.top_k, threshold=args.threshold,
        n_jobs=args.n_jobs, random_state=args.random_state, verbose=verbose,
    )
    try:
        steps.run(f"training on {X.shape[0]} rows", model.fit, X, Y, bar=True)
    except ValueError as exc:
        raise CLIError(f"training failed: {exc}") from None
    model.set_params(verbose=0, indexer__verbose=0)  # the saved model is silent
    out = Path(args.output)
    if out.exists() and not (out / "classifier").is_dir():
        raise CLIError(f"{out} exists and is not a skxmr model directory")
    out.mkdir(parents=True, exist_ok=True)
    steps.run(f"saving to {out}", skxmr.save, model, out / "classifier")
    for name in (_VECTORIZER_JSON, _VECTORIZER_IDF):
        (out / name).unlink(missing_ok=True)
    if vectorizer is not None:
        _save_vectorizer(vectorizer, out)
    return 0


def _features(model, vectorizer, X, kind, path):
    if (kind == "text") != (vectorizer is not None):
        raise CLIError(f"{path}: the model was trained on "
                       f"{'texts' if vectorizer is not None else 'feature vectors'}")
    if kind == "text":
        X = vectorizer.transform(X)
    if X.shape[1] != model.n_features_in_:
        raise CLIError(f"{path}: {X.shape[1]} features, the model expects "
                       f"{model.n_features_in_}")
    return X


def predict(args):
    verbose = progress_level(args)
    steps = _Steps(args.quiet, verbose)
    model, vectorizer = steps.run("loading the model", load_model, args.model)
    X, _, kind = steps.run("reading data", read_data, args.data, need_labels=False)
    X = _features(model, vectorizer, X, kind, args.data[0])
    try:
        labels, scores = steps.run("predicting", predict_topk, model, X, args.top_k,
                                   verbose, bar=X.shape[0] > _PREDICT_BLOCK)
    except ValueError as exc:
        raise CLIError(f"prediction failed: {exc}") from None
    names = model.classes_
    out = Path(args.output)
    with open(out, "w", encoding="utf-8") as f:
        for row_labels, row_scores in zip(labels, scores):
            f.write(" ".join(f"{names[j]}:{s:.6g}" for j, s in
                             zip(row_labels, row_scores) if j >= 0) + "\n")
    return 0


def evaluate(args):
    from skxmr.metrics import topk_report

    verbose = progress_level(args)
    steps = _Steps(args.quiet, verbose)
    model, vectorizer = steps.run("loading the model", load_model, args.model)
    X, Y, kind = steps.run("reading data", read_data, args.data, need_labels=True)
    X = _features(model, vectorizer, X, kind, args.data[0])
    if kind == "text":
        Y = model._targets.transform(Y)
    elif Y.shape[1] != len(model.classes_):
        raise CLIError(f"{args.data[-1]}: {Y.shape[1]} labels, the model has "
                       f"{len(model.classes_)}")
    ks = sorted(set(args.k))
    ranking = steps.run("predicting", predict_topk, model, X, max(ks), verbose,
                        bar=X.shape[0] > _PREDICT_BLOCK)
    report = topk_report(Y, ranking, ks=ks)
    for name in ("P", "R", "nDCG", "PSP"):
        print("  ".join(f"{name}@{k} {100 * report[f'{name}@{k}']:.2f}" for k in ks))
    return 0
