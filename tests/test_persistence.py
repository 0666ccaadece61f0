"""skxmr.save / skxmr.load: the safe model format (no pickle), memory mapping,
round trips in every target form and in other processes, pickle/joblib, and
damaged or hostile model directories (always a clean ModelFormatError)."""

import hashlib
import json
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler

from _helpers import is_memmapped
import skxmr
from skxmr import LabelIndexer, LabelTree, ModelFormatError, XRLinearClassifier
from skxmr._persistence import _codec, _container
from skxmr.datasets import make_xmc_classification

N_LABELS = 60


def _indexer():
    return LabelIndexer(branching_factor=4, max_leaf_size=8, random_state=0)


def _fit(y, X, **params):
    params.setdefault("random_state", 0)
    params.setdefault("n_jobs", 1)
    return XRLinearClassifier(_indexer(), top_k=5, **params).fit(X, y)


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(600, 300, N_LABELS, random_state=0)
    return X, Y


def _y_forms(Y):
    rows = [row.indices for row in Y]
    first = np.array([r[0] if r.size else 0 for r in rows])
    return {
        "sparse": Y,
        "dense": Y.toarray().astype(np.int8),
        "sets_str": [[f"tag{j:02d}" for j in r] for r in rows],
        "sets_int": [[int(j) * 3 for j in r] for r in rows],
        "sets_np_int": [[np.int64(j) for j in r] for r in rows],
        "multiclass_int": first * 7,
        "multiclass_str": np.array([f"c{j}" for j in first]),
    }


@pytest.fixture(scope="module")
def models(data):
    X, Y = data
    return {name: _fit(y, X) for name, y in _y_forms(Y).items()}


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    paths = {}
    for name, model in models.items():
        paths[name] = folder / name
        skxmr.save(model, paths[name])
    return paths


def assert_same_output(a, b):
    assert type(a) is type(b)
    if sp.issparse(a):
        assert a.format == b.format and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b
        assert [[type(v) for v in row] for row in a] == \
            [[type(v) for v in row] for row in b]


def assert_same_predictions(model, restored, X):
    labels, scores = model.predict_topk(X)
    labels2, scores2 = restored.predict_topk(X)
    np.testing.assert_array_equal(labels, labels2)
    assert scores.dtype == scores2.dtype and scores.tobytes() == scores2.tobytes()
    assert_same_output(model.predict(X), restored.predict(X))
    assert_same_output(model.decision_function(X), restored.decision_function(X))


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("form", ["sparse", "dense", "sets_str", "sets_int",
                                  "sets_np_int", "multiclass_int", "multiclass_str"])
@pytest.mark.parametrize("mmap_mode", [None, "r"])
def test_round_trip_every_target_form(data, models, saved, form, mmap_mode):
    X, _ = data
    model = models[form]
    restored = skxmr.load(saved[form], mmap_mode=mmap_mode)
    assert type(restored) is XRLinearClassifier
    assert_same_predictions(model, restored, X)
    assert restored.tree_.equals(model.tree_)
    assert restored.n_features_in_ == model.n_features_in_
    assert restored.classes_.dtype == model.classes_.dtype
    assert list(restored.classes_) == list(model.classes_)
    assert [type(c) for c in restored.classes_] == [type(c) for c in model.classes_]
    assert restored.classes_ is restored._targets.classes_
    assert set(vars(restored)) == set(vars(model))  # no fitted state left behind
    assert getattr(restored, "n_iter_", None) == getattr(model, "n_iter_", None)
    state, state2 = vars(model._targets), vars(restored._targets)
    assert set(state) == set(state2) and state.get("dtype") == state2.get("dtype")
    for W, W2 in zip(model.coef_, restored.coef_):
        assert W2.format == "csc" and W2.dtype == np.float32 and W2.shape == W.shape
        assert (W != W2).nnz == 0
    params, params2 = model.get_params(), restored.get_params()
    assert repr(params.pop("indexer")) == repr(params2.pop("indexer"))
    assert params == params2
    assert restored.score(X, _y_forms(data[1])[form]) == model.score(
        X, _y_forms(data[1])[form])


def test_memory_mapped_load_uses_the_files_in_place(data, models, saved):
    X, _ = data
    restored = skxmr.load(saved["sets_str"], mmap_mode="r")
    for W in restored.coef_:
        for a in (W.data, W.indices, W.indptr):
            assert is_memmapped(a) and not a.flags.writeable
    # coef_ is the one source of truth: the search layout is not in the files,
    # the estimator builds it from the mapped coef_ at the first prediction, once
    assert getattr(restored, "_beam_searcher", None) is None
    assert not any(name.startswith("search.") for name in os.listdir(
        saved["sets_str"]))
    assert_same_predictions(models["sets_str"], restored, X)
    coef, searcher = restored._beam_searcher
    assert coef is restored.coef_
    restored.predict_topk(X[:3])
    assert restored._searcher() is searcher  # not rebuilt by the next predict
    cow = skxmr.load(saved["sets_str"], mmap_mode="c")
    assert is_memmapped(cow.coef_[0].data) and cow.coef_[0].data.flags.writeable
    assert_same_predictions(models["sets_str"], cow, X)
    with pytest.raises(ValueError, match="mmap_mode"):
        skxmr.load(saved["sets_str"], mmap_mode="r+")


