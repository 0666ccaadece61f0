"""The bundled real dataset: Debian package descriptions and their debtags."""

import lzma
from functools import lru_cache
from importlib import resources

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import StrOptions, validate_params

_DATA = resources.files("skxmr.datasets") / "data"

DESCR = """\
Debian debtags: package descriptions -> debtags
===============================================

30,300 packages of Debian 12 "bookworm" (main, amd64). Each document is the package
name followed by its short and long English description; its labels are the
package's debtags (facet::tag, e.g. ``role::program``, ``devel::lang:python``,
``interface::x11``): 594 labels seen in training, 3.7 labels per package on average,
a long tail (16.5% of labels have at most 5 training packages).

Split: test when md5(package name) % 5 == 0 -> 24,317 train / 5,983 test packages.
Test labels never seen in training are kept in ``target`` but are not in
``target_names``.

Source: Debian's ``Packages`` and ``Translation-en`` indexes (archive snapshot of
2025-05-20). Debian publishes package metadata for redistribution; descriptions
belong to the packages' maintainers. See skxmr/datasets/data/README.md.
"""


@lru_cache(maxsize=1)
def _read_bundled():
    with (_DATA / "debian_debtags.tsv.xz").open("rb") as raw:
        with lzma.open(raw, "rt", encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
    names = (_DATA / "debian_debtags_labels.txt").read_text(encoding="utf-8").split()
    return rows, tuple(names)


@validate_params(
    {"subset": [StrOptions({"train", "test", "all"})], "return_X_y": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_debian_debtags(*, subset="train", return_X_y=False):
    """Load the bundled Debian debtags dataset (texts and label lists).

    30,300 Debian 12 package descriptions, each with its debtags (594 labels seen in
    training). Built from the project's ``debian-debtags`` data (Debian's
    ``Packages`` and ``Translation-en`` indexes, snapshot of 2025-05-20); see
    ``DESCR`` for the provenance and the split.

    =================   ==========================
    Samples (train)     24,317
    Samples (test)      5,983
    Labels (train)      594
    Labels per sample   3.7
    Inputs              text (str)
    =================   ==========================

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which split to load; "all" is train followed by test.
    return_X_y : bool, default=False
        Return ``(texts, labels)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (list of str), ``target`` (list of tuples of label names, the form
        ``MultiLabelBinarizer`` takes), ``target_names`` (ndarray of the training
        label names, most frequent first), ``ids`` (package names), ``DESCR``.
    (texts, labels) : tuple of lists
        When ``return_X_y`` is True.

    Examples
    --------
    >>> from skxmr.datasets import load_debian_debtags
    >>> texts, labels = load_debian_debtags(subset="test", return_X_y=True)
    >>> len(texts), len(labels)
    (5983, 5983)
    >>> "role::program" in load_debian_debtags().target_names
    True
    """
    rows, names = _read_bundled()
    wanted = {"train": ("train",), "test": ("test",), "all": ("train", "test")}[subset]
    selected = [row for row in rows if row[0] in wanted]
    texts = [row[3] for row in selected]
    labels = [tuple(row[2].split()) for row in selected]
    if return_X_y:
        return texts, labels
    return Bunch(
        data=texts,
        target=labels,
        target_names=np.array(names, dtype=object),
        ids=[row[1] for row in selected],
        DESCR=DESCR,
    )
