"""XTransformerClassifier.add_labels: labels with rows and zero-shot labels known by
a text only (issue 25), with the tiny random encoder of conftest."""

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sentence_transformers", reason="the transformer extra")

import skxmr  # noqa: E402
from skxmr import XTransformerClassifier  # noqa: E402
from skxmr._postprocess import get_post_processor  # noqa: E402
from skxmr._targets import TargetEncoder  # noqa: E402
from skxmr._xtransformer._zero_shot import check_label_texts, merge_topk  # noqa: E402

ZS_TEXTS = {"zs::chess": "a chess engine that plays against you in a terminal",
            "zs::mail": "an email client with spam filtering and pgp signatures"}


def _fit(encoder, texts, y, **params):
    params.setdefault("random_state", 0)
    params.setdefault("n_jobs", 1)
    return XTransformerClassifier(encoder, **params).fit(texts, y)


@pytest.fixture(scope="module")
def base(tiny_encoder, debtags_small):
    texts, tags = debtags_small[:2]
    return _fit(tiny_encoder, texts[:400], tags[:400])


@pytest.fixture
def model(base):
    return copy.deepcopy(base)


def _same_predictions(a, b, texts):
    la, sa = a.predict_topk(texts)
    lb, sb = b.predict_topk(texts)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_allclose(sa, sb, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- zero-shot
def test_zero_shot_labels_join_classes_and_outputs(model, debtags_small):
    n_old = len(model.classes_)
    model.add_labels(label_texts=ZS_TEXTS)
    assert model.classes_[n_old:].tolist() == list(ZS_TEXTS)
    assert model.zero_shot_columns_.tolist() == [n_old, n_old + 1]
    assert model.zero_shot_embeddings_.shape == (2, model.embedding_dim_)
    assert len(model.ranker_.classes_) == n_old  # outside the ranker's tree
    texts = list(ZS_TEXTS.values()) + debtags_small[2][:3]
    scores = model.decision_function(texts)
    assert sp.issparse(scores) and scores.shape == (5, n_old + 2)
    assert np.all(np.diff(scores.indptr) == model.ranker_.top_k)
    labels, top = model.predict_topk(texts, k=4)
    assert labels.shape == top.shape == (5, 4)
    assert np.all(np.diff(top, axis=1) <= 0)  # best first
    if model.neighbor_labels_ is not None:
        assert model.neighbor_labels_.shape[1] == n_old + 2


def test_zero_shot_label_ranks_first_for_its_own_text(model, debtags_small):
    """A text equal to a label's text scores that label highest: margin 1, the
    most a hinge transform gives; the other zero-shot label stays below it."""
    model.add_labels(label_texts=ZS_TEXTS)
    predicted = model.predict(list(ZS_TEXTS.values()))
    assert [p[0] for p in predicted] == list(ZS_TEXTS)
    # and a label text that is a training text tops that text's ranking too
    texts = debtags_small[0]
    model.add_labels(label_texts={"zs::copy": texts[3]})
    assert model.predict([texts[3]])[0][0] == "zs::copy"


def test_zero_shot_scores_follow_the_documented_mapping(model, debtags_small):
    """score = transform((cos - q) / (1 - q)) ** n_levels, cos of the encoder's
    normalised embeddings, merged into the ranker's top-k."""
    model.add_labels(label_texts=ZS_TEXTS)
    texts = debtags_small[2][:20]
    E = model.transform(texts)
    Z = model.transform(list(ZS_TEXTS.values()))
    q = model.zero_shot_offsets_
    assert np.all(q < 1) and np.all(q > -1)
    margin = (E @ Z.T - q) / (1 - q)
    pp = get_post_processor(model.ranker_.post_processor)
    expected = pp.transform(margin) ** model.ranker_.tree_.n_levels
    dense = model.decision_function(texts).toarray()
    ranker_only = copy.deepcopy(model)
    ranker_only.zero_shot_columns_ = ranker_only.zero_shot_columns_[:0]
    r_labels, r_scores = ranker_only.predict_topk(texts)
    k = r_labels.shape[1]
    for i in range(len(texts)):
        ranked = sorted([(s, 1, int(lab)) for lab, s in zip(r_labels[i], r_scores[i])]
                        + [(float(expected[i, j]), 2, int(c)) for j, c in
                           enumerate(model.zero_shot_columns_)], reverse=True)
        pool, kth = ranked[:k], ranked[k - 1][0]
        got = {int(c): dense[i, c] for c in np.flatnonzero(dense[i])}
        assert len(got) == k
        # The same top k, except that labels tied with the k-th within float
        # noise (the embeddings are recomputed here; multithreaded encoding
        # may move the last bits) may swap at the boundary.
        near = {c for s, _, c in ranked if abs(s - kth) <= 1e-5 * max(1.0, abs(kth))}
        assert set(got) - near == {c for _, _, c in pool} - near
        score_of = {c: s for s, _, c in ranked}
        for c, value in got.items():
            assert value == pytest.approx(score_of[c], rel=1e-5, abs=1e-6)


def test_merge_topk_pads_and_prefers_zero_shot_on_ties():
    labels = np.array([[3, 1, -1], [-1, -1, -1]])
    scores = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    E = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    Z = np.array([[1.0, 0.0]], dtype=np.float32)
    out_l, out_s = merge_topk(labels, scores, E, np.array([7]), Z,
                              np.zeros(1, dtype=np.float32), "l3-hinge", 3)
    assert out_l[0].tolist() == [7, 3, 1]  # equal score 1.0: zero-shot first
    assert out_s[0].tolist() == pytest.approx([1.0, 1.0, 0.5])
    assert out_l[1].tolist() == [7, -1, -1] and out_s[1, 1:].tolist() == [0, 0]


def test_zero_shot_with_indicator_targets(tiny_encoder, debtags_small):
    texts, tags = debtags_small[0][:300], debtags_small[1][:300]
    Y = TargetEncoder().fit_transform(tags)
    model = _fit(tiny_encoder, texts, Y, n_neighbors=0)
    n = Y.shape[1]
    with pytest.raises(ValueError, match="next column numbers"):
        model.add_labels(label_texts={n + 1: "a chess engine"})
    model.add_labels(label_texts={n + 1: "an email client", n: "a chess engine"})
    assert model.classes_.tolist() == list(range(n + 2))
    P = model.predict(["a chess engine", "an email client"])
    assert sp.issparse(P) and P.shape == (2, n + 2)
    assert P[0, n] == 1 and P[1, n + 1] == 1
    dense = _fit(tiny_encoder, texts, Y.toarray(), n_neighbors=0)
    dense.add_labels(label_texts=([n], ["a chess engine"]))
    D = dense.predict(["a chess engine"])
    assert isinstance(D, np.ndarray) and D.shape == (1, n + 1) and D[0, n] == 1


# ------------------------------------------------------------ rows arrive
def test_rows_make_a_zero_shot_label_ordinary(model, debtags_small):
    texts, tags = debtags_small[0][:400], debtags_small[1][:400]
    model.add_labels(label_texts=ZS_TEXTS)
    n_bank = model.neighbor_embeddings_.shape[0]
    classes = model.classes_.copy()
    rows = [i for i, t in enumerate(tags) if "use::gameplaying" in t][:8]
    assert len(rows) >= 3
    y = [list(tags[i]) + ["zs::chess"] for i in rows]
    known = set(classes.tolist())
    extra = debtags_small[0][400:404]  # texts not in the bank, old labels
    y_extra = [[t for t in tags_ if t in known] for tags_ in debtags_small[1][400:404]]
    model.add_labels([texts[i] for i in rows] + extra, y + list(y_extra))
    np.testing.assert_array_equal(model.classes_, classes)  # columns unchanged
    chess = int(np.flatnonzero(classes == "zs::chess")[0])
    assert model.zero_shot_columns_.tolist() == [chess + 1]  # zs::mail stays
    assert "zs::chess" in model.ranker_.classes_.tolist()
    assert model.tree_ is model.ranker_.tree_
    # the training texts are in the bank already: only the 4 new texts join it
    assert model.neighbor_embeddings_.shape == (n_bank + 4, model.embedding_dim_)
    assert model.neighbor_labels_.shape == (n_bank + 4, len(classes))
    assert model.neighbor_labels_[:, chess].nnz == len(rows)
    found = [("zs::chess" in p) for p in model.predict([texts[i] for i in rows])]
    assert np.mean(found) >= 0.5
    # and the ordinary label is saved and loaded with its column
    labels, _ = model.predict_topk([texts[i] for i in rows])
    assert chess in labels


def test_add_labels_with_rows_only(model, debtags_small):
    texts, tags = debtags_small[0][:400], debtags_small[1][:400]
    n_old = len(model.classes_)
    y = [list(t) + (["new::tag"] if i % 20 == 0 else []) for i, t in enumerate(tags)]
    model.add_labels(texts, y, refresh="path")
    assert model.classes_[-1] == "new::tag" and len(model.classes_) == n_old + 1
    assert model._ranker_columns is None  # the ranker's columns are the model's
    assert model.zero_shot_columns_.size == 0
    hits = [("new::tag" in p) for p in model.predict(texts[::20])]
    assert np.mean(hits) >= 0.5
    with pytest.raises(ValueError, match="no new label"):
        model.add_labels(texts[:5], tags[:5])


def test_multiclass_targets(tiny_encoder, debtags_small):
    texts = debtags_small[0][:200]
    y = np.array([t[0] if t else "none" for t in debtags_small[1][:200]])
    model = _fit(tiny_encoder, texts, y)
    model.add_labels(label_texts={"zz-chess": "a chess engine"})
    assert model.predict(["a chess engine"])[0] == "zz-chess"
    model.add_labels(texts[:5], np.array(["zz-chess"] * 5))
    assert model.zero_shot_columns_.size == 0
    assert model.predict(texts[:1]).shape == (1,)


# --------------------------------------------------- failures, persistence
def test_failed_calls_leave_the_model_as_it_was(model, debtags_small):
    texts, tags = debtags_small[0][:400], debtags_small[1][:400]
    model.add_labels(label_texts={"zs::chess": ZS_TEXTS["zs::chess"]})
    before = copy.deepcopy(model)
    state = dict(vars(model))
    probe = texts[:10] + [ZS_TEXTS["zs::chess"]]
    with pytest.raises(ValueError, match="already in classes_"):
        model.add_labels(label_texts={"zs::new": "x y", tags[0][0]: "an old label"})
    with pytest.raises(ValueError, match="refresh"):  # fails inside the ranker
        model.add_labels(texts[:20], [list(t) + ["zs::chess"] for t in tags[:20]],
                         refresh="everything")
    with pytest.raises(ValueError, match="rows"):
        model.add_labels(texts[:20], tags[:19])
    with pytest.raises(ValueError, match="already in classes_"):  # rows, then texts
        model.add_labels(texts[:3], [["brand::new"]] * 3,
                         label_texts={"zs::chess": "again"})
    assert vars(model).keys() == state.keys()
    for name, value in state.items():
        assert vars(model)[name] is value, name
    np.testing.assert_array_equal(model.ranker_.classes_, before.ranker_.classes_)
    assert model.ranker_.tree_.equals(before.ranker_.tree_)
    _same_predictions(model, before, probe)


@pytest.mark.parametrize("call, error, match", [
    (dict(), ValueError, "rows .X and y. or label_texts"),
    (dict(X=["a text"]), ValueError, "without y"),
    (dict(y=[["a"]]), ValueError, "without X"),
    (dict(label_texts={"zs::x": ""}), ValueError, "empty"),
    (dict(label_texts={"zs::x": "   "}), ValueError, "empty"),
    (dict(label_texts={"zs::x": None}), TypeError, "not a str"),
    (dict(label_texts={}), ValueError, "no label"),
    (dict(label_texts=(["a", "b"], ["one text"])), ValueError, "2 labels but 1"),
    (dict(label_texts=(["a", "a"], ["t", "u"])), ValueError, "repeat"),
    (dict(label_texts="role::program"), TypeError, "dict"),
    (dict(label_texts={"zs::x": "text"}, refresh="path"), ValueError, "rows"),
])
def test_bad_inputs(base, call, error, match):
    model = copy.deepcopy(base)
    with pytest.raises(error, match=match):
        model.add_labels(**call)
    np.testing.assert_array_equal(model.classes_, base.classes_)


def test_label_texts_forms():
    assert check_label_texts({"a": "x", 2: "y"}) == (["a", 2], ["x", "y"])
    assert check_label_texts((np.array([3, 4]), ["x", "y"])) == ([3, 4], ["x", "y"])
    assert type(check_label_texts((np.array([3]), ["x"]))[0][0]) is int


def test_label_texts_refuse_existing_labels(model):
    with pytest.raises(ValueError, match="already in classes_"):
        model.add_labels(label_texts={model.classes_[0]: "some text"})
    model.add_labels(label_texts={"zs::a": "text a"})
    with pytest.raises(ValueError, match="already in classes_"):
        model.add_labels(label_texts={"zs::a": "text a again"})


def test_unfitted_model_refuses():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        XTransformerClassifier().add_labels(label_texts={"a": "b"})


def test_save_load_and_pickle_round_trip(model, debtags_small, tmp_path):
    texts, tags = debtags_small[0][:400], debtags_small[1][:400]
    model.add_labels(label_texts=ZS_TEXTS)
    probe = debtags_small[2][:30] + list(ZS_TEXTS.values())
    skxmr.save(model, tmp_path / "zs")
    restored = skxmr.load(tmp_path / "zs")
    np.testing.assert_array_equal(restored.zero_shot_columns_, model.zero_shot_columns_)
    np.testing.assert_array_equal(restored.zero_shot_embeddings_,
                                  model.zero_shot_embeddings_)
    np.testing.assert_array_equal(restored.classes_, model.classes_)
    _same_predictions(model, restored, probe)
    assert restored.predict(probe) == model.predict(probe)
    # one label made ordinary: the ranker's columns differ from the model's
    rows = list(range(0, 400, 40))
    model.add_labels([texts[i] for i in rows],
                     [list(tags[i]) + ["zs::mail"] for i in rows])
    assert model._ranker_columns is not None
    skxmr.save(model, tmp_path / "mixed")
    restored = skxmr.load(tmp_path / "mixed")
    np.testing.assert_array_equal(restored._ranker_columns, model._ranker_columns)
    _same_predictions(model, restored, probe)
    restored.add_labels(label_texts={"zs::later": "a later label"})  # still usable
    _same_predictions(model, pickle.loads(pickle.dumps(model)), probe)


def test_saved_model_without_added_labels_keeps_its_format(base, tmp_path):
    import json

    skxmr.save(base, tmp_path / "plain")
    meta = json.loads((tmp_path / "plain" / "skxmr_model.json").read_text())
    assert "n_zero_shot" not in json.dumps(meta)


def test_rows_of_weight_zero_stay_out_of_the_bank(model, debtags_small):
    texts, tags = debtags_small[0][400:420], debtags_small[1][400:420]
    known = set(model.classes_.tolist())
    y = [[t for t in tags_ if t in known] + ["new::w"] for tags_ in tags]
    n_bank = model.neighbor_embeddings_.shape[0]
    weights = np.ones(20)
    weights[:5] = 0
    model.add_labels(texts, y, sample_weight=weights)
    assert model.neighbor_embeddings_.shape[0] == n_bank + 15
    assert model.neighbor_labels_[:, -1].nnz == 15


def test_hnsw_index_follows_the_grown_bank(tiny_encoder, debtags_small, tmp_path):
    pytest.importorskip("faiss")
    texts, tags = debtags_small[0], debtags_small[1]
    model = _fit(tiny_encoder, texts[:400], tags[:400], neighbor_search="hnsw")
    known = set(model.classes_.tolist())
    y = [[t for t in tags_ if t in known] + ["new::h"] for tags_ in tags[400:430]]
    model.add_labels(texts[400:430], y)
    assert model.neighbor_index_.ntotal == model.neighbor_embeddings_.shape[0] == 430
    model.add_labels(label_texts={"zs::h": "a chess engine"})
    skxmr.save(model, tmp_path / "h")
    _same_predictions(model, skxmr.load(tmp_path / "h"), texts[430:450])


def test_model_pickled_before_zero_shot_existed_still_works(model, debtags_small):
    """A model without the new fitted state (as unpickled from an older skxmr)
    predicts as before and takes labels."""
    texts = debtags_small[2][:10]
    expected = model.predict_topk(texts)
    old = copy.deepcopy(model)
    for name in ("zero_shot_columns_", "zero_shot_embeddings_", "zero_shot_offsets_",
                 "_ranker_columns", "_n_votes"):
        del old.__dict__[name]
    got = old.predict_topk(texts)
    np.testing.assert_array_equal(expected[0], got[0])
    old.add_labels(label_texts={"zs::old": "a chess engine"})
    assert old.classes_[-1] == "zs::old"


def test_load_refuses_inconsistent_zero_shot_state(model, tmp_path):
    import json

    from skxmr import ModelFormatError

    model.add_labels(label_texts=ZS_TEXTS)
    skxmr.save(model, tmp_path / "m")
    meta_file = tmp_path / "m" / "skxmr_model.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"]["n_zero_shot"] = 1
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="zero_shot"):
        skxmr.load(tmp_path / "m", verify=False)


