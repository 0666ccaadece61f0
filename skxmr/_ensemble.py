"""Tree ensembles of XR-Linear: the members' trees and the combination of their top-k.

An ensemble (``XRLinearClassifier(n_estimators=M)`` with ``M > 1``) is ``M``
single-tree models, each with its own label tree and linear models. The label
representation (PIFA by default) does not depend on the seed, so it is computed
once and every member clusters it with its own seed (and, with
``diversity="branching"``, its own branching factor). Prediction runs every
member's beam search, then merges the members' top-k lists into one
(:func:`combine_topk`).

This module holds the two steps that are the ensemble's own; the estimator
(``skxmr._xrlinear``) orchestrates them and trains each member as a single tree.
"""

import numpy as np
from sklearn.base import clone

from skxmr._cython._topk import _merge_row_lists
from skxmr._indexer import LabelIndexer

COMBINATIONS = ("average", "rank", "softmax", "sigmoid")
DIVERSITIES = ("seed", "branching")

#: With ``diversity="branching"``, member ``i`` multiplies the indexer's
#: branching factor by ``_BRANCHING_SCALES[i % 3]`` (so 16 -> 16, 4, 64):
#: wide shallow trees and narrow deep ones next to the default.
_BRANCHING_SCALES = (1, 0.25, 4)

#: Each member returns this many times ``k`` labels (at most all labels) for
#: the merge: a label that one member ranks just below ``k`` still counts.
CANDIDATE_FACTOR = 2


def member_seeds(rng, n_estimators):
    """The members' seeds, drawn up front from the ensemble's ``rng`` (so that
    member ``i`` is the same model whatever the order they are trained in)."""
    return rng.randint(np.iinfo(np.int32).max, size=n_estimators)


def shares_representation(indexer):
    """Whether the ensemble can compute the indexer's label vectors once and
    give every member the precomputed vectors (a ``LabelIndexer`` with a
    computed representation, or the default None)."""
    return indexer is None or (
        type(indexer) is LabelIndexer and indexer.representation != "precomputed")


def member_indexers(indexer, n_estimators, seeds, diversity, verbose=0):
    """One unfitted indexer per member, each seeded by the member's seed (an
    indexer's own ``random_state`` would give every member the same tree).

    With a shared representation the indexers take the precomputed label
    vectors (``representation="precomputed"``); other indexers are clones of
    ``indexer``, each fitted on the rows by the member.
    """
    base = LabelIndexer(verbose=verbose) if indexer is None else clone(indexer)
    shared = shares_representation(indexer)
    out = []
    for i in range(n_estimators):
        member = clone(base)
        params = member.get_params(deep=False)
        if "random_state" in params:
            member.set_params(random_state=int(seeds[i]))
        if diversity == "branching" and "branching_factor" in params:
            member.set_params(branching_factor=_member_branching(
                params["branching_factor"], i, params.get("clustering")))
        if shared:
            member.set_params(representation="precomputed")
        out.append(member)
    return base, out


def _member_branching(branching, i, clustering):
    scale = _BRANCHING_SCALES[i % len(_BRANCHING_SCALES)]
    b = max(2, int(round(branching * scale)))
    if clustering == "binary":  # a power of two
        b = 1 << max(1, int(round(np.log2(b))))
    return b


def _member_values(labels, scores, combination):
    """Each entry's contribution to its label's ensemble score (0 where the
    member returned no label)."""
    valid = labels >= 0
    scores = np.asarray(scores, dtype=np.float64)
    if combination == "average":
        values = scores
    elif combination == "rank":
        k = labels.shape[1]
        values = np.broadcast_to(1.0 - np.arange(k) / k, labels.shape)
    elif combination == "softmax":
        shifted = np.where(valid, scores, -np.inf)
        top = np.max(shifted, axis=1, keepdims=True) if shifted.shape[1] else shifted
        top = np.where(np.isfinite(top), top, 0.0)
        values = np.exp(shifted - top)
        total = values.sum(axis=1, keepdims=True)
        values = values / np.where(total > 0, total, 1.0)
    else:  # "sigmoid"
        values = 0.5 * (1.0 + np.tanh(0.5 * scores))
    return np.where(valid, values, 0.0)


def combine_topk(results, n_labels, k, combination, n_threads=1):
    """Merge the members' top lists into the ensemble's top ``k``.

    ``results`` holds one ``(labels, scores)`` pair per member (arrays of shape
    ``(n_rows, k_m)``, labels as columns with -1 for none). A label's ensemble
    score is the mean over the members of its value in each member's list, 0
    in the lists that miss it:

    - ``"average"``: the member's score (a path score, e.g. l3-hinge);
    - ``"rank"``: ``1 - r / k_m`` for the label at rank ``r`` (0 = best);
    - ``"softmax"``: the softmax of the member's scores over its list;
    - ``"sigmoid"``: the sigmoid of the member's score.

    Ties go to the smaller column. Returns ``(labels, scores)`` of shape
    ``(n_rows, k)``, float32 scores, -1 / 0 where fewer than ``k`` labels were
    found.
    """
    n_rows = results[0][0].shape[0]
    # the lists side by side: the kernel sums each label's values in list order
    labels = np.ascontiguousarray(np.hstack([r[0] for r in results]), dtype=np.intp)
    values = np.ascontiguousarray(np.hstack(
        [_member_values(r[0], r[1], combination) for r in results]), dtype=np.float64)
    out_val = np.zeros((n_rows, k), dtype=np.float64)
    out_idx = np.full((n_rows, k), -1, dtype=np.intp)
    _merge_row_lists(labels, values, 1.0 / len(results), out_val, out_idx, n_threads)
    return out_idx, out_val.astype(np.float32)
