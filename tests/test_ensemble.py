"""Tree ensembles: XRLinearClassifier(n_estimators > 1)."""
import os
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

import skxmr
from skxmr import CalibratedXMRClassifier, LabelIndexer, XRLinearClassifier
from skxmr import _ensemble
from skxmr._persistence import ModelFormatError
from skxmr.datasets import make_xmc_classification
from skxmr.metrics import make_topk_scorer, precision_at_k

pytestmark = pytest.mark.filterwarnings("ignore:.*labels have an all-zero vector")


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(1800, 1200, 150, random_state=3)
    return X[:1400], Y[:1400], X[1400:], Y[1400:]


@pytest.fixture(scope="module")
def ensemble(data):
    X, Y, _, _ = data
    return XRLinearClassifier(n_estimators=3, random_state=0).fit(X, Y)


def _brute_force_combination(model, X, k, combination):
    """The ensemble's top-k from the members' own predict_topk, merged in Python."""
    n_labels = len(model.classes_)
    k = min(k, n_labels)
    k_member = min(_ensemble.CANDIDATE_FACTOR * k, n_labels)
    totals = [dict() for _ in range(X.shape[0])]
    for member in model.estimators_:
        labels, scores = member.predict_topk(X, k_member)
        for i in range(X.shape[0]):
            valid = labels[i] >= 0
            s = scores[i][valid].astype(np.float64)
            if combination == "average":
                values = s
            elif combination == "rank":
                values = 1.0 - np.arange(valid.sum()) / labels.shape[1]
            elif combination == "softmax":
                e = np.exp(s - s.max())
                values = e / e.sum()
            else:
                values = 1.0 / (1.0 + np.exp(-s))
            for label, value in zip(labels[i][valid], values):
                totals[i][label] = totals[i].get(label, 0.0) + value / len(
                    model.estimators_)
    out = []
    for row in totals:
        ranked = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out.append((ranked, row))
    return out


@pytest.mark.parametrize("combination", _ensemble.COMBINATIONS)
def test_combination_matches_brute_force(ensemble, data, combination):
    _, _, Xt, _ = data
    model = clone(ensemble)
    model.__dict__.update({k: v for k, v in vars(ensemble).items() if k.endswith("_")
                           or k == "_targets"})
    model.set_params(combination=combination)
    labels, scores = model.predict_topk(Xt[:60], 5)
    expected = _brute_force_combination(model, Xt[:60], 5, combination)
    for i, (ranked, totals) in enumerate(expected):
        # the same scores, best first; each returned label has its brute-force
        # total (labels may swap only where totals tie to rounding)
        np.testing.assert_allclose(scores[i, :len(ranked)], [s for _, s in ranked],
                                   rtol=1e-5)
        np.testing.assert_allclose(scores[i, :len(ranked)],
                                   [totals[label] for label in labels[i, :len(ranked)]],
                                   rtol=1e-5)
        exact = [label for label, s in ranked if s > ranked[-1][1] * (1 + 1e-5)]
        assert set(exact) <= set(labels[i].tolist())


def test_members_are_different_trees(ensemble):
    trees = [member.tree_ for member in ensemble.estimators_]
    assert len(trees) == 3
    assert not trees[0].equals(trees[1]) and not trees[1].equals(trees[2])
    assert not hasattr(ensemble, "tree_") and not hasattr(ensemble, "coef_")
    assert ensemble.n_iter_ == max(m.n_iter_ for m in ensemble.estimators_)
    for member in ensemble.estimators_:
        assert member.n_estimators == 1 and member._targets is ensemble._targets


def test_members_cluster_one_shared_representation(data, monkeypatch):
    """The label vectors are computed once; member i clusters them with its seed."""
    X, Y, _, _ = data
    import skxmr._indexer as indexer_module

    calls = []
    original = indexer_module.compute_label_representation

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(indexer_module, "compute_label_representation", counting)
    model = XRLinearClassifier(n_estimators=3, random_state=1).fit(X, Y)
    assert len(calls) == 1
    monkeypatch.undo()
    rng = np.random.RandomState(1)
    seeds = _ensemble.member_seeds(rng, 3)
    Z = LabelIndexer(random_state=int(rng.randint(np.iinfo(np.int32).max))
                     ).label_vectors(X, Y)
    for seed, member in zip(seeds, model.estimators_):
        tree = LabelIndexer(representation="precomputed", random_state=int(seed)
                            ).fit(Z).tree_
        assert tree.equals(member.tree_)