def test_training_texts_are_not_their_own_neighbours_when_added(model, debtags_small):
    """add_labels(X, y) gives a text of the bank the leave-one-out votes fit gave
    it (its own row left out), so the new labels learn on fit-like features."""
    texts = debtags_small[0][:50]
    E = model.transform(texts)
    rows = model._bank_rows_of(E)
    np.testing.assert_array_equal(rows, np.arange(50))
    assert np.all(model._bank_rows_of(model.transform(debtags_small[2][:5])) == -1)
    with_self = model._neighbor_votes(E)
    without = model._neighbor_votes(E, rows)
    own = model.neighbor_labels_[:50].toarray()
    # with itself in the bank a text votes mostly for its own labels
    assert (with_self.multiply(own).sum() > without.multiply(own).sum())


def test_calibrated_text_model_takes_zero_shot_labels(tiny_encoder, debtags_small):
    from skxmr import CalibratedXMRClassifier

    texts, tags = debtags_small[0][:300], debtags_small[1][:300]
    base = XTransformerClassifier(tiny_encoder, random_state=0, n_jobs=1)
    model = CalibratedXMRClassifier(base, cv=2, random_state=0).fit(texts, tags)
    model.add_labels(None, None, label_texts={"zs::cal": "a chess engine"})
    assert model.classes_[-1] == "zs::cal"
    assert model.predict(["a chess engine"])[0][0] == "zs::cal"


def test_ensemble_ranker_takes_zero_shot_labels_and_rows(tiny_encoder, debtags_small,
                                                         tmp_path):
    """With an ensemble ranker (n_estimators=2): zero-shot labels rank first for
    their own texts, rows make them ordinary in every tree, save/load keeps it."""
    from skxmr import XRLinearClassifier

    texts, tags = debtags_small[0][:400], debtags_small[1][:400]
    model = _fit(tiny_encoder, texts, tags, n_neighbors=0,
                 ranker=XRLinearClassifier(n_estimators=2))
    assert model.tree_ is None
    model.add_labels(label_texts=ZS_TEXTS)
    predicted = model.predict(list(ZS_TEXTS.values()))
    assert [p[0] for p in predicted] == list(ZS_TEXTS)
    rows = [i for i, t in enumerate(tags) if "use::gameplaying" in t][:8]
    model.add_labels([texts[i] for i in rows],
                     [list(tags[i]) + ["zs::chess"] for i in rows])
    for member in model.ranker_.estimators_:
        assert "zs::chess" in member.classes_.tolist()
    skxmr.save(model, tmp_path / "m")
    _same_predictions(model, skxmr.load(tmp_path / "m"), [texts[i] for i in rows])
