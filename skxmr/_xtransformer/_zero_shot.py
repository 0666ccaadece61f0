"""Zero-shot labels of ``XTransformerClassifier``: labels known by a text only.

A zero-shot label has no training row, so no linear model in the ranker's tree;
it is kept outside the tree, as the encoder's (L2-normalised) embedding ``z_l``
of its label text. A text of embedding ``e`` scores it by the cosine
similarity ``c = e . z_l``, centred on an offset ``q`` and put on the ranker's
score scale by the ranker's post-processor::

    score = transform((c - q) / (1 - q)) ** n_levels

``q`` is one offset shared by the zero-shot labels: the similarity that the
label texts reach, pooled, with the top fraction ``f`` of the model's
neighbour bank (its training texts), ``f`` the median frequency of the bank's
labels; 0 without a neighbour bank. A text scores the margin 0 where the
pooled similarities of a label of typical frequency would be cut off, and the
margin 1 (the most a hinge transform gives, 1.0 for ``l3-hinge``) when it is
the label text itself. The offset is computed again over every zero-shot
label at each addition of label texts. One shared offset keeps the order of
the cosine similarities among the zero-shot labels: on debian-debtags a
per-label offset (each label's own quantile) ranked the new labels far worse
(recall@10 among them 28.8 against 61.7 for the raw cosine), as it pulls the
frequent, generic labels down to the rare ones' level
(``benchmarks/RESULTS.md``).

The power ``n_levels`` (the levels of the ranker's tree) scores the label as
if every node on a path down the tree gave it the same margin, as the path
score of an ordinary label multiplies one factor per level (for the product
post-processors; ``log-sigmoid`` sums, so the transformed margin is
multiplied by ``n_levels``; ``noop`` takes the margin as it is). The zero-shot
scores of a text are merged into the ranker's top-k (on equal scores the
zero-shot label comes first). A zero-shot label that gets rows
(``add_labels(X, y)``) becomes an ordinary label of the ranker and leaves the
zero-shot set.
"""

import numpy as np
import scipy.sparse as sp

from skxmr._postprocess import get_post_processor

__all__ = ["check_label_texts", "zero_shot_offsets", "zero_shot_scores",
           "merge_topk", "ranker_targets"]

_CHUNK_BYTES = 1 << 26


def check_label_texts(label_texts):
    """``label_texts`` (a dict ``{label: text}`` or a pair of sequences
    ``(labels, texts)``) as two lists; ``ValueError``/``TypeError`` when it is
    empty, the lengths differ, a label repeats or a text is not a non-empty
    str."""
    if isinstance(label_texts, dict):
        labels, texts = list(label_texts.keys()), list(label_texts.values())
    elif isinstance(label_texts, (list, tuple)) and len(label_texts) == 2 and all(
            not isinstance(part, (str, bytes)) and hasattr(part, "__len__")
            for part in label_texts):
        labels, texts = list(label_texts[0]), list(label_texts[1])
    else:
        raise TypeError("label_texts must be a dict {label: text} or a pair of "
                        "sequences (labels, texts), got "
                        f"{type(label_texts).__name__}.")
    if len(labels) != len(texts):
        raise ValueError(f"label_texts has {len(labels)} labels but {len(texts)} "
                         "texts.")
    if not labels:
        raise ValueError("label_texts holds no label.")
    labels = [label.item() if isinstance(label, np.generic) else label
              for label in labels]
    if len(set(labels)) != len(labels):
        raise ValueError("the labels of label_texts repeat.")
    for label, text in zip(labels, texts):
        if not isinstance(text, str):
            raise TypeError(f"the text of label {label!r} is "
                            f"{type(text).__name__}, not a str.")
        if not text.strip():
            raise ValueError(f"the text of label {label!r} is empty: a zero-shot "
                             "label is known by its text only.")
    return labels, texts


def zero_shot_offsets(label_embeddings, bank, bank_labels, max_rows=10_000,
                      max_labels=1_000):
    """The offset ``q`` of the zero-shot labels of ``label_embeddings`` (one
    value for all, float32 array of their number; see the module docstring):
    the ``1 - f`` quantile of the similarities between the ``bank`` rows and
    the label embeddings, pooled, ``f`` the median frequency of the labels of
    ``bank_labels``; zeros without a bank. At most ``max_rows`` bank rows and
    ``max_labels`` labels (evenly spaced) enter the quantile."""
    n = label_embeddings.shape[0]
    if bank is None or bank.shape[0] == 0 or n == 0:
        return np.zeros(n, dtype=np.float32)
    counts = np.diff(sp.csc_matrix(bank_labels).indptr)
    counts = counts[counts > 0]
    f = float(np.median(counts)) / bank.shape[0] if counts.size else 0.0
    rows = np.unique(np.linspace(0, bank.shape[0] - 1, min(max_rows, bank.shape[0]),
                                 dtype=np.int64))
    labels = np.unique(np.linspace(0, n - 1, min(max_labels, n), dtype=np.int64))
    S = np.asarray(bank[rows] @ label_embeddings[labels].T, dtype=np.float64).ravel()
    q = np.quantile(S, 1.0 - f) if f > 0 else S.max()
    return np.full(n, np.clip(q, -1.0, 1.0 - 1e-3), dtype=np.float32)