def test_load_without_mmap_gives_plain_arrays(saved):
    restored = skxmr.load(saved["sparse"])
    assert not any(is_memmapped(a) for W in restored.coef_
                   for a in (W.data, W.indices, W.indptr))
    assert not is_memmapped(restored.tree_.level_ptr)


CHILD = r"""
import pickle, sys
import joblib, scipy.sparse as sp
import skxmr
X = sp.load_npz(sys.argv[1])
out = {}
for kind, path in zip(("native", "pickle", "joblib"), sys.argv[2:5]):
    if kind == "native":
        model = skxmr.load(path, mmap_mode="r")
    elif kind == "pickle":
        with open(path, "rb") as f:
            model = pickle.load(f)
    else:
        model = joblib.load(path)
    out[kind] = (model.predict_topk(X), model.predict(X))
with open(sys.argv[5], "wb") as f:
    pickle.dump(out, f)
"""


@pytest.mark.parametrize("form", ["sparse", "sets_str"])
def test_other_process_predicts_identically(data, models, saved, tmp_path, form):
    X, _ = data
    model = models[form]
    sp.save_npz(tmp_path / "X.npz", X)
    with open(tmp_path / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    joblib.dump(model, tmp_path / "model.joblib")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, tmp_path / "X.npz", saved[form],
         tmp_path / "model.pkl", tmp_path / "model.joblib", tmp_path / "out.pkl"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.pkl", "rb") as f:
        out = pickle.load(f)
    labels, scores = model.predict_topk(X)
    for kind in ("native", "pickle", "joblib"):
        (labels2, scores2), pred2 = out[kind]
        np.testing.assert_array_equal(labels, labels2)
        assert scores.tobytes() == scores2.tobytes()
        assert_same_output(model.predict(X), pred2)


@pytest.mark.parametrize("form", ["dense", "sets_np_int", "multiclass_str"])
def test_pickle_and_joblib_round_trips(data, models, saved, tmp_path, form):
    X, _ = data
    model = models[form]
    assert_same_predictions(model, pickle.loads(pickle.dumps(model)), X)
    joblib.dump(model, tmp_path / "m.joblib")
    assert_same_predictions(model, joblib.load(tmp_path / "m.joblib"), X)
    # a memory-mapped model pickles too (its searcher is rebuilt after unpickling)
    mapped = skxmr.load(saved[form], mmap_mode="r")
    assert_same_predictions(model, pickle.loads(pickle.dumps(mapped)), X)
    joblib.dump(mapped, tmp_path / "mapped.joblib")
    assert_same_predictions(model, joblib.load(tmp_path / "mapped.joblib"), X)


def test_save_load_save_gives_identical_files(models, saved, tmp_path):
    restored = skxmr.load(saved["sets_str"], mmap_mode="r")
    skxmr.save(restored, tmp_path / "again")
    for name in os.listdir(saved["sets_str"]):
        if name.endswith(".npy"):
            assert (saved["sets_str"] / name).read_bytes() == \
                (tmp_path / "again" / name).read_bytes(), name
    meta = json.loads((saved["sets_str"] / "skxmr_model.json").read_text())
    meta2 = json.loads((tmp_path / "again" / "skxmr_model.json").read_text())
    assert meta == meta2


# ---------------------------------------------------- parameters and labels
def test_indexer_forms(data, tmp_path):
    X, Y = data
    fitted = _indexer().fit(X, Y)
    model = _fit(Y, X).set_params(indexer=fitted)
    skxmr.save(model, tmp_path / "fitted")
    restored = skxmr.load(tmp_path / "fitted")
    assert type(restored.indexer) is LabelIndexer
    assert not hasattr(restored.indexer, "tree_")  # saved as parameters only
    assert restored.indexer.get_params() == fitted.get_params()

    by_tree = XRLinearClassifier(fitted.tree_, random_state=0, n_jobs=1).fit(X, Y)
    skxmr.save(by_tree, tmp_path / "tree")
    restored = skxmr.load(tmp_path / "tree")
    assert restored.indexer is restored.tree_  # stored once
    assert_same_predictions(by_tree, restored, X)

    other = LabelTree.from_chain([np.ones((N_LABELS, 1))])
    by_tree.set_params(indexer=other)
    skxmr.save(by_tree, tmp_path / "other")
    assert skxmr.load(tmp_path / "other").indexer.equals(other)

    chain = fitted.tree_.to_chain()
    by_chain = XRLinearClassifier(chain, random_state=0, n_jobs=1).fit(X, Y)
    skxmr.save(by_chain, tmp_path / "chain")
    restored = skxmr.load(tmp_path / "chain")
    assert len(restored.indexer) == len(chain)
    for C, C2 in zip(chain, restored.indexer):
        assert sp.issparse(C2) and (C != C2).nnz == 0
    assert_same_predictions(by_chain, restored, X)


def test_label_encoding_keeps_values_and_types():
    labels = ["a", "", "é\udc80", 0, -(2**70), 2.5, float("nan"), float("-inf"), True,
              None, b"\x00by", ("x", (1, 2.0)), np.int64(3), np.uint8(7),
              np.float32(0.1), np.bool_(False), np.str_("s"), np.bytes_(b"t")]
    text = json.dumps([_codec.encode_label(v) for v in labels],
                      allow_nan=False)
    back = [_codec.decode_label(x) for x in json.loads(text)]
    for value, got in zip(labels, back):
        assert type(got) is type(value)
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == value
    with pytest.raises(ValueError, match="cannot be saved"):
        _codec.encode_label(frozenset({1}))


class Tag(str):
    """A str subclass: not a label type the safe format stores."""


def test_unsupported_models_and_values_raise_at_save(data, models, tmp_path):
    X, Y = data
    target = tmp_path / "m"
    with pytest.raises(NotFittedError, match="not fitted"):
        skxmr.save(XRLinearClassifier(), target)
    with pytest.raises(TypeError, match="pickle or joblib"):
        skxmr.save(make_pipeline(MaxAbsScaler(), models["sparse"]), target)

    class Sub(XRLinearClassifier):
        pass

    with pytest.raises(TypeError, match="exactly these classes"):
        skxmr.save(Sub(random_state=0).fit(X, Y), target)
    model = _fit(Y, X, random_state=np.random.RandomState(0))
    with pytest.raises(ValueError, match="random_state"):
        skxmr.save(model, target)
    model = _fit(Y, X).set_params(indexer__random_state=np.random.RandomState(0))
    with pytest.raises(ValueError, match="indexer.random_state"):
        skxmr.save(model, target)

    class MyIndexer(LabelIndexer):
        pass

    model = _fit(Y, X).set_params(indexer=MyIndexer())
    with pytest.raises(TypeError, match=r"set_params\(indexer="):
        skxmr.save(model, target)
    model.set_params(indexer=model.tree_)
    skxmr.save(model, tmp_path / "fixed")  # the suggested fix works
    model = _fit([[Tag(f"t{j}") for j in row.indices] for row in Y], X)
    with pytest.raises(ValueError, match="cannot be saved"):
        skxmr.save(model, target)
    assert not target.exists()  # nothing written by a failed save


def test_feature_names_round_trip(data, models, tmp_path):
    X, _ = data
    model = pickle.loads(pickle.dumps(models["sparse"]))
    model.feature_names_in_ = np.array([f"f{i}" for i in range(X.shape[1])],
                                       dtype=object)
    skxmr.save(model, tmp_path / "m")
    restored = skxmr.load(tmp_path / "m")
    assert restored.feature_names_in_.dtype == object
    np.testing.assert_array_equal(restored.feature_names_in_, model.feature_names_in_)


@pytest.mark.parametrize("kind", ["sparse", "dense", "label_sets"])
def test_label_indexer_round_trip(data, tmp_path, kind):
    X, Y = data
    if kind == "dense":
        Z = np.random.default_rng(0).normal(size=(N_LABELS, 5))
        indexer = LabelIndexer("precomputed", branching_factor=4, max_leaf_size=8,
                               random_state=0).fit(Z)
    else:
        Z = X[:N_LABELS]
        if kind == "label_sets":
            Y = _y_forms(Y)["sets_str"]
        indexer = _indexer().fit(X, Y)
    skxmr.save(indexer, tmp_path / "ind")
    for mmap_mode in (None, "r"):
        restored = skxmr.load(tmp_path / "ind", mmap_mode=mmap_mode)
        assert type(restored) is LabelIndexer
        assert restored.get_params() == indexer.get_params()
        assert restored.tree_.equals(indexer.tree_)
        assert restored.n_labels_ == indexer.n_labels_
        assert restored.n_features_in_ == indexer.n_features_in_
        assert set(vars(restored)) == set(vars(indexer))
        C, C2 = indexer.leaf_centroids_, restored.leaf_centroids_
        assert sp.issparse(C2) == sp.issparse(C) and C2.dtype == C.dtype
        np.testing.assert_array_equal(C.toarray() if sp.issparse(C) else C,
                                      C2.toarray() if sp.issparse(C2) else C2)
        np.testing.assert_array_equal(restored.predict(Z), indexer.predict(Z))
        assert (restored.transform(Y) != indexer.transform(Y)).nnz == 0
        encoder = getattr(indexer, "_label_encoder", None)
        if encoder is not None:
            np.testing.assert_array_equal(restored._label_encoder.classes_,
                                          encoder.classes_)


# --------------------------------------------------------------- overwriting
def test_overwrite_rules(data, models, tmp_path):
    X, _ = data
    path = tmp_path / "deep" / "er" / "m"
    skxmr.save(models["sparse"], path)  # parents created
    skxmr.save(models["sets_str"], path)  # a previous model: replaced
    assert_same_predictions(models["sets_str"], skxmr.load(path), X)
    assert sorted(os.listdir(path.parent)) == ["m"]  # no temporary left

    empty = tmp_path / "empty"
    empty.mkdir()
    skxmr.save(models["sparse"], empty)
    assert (empty / "skxmr_model.json").is_file()

    mapped = skxmr.load(path, mmap_mode="r")  # save over the files it maps
    skxmr.save(models["dense"], path)
    assert_same_predictions(models["sets_str"], mapped, X)
    assert_same_predictions(models["dense"], skxmr.load(path, mmap_mode="r"), X)

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an skxmr model"):
        skxmr.save(models["sparse"], other)
    assert os.listdir(other) == ["notes.txt"]

    (path / "notes.txt").write_text("keep me")  # a model dir with a foreign file
    with pytest.raises(FileExistsError, match="not an skxmr model"):
        skxmr.save(models["sparse"], path)
    assert (path / "notes.txt").read_text() == "keep me"

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        skxmr.save(models["sparse"], a_file)


def test_failed_write_leaves_the_previous_model(data, models, tmp_path, monkeypatch):
    X, _ = data
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)
    calls = []
    original = _container.write_array

    def crash(file, array):
        calls.append(file)
        if len(calls) == 5:
            raise OSError("disk full")
        return original(file, array)

    monkeypatch.setattr(_container, "write_array", crash)
    with pytest.raises(OSError, match="disk full"):
        skxmr.save(models["sets_str"], path)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert_same_predictions(models["sparse"], skxmr.load(path), X)


