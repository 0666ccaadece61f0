"""Choosing ``embedding_weight``, ``n_neighbors`` and ``neighbor_weight`` by a
validation split of the training rows (the "auto" settings of
``XTransformerClassifier``).

The training rows are split once (``VALIDATION_FRACTION`` held out, at most
``MAX_VALIDATION_ROWS``); for each candidate setting a ranker is fitted on the
rest (on the same label tree), the held-out rows' neighbour votes come from
the rest alone (as a new text's would), and the candidate's score is the mean
of P@1 and P@5 on the held-out rows. The best candidate wins; ties go to the
earlier one in the list (the fixed defaults come first).
"""

import numpy as np

from skxmr.metrics import precision_at_k

VALIDATION_FRACTION = 0.2
MAX_VALIDATION_ROWS = 2000
MIN_ROWS = 20  # fewer training rows: no split, the first candidate is taken

# (embedding_weight, n_neighbors, neighbor_weight), the fixed defaults first
GRID = (
    (0.7, 20, 0.25),
    (0.7, 0, 0.25),
    (0.4, 20, 0.25),
    (1.0, 20, 0.25),
    (0.7, 20, 0.5),
    (0.7, 50, 0.25),
)


def candidate_settings(embedding_weight, n_neighbors, neighbor_weight):
    """The distinct settings of ``GRID`` with the non-"auto" values fixed, in
    ``GRID``'s order."""
    seen = []
    for ew, nn, nw in GRID:
        setting = (ew if embedding_weight == "auto" else embedding_weight,
                   nn if n_neighbors == "auto" else n_neighbors,
                   nw if neighbor_weight == "auto" else neighbor_weight)
        if setting not in seen:
            seen.append(setting)
    return seen


def validation_split(n_rows, rng):
    """(fit_rows, validation_rows), sorted index arrays; None below ``MIN_ROWS``."""
    if n_rows < MIN_ROWS:
        return None
    n_val = int(min(MAX_VALIDATION_ROWS, max(1, round(VALIDATION_FRACTION * n_rows))))
    order = rng.permutation(n_rows)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def validation_score(Y_true, scores):
    """Mean of P@1 and P@5 of sparse ``scores`` against ``Y_true``."""
    return 0.5 * (precision_at_k(Y_true, scores, k=1) + precision_at_k(Y_true, scores, k=5))


def choose(candidates, score):
    """The candidate of best ``score(candidate)`` (the first on ties) and every
    candidate's score, as a list of (candidate, score)."""
    results = [(candidate, float(score(candidate))) for candidate in candidates]
    best = max(range(len(results)), key=lambda i: (results[i][1], -i))
    return results[best][0], results
