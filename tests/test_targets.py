"""y in every form <-> CSR indicator (skxmr._targets): TargetEncoder, its saved
state, the indicator contract shared by every estimator."""

import numpy as np
import pytest
import scipy.sparse as sp

from skxmr._targets import TargetEncoder, binary_indicator, label_sets_to_indicator


@pytest.mark.parametrize("y, kind", [
    (sp.csr_matrix(np.array([[1, 0, 1], [0, 2, 0], [0, 0, 1]])), "sparse"),
    (np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1]]), "dense"),
    ([["b", "a"], ["c"], ["a"]], "sets"),
    (np.array(["x", "y", "x"]), "multiclass"),
])
def test_round_trip_in_every_form(y, kind):
    """fit_transform gives a 0/1 CSR float32 indicator; inverse_transform of the
    label columns of each row answers in the form y had."""
    encoder = TargetEncoder()
    Y = encoder.fit_transform(y)
    assert encoder.kind == kind
    assert sp.isspmatrix_csr(Y) and Y.dtype == np.float32
    np.testing.assert_array_equal(np.unique(Y.data), [1.0])
    # Each row's labels as column indices, padded with -1.
    k = int(np.diff(Y.indptr).max())
    labels = -np.ones((Y.shape[0], k), dtype=np.int64)
    for i in range(Y.shape[0]):
        cols = Y.indices[Y.indptr[i]:Y.indptr[i + 1]]
        labels[i, :cols.size] = cols
    back = encoder.inverse_transform(labels, len(encoder.classes_))
    if kind == "sets":
        assert [sorted(r) for r in back] == [sorted(r) for r in y]
    elif kind == "multiclass":
        np.testing.assert_array_equal(back, y)
    else:
        dense = back.toarray() if sp.issparse(back) else back
        np.testing.assert_array_equal(dense != 0, np.asarray(
            y.toarray() if sp.issparse(y) else y) != 0)
        assert back.dtype == y.dtype


def test_binary_indicator_contract():
    """Duplicates count once, explicit zeros drop, negatives and NaN are refused."""
    Y = sp.csr_matrix((np.array([1, 1, 0, 3], dtype=np.float32),
                       np.array([2, 2, 0, 1]), np.array([0, 3, 4])), shape=(2, 3))
    out = binary_indicator(Y.copy())
    np.testing.assert_array_equal(out.toarray(), [[0, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match="negative values"):
        binary_indicator(sp.csr_matrix(np.array([[0, -1.0]], dtype=np.float32)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        binary_indicator(sp.csr_matrix(np.array([[np.nan, 1.0]], dtype=np.float32)))


def test_transform_keeps_the_contract_and_drops_unknown_labels():
    encoder = TargetEncoder()
    encoder.fit_transform(sp.csr_matrix(np.eye(3)))
    twice = sp.csr_matrix((np.ones(2, dtype=np.float32), [1, 1], [0, 2]), shape=(1, 3))
    np.testing.assert_array_equal(encoder.transform(twice).toarray(), [[0, 1, 0]])
    with pytest.raises(ValueError, match="negative values"):
        encoder.transform(-sp.csr_matrix(np.eye(3)))
    with pytest.raises(ValueError, match="columns"):
        encoder.transform(sp.csr_matrix(np.eye(4)))
    sets = TargetEncoder()
    sets.fit_transform([["a"], ["b"]])
    np.testing.assert_array_equal(sets.transform([["b", "zz"]]).toarray(), [[0, 1]])


def test_with_classes_uses_the_given_columns():
    """An encoder over a fitted ranker's classes: labels the ranker does not know
    are dropped, columns follow the given classes, the form is y's."""
    encoder, Y = TargetEncoder.with_classes([["b"], ["c", "a"]], ["a", "b", "c", "d"])
    assert encoder.kind == "sets"
    np.testing.assert_array_equal(encoder.classes_, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(Y.toarray(), [[0, 1, 0, 0], [1, 0, 1, 0]])
    np.testing.assert_array_equal(
        label_sets_to_indicator([["d"]], encoder.classes_).toarray(), [[0, 0, 0, 1]])
    with pytest.raises(ValueError, match="columns"):
        TargetEncoder.with_classes(np.eye(3), np.arange(4))


@pytest.mark.parametrize("y", [
    [["b", "a"], ["c"]], np.array([3, 1, 3]), sp.csr_matrix(np.eye(2)),
    np.eye(2, dtype=np.int8), [[1, 2], [2]],
])
def test_saved_state_restores_the_same_encoder(y):
    encoder = TargetEncoder()
    encoder.fit_transform(y)
    restored = TargetEncoder.from_state(encoder.get_state())
    assert restored.kind == encoder.kind
    np.testing.assert_array_equal(restored.classes_, encoder.classes_)
    labels = np.array([[0, -1], [1, 0]])
    a = encoder.inverse_transform(labels, len(encoder.classes_))
    b = restored.inverse_transform(labels, len(encoder.classes_))
    if sp.issparse(a):
        assert (a != b).nnz == 0 and a.dtype == b.dtype
    else:
        np.testing.assert_array_equal(np.asarray(a, dtype=object),
                                      np.asarray(b, dtype=object))
