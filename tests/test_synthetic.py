"""Tests for skxmr.datasets.make_xmc_classification."""

import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr.datasets import make_xmc_classification


def _assert_canonical_csr(M, shape):
    assert sp.issparse(M) and M.format == "csr"
    assert M.shape == shape
    indptr, indices = M.indptr, M.indices
    assert indptr[0] == 0 and indptr[-1] == M.nnz == indices.size
    assert np.all(np.diff(indptr) >= 0)
    assert indices.min(initial=0) >= 0 and indices.max(initial=0) < shape[1]
    # Strictly increasing column indices inside every row: sorted, no duplicates.
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    same_row = rows[1:] == rows[:-1]
    assert np.all(np.diff(indices.astype(np.int64))[same_row] > 0)


def _precision_at_1(scores, Y):
    top = np.asarray(scores.argmax(axis=1)).ravel()
    hits = np.asarray(Y[np.arange(Y.shape[0]), top]).ravel()
    return float(hits.mean())


@pytest.fixture(scope="module")
def medium():
    return make_xmc_classification(
        n_samples=5000,
        n_features=5000,
        n_labels=1000,
        return_topics=True,
        random_state=0,
    )


def test_shapes_dtypes_and_format():
    X, Y = make_xmc_classification(
        n_samples=300, n_features=700, n_labels=120, random_state=1
    )
    _assert_canonical_csr(X, (300, 700))
    _assert_canonical_csr(Y, (300, 120))
    assert X.dtype == np.float32 and Y.dtype == np.float32
    assert np.all(X.data > 0)
    assert np.all(Y.data == 1)
    assert np.all(X.getnnz(axis=1) >= 1)
    assert np.all(Y.getnnz(axis=1) >= 1)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_float64():
    X, Y = make_xmc_classification(
        n_samples=200, n_features=300, n_labels=50, dtype=np.float64, random_state=0
    )
    assert X.dtype == np.float64
    assert Y.dtype == np.float32
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-12)
    X32, Y32 = make_xmc_classification(
        n_samples=200, n_features=300, n_labels=50, random_state=0
    )
    np.testing.assert_array_equal(X.indices, X32.indices)
    np.testing.assert_allclose(X.data, X32.data, rtol=1e-6)
    assert (Y != Y32).nnz == 0


def test_deterministic():
    kw = dict(n_samples=400, n_features=1000, n_labels=200)
    X1, Y1 = make_xmc_classification(**kw, random_state=42)
    X2, Y2 = make_xmc_classification(**kw, random_state=42)
    X3, Y3 = make_xmc_classification(**kw, random_state=np.random.RandomState(42))
    for A, B in [(X1, X2), (Y1, Y2), (X1, X3), (Y1, Y3)]:
        np.testing.assert_array_equal(A.indptr, B.indptr)
        np.testing.assert_array_equal(A.indices, B.indices)
        assert A.data.tobytes() == B.data.tobytes()
    X4, Y4 = make_xmc_classification(**kw, random_state=43)
    assert (Y1 != Y4).nnz > 0
    assert X1.nnz != X4.nnz or not np.array_equal(X1.indices, X4.indices)


def test_labels_per_sample(medium):
    X, Y, _ = medium
    counts = Y.getnnz(axis=1)
    assert counts.min() >= 1
    # Target is 5 draws per sample; collisions may lower it slightly.
    assert 3.5 <= counts.mean() <= 5.0