# ------------------------------------------------------ damaged and hostile files
@pytest.fixture
def fresh_copy(saved, tmp_path):
    """A fresh copy of a saved model, to damage."""
    def make(form="sets_str"):
        target = tmp_path / f"copy_{form}"
        shutil.copytree(saved[form], target)
        return target
    return make


def _meta(path):
    return json.loads((path / "skxmr_model.json").read_text())


def _write_meta(path, meta, sign=True):
    """Write the metadata; like an attacker, recompute its digest unless
    ``sign`` is False (then verify=True must see the change)."""
    if sign and isinstance(meta, dict):
        meta = dict(meta, digest=_container.manifest_digest(meta))
    (path / "skxmr_model.json").write_text(json.dumps(meta))


def _replace_array(path, name, array, fix_checksum=True):
    """Write ``array`` as ``name``; like an attacker, update the metadata to
    match (dtype, shape, checksum) unless ``fix_checksum`` is False."""
    file = path / f"{name}.npy"
    np.save(file, array, allow_pickle=False)
    if fix_checksum:
        meta = _meta(path)
        meta["arrays"][name] = {
            "dtype": _codec.dtype_name(array.dtype, name),
            "shape": list(array.shape),
            "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
        }
        _write_meta(path, meta)


def _array(path, name):
    return np.load(path / f"{name}.npy", allow_pickle=False)


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_file(fresh_copy, verify):
    path = fresh_copy()
    file = path / "coef.3.data.npy"
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(ModelFormatError, match=r"coef\.3\.data\.npy: truncated"):
        skxmr.load(path, verify=verify)


