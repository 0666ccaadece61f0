"""Synthetic extreme multilabel data with a long tail of rare labels.

The generator below is vectorised over samples, labels and feature tokens:
memory is proportional to the number of stored nonzeros of ``X`` and ``Y``
plus ``O(n_labels * signal_features_per_label)`` for the per-label feature
table, so a million labels fit in a few hundred megabytes.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

__all__ = ["make_xmc_classification"]

# Share of a label's signal features drawn from the feature block of its
# topic (the rest are drawn uniformly from all features and so are nearly
# private to the label).
_TOPIC_SIGNAL_FRACTION = 0.75
# Share of the non-noise feature tokens of a sample that come from the feature
# block of the sample's topic (the rest come from its labels' signal features).
_TOPIC_TOKEN_FRACTION = 0.25
# Rounds of re-drawing used to top up samples whose label draws collided.
_LABEL_TOPUP_ROUNDS = 4


def _check_int(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value}.")
    return value


def _check_real(value, name, low, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value!r}.")
    return value


def _index_dtype(n):
    return np.int32 if n <= np.iinfo(np.int32).max else np.int64


def make_xmc_classification(
    n_samples=1000,
    n_features=10000,
    n_labels=1000,
    *,
    avg_labels_per_sample=5.0,
    avg_features_per_sample=50.0,
    n_topics=None,
    power_law_exponent=1.0,
    signal_features_per_label=8,
    label_noise=0.05,
    feature_noise=0.2,
    return_topics=False,
    dtype=np.float32,
    random_state=None,
):
    """Generate a random extreme multilabel classification problem.

    Labels follow a power law (a few head labels, a long tail of rare ones),
    are correlated through latent topics, and are predictable from sparse,
    nonnegative, L2-normalised features (like tf-idf text features).

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples (rows of ``X`` and ``Y``).

    n_features : int, default=10000
        Number of features (columns of ``X``).

    n_labels : int, default=1000
        Number of labels (columns of ``Y``). Rare labels may have no positive
        sample at all, as in real extreme classification data.

    avg_labels_per_sample : float, default=5.0
        Mean number of label draws per sample; a sample draws
        ``1 + Poisson(avg_labels_per_sample - 1)`` labels (at most
        ``n_labels``). Draws that repeat a label are redrawn a few times, so
        the realised mean is this value or slightly less when small topics
        or very popular labels make collisions frequent. Must lie in
        ``[1, n_labels]``.

    avg_features_per_sample : float, default=50.0
        Mean number of feature tokens per sample; a sample draws
        ``1 + Poisson(avg_features_per_sample - 1)`` tokens. Repeated tokens
        are merged into one nonzero (their values add up), so the mean number
        of nonzeros per row of ``X`` is somewhat smaller. Must be >= 1.

    n_topics : int, default=None
        Number of latent topics that group the labels. ``None`` means
        ``round(sqrt(n_labels))``. Must lie in ``[1, n_labels]``.

    power_law_exponent : float, default=1.0
        The label of popularity rank ``r`` (1 = most popular) has weight
        ``r ** -power_law_exponent``. ``0`` gives uniform popularity; larger
        values give a heavier head and a longer, thinner tail. Must be >= 0.

    signal_features_per_label : int, default=8
        Number of feature ids owned by each label. They are drawn with
        replacement, so a label may own fewer distinct features (always when
        this exceeds ``n_features``). Must be >= 1.

    label_noise : float, default=0.05
        Probability that a label draw ignores the sample's topic and comes
        from the global popularity distribution. Such off-topic labels still
        emit signal features; they weaken the label correlations only.
        Must lie in ``[0, 1]``.

    feature_noise : float, default=0.2
        Probability that a feature token is a uniformly random feature that
        carries no information. Must lie in ``[0, 1]``.

    return_topics : bool, default=False
        If True, also return the topic of every label.

    dtype : {np.float32, np.float64}, default=np.float32
        Data type of ``X``. ``Y`` is always float32.

    random_state : int, RandomState instance or None, default=None
        Seed or random number generator. The output is bit-identical for a
        fixed integer seed.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
        Nonnegative features; every row has unit L2 norm. Indices are sorted
        and there are no duplicate entries.

    Y : scipy.sparse.csr_matrix of shape (n_samples, n_labels)
        Binary label indicator matrix (float32 ones). Every row has at least
        one label; indices are sorted with no duplicates.

    topics : ndarray of shape (n_labels,), dtype int64
        Topic id (in ``[0, n_topics)``) of every label. Only returned if
        ``return_topics`` is True.

    See Also
    --------
    load_xmc_file : Read data in the Extreme Classification Repository format.

    Notes
    -----
    The generative model, all steps vectorised with NumPy:

    1. **Popularity.** Weights ``w_r = r ** -power_law_exponent`` for ranks
       ``r = 1 .. n_labels`` are given to the labels in a random order, so a
       label's id says nothing about its popularity.
    2. **Topics.** A random permutation of the labels is cut at
       ``n_topics - 1`` random points into topics of random sizes (at least
       one label each). Topics sit at the first level of a latent two-level
       label tree (topic -> label).
    3. **Feature ownership.** The feature ids (after a random permutation)
       are cut into ``n_topics`` equal blocks, one per topic. Each label owns
       ``signal_features_per_label`` feature ids: each of them comes with
       probability 0.75 from its topic's block (so labels of a topic share
       features) and otherwise uniformly from all features (nearly private
       to the label).
    4. **Labels of a sample.** A sample picks a topic with probability
       proportional to the topic's total popularity, then draws
       ``1 + Poisson(avg_labels_per_sample - 1)`` labels by popularity from
       inside that topic; each draw, with probability ``label_noise``, is
       taken from the global popularity distribution instead. Duplicate
       draws are redrawn for a few rounds. Marginally each draw picks a
       label with probability proportional to its popularity weight.
    5. **Features of a sample.** A sample draws
       ``1 + Poisson(avg_features_per_sample - 1)`` feature tokens. With
       probability ``feature_noise`` a token is a uniform random feature;
       otherwise, with probability 0.25 it is a random feature of the
       sample's topic block and with probability 0.75 a random signal
       feature of one of the sample's labels (label chosen uniformly). Each
       token carries an Exp(1) weight; tokens hitting the same feature are
       summed (a soft term frequency) and rows are L2-normalised.

    A model that learns the label-feature association (for example cosine
    similarity to label centroids, or one-vs-rest linear models) therefore
    ranks labels much better than the popularity baseline, while rare labels
    remain hard because they have few training samples.

    Examples
    --------
    >>> from skxmr.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(
    ...     n_samples=100, n_features=500, n_labels=50, random_state=0
    ... )
    >>> X.shape, Y.shape
    ((100, 500), (100, 50))
    >>> X.dtype, Y.dtype
    (dtype('float32'), dtype('float32'))
    >>> bool((Y.getnnz(axis=1) >= 1).all())
    True
    >>> X, Y, topics = make_xmc_classification(
    ...     n_samples=10, n_features=100, n_labels=20, n_topics=4,
    ...     return_topics=True, random_state=0,
    ... )
    >>> topics.shape, int(topics.max()) + 1
    ((20,), 4)
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_features = _check_int(n_features, "n_features", 1)
    n_labels = _check_int(n_labels, "n_labels", 1)
    avg_labels = _check_real(
        avg_labels_per_sample, "avg_labels_per_sample", 1.0, float(n_labels)
    )
    avg_features = _check_real(avg_features_per_sample, "avg_features_per_sample", 1.0)
    if n_topics is None:
        n_topics = max(1, int(round(np.sqrt(n_labels))))
    n_topics = _check_int(n_topics, "n_topics", 1, n_labels)
    exponent = _check_real(power_law_exponent, "power_law_exponent", 0.0)
    n_signal = _check_int(signal_features_per_label, "signal_features_per_label", 1)
    label_noise = _check_real(label_noise, "label_noise", 0.0, 1.0)
    feature_noise = _check_real(feature_noise, "feature_noise", 0.0, 1.0)
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.") from exc
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.")
    rng = check_random_state(random_state)

    # 1-2. Topics and popularity. ``order`` lists the labels grouped by
    # topic: topic t holds order[starts[t]:ends[t]].
    order = rng.permutation(n_labels)
    if n_topics > 1:
        cuts = np.sort(rng.choice(n_labels - 1, n_topics - 1, replace=False) + 1)
    else:
        cuts = np.empty(0, dtype=np.int64)
    starts = np.concatenate(([0], cuts)).astype(np.int64)
    ends = np.concatenate((cuts, [n_labels])).astype(np.int64)
    topic_sizes = ends - starts
    topics = np.empty(n_labels, dtype=np.int64)
    topics[order] = np.repeat(np.arange(n_topics, dtype=np.int64), topic_sizes)

    weights = np.arange(1, n_labels + 1, dtype=np.float64) ** -exponent
    # Popularity of order[i], i.e. weights in a random rank order.
    weights = weights[rng.permutation(n_labels)]
    cumw = np.cumsum(weights)
    cumw_pad = np.concatenate(([0.0], cumw))
    total = cumw[-1]
    del weights

    # 3. Feature blocks and the signal features owned by each label.
    feature_perm = rng.permutation(n_features)
    block_size = max(1, n_features // n_topics)
    block_starts = (np.arange(n_topics, dtype=np.int64) * n_features) // n_topics
    in_block = rng.random_sample((n_labels, n_signal)) < _TOPIC_SIGNAL_FRACTION
    signal = rng.randint(0, n_features, size=(n_labels, n_signal)).astype(np.int64)
    local = rng.randint(0, block_size, size=(n_labels, n_signal))
    local += block_starts[topics][:, None]
    np.copyto(signal, local, where=in_block)
    del in_block, local
    signal = feature_perm[signal]  # final feature ids
    signal = signal.astype(_index_dtype(n_features), copy=False)

    # 4. Labels. Pick each sample's topic by popularity: draw a label
    # globally and take its topic.
    u = rng.random_sample(n_samples) * total
    sample_topic = np.searchsorted(cumw_pad[ends], u, side="right")
    np.minimum(sample_topic, n_topics - 1, out=sample_topic)
    del u

    def draw_labels(rows):
        """One label per entry of ``rows`` (sample ids), topic or noise."""
        t = sample_topic[rows]
        noise = rng.random_sample(rows.size) < label_noise
        lo = np.where(noise, 0, starts[t])
        hi = np.where(noise, n_labels, ends[t])
        u = rng.random_sample(rows.size)
        u = cumw_pad[lo] + u * (cumw_pad[hi] - cumw_pad[lo])
        pos = np.searchsorted(cumw, u, side="right")
        np.clip(pos, lo, hi - 1, out=pos)
        return order[pos]

    n_draws = 1 + rng.poisson(avg_labels - 1.0, size=n_samples)
    np.minimum(n_draws, n_labels, out=n_draws)
    sample_ids = np.arange(n_samples, dtype=np.int64)
    rows = np.repeat(sample_ids, n_draws)
    keys = np.unique(rows * n_labels + draw_labels(rows))
    for _ in range(_LABEL_TOPUP_ROUNDS):
        deficit = n_draws - np.bincount(keys // n_labels, minlength=n_samples)
        if not deficit.any():
            break
        rows = np.repeat(sample_ids, deficit)
        keys = np.unique(np.concatenate((keys, rows * n_labels + draw_labels(rows))))
    del rows, n_draws
    y_rows = keys // n_labels
    y_indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(np.bincount(y_rows, minlength=n_samples), out=y_indptr[1:])
    y_indices = keys - y_rows * n_labels
    del keys, y_rows
    y_counts = np.diff(y_indptr)

    # 5. Feature tokens.
    n_tokens = 1 + rng.poisson(avg_features - 1.0, size=n_samples)
    rows = np.repeat(sample_ids, n_tokens)
    del n_tokens
    n_tok = rows.size
    kind = rng.random_sample(n_tok)
    is_noise = kind < feature_noise
    is_topic = ~is_noise & (
        kind < feature_noise + (1.0 - feature_noise) * _TOPIC_TOKEN_FRACTION
    )
    is_label = ~(is_noise | is_topic)
    del kind
    feats = np.empty(n_tok, dtype=np.int64)
    n_noise = int(np.count_nonzero(is_noise))
    feats[is_noise] = feature_perm[rng.randint(0, n_features, size=n_noise)]
    t = sample_topic[rows[is_topic]]
    raw = block_starts[t] + rng.randint(0, block_size, size=t.size)
    feats[is_topic] = feature_perm[raw]
    del t, raw, is_noise, is_topic
    r = rows[is_label]
    pick = y_indptr[r] + (rng.random_sample(r.size) * y_counts[r]).astype(np.int64)
    which = rng.randint(0, n_signal, size=r.size)
    feats[is_label] = signal[y_indices[pick], which]
    del r, pick, which, is_label, signal
    values = rng.standard_exponential(n_tok)

    # Merge tokens of the same (row, feature). The stable sort fixes the
    # summation order, so the output is bit-identical across runs.
    keys = rows * n_features + feats
    del rows, feats
    perm = np.argsort(keys, kind="stable")
    keys = keys[perm]
    values = values[perm]
    del perm
    first = np.ones(n_tok, dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    first_pos = np.flatnonzero(first)
    del first
    data = np.add.reduceat(values, first_pos)
    keys = keys[first_pos]
    del values, first_pos
    x_rows = keys // n_features
    x_indices = keys - x_rows * n_features
    del keys
    x_counts = np.bincount(x_rows, minlength=n_samples)
    norms = np.sqrt(np.bincount(x_rows, weights=data * data, minlength=n_samples))
    data /= norms[x_rows]
    del x_rows, norms

    x_indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(x_counts, out=x_indptr[1:])
    idx = _index_dtype(max(x_indptr[-1], n_features))
    X = sp.csr_matrix(
        (data.astype(dtype), x_indices.astype(idx), x_indptr.astype(idx)),
        shape=(n_samples, n_features),
    )
    idx = _index_dtype(max(y_indptr[-1], n_labels))
    Y = sp.csr_matrix(
        (
            np.ones(y_indices.size, dtype=np.float32),
            y_indices.astype(idx),
            y_indptr.astype(idx),
        ),
        shape=(n_samples, n_labels),
    )
    X.has_sorted_indices = True
    Y.has_sorted_indices = True
    if return_topics:
        return X, Y, topics
    return X, Y