def zero_shot_scores(embeddings, label_embeddings, offsets, post_processor,
                     n_levels=1):
    """Scores (n_texts, n_labels), float32, of the zero-shot labels for the
    texts of ``embeddings`` (L2-normalised rows): the transformed margin,
    combined along a path of ``n_levels`` nodes that all score it (a power
    for a product, a multiple for a sum)."""
    cos = embeddings @ label_embeddings.T
    margin = (cos - offsets) / (np.float32(1) - offsets)
    pp = get_post_processor(post_processor)
    score = np.asarray(pp.transform(margin), dtype=np.float32)
    if pp.combiner == "product":
        score = score ** np.float32(n_levels)
    elif pp.combiner == "sum":
        score = score * np.float32(n_levels)
    return score


def merge_topk(labels, scores, embeddings, columns, label_embeddings, offsets,
               post_processor, k, n_levels=1):
    """The top ``k`` of the ranker's (``labels`` in the model's columns, -1 and
    score 0 as padding) and of the zero-shot labels (``columns``), best first;
    on equal scores the zero-shot label first. Padding as ``predict_topk``'s."""
    n = labels.shape[0]
    out_labels = np.full((n, k), -1, dtype=labels.dtype if labels.size else np.int64)
    out_scores = np.zeros((n, k), dtype=np.float32)
    if n == 0 or k == 0:
        return out_labels, out_scores
    kz = min(k, len(columns))
    chunk = max(1, _CHUNK_BYTES // (4 * max(1, len(columns))))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        Z = zero_shot_scores(embeddings[start:stop], label_embeddings, offsets,
                             post_processor, n_levels)
        if kz < Z.shape[1]:
            top = np.argpartition(-Z, kz - 1, axis=1)[:, :kz]
        else:
            top = np.broadcast_to(np.arange(Z.shape[1]), (stop - start, Z.shape[1]))
        z_scores = np.take_along_axis(Z, top, axis=1)
        z_labels = np.asarray(columns, dtype=out_labels.dtype)[top]
        r_labels = labels[start:stop]
        r_scores = np.where(r_labels >= 0, scores[start:stop], -np.inf)
        all_labels = np.hstack([z_labels, r_labels])
        all_scores = np.hstack([z_scores, r_scores.astype(np.float32)])
        # best first; ties: zero-shot (first in the row), then by position
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_labels = np.take_along_axis(all_labels, order, axis=1)
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        pad = ~np.isfinite(best_scores)
        best_labels[pad], best_scores[pad] = -1, 0
        width = best_labels.shape[1]
        out_labels[start:stop, :width] = best_labels
        out_scores[start:stop, :width] = best_scores
    return out_labels, out_scores


def ranker_targets(kind, classes, Y, columns):
    """``Y`` (CSR over ``classes``) restricted to ``columns``, in the form of a
    ranker fitted on ``kind`` targets: CSR for an indicator, label tuples for
    label sets, 1-D labels for multiclass, a DataFrame for a frame."""
    Y = sp.csr_matrix(sp.csc_matrix(Y)[:, columns])
    names = np.asarray(classes)[np.asarray(columns, dtype=np.int64)]
    if kind in ("sparse", "dense"):
        return Y
    if kind == "frame":
        import pandas as pd

        return pd.DataFrame(Y.toarray(), columns=names.tolist())
    rows = [names[Y.indices[Y.indptr[i]:Y.indptr[i + 1]]].tolist()
            for i in range(Y.shape[0])]
    if kind == "multiclass":
        if any(len(row) != 1 for row in rows):
            raise ValueError("the model was fitted on one label per row: every row "
                             "of y needs exactly one label.")
        out = np.empty(len(rows), dtype=object)
        out[:] = [row[0] for row in rows]
        if names.dtype.kind != "O":
            out = out.astype(names.dtype)
        return out
    return [tuple(row) for row in rows]