def test_n_estimators_1_is_the_single_tree(data):
    X, Y, Xt, _ = data
    single = XRLinearClassifier(n_estimators=1, random_state=0).fit(X, Y)
    default = XRLinearClassifier(random_state=0).fit(X, Y)
    assert not hasattr(single, "estimators_")
    assert single.tree_.equals(default.tree_)
    for a, b in zip(single.coef_, default.coef_):
        assert (a != b).nnz == 0
    # combination and diversity are not used by a single tree
    other = XRLinearClassifier(n_estimators=1, combination="rank", diversity="branching",
                               random_state=0).fit(X, Y)
    assert np.array_equal(other.predict_topk(Xt)[0], default.predict_topk(Xt)[0])


def test_bit_identical_for_any_n_jobs(data):
    X, Y, Xt, _ = data
    a = XRLinearClassifier(n_estimators=3, random_state=4, n_jobs=1).fit(X, Y)
    b = XRLinearClassifier(n_estimators=3, random_state=4, n_jobs=2).fit(X, Y)
    for ma, mb in zip(a.estimators_, b.estimators_):
        assert ma.tree_.equals(mb.tree_)
        for Wa, Wb in zip(ma.coef_, mb.coef_):
            assert np.array_equal(Wa.indices, Wb.indices)
            assert np.array_equal(Wa.data, Wb.data)
    la, sa = a.predict_topk(Xt)
    lb, sb = b.predict_topk(Xt)  # searched and merged on 2 threads
    assert np.array_equal(la, lb) and np.array_equal(sa, sb)
    rows = np.vstack([a.predict_topk(Xt[i:i + 1])[1] for i in range(20)])
    assert np.array_equal(rows, sa[:20])  # the one-query path


def test_ensemble_ranks_better_than_its_trees():
    # deep enough trees (600 labels, leaves of <= 20) for the seeds to matter
    X, Y = make_xmc_classification(3000, 2000, 600, random_state=0)
    X, Y, Xt, Yt = X[:2400], Y[:2400], X[2400:], Y[2400:]
    model = XRLinearClassifier(LabelIndexer(max_leaf_size=20, branching_factor=4),
                               n_estimators=3, random_state=0).fit(X, Y)

    def p(m, k):
        return precision_at_k(Yt, m.decision_function(Xt), k=k)

    member_p5 = np.mean([p(m, 5) for m in model.estimators_])
    member_p1 = np.mean([p(m, 1) for m in model.estimators_])
    assert p(model, 5) > member_p5 + 0.002
    assert p(model, 1) > member_p1 - 0.005


def test_branching_diversity(data):
    X, Y, Xt, _ = data
    model = XRLinearClassifier(LabelIndexer(branching_factor=8, max_leaf_size=10),
                               n_estimators=3, diversity="branching",
                               random_state=0).fit(X, Y)
    _, indexers = _ensemble.member_indexers(model.indexer, 3, [0, 1, 2], "branching")
    assert [ix.branching_factor for ix in indexers] == [8, 2, 32]
    depths = [member.tree_.n_levels for member in model.estimators_]
    assert depths[1] > depths[0] > depths[2]  # narrow trees are deeper
    assert model.predict_topk(Xt)[0].shape == (Xt.shape[0], 10)
    binary = _ensemble.member_indexers(LabelIndexer(clustering="binary"), 3, [0, 1, 2],
                                       "branching")[1]
    assert [ix.branching_factor for ix in binary] == [16, 4, 64]


def test_output_forms_and_threshold(data):
    X, Y, Xt, _ = data
    lists = [tuple(row.indices) for row in Y]
    model = XRLinearClassifier(n_estimators=2, top_k=3, random_state=0).fit(X, lists)
    predicted = model.predict(Xt[:5])
    assert isinstance(predicted, list) and all(len(p) == 3 for p in predicted)
    labels, scores = model.predict_topk(Xt[:5])
    assert np.all(np.diff(scores, axis=1) <= 0)
    high = model.predict(Xt[:5], threshold=float(scores[:, 0].min()))
    assert all(1 <= len(p) <= 3 for p in high)
    one_row = model.predict_topk(Xt[:1].tocsr())
    assert np.array_equal(one_row[0], labels[:1])


def test_bad_parameters(data):
    X, Y, _, _ = data
    with pytest.raises(InvalidParameterError):
        XRLinearClassifier(n_estimators=0).fit(X, Y)
    with pytest.raises(InvalidParameterError):
        XRLinearClassifier(n_estimators=2, combination="max").fit(X, Y)
    with pytest.raises(InvalidParameterError):
        XRLinearClassifier(n_estimators=2, diversity="features").fit(X, Y)
    tree = LabelIndexer(random_state=0).fit(X, Y).tree_
    model = XRLinearClassifier(tree, n_estimators=2)
    with pytest.raises(ValueError, match="needs an indexer that builds"):
        model.fit(X, Y)
    assert not hasattr(model, "classes_")  # the failed fit left it unfitted


