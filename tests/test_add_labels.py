"""XRLinearClassifier.add_labels: new labels without a refit (issue 25)."""

import numpy as np
import pytest
import scipy.sparse as sp

import skxmr
from skxmr import LabelTree, XRLinearClassifier
from skxmr.datasets import make_xmc_classification


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(1200, 300, 60, random_state=0)
    return X, sp.csr_matrix(Y)


def _split(Y, n_new):
    """Columns: the old labels, then ``n_new`` held-out ones (with rows)."""
    counts = np.asarray((Y > 0).sum(axis=0)).ravel()
    new = np.flatnonzero(counts >= 2)[:n_new]
    old = np.setdiff1d(np.arange(Y.shape[1]), new)
    return Y[:, np.concatenate([old, new])], old.size


def test_with_labels_appends_to_leaves_and_keeps_order():
    tree = LabelTree(level_ptr=[0, 1, 3, 7], child_ptr=[1, 3, 5, 7],
                     label_perm=[2, 0, 1, 3])
    grown, order = tree.with_labels([1, 0, 1])
    assert grown.leaf_sizes().tolist() == [3, 4]
    assert grown.label_perm.tolist() == [2, 0, 5, 1, 3, 4, 6]
    assert order.tolist() == [0, 1, 5, 2, 3, 4, 6]
    split, clusters, labels = grown.split_leaf(1, [[], [5, 6]])
    assert split.leaf_sizes().tolist() == [3, 2, 2]
    assert clusters.tolist() == [0, 1, 1]
    assert labels.tolist() == list(range(7))
    with pytest.raises(ValueError, match="leaf clusters"):
        tree.with_labels([2])


def test_with_new_leaves_appends_sibling_leaves():
    # root -> 2 clusters -> 3 leaves (2 + 1) -> 5 labels (2, 2, 1)
    tree = LabelTree(level_ptr=[0, 1, 3, 6, 11], child_ptr=[1, 3, 5, 6, 8, 10, 11],
                     label_perm=[4, 0, 1, 3, 2])
    # new leaf 0 under cluster 1, new leaf 1 under cluster 0; labels 5, 6, 7
    grown, leaf_order, order = tree.with_new_leaves([1, 0], [1, 0, 0])
    assert grown.level_sizes.tolist() == [2, 5, 8]
    assert leaf_order.tolist() == [0, 1, 4, 2, 3]  # new leaves after their siblings
    assert grown.leaf_sizes().tolist() == [2, 2, 1, 1, 2]
    assert order.tolist() == [0, 1, 2, 3, 5, 4, 6, 7]
    assert grown.label_perm.tolist() == [4, 0, 1, 3, 5, 2, 6, 7]
    assert grown.label_to_cluster(1).tolist() == [0, 0, 1, 0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="leaf parents"):
        tree.with_new_leaves([2], [0])
    with pytest.raises(ValueError, match="every new leaf"):
        tree.with_new_leaves([0, 1], [0])


def test_add_labels_matches_model_on_old_labels_and_finds_new(data):
    X, Y = data
    Yp, n_old = _split(Y, 6)
    base = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    old_coef = [W.copy() for W in base.coef_]
    old_labels, old_scores = base.predict_topk(X[:50])
    model = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    model.add_labels(X, Yp)
    assert model.classes_.tolist() == list(range(Yp.shape[1]))
    assert model.tree_.n_labels == Yp.shape[1]
    # the old labels' and clusters' weights are unchanged
    position = np.empty(n_old, dtype=np.int64)
    position[model.tree_.label_perm[model.tree_.label_perm < n_old]] = np.flatnonzero(
        model.tree_.label_perm < n_old)
    before = np.empty(n_old, dtype=np.int64)
    before[base.tree_.label_perm] = np.arange(n_old)
    for label in range(0, n_old, 7):
        a = model.coef_[-1][:, position[label]].toarray()
        b = old_coef[-1][:, before[label]].toarray()
        np.testing.assert_array_equal(a, b)
    for W_new, W_old in zip(model.coef_[:-2], old_coef[:-2]):
        assert (W_new != W_old).nnz == 0
    # the old leaves keep their labels and cluster weights; the new labels sit
    # in new leaves
    T = base.tree_.n_levels
    was = base.tree_.label_to_cluster(T - 1)
    now = model.tree_.label_to_cluster(T - 1)
    leaf_map = np.full(base.tree_.level_sizes[-2], -1)
    leaf_map[was] = now[:n_old]
    assert np.array_equal(leaf_map[was], now[:n_old])  # one new leaf per old one
    assert not np.isin(now[n_old:], leaf_map).any()
    assert (model.coef_[-2][:, leaf_map] != old_coef[-2]).nnz == 0
    # the new labels are predicted on their rows (training rows here)
    new_rows = np.flatnonzero(np.asarray(Yp[:, n_old:].sum(axis=1)).ravel())
    labels, _ = model.predict_topk(X[new_rows], k=10)
    hit = [(Yp[i, labels[j][labels[j] >= n_old]].sum() > 0)
           for j, i in enumerate(new_rows)]
    assert np.mean(hit) > 0.5
    # rows without new labels: the old top-1 is mostly kept
    labels, _ = model.predict_topk(X[:50])
    assert np.mean(labels[:, 0] == old_labels[:, 0]) > 0.8
    assert model.predict(X[:3]).shape == (3, Yp.shape[1])