def test_long_tail(medium):
    X, Y, _ = medium
    freq = np.sort(np.asarray(Y.sum(axis=0)).ravel())[::-1]
    top_share = freq[: freq.size // 10].sum() / freq.sum()
    assert top_share >= 0.45  # 10% of labels hold about half the positives
    assert np.median(freq) <= 0.5 * freq.mean()  # typical label is rare
    assert freq[0] >= 50 * np.median(freq)


def test_power_law_exponent_zero_is_flat():
    X, Y = make_xmc_classification(
        n_samples=4000,
        n_features=2000,
        n_labels=100,
        power_law_exponent=0.0,
        label_noise=1.0,
        random_state=0,
    )
    freq = np.sort(np.asarray(Y.sum(axis=0)).ravel())[::-1]
    assert freq[: freq.size // 10].sum() / freq.sum() < 0.15


def test_labels_cooccur_within_topics(medium):
    X, Y, topics = medium
    assert topics.shape == (Y.shape[1],)
    n_topics = int(round(np.sqrt(Y.shape[1])))
    assert topics.min() == 0 and topics.max() == n_topics - 1
    C = sp.triu(Y.T @ Y, k=1).tocoo()  # co-occurring label pairs, with counts
    same = topics[C.row] == topics[C.col]
    within = C.data[same].sum() / C.data.sum()
    # Chance: two independent label occurrences fall in the same topic.
    topic_freq = np.bincount(
        topics, weights=np.asarray(Y.sum(axis=0)).ravel(), minlength=n_topics
    )
    topic_freq /= topic_freq.sum()
    chance = np.sum(topic_freq**2)
    assert within >= 0.7
    assert within >= 4 * chance


def test_nearest_centroid_beats_popularity(medium):
    X, Y, _ = medium
    n_train = 4000
    Xtr, Ytr, Xte, Yte = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
    centroids = (Ytr.T @ Xtr).tocsr()
    norms = np.sqrt(np.asarray(centroids.multiply(centroids).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    centroids = sp.diags(1.0 / norms) @ centroids
    scores = (Xte @ centroids.T).toarray()
    p1_model = _precision_at_1(scores, Yte)
    popularity = np.asarray(Ytr.sum(axis=0)).ravel()
    p1_pop = _precision_at_1(np.tile(popularity, (Xte.shape[0], 1)), Yte)
    assert p1_model >= 0.5
    assert p1_model >= 2 * p1_pop


def test_noise_free_topic_labels_stay_in_topic():
    X, Y, topics = make_xmc_classification(
        n_samples=500,
        n_features=1000,
        n_labels=300,
        n_topics=10,
        label_noise=0.0,
        return_topics=True,
        random_state=3,
    )
    row_topics = topics[Y.indices]
    rows = np.repeat(np.arange(Y.shape[0]), np.diff(Y.indptr))
    first = row_topics[Y.indptr[:-1]]
    assert np.all(row_topics == first[rows])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_labels=1, n_topics=1, avg_labels_per_sample=1),
        dict(n_labels=20, n_topics=20),
        dict(n_labels=20, n_topics=1),
        dict(n_labels=20, avg_labels_per_sample=20),
        dict(n_features=1, signal_features_per_label=1),
        dict(n_features=5, n_labels=50, signal_features_per_label=20),
        dict(avg_features_per_sample=1, avg_labels_per_sample=1),
        dict(label_noise=1.0, feature_noise=1.0),
        dict(label_noise=0.0, feature_noise=0.0),
        dict(power_law_exponent=3.0),
    ],
)
def test_edge_parameters(kwargs):
    params = dict(n_samples=50, n_features=100, n_labels=30, random_state=0)
    params.update(kwargs)
    X, Y = make_xmc_classification(**params)
    _assert_canonical_csr(X, (50, params["n_features"]))
    _assert_canonical_csr(Y, (50, params["n_labels"]))
    assert np.all(Y.getnnz(axis=1) >= 1)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=-5), "n_samples"),
        (dict(n_samples=10.5), "n_samples"),
        (dict(n_features=0), "n_features"),
        (dict(n_labels=-1), "n_labels"),
        (dict(n_labels=True), "n_labels"),
        (dict(n_topics=0), "n_topics"),
        (dict(n_topics=31), "n_topics"),
        (dict(avg_labels_per_sample=0.5), "avg_labels_per_sample"),
        (dict(avg_labels_per_sample=31), "avg_labels_per_sample"),
        (dict(avg_labels_per_sample=np.nan), "avg_labels_per_sample"),
        (dict(avg_features_per_sample=0), "avg_features_per_sample"),
        (dict(power_law_exponent=-1.0), "power_law_exponent"),
        (dict(signal_features_per_label=0), "signal_features_per_label"),
        (dict(signal_features_per_label=2.5), "signal_features_per_label"),
        (dict(label_noise=-0.1), "label_noise"),
        (dict(label_noise=1.5), "label_noise"),
        (dict(feature_noise=2.0), "feature_noise"),
        (dict(feature_noise="a lot"), "feature_noise"),
        (dict(dtype=np.int32), "dtype"),
        (dict(dtype="not a dtype"), "dtype"),
    ],
)
def test_invalid_parameters(kwargs, match):
    params = dict(n_samples=10, n_features=100, n_labels=30)
    params.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_xmc_classification(**params)


def test_larger_case_time_and_memory():
    n_samples, n_labels, n_features, avg_f = 20_000, 100_000, 50_000, 50
    tracemalloc.start()
    try:
        tic = time.perf_counter()
        X, Y = make_xmc_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_labels=n_labels,
            avg_features_per_sample=avg_f,
            random_state=0,
        )
        elapsed = time.perf_counter() - tic
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 10.0
    # Tokens ~ n_samples * avg_f; merged duplicates make nnz somewhat smaller.
    assert 0.5 * n_samples * avg_f <= X.nnz <= 1.05 * n_samples * avg_f
    assert 3 * n_samples <= Y.nnz <= 5.5 * n_samples
    # Nothing dense in n_samples x n_labels (16 GB as float64) or
    # n_labels x n_features; the working set is a about 45 MiB here.
    assert peak < 150 * 2**20, f"peak traced memory {peak / 2**20:.0f} MiB"