def test_save_load_round_trip(ensemble, data, tmp_path):
    _, _, Xt, _ = data
    path = tmp_path / "model"
    skxmr.save(ensemble, path)
    for mmap_mode in (None, "r"):
        loaded = skxmr.load(path, mmap_mode=mmap_mode)
        assert loaded.n_estimators == 3 and len(loaded.estimators_) == 3
        a, b = ensemble.predict_topk(Xt), loaded.predict_topk(Xt)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        del loaded
    small = tmp_path / "small"
    skxmr.save(ensemble, small, weights="float16")
    loaded = skxmr.load(small)
    agree = np.mean(loaded.predict_topk(Xt, 1)[0] == ensemble.predict_topk(Xt, 1)[0])
    assert agree > 0.97


def test_load_rejects_inconsistent_members(ensemble, tmp_path):
    import json

    path = tmp_path / "model"
    skxmr.save(ensemble, path)
    meta_file = path / "skxmr_model.json"
    meta = json.loads(meta_file.read_text())
    meta["params"]["n_estimators"] = 2
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="n_estimators is 2"):
        skxmr.load(path, verify=False)
    meta["params"]["n_estimators"] = 3
    meta["attributes"]["members"] = meta["attributes"]["members"][:1]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="members"):
        skxmr.load(path, verify=False)


def test_pickle_and_clone(ensemble, data):
    _, _, Xt, _ = data
    restored = joblib.load(_dump(ensemble))
    assert np.array_equal(restored.predict_topk(Xt)[0], ensemble.predict_topk(Xt)[0])
    assert clone(ensemble).get_params()["n_estimators"] == 3


def _dump(model):
    import io

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return buffer


def test_add_labels_to_every_tree(data):
    X, Y, Xt, Yt = data
    Y = sp.csc_matrix(Y)
    old = sp.csr_matrix(Y[:, :140])
    model = XRLinearClassifier(n_estimators=3, random_state=0).fit(X, old)
    before = model.predict_topk(Xt)
    model.add_labels(X, sp.csr_matrix(Y))
    assert len(model.classes_) == 150
    for member in model.estimators_:
        assert member.tree_.n_labels == 150 and member._targets is model._targets
    labels, _ = model.predict_topk(Xt)
    has_new = np.asarray(Yt[:, 140:].sum(axis=1)).ravel() > 0
    found = [np.isin(labels[i], np.flatnonzero(Yt[i].toarray().ravel()[140:]) + 140
                     ).any() for i in np.flatnonzero(has_new)]
    assert np.mean(found) > 0.5  # the new labels are found for their rows
    assert (labels >= 140).sum() > 0 and before[0].max() < 140
    # a failed call leaves the model as it was
    with pytest.raises(ValueError, match="no new label"):
        model.add_labels(X, sp.csr_matrix(Y))
    assert len(model.classes_) == 150


def test_calibrated_ensemble(data):
    X, Y, Xt, _ = data
    model = CalibratedXMRClassifier(XRLinearClassifier(n_estimators=2, random_state=0),
                                    cv=3, random_state=0).fit(X, Y)
    proba = model.predict_proba(Xt)
    assert proba.shape == (Xt.shape[0], Y.shape[1])
    assert 0 < proba.data.min() and proba.data.max() < 1


def test_grid_search_over_n_estimators(data):
    X, Y, _, _ = data
    search = GridSearchCV(XRLinearClassifier(random_state=0),
                          {"n_estimators": [1, 2], "combination": ["average", "rank"]},
                          scoring=make_topk_scorer("precision", k=1), cv=2)
    search.fit(X[:600], Y[:600])
    assert len(search.cv_results_["params"]) == 4


def test_cli_train_n_estimators(tmp_path, xmc_files):
    from skxmr.__main__ import main

    model_dir = tmp_path / "model"
    assert main(["train", str(xmc_files / "train.txt"), "-o", str(model_dir),
                 "--n-estimators", "2", "--combination", "rank", "--quiet"]) == 0
    loaded = skxmr.load(model_dir / "classifier")
    assert loaded.n_estimators == 2 and loaded.combination == "rank"
    assert any(name.startswith("member.1.") for name in
               os.listdir(model_dir / "classifier"))
    assert main(["evaluate", str(model_dir), str(xmc_files / "test.txt"),
                 "--quiet"]) == 0
