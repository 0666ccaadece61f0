"""``skxmr train``, ``predict`` and ``evaluate``.

Each command checks every output path before it reads data or trains, so a
mistake in ``-o`` costs nothing and never destroys a file: ``train -o MODEL``
replaces only a model directory written by ``skxmr train`` (see
:mod:`skxmr._cli._model_dir`); ``predict -o OUT`` refuses an existing file
unless ``--force``, and refuses the input files and the model's own files
even with ``--force``. Results are written to a temporary file next to the
output and renamed into place at the end, so a failed run leaves no half file.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

from skxmr._cli._console import CLIError
from skxmr._cli._data import read_data
from skxmr._cli._model_dir import (TFIDF_DEFAULTS, check_model_output, load_model,
                                   make_vectorizer, save_model)

__all__ = ["train", "predict", "evaluate", "add_labels", "predict_topk"]

# Rows per predict_topk call when a progress bar is shown (rows are
# independent, so the blocks give the same labels and scores as one call).
_PREDICT_BLOCK = 8192


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


def tfidf_params(args):
    """The stored-form TF-IDF parameters of the ``train`` options."""
    return {"sublinear_tf": args.sublinear_tf, "min_df": args.min_df,
            "ngram_range": [1, args.ngram_max], "max_features": args.max_features,
            "dtype": "float32"}


def train(args, console):
    from skxmr import LabelIndexer, XRLinearClassifier

    check_model_output(args.output, args.data)
    X, Y, kind = console.step("reading data", read_data, args.data, need_labels=True)
    vectorizer = None
    params = tfidf_params(args)
    if kind == "text":
        vectorizer = make_vectorizer(params)
        try:
            X = console.step("TF-IDF features", vectorizer.fit_transform, X)
        except ValueError as exc:
            raise CLIError(f"{args.data[0]}: TF-IDF features failed: {exc} "
                           f"(--min-df is {args.min_df})") from None
    elif params != TFIDF_DEFAULTS:
        console.warning("--min-df, --max-features, --ngram-max and --sublinear-tf "
                        "apply to .tsv texts only; ignored")
    model = XRLinearClassifier(
        LabelIndexer(branching_factor=args.branching_factor,
                     max_leaf_size=args.max_leaf_size, verbose=console.verbose),
        C=args.C, loss=args.loss, negative_sampling=args.negative_sampling,
        beam_size=args.beam_size, top_k=args.top_k, threshold=args.threshold,
        n_estimators=args.n_estimators, combination=args.combination,
        n_jobs=args.n_jobs, random_state=args.random_state, verbose=console.verbose,
    )
    try:
        console.step(f"training on {X.shape[0]} rows", model.fit, X, Y, bar=True)
    except ValueError as exc:
        raise CLIError(f"training failed: {exc}") from None
    model.set_params(verbose=0, indexer__verbose=0)  # the saved model is silent
    console.step(f"saving to {args.output}", save_model, args.output, model,
                 vectorizer, args.data)
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


class _OutputFile:
    """The ``-o`` file of ``predict``: checked and opened (as a temporary file
    next to it) before any work, renamed into place by :meth:`commit`."""

    def __init__(self, path, *, force, inputs=(), input_dirs=()):
        self.path = out = Path(path)
        if out.name in ("", ".", "..") or str(path).endswith(os.sep):
            raise CLIError(f"{out}: the output must name a file")
        parent = Path(os.path.abspath(out)).parent
        if os.path.isdir(out):
            raise CLIError(f"{out} is a directory")
        resolved = Path(os.path.realpath(out))
        for data in inputs:
            if os.path.exists(out) and os.path.exists(data) and \
                    os.path.samefile(out, data):
                raise CLIError(f"{out} is the input file {data}; refusing to "
                               "overwrite it (even with --force)")
        for folder in input_dirs:
            if Path(os.path.realpath(folder)) in resolved.parents:
                raise CLIError(f"{out} is inside the model directory {folder}; "
                               "refusing to write there (even with --force)")
        if os.path.lexists(out) and not force:
            raise CLIError(f"{out} exists; use --force to replace it")
        if not parent.is_dir():
            raise CLIError(f"{parent}: no such directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CLIError(f"{parent}: directory not writable")
        try:
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.",
                                       suffix=".tmp")
        except OSError as exc:
            raise CLIError(f"{parent}: cannot write there "
                           f"({exc.strerror or exc})") from None
        self._tmp = Path(tmp)
        self.file = os.fdopen(fd, "w", encoding="utf-8")

    def commit(self):
        self.file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)
        os.replace(self._tmp, self.path)

    def discard(self):
        self.file.close()
        self._tmp.unlink(missing_ok=True)


def predict(args, console):
    output = _OutputFile(args.output, force=args.force, inputs=args.data,
                         input_dirs=[args.model])
    try:
        model, vectorizer = console.step("loading the model", load_model, args.model)
        X, _, kind = console.step("reading data", read_data, args.data,
                                  need_labels=False)
        X = _features(model, vectorizer, X, kind, args.data[0])
        try:
            labels, scores = console.step(
                "predicting", predict_topk, model, X, args.top_k, console.verbose,
                bar=X.shape[0] > _PREDICT_BLOCK)
        except ValueError as exc:
            raise CLIError(f"prediction failed: {exc}") from None
        names = model.classes_
        for row_labels, row_scores in zip(labels, scores):
            output.file.write(" ".join(f"{names[j]}:{s:.6g}" for j, s in
                                       zip(row_labels, row_scores) if j >= 0) + "\n")
        output.commit()
    except BaseException:
        output.discard()
        raise
    return 0


def evaluate(args, console):
    from skxmr.metrics import topk_report

    model, vectorizer = console.step("loading the model", load_model, args.model)
    X, Y, kind = console.step("reading data", read_data, args.data, need_labels=True)
    X = _features(model, vectorizer, X, kind, args.data[0])
    if kind == "text":
        Y = model._targets.transform(Y)
    elif Y.shape[1] != len(model.classes_):
        raise CLIError(f"{args.data[-1]}: {Y.shape[1]} labels, the model has "
                       f"{len(model.classes_)}")
    ks = sorted(set(args.k))
    try:
        ranking = console.step("predicting", predict_topk, model, X, max(ks),
                               console.verbose, bar=X.shape[0] > _PREDICT_BLOCK)
        report = topk_report(Y, ranking, ks=ks)
    except ValueError as exc:
        raise CLIError(f"evaluation failed: {exc}") from None
    for name in ("P", "R", "nDCG", "PSP"):
        print("  ".join(f"{name}@{k} {100 * report[f'{name}@{k}']:.2f}" for k in ks))
    return 0


def add_labels(args, console):
    """``skxmr add-labels MODEL DATA [-o OUT]``: the labels of DATA that MODEL
    does not know are added (``XRLinearClassifier.add_labels``); the result
    replaces MODEL, or is written to OUT."""
    output = args.output if args.output is not None else args.model
    check_model_output(output, args.data)
    model, vectorizer = console.step("loading the model", load_model, args.model)
    X, Y, kind = console.step("reading data", read_data, args.data, need_labels=True)
    X = _features(model, vectorizer, X, kind, args.data[0])
    n_before = len(model.classes_)
    try:
        console.step(f"adding labels from {X.shape[0]} rows", model.add_labels, X, Y,
                     refresh=args.refresh)
    except ValueError as exc:
        raise CLIError(f"adding labels failed: {exc}") from None
    console.step(f"saving to {output} ({len(model.classes_) - n_before} new labels)",
                 save_model, output, model, vectorizer, args.data)
    return 0