def test_add_labels_label_sets_and_persistence(data, tmp_path):
    X, Y = data
    Yp, n_old = _split(Y, 4)
    names = np.array([f"tag{j:03d}" for j in range(Yp.shape[1])])
    sets = [list(names[row.indices]) for row in Yp]
    old_sets = [[n for n in s if n in set(names[:n_old])] for s in sets]
    model = XRLinearClassifier(random_state=0).fit(X, old_sets)
    model.add_labels(X, sets)
    assert model.classes_[:n_old].tolist() == sorted(names[:n_old].tolist())
    assert sorted(model.classes_[n_old:].tolist()) == sorted(names[n_old:].tolist())
    path = tmp_path / "m.skxmr"
    skxmr.save(model, path)
    loaded = skxmr.load(path)
    assert loaded.predict(X[:20]) == model.predict(X[:20])
    np.testing.assert_array_equal(loaded.predict_topk(X[:20])[0],
                                  model.predict_topk(X[:20])[0])


def test_add_labels_errors_leave_model_unchanged(data):
    X, Y = data
    Yp, n_old = _split(Y, 3)
    model = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    coef, tree, classes = model.coef_, model.tree_, model.classes_
    with pytest.raises(ValueError, match="no new label"):
        model.add_labels(X, Yp[:, :n_old])
    with pytest.raises(ValueError, match="rows"):
        model.add_labels(X[:10], Yp)
    with pytest.raises(ValueError, match="features"):
        model.add_labels(X[:, :10], Yp)
    with pytest.raises(ValueError, match="refresh"):
        model.add_labels(X, Yp, refresh="all")
    with pytest.raises(ValueError, match="max_leaf_size"):
        model.add_labels(X, Yp, max_leaf_size=0)
    assert model.coef_ is coef and model.tree_ is tree and model.classes_ is classes
    with pytest.raises(Exception):
        XRLinearClassifier().add_labels(X, Yp)


def test_add_labels_new_leaves_hold_at_most_max_leaf_size(data):
    """No leaf overflows: the new labels go to new leaves (cut to at most
    max_leaf_size before any training); the old leaves keep their sizes."""
    X, Y = data
    Yp, n_old = _split(Y, 10)
    model = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    old_sizes = model.tree_.leaf_sizes().copy()
    n_leaves = model.tree_.level_sizes[-2]
    model.add_labels(X, Yp, max_leaf_size=3)
    sizes = model.tree_.leaf_sizes()
    T = model.tree_.n_levels
    leaf_of = model.tree_.label_to_cluster(T - 1)
    new_leaves = np.unique(leaf_of[n_old:])
    assert new_leaves.size >= 4 and sizes[new_leaves].max() <= 3
    assert sorted(sizes[np.setdiff1d(np.arange(sizes.size), new_leaves)]) == sorted(
        old_sizes)
    assert model.tree_.level_sizes[-2] == n_leaves + new_leaves.size
    assert model.coef_[-2].shape[1] == model.tree_.level_sizes[-2]
    labels, _ = model.predict_topk(X[:30])
    assert labels.max() < Yp.shape[1]


