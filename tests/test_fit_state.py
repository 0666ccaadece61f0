"""Transactional fits (skxmr.utils._fit_state): a fit that fails or is interrupted
leaves the estimator exactly as it was, and a predict that runs while another
thread refits sees the old model or the new one, never a mix (issue 21, item 1)."""

import threading

import numpy as np
import pytest
import scipy.sparse as sp

import skxmr._xrlinear as xrlinear_module
from skxmr import CalibratedXMRClassifier, LabelIndexer, XRLinearClassifier
from skxmr.datasets import make_xmc_classification


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(600, 300, 60, random_state=0)
    names_a = [[f"a{j}" for j in row.indices] for row in Y]
    names_b = [[f"b{j}" for j in row.indices] for row in Y]
    return X, Y, names_a, names_b


def _fitted_state(model):
    return {k: v for k, v in vars(model).items()
            if k.endswith("_") or k in ("_targets", "_beam_searcher", "_transform",
                                        "_label_encoder")}


def _assert_same_state(before, model):
    after = _fitted_state(model)
    assert set(after) == set(before)
    for name, value in before.items():
        assert after[name] is value, name  # the very same objects: nothing rebuilt


def _make(kind):
    if kind == "xrlinear":
        return XRLinearClassifier(random_state=0, n_jobs=1)
    return CalibratedXMRClassifier(XRLinearClassifier(random_state=0, n_jobs=1), cv=2,
                                   random_state=0)


@pytest.mark.parametrize("kind", ["xrlinear", "calibrated"])
@pytest.mark.parametrize("bad_fit", ["negative_weights", "row_count"])
def test_failed_refit_keeps_the_old_model(data, kind, bad_fit):
    """Fit on label names A; a refit on names B that fails on sample_weight or on
    the row count must not leave B's names beside A's weights."""
    X, _, names_a, names_b = data
    model = _make(kind).fit(X, names_a)
    expected = model.predict(X[:20])
    assert all(label.startswith("a") for row in expected for label in row)
    before = _fitted_state(model)
    with pytest.raises(ValueError):
        if bad_fit == "negative_weights":
            model.fit(X, names_b, sample_weight=-np.ones(X.shape[0]))
        else:
            model.fit(X[:-5], names_b)
    _assert_same_state(before, model)
    assert model.predict(X[:20]) == expected


def test_interrupted_fit_keeps_the_old_model(data, monkeypatch):
    """A KeyboardInterrupt in the middle of training (after the tree is built)
    leaves the fitted model of the previous fit, whole."""
    X, Y, names_a, names_b = data
    model = XRLinearClassifier(random_state=0, n_jobs=1).fit(X, names_a)
    before = _fitted_state(model)
    expected = model.predict_topk(X[:30])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xrlinear_module, "train_levels", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X[:, :200], names_b)  # another width too
    _assert_same_state(before, model)
    labels, scores = model.predict_topk(X[:30])
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(scores, expected[1])


def test_failed_first_fit_leaves_the_model_unfitted(data):
    X, _, names_a, _ = data
    model = XRLinearClassifier(random_state=0)
    with pytest.raises(ValueError):
        model.fit(X, names_a, sample_weight=np.full(X.shape[0], -1.0))
    assert _fitted_state(model) == {}
    assert not hasattr(model, "n_features_in_")


def test_failed_indexer_refit_keeps_the_old_tree(data):
    X, Y, names_a, _ = data
    indexer = LabelIndexer(random_state=0).fit(X, names_a)
    before = _fitted_state(indexer)
    with pytest.raises(ValueError):
        indexer.fit(X[:-1], names_a)  # row count
    with pytest.raises(ValueError):
        indexer.fit(X, names_a, sample_weight=np.full(X.shape[0], np.nan))
    _assert_same_state(before, indexer)


def test_refit_drops_the_attributes_of_the_previous_fit(data):
    """The new fitted state replaces the old one whole: an attribute only the
    old fit had (here one set by hand) is gone after the refit."""
    X, Y, names_a, names_b = data
    model = XRLinearClassifier(random_state=0, n_jobs=1).fit(X, names_a)
    model.stale_ = "from the old fit"
    model.set_params(top_k=3)
    model.fit(X, names_b)
    assert not hasattr(model, "stale_")
    assert model.top_k == 3 and len(model.predict(X[:1])[0]) == 3
    assert all(label.startswith("b") for label in model.classes_)


def test_predict_during_refit_sees_one_model(data):
    """Threads predicting while another thread refits (other label names, other
    weights) always get the full answer of the old model or of the new one."""
    X, Y, names_a, names_b = data
    query = X[:50]
    model = XRLinearClassifier(random_state=0, n_jobs=1).fit(X, names_a)
    old = model.predict(query)
    new = XRLinearClassifier(random_state=1, n_jobs=1).fit(X, names_b).predict(query)
    assert old != new
    answers, errors = [], []
    stop = threading.Event()

    def predict_loop():
        while not stop.is_set():
            try:
                answers.append(model.predict(query))
            except Exception as exc:  # noqa: BLE001 - recorded, asserted below
                errors.append(exc)

    threads = [threading.Thread(target=predict_loop) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for seed in range(3):  # refit back and forth
            model.set_params(random_state=1)
            model.fit(X, names_b)
            model.set_params(random_state=0)
            model.fit(X, names_a)
        model.set_params(random_state=1)
        model.fit(X, names_b)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors
    assert answers
    assert all(answer == old or answer == new for answer in answers)
    assert model.predict(query) == new


def test_indexer_transform_counts_a_label_once_and_refuses_negatives(data):
    """One y contract for every estimator (issue 21, item 8): a label stored three
    times in a CSR row is one relevant label, and negative entries are refused as
    XRLinearClassifier.fit refuses them."""
    X, Y, _, _ = data
    indexer = LabelIndexer(random_state=0).fit(X, Y)
    row = sp.csr_matrix((np.ones(3, dtype=np.float32), np.array([5, 5, 5]),
                         np.array([0, 3])), shape=(1, Y.shape[1]))
    leaves = indexer.transform(row)
    assert leaves.sum() == 1.0 and leaves.max() == 1.0
    negative = sp.csr_matrix(([-1.0], ([0], [5])), shape=(1, Y.shape[1]))
    with pytest.raises(ValueError, match="negative values"):
        indexer.transform(negative)
    with pytest.raises(ValueError, match="negative values"):
        LabelIndexer().fit(X[:1], negative)
    with pytest.raises(ValueError, match="negative values"):
        XRLinearClassifier().fit(X[:1], negative)


@pytest.mark.parametrize("labels", [[1, 1.0], [1, True], [0.0, False],
                                    [np.int64(2), np.float32(2.0)]])
def test_equal_labels_of_different_types_are_refused(data, labels):
    """1, 1.0 and True are one key to Python: refuse them rather than merge
    their classes silently (issue 21, item 9), as label sets and as 1-D labels."""
    X, _, _, _ = data
    n = X.shape[0]
    sets = [[labels[i % 2]] for i in range(n)]
    with pytest.raises(ValueError, match="merge into one class"):
        XRLinearClassifier().fit(X, sets)
    with pytest.raises(ValueError, match="merge into one class"):
        XRLinearClassifier().fit(X, [labels[i % 2] for i in range(n)])


def test_huge_sample_weight_is_reported_as_a_weight(data):
    X, Y, _, _ = data
    for model in (XRLinearClassifier(), LabelIndexer()):
        with pytest.raises(ValueError, match="sample_weight holds 1e\\+300"):
            model.fit(X, Y, sample_weight=np.full(X.shape[0], 1e300))