def test_flipped_byte_is_a_checksum_mismatch(fresh_copy, data):
    path = fresh_copy()
    file = path / "coef.3.data.npy"
    raw = bytearray(file.read_bytes())
    raw[-3] ^= 0x10  # a weight value: only the checksum can tell
    file.write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError,
                       match=r"coef\.3\.data\.npy: checksum mismatch"):
        skxmr.load(path)
    skxmr.load(path, verify=False).predict(data[0])  # trusted: not checked


def test_missing_files(fresh_copy):
    path = fresh_copy()
    (path / "coef.2.indptr.npy").unlink()
    with pytest.raises(ModelFormatError, match=r"coef\.2\.indptr\.npy: the file is "
                                               "missing"):
        skxmr.load(path)
    (path / "skxmr_model.json").unlink()
    with pytest.raises(ModelFormatError, match="skxmr_model.json: the file is missing"):
        skxmr.load(path)
    with pytest.raises(FileNotFoundError):
        skxmr.load(path / "nowhere")


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(format_version=4), "newer skxmr"),
    (lambda m: m.update(format_version=1), "older skxmr"),
    (lambda m: m.update(format_version="1"), "invalid format_version"),
    (lambda m: m.update(format="other"), "not skxmr model metadata"),
    (lambda m: m.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda m: m["attributes"].update(extra=1), r"unknown keys \['extra'\]"),
    (lambda m: m["params"].update(evil="x"), r"unknown parameters \['evil'\]"),
    (lambda m: m["params"].update(beam_size=-1), "invalid XRLinearClassifier"),
    (lambda m: m["params"].update(post_processor="l0-hinge"), "post_processor"),
    (lambda m: m["params"].update(C=[1]), "unsupported type"),
    (lambda m: m.update({"class": "Pipeline"}), "'Pipeline' is not one skxmr"),
    (lambda m: m.update({"class": "os.system"}), "'os.system' is not one skxmr"),
    (lambda m: m["params"].update(indexer={"class": "sklearn.pipeline.Pipeline"}),
     "indexer class"),
    (lambda m: m["params"].update(indexer={"class": "LabelIndexer", "params": {
        "representation": "__import__('os')"}}), "invalid LabelIndexer"),
    (lambda m: m["attributes"]["targets"].update(kind="pickle"), "unknown target"),
    (lambda m: m["attributes"]["targets"].update(classes=[["eval", "1+1"]] * 60),
     "unrecognised label"),
    (lambda m: m["attributes"].update(n_features_in_=10), "coef"),
    (lambda m: m["attributes"].update(n_levels=2), "n_levels"),
    (lambda m: m["arrays"]["tree.level_ptr"].update(dtype="|O"), "not allowed"),
    (lambda m: m["arrays"]["tree.level_ptr"].update(shape=[10**12]), "shape"),
    (lambda m: m["arrays"]["tree.level_ptr"].update(file="/etc/passwd"),
     "unknown keys"),
    (lambda m: m["arrays"].pop("coef.2.indptr"), "'coef.2.indptr' is missing"),
    (lambda m: m["folders"].update(encoder={"x": "0" * 64}),
     r"unknown entries \['encoder'\] in \"folders\""),
    (lambda m: m["attributes"]["targets"].update(kind="sparse"), "invalid dtype"),
    (lambda m: m["arrays"].update({"../x": m["arrays"]["tree.level_ptr"]}),
     "unknown entries"),
])
def test_edited_metadata(fresh_copy, edit, message):
    path = fresh_copy()
    meta = _meta(path)
    edit(meta)
    _write_meta(path, meta)
    with pytest.raises(ModelFormatError, match=message):
        skxmr.load(path)