def test_old_labels_scores_unchanged_with_refresh_none(data):
    """With a beam that keeps every leaf, the old labels' scores are exactly
    those of the model before the addition."""
    X, Y = data
    Yp, n_old = _split(Y, 8)
    params = dict(random_state=0, beam_size=200)
    base = XRLinearClassifier(**params).fit(X, Yp[:, :n_old])
    model = XRLinearClassifier(**params).fit(X, Yp[:, :n_old])
    model.add_labels(X, Yp)
    assert model.tree_.level_sizes[-2] <= 200
    k = Yp.shape[1]
    lb, sb = base.predict_topk(X[:40], k=n_old)
    lm, sm = model.predict_topk(X[:40], k=k)
    for i in range(40):
        keep = (lm[i] >= 0) & (lm[i] < n_old)
        mine = dict(zip(lm[i][keep].tolist(), sm[i][keep].tolist()))
        theirs = dict(zip(lb[i][lb[i] >= 0].tolist(), sb[i][lb[i] >= 0].tolist()))
        assert mine == theirs


def test_failed_add_labels_leaves_model_as_it_was(data, monkeypatch):
    import skxmr._label_addition as la

    X, Y = data
    Yp, n_old = _split(Y, 4)
    model = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    coef, tree, classes = model.coef_, model.tree_, model.classes_
    before = model.predict_topk(X[:20])

    def fail(*args, **kwargs):
        raise RuntimeError("solver failed")

    monkeypatch.setattr(la, "train_label_columns", fail)
    with pytest.raises(RuntimeError, match="solver failed"):
        model.add_labels(X, Yp)
    assert model.coef_ is coef and model.tree_ is tree and model.classes_ is classes
    after = model.predict_topk(X[:20])
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_add_labels_warns_without_old_rows(data):
    X, Y = data
    Yp, n_old = _split(Y, 4)
    model = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    rows = np.flatnonzero(np.diff(Yp[:, n_old:].tocsr().indptr) > 0)
    with pytest.warns(UserWarning, match="negatives"):
        model.add_labels(X[rows], Yp[rows])


def test_add_labels_refresh_path_and_repeated(data):
    X, Y = data
    Yp, n_old = _split(Y, 6)
    model = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old + 3])
    model.add_labels(X, Yp, refresh="path")
    assert model.tree_.n_labels == Yp.shape[1]
    again = XRLinearClassifier(random_state=0).fit(X, Yp[:, :n_old])
    again.add_labels(X, Yp[:, :n_old + 3]).add_labels(X, Yp)
    assert again.tree_.n_labels == Yp.shape[1]
    assert again.score(X, Yp) > 0.5


def test_add_labels_same_for_any_n_jobs(data):
    X, Y = data
    Yp, n_old = _split(Y, 5)
    results = []
    for n_jobs in (1, 2):
        model = XRLinearClassifier(random_state=0, n_jobs=n_jobs).fit(X, Yp[:, :n_old])
        model.add_labels(X, Yp, refresh="path")
        results.append(model)
    for a, b in zip(results[0].coef_, results[1].coef_):
        assert (a != b).nnz == 0


def test_cli_add_labels_on_texts(tmp_path, capsys):
    from skxmr._cli._main import main
    from skxmr.datasets import load_debian_debtags

    texts, labels = load_debian_debtags(subset="train", return_X_y=True)
    texts, labels = texts[:1200], labels[:1200]
    counts = {}
    for tags in labels:
        for tag in tags:
            counts[tag] = counts.get(tag, 0) + 1
    held = sorted(t for t, c in counts.items() if c >= 5)[:3]
    old = [[t for t in tags if t not in held] for tags in labels]

    def write(path, rows):
        path.write_text("".join(f"{','.join(tags)}\t{text}\n"
                                for text, tags in zip(texts, rows)))
        return path

    model = tmp_path / "model"
    assert main(["train", str(write(tmp_path / "old.tsv", old)), "-o", str(model),
                 "-q"]) == 0
    full = write(tmp_path / "full.tsv", labels)
    assert main(["add-labels", str(model), str(full), "-o", str(tmp_path / "grown"),
                 "-q"]) == 0
    from skxmr._cli._model_dir import load_model

    grown, _ = load_model(tmp_path / "grown")
    before, _ = load_model(model)
    assert set(held) <= set(grown.classes_.tolist())
    assert not set(held) & set(before.classes_.tolist())
    assert len(grown.classes_) == len(before.classes_) + len(held)
    # a second call has nothing new to add: a one-line error, the model kept
    assert main(["add-labels", str(tmp_path / "grown"), str(full), "-q"]) == 1
    assert "no new label" in capsys.readouterr().err


