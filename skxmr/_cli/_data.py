"""Reading the DATA arguments: an XMC-format file, ``X.npz Y.npz``, or a ``.tsv``.

``.tsv`` files hold one document per line, ``label,label<TAB>text``; blank
lines are skipped. A file is either labelled (every line has a tab) or, only
where no labels are needed (``predict``), plain texts (no line has a tab): a
line that breaks the pattern of the file is an error naming its number, never
silently read as a text without labels.
"""

from pathlib import Path

import scipy.sparse as sp

from skxmr._cli._console import CLIError

__all__ = ["read_data"]


def read_data(paths, *, need_labels):
    """``(X or texts, Y or labels or None, kind)`` from the DATA arguments.

    ``kind`` is ``"matrix"`` (X is a CSR matrix, Y a CSR indicator or None) or
    ``"text"`` (X is a list of strings, Y a list of label lists, empty lists
    for a file of plain texts).
    """
    paths = [Path(p) for p in paths]
    if len(paths) > 2:
        raise CLIError("DATA is one file (XMC format or .tsv) or two .npz files")
    for path in paths:
        if not path.is_file():
            raise CLIError(f"{path}: no such file")
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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not UTF-8 text ({exc})") from None
    texts, labels = [], []
    labelled = None  # decided by the first document: True, False (plain texts)
    first = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        has_tab = "\t" in line
        if labelled is None:
            if not has_tab and need_labels:
                raise CLIError(f"{path}, line {number}: no tab; expected "
                               "'label,label<TAB>text' (labels are needed)")
            labelled, first = has_tab, number
        elif has_tab != labelled:
            if labelled:
                raise CLIError(f"{path}, line {number}: no tab; expected "
                               f"'label,label<TAB>text' like line {first}")
            raise CLIError(f"{path}, line {number}: a tab in a file of plain "
                           f"texts (line {first} has none); a .tsv is either all "
                           "'label,label<TAB>text' lines or all plain texts")
        if has_tab:
            head, text = line.split("\t", 1)
            labels.append([t.strip() for t in head.split(",") if t.strip()])
        else:
            text = line
            labels.append([])
        texts.append(text)
    if not texts:
        raise CLIError(f"{path}: no documents")
    return texts, labels, "text"