def test_invalid_json(fresh_copy):
    path = fresh_copy()
    text = (path / "skxmr_model.json").read_text()
    (path / "skxmr_model.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        skxmr.load(path)
    (path / "skxmr_model.json").write_text(text.replace('"format": "skxmr-model"',
                                                        '"format": NaN'))
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        skxmr.load(path)


def _with_value(path, name, value):
    data = _array(path, name).copy()
    data[len(data) // 2] = value
    return data


def _unsorted(path, name):
    """Swap two row ids inside the first column holding several."""
    indices, indptr = _array(path, name + ".indices").copy(), _array(
        path, name + ".indptr")
    j = int(np.flatnonzero(np.diff(indptr) >= 2)[0])
    a = indptr[j]
    indices[a], indices[a + 1] = indices[a + 1], indices[a]
    return indices


def _repeated(path, name):
    indices, indptr = _array(path, name + ".indices").copy(), _array(
        path, name + ".indptr")
    j = int(np.flatnonzero(np.diff(indptr) >= 2)[0])
    indices[indptr[j] + 1] = indices[indptr[j]]
    return indices


# (array name, how to damage it): the attacker recomputes every checksum.
DAMAGES = {
    "coef nan": ("coef.3.data", lambda p: _with_value(p, "coef.3.data", np.nan)),
    "coef inf": ("coef.2.data", lambda p: _with_value(p, "coef.2.data", -np.inf)),
    "coef unsorted": ("coef.3.indices", lambda p: _unsorted(p, "coef.3")),
    "coef repeated": ("coef.2.indices", lambda p: _repeated(p, "coef.2")),
    "coef negative index": ("coef.1.indices",
                            lambda p: _with_value(p, "coef.1.indices", -1)),
    "coef index dtype": ("coef.3.indices", lambda p: _array(p, "coef.3.indices")
                         .astype(np.int64)),
    "coef indices": ("coef.3.indices", lambda p: _array(p, "coef.3.indices") + 10**6),
    "coef indptr": ("coef.3.indptr", lambda p: _array(p, "coef.3.indptr")[::-1].copy()),
    "label perm": ("tree.label_perm", lambda p: np.zeros(N_LABELS, dtype=np.int64)),
    "tree dtype": ("tree.label_perm", lambda p: _array(p, "tree.label_perm")
                   .astype(np.int32)),
    "tree pointers": ("tree.child_ptr", lambda p: _array(p, "tree.child_ptr")[::-1]
                      .copy()),
    "coef dtype": ("coef.2.data",
                   lambda p: _array(p, "coef.2.data").astype(np.float64)),
    "classes shape": ("classes", lambda p: np.arange(N_LABELS + 1)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("verify", [True, False])
def test_checksum_matching_damage_is_caught_by_validation(fresh_copy, damage, verify):
    path = fresh_copy("sparse")
    name, make = DAMAGES[damage]
    _replace_array(path, name, make(path), fix_checksum=verify)
    files = re.escape(name.rsplit(".", 1)[0] + "." if "." in name else name)
    with pytest.raises(ModelFormatError, match=files):
        skxmr.load(path, verify=verify, mmap_mode="r")


def test_no_unpickling_ever(fresh_copy, tmp_path):
    path = fresh_copy("sparse")
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(path / "classes.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    for verify in (True, False):
        with pytest.raises(ModelFormatError, match=r"classes\.npy"):
            skxmr.load(path, verify=verify)
    meta = _meta(path)
    meta["arrays"]["classes"]["dtype"] = "|O"
    _write_meta(path, meta)
    with pytest.raises(ModelFormatError, match="not allowed"):
        skxmr.load(path)
    assert not marker.exists()


def test_symbolic_links_are_refused(fresh_copy):
    path = fresh_copy("sparse")
    file = path / "classes.npy"
    target = path.parent / "outside.npy"
    file.rename(target)
    file.symlink_to(target)
    with pytest.raises(ModelFormatError, match=r"classes\.npy: cannot be opened"):
        skxmr.load(path)


KERNEL_CHILD = r"""
import sys
from pathlib import Path
import scipy.sparse as sp
import skxmr
X = sp.load_npz(sys.argv[2])
model = skxmr.load(sys.argv[1], verify=sys.argv[3] == "1", mmap_mode="r")
model.predict(X)
print("predicted")
"""


@pytest.mark.parametrize("verify", ["1", "0"])
def test_damaged_model_fails_cleanly_in_another_process(fresh_copy, data, tmp_path,
                                                        verify):
    path = fresh_copy("sparse")
    name, make = DAMAGES["coef indices"]
    _replace_array(path, name, make(path), fix_checksum=verify == "1")
    sp.save_npz(tmp_path / "X.npz", data[0])
    result = subprocess.run(
        [sys.executable, "-c", KERNEL_CHILD, path, tmp_path / "X.npz", verify],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr)  # not a signal
    assert "skxmr.ModelFormatError" in result.stderr
    assert "coef.3.*.npy: indices out of range" in result.stderr
    assert "predicted" not in result.stdout


FUZZ_CHILD = r"""
import json, os, sys
import numpy as np, scipy.sparse as sp
import skxmr
from skxmr._persistence._container import manifest_digest
path, X = sys.argv[1], sp.load_npz(sys.argv[2])
files = sorted(os.listdir(path))
rng = np.random.default_rng(0)
outcomes = {"ok": 0, "error": 0}
for it in range(300):
    file = os.path.join(path, files[rng.integers(len(files))])
    with open(file, "rb") as f:
        raw = f.read()
    damaged = bytearray(raw)
    for _ in range(rng.integers(1, 4)):
        damaged[rng.integers(len(damaged))] ^= 1 << int(rng.integers(8))
    with open(file, "wb") as f:
        f.write(bytes(damaged))
    try:
        model = skxmr.load(path, verify=False, mmap_mode="r" if it % 2 else None)
        model.predict(X)
        outcomes["ok"] += 1
    except skxmr.ModelFormatError:
        outcomes["error"] += 1
    with open(file, "wb") as f:
        f.write(raw)

# then values of the metadata replaced by junk (the checksums stay valid)
meta_file = os.path.join(path, "skxmr_model.json")
with open(meta_file) as f:
    original = f.read()


def leaves(obj, where=()):
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, list) else ()
    for key, value in items:
        yield from leaves(value, where + (key,))
    yield where


places = [w for w in leaves(json.loads(original)) if w]
junk = [None, -1, 0, 1, 2**70, 1.5, True, "x", "<i8", "entry", [], {}, [-1, 2],
        ["numpy", "|O", 1], {"class": "LabelTree", "same_as_tree_": False}]
for it in range(300):
    meta = json.loads(original)
    for _ in range(rng.integers(1, 3)):
        where = places[rng.integers(len(places))]
        obj = meta
        try:
            for key in where[:-1]:
                obj = obj[key]
            obj[where[-1]] = junk[rng.integers(len(junk))]
        except (KeyError, IndexError, TypeError):
            pass
    if it % 4 == 1 and isinstance(meta, dict):  # signed like an attacker would
        meta["digest"] = manifest_digest(meta)
    with open(meta_file, "w") as f:
        json.dump(meta, f)
    try:
        model = skxmr.load(path, verify=bool(it % 2))
        model.predict(X)
        outcomes["ok"] += 1
    except skxmr.ModelFormatError:
        outcomes["error"] += 1
print(json.dumps(outcomes))
"""


def test_random_damage_never_crashes(fresh_copy, data, tmp_path):
    # damaged bytes with verify=False (so that they reach the parsers and
    # validators), then junk in the metadata: always ModelFormatError or a model
    # that predicts, never another exception nor a crash
    path = fresh_copy("sets_str")
    sp.save_npz(tmp_path / "X.npz", data[0][:50])
    result = subprocess.run(
        [sys.executable, "-c", FUZZ_CHILD, path, tmp_path / "X.npz"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    outcomes = json.loads(result.stdout)
    assert outcomes["error"] > 300 and outcomes["ok"] + outcomes["error"] == 600


# ------------------------------------------- issue 21: reliability of the format
OPEN_CHILD = r"""
import sys
from pathlib import Path
import skxmr
try:
    skxmr.load(sys.argv[1], verify=sys.argv[2] == "1", mmap_mode="r")
    print("loaded")
except skxmr.ModelFormatError as exc:
    print("ModelFormatError:", exc)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("name", ["skxmr_model.json", "classes.npy", "coef.2.data.npy"])
@pytest.mark.parametrize("verify", ["1", "0"])
def test_a_fifo_in_the_model_is_refused_without_blocking(fresh_copy, name, verify):
    # the old code opened the file before checking it: open() on a FIFO with no
    # writer blocks forever. Run in a child with a timeout, so a hang fails.
    path = fresh_copy("sparse")
    (path / name).unlink()
    os.mkfifo(path / name)
    result = subprocess.run([sys.executable, "-c", OPEN_CHILD, path, verify],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{name}: cannot be opened: it is a FIFO" in result.stdout


@pytest.mark.parametrize("kind", ["directory", "link to a directory",
                                  "link outside", "link to a device"])
def test_non_regular_files_are_refused_before_opening(fresh_copy, tmp_path, kind):
    path = fresh_copy("sparse")
    file = path / "coef.1.indptr.npy"
    outside = tmp_path / "outside.npy"
    file.rename(outside)
    if kind == "directory":
        file.mkdir()
    elif kind == "link to a directory":
        file.symlink_to(path)
    elif kind == "link outside":
        file.symlink_to(outside)  # the right bytes, but outside the directory
    else:
        file.symlink_to("/dev/zero")
    what = "directory" if kind == "directory" else "symbolic link"
    for verify in (True, False):
        with pytest.raises(ModelFormatError,
                           match=rf"coef\.1\.indptr\.npy: cannot be opened: it is "
                                 rf"a {what}"):
            skxmr.load(path, verify=verify)


EDITS = {  # (model, what to edit in the metadata, how to see it took effect)
    "bias": ("sparse", lambda m: m["params"].update(bias=1e308),
             lambda r: r.bias == 1e308),
    "post_processor": ("sparse", lambda m: m["params"].update(post_processor="sigmoid"),
                       lambda r: r.post_processor == "sigmoid"),
    "n_iter_": ("sparse", lambda m: m["attributes"].update(n_iter_=12345),
                lambda r: r.n_iter_ == 12345),
    "label names": ("sets_labels_in_json",
                    lambda m: m["attributes"]["targets"]["classes"].reverse(),
                    lambda r: r.classes_[0] == ("t", 59)),
    "target kind": ("sparse", lambda m: m["attributes"]["targets"].update(
        kind="dense"), lambda r: isinstance(r.predict(r._probe), np.ndarray)),
    "top_k": ("sparse", lambda m: m["params"].update(top_k=1),
              lambda r: r.top_k == 1),
}


@pytest.fixture(scope="module")
def json_labels_model(data, tmp_path_factory):
    X, Y = data
    model = _fit([[("t", int(j)) for j in row.indices] for row in Y], X)
    path = tmp_path_factory.mktemp("json_labels") / "m"
    skxmr.save(model, path)
    return path


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_metadata_is_checksummed(saved, json_labels_model, data, tmp_path, edit):
    form, change, took_effect = EDITS[edit]
    source = json_labels_model if form == "sets_labels_in_json" else saved[form]
    path = tmp_path / "m"
    shutil.copytree(source, path)
    meta = _meta(path)
    change(meta)
    _write_meta(path, meta, sign=False)  # a hand edit or damage, digest untouched
    with pytest.raises(ModelFormatError,
                       match=r"skxmr_model\.json: checksum mismatch"):
        skxmr.load(path)
    restored = skxmr.load(path, verify=False)  # what verify=True protected against
    restored._probe = data[0][:5]
    assert took_effect(restored)


def test_weights_have_one_source_of_truth(data, models, saved, tmp_path):
    X, _ = data
    names = os.listdir(saved["sparse"])
    assert {n.split(".")[0] for n in names} == {"tree", "coef", "classes",
                                                "skxmr_model"}
    restored = skxmr.load(saved["sparse"], mmap_mode="r")
    # a loaded model and its pickled copy predict from the same weights
    assert_same_predictions(restored, pickle.loads(pickle.dumps(restored)), X)
    assert_same_predictions(models["sparse"], restored, X)
    meta = _meta(saved["sparse"])
    assert meta["format_version"] == 2
    assert set(meta["arrays"]) == {n[: -len(".npy")] for n in names
                                   if n.endswith(".npy")}


def test_a_version_1_directory_gets_a_clear_error(tmp_path):
    # tests/data/format_v1_xrlinear was written by skxmr at commit 23f9890
    # (format version 1: coef.* and search.* files, no metadata digest)
    fixture = os.path.join(os.path.dirname(__file__), "data", "format_v1_xrlinear")
    assert _meta(Path(fixture))["format_version"] == 1
    for verify in (True, False):
        with pytest.raises(ModelFormatError,
                           match=r"format version 1 was written by an older skxmr.*"
                                 r"Re-train the model"):
            skxmr.load(fixture, verify=verify)
    # a complete version-1 model directory may be replaced by a new save
    path = tmp_path / "old"
    shutil.copytree(fixture, path)
    X, Y = make_xmc_classification(40, 12, 10, random_state=0)
    model = XRLinearClassifier(random_state=0, n_jobs=1, top_k=3).fit(X, Y)
    skxmr.save(model, path)
    assert not any(n.startswith("search.") for n in os.listdir(path))
    assert_same_predictions(model, skxmr.load(path), X)


@pytest.mark.parametrize("foreign", ["user_notes.npy", "embeddings.npy", "README"])
def test_save_never_deletes_files_it_did_not_write(models, tmp_path, foreign):
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)
    (path / foreign).write_bytes(b"the user's own data")
    kept = (path / foreign).read_bytes()
    before = sorted(os.listdir(path))
    with pytest.raises(FileExistsError, match="not an skxmr model directory"):
        skxmr.save(models["dense"], path)
    assert sorted(os.listdir(path)) == before
    assert (path / foreign).read_bytes() == kept
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_save_replaces_only_complete_models(models, tmp_path):
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)
    (path / "classes.npy").unlink()  # the manifest lists a file that is gone
    with pytest.raises(FileExistsError, match="not an skxmr model directory"):
        skxmr.save(models["dense"], path)
    assert (path / "skxmr_model.json").exists()


def test_replacing_a_mapped_model_never_rewrites_its_files(data, models, tmp_path):
    # save creates every file anew in a new directory: the files a process maps
    # are never truncated or rewritten (only unlinked), so it cannot get SIGBUS
    X, _ = data
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)
    mapped = skxmr.load(path, mmap_mode="r")
    old = {n: (os.stat(path / n).st_ino, (path / n).read_bytes())
           for n in os.listdir(path)}
    assert all(is_memmapped(W.data) for W in mapped.coef_)
    skxmr.save(models["dense"], path)
    skxmr.save(models["sets_str"], path)
    new_inodes = {os.stat(path / n).st_ino for n in os.listdir(path)}
    assert not new_inodes & {ino for ino, _ in old.values()}
    assert_same_predictions(models["sparse"], mapped, X)


def _hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def test_an_interrupted_swap_leaves_the_previous_model(data, models, tmp_path,
                                                       monkeypatch):
    X, _ = data
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)
    real = _container._rename
    calls = []

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # moving the new model in
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(_container, "_rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        skxmr.save(models["dense"], path)
    monkeypatch.setattr(_container, "_rename", real)
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no hidden copy left
    assert_same_predictions(models["sparse"], skxmr.load(path), X)


def test_an_interrupted_cleanup_leaves_no_copy(data, models, tmp_path, monkeypatch):
    X, _ = data
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)

    def interrupted(folder):
        shutil.rmtree(os.path.join(folder, "classes.npy"), ignore_errors=True)
        raise KeyboardInterrupt  # e.g. Ctrl-C while the old model is removed

    monkeypatch.setattr(_container, "_remove_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        skxmr.save(models["dense"], path)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert_same_predictions(models["dense"], skxmr.load(path), X)


def test_leftovers_of_a_killed_save_are_cleaned_by_the_next(data, models, tmp_path,
                                                             monkeypatch):
    X, _ = data
    path = tmp_path / "m"
    skxmr.save(models["sparse"], path)
    monkeypatch.setattr(_container, "_remove_tree", lambda folder: None)  # killed
    skxmr.save(models["dense"], path)
    leftover = _hidden(tmp_path)
    assert len(leftover) == 1 and re.fullmatch(r"\.m\.skxmr-[0-9a-f]{12}\.old",
                                               leftover[0])
    monkeypatch.undo()
    # a directory of the same pattern holding a user's file is not ours: kept
    foreign = tmp_path / ".m.skxmr-0123456789ab.old"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    other = tmp_path / ".other.skxmr-0123456789ab.old"  # another path's: kept
    shutil.copytree(tmp_path / leftover[0], other)
    skxmr.save(models["sets_str"], path)
    assert _hidden(tmp_path) == sorted([foreign.name, other.name])
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert_same_predictions(models["sets_str"], skxmr.load(path), X)


# ------------------------------------------------------------- the vectorizer
def test_vectorizer_round_trip(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from skxmr._persistence import load_vectorizer, save_vectorizer

    texts = ["a debian package", "the python package", "a tiny text", "python text"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True,
                                 dtype=np.float32).fit(texts)
    save_vectorizer(vectorizer, tmp_path / "vec")
    restored = load_vectorizer(tmp_path / "vec")
    assert type(restored) is TfidfVectorizer
    assert restored.get_params() == vectorizer.get_params()
    assert restored.vocabulary_ == vectorizer.vocabulary_
    a, b = vectorizer.transform(texts), restored.transform(texts)
    assert a.dtype == b.dtype == np.float32 and (a != b).nnz == 0
    save_vectorizer(restored, tmp_path / "vec")  # a saved vectorizer is replaced
    assert load_vectorizer(tmp_path / "vec", verify=False).vocabulary_ == \
        vectorizer.vocabulary_

    idf = _array(tmp_path / "vec", "idf").copy()
    idf[0] = np.nan
    _replace_array(tmp_path / "vec", "idf", idf)
    with pytest.raises(ModelFormatError, match=r"idf\.npy: non-finite"):
        load_vectorizer(tmp_path / "vec")
    with pytest.raises(NotFittedError):
        save_vectorizer(TfidfVectorizer(), tmp_path / "unfitted")
    with pytest.raises(TypeError, match="TfidfVectorizer"):
        save_vectorizer(MaxAbsScaler().fit(np.ones((2, 2))), tmp_path / "other")


def test_vectorizer_and_model_folders_are_not_confused(models, tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from skxmr._persistence import load_vectorizer, save_vectorizer

    skxmr.save(models["sparse"], tmp_path / "model")
    with pytest.raises(ModelFormatError, match="not a TfidfVectorizer"):
        load_vectorizer(tmp_path / "model")
    save_vectorizer(TfidfVectorizer().fit(["ab bc", "bc cd"]), tmp_path / "vec")
    with pytest.raises(ModelFormatError, match="'TfidfVectorizer' is not one skxmr"):
        skxmr.load(tmp_path / "vec")