def test_calibrated_model_follows(data):
    from skxmr import CalibratedXMRClassifier

    X, Y = data
    Yp, n_old = _split(Y, 4)
    model = CalibratedXMRClassifier(XRLinearClassifier(random_state=0), cv=2,
                                    random_state=0).fit(X, Yp[:, :n_old])
    ranker = model.estimator_
    model.add_labels(X, Yp)
    assert len(model.classes_) == Yp.shape[1]
    assert len(ranker.classes_) == n_old  # the old ranker object is untouched
    proba = model.predict_proba(X[:20])
    assert proba.shape == (20, Yp.shape[1])
    labels, p = model.predict_topk(X[:20])
    np.testing.assert_array_equal(labels, model.estimator_.predict_topk(X[:20])[0])
    assert np.all((p >= 0) & (p <= 1))


@pytest.mark.parametrize("negative_sampling", ["tfn", "tfn+man"])
@pytest.mark.parametrize("refresh", ["none", "path"])
def test_add_labels_fast_path_matches_reference(data, monkeypatch, negative_sampling,
                                                refresh):
    """The shortcuts of add_labels (beam search on the rows with a new label
    only, no routing under teacher forcing, the solver on the rows that can
    be in a matching set only, a leaf's rows built once for all its new
    labels) give the model of the exhaustive computation: every row routed
    and passed to the solver, every node's rows built on their own."""
    import skxmr._label_addition as la
    from skxmr import LabelIndexer

    X, Y = data
    Yp, n_old = _split(Y, 8)
    params = dict(random_state=0, negative_sampling=negative_sampling,
                  indexer=LabelIndexer(branching_factor=2, max_leaf_size=8))
    base = XRLinearClassifier(**params).fit(X, Yp[:, :n_old])
    assert base.tree_.n_levels >= 3  # the new leaves' parents are not the root
    placed = []
    place = la.place_labels
    monkeypatch.setattr(la, "place_labels",
                        lambda *a: placed.append(place(*a)) or placed[-1])
    fast = XRLinearClassifier(**params).fit(X, Yp[:, :n_old])
    fast.add_labels(X, Yp, refresh=refresh)
    # The reference placement: every row routed, as the full training set.
    Xc = sp.csr_matrix(base._check_X(X, reset=False))
    reference = place(la.route_to_leaves(base, Xc, 1), Yp[:, n_old:],
                      base.tree_.leaf_sizes())
    np.testing.assert_array_equal(placed[0], reference)
    # The reference training: every row given to the solver, each node
    # building its own rows, routes everywhere.
    train, route = la.train_level_nodes, la._route
    routed = []
    monkeypatch.setattr(la, "_take_rows", lambda X, Y, w, rows: (X, Y, w))
    monkeypatch.setattr(la, "train_level_nodes",
                        lambda *a, **k: train(*a, **{**k, "shared_rows": False}))
    monkeypatch.setattr(la, "_route",
                        lambda *a: routed.append(a[1].shape[0]) or route(*a))
    slow = XRLinearClassifier(**params).fit(X, Yp[:, :n_old])
    slow.add_labels(X, Yp, refresh=refresh)
    if negative_sampling == "tfn":  # only the rows with a new label are routed
        n_carry = int((np.diff(Yp[:, n_old:].indptr) > 0).sum())
        assert routed == [n_carry] and n_carry < X.shape[0]
    np.testing.assert_array_equal(fast.tree_.label_perm, slow.tree_.label_perm)
    np.testing.assert_array_equal(fast.tree_.child_ptr, slow.tree_.child_ptr)
    assert fast.tree_.level_sizes[-2] > base.tree_.level_sizes[-2]
    assert len(fast.coef_) == len(slow.coef_)
    for a, b in zip(fast.coef_, slow.coef_):
        assert a.shape == b.shape and (a != b).nnz == 0
