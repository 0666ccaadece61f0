"""Training as joblib units (skxmr.utils._units) and predict_dask, on a local
dask.distributed cluster of two worker processes."""

import functools
import os
import sys

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

import skxmr
import skxmr.utils._units
from skxmr import LabelIndexer, XRLinearClassifier, predict_dask
from skxmr.utils._units import units_active
from skxmr.datasets import make_xmc_classification

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import cloudpickle  # noqa: E402  (installed with distributed)
import dask  # noqa: E402

# Functions of this module run inside the worker processes: pickle them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def data():
    X, Y = make_xmc_classification(2000, 1000, 300, random_state=0)
    return X, Y


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


def assert_same_model(a, b):
    assert a.tree_.equals(b.tree_)
    assert len(a.coef_) == len(b.coef_)
    for W1, W2 in zip(a.coef_, b.coef_):
        assert W1.shape == W2.shape
        assert np.array_equal(W1.indptr, W2.indptr)
        assert np.array_equal(W1.indices, W2.indices)
        assert np.array_equal(W1.data, W2.data)
    assert a.n_iter_ == b.n_iter_


def _model(negative_sampling="tfn", clustering="binary", n_jobs=None):
    indexer = LabelIndexer(max_leaf_size=20, clustering=clustering, branching_factor=4)
    return XRLinearClassifier(indexer, negative_sampling=negative_sampling,
                              n_jobs=n_jobs, random_state=0)


def test_local_path_by_default():
    assert not units_active()
    with joblib.parallel_config(backend="loky"):
        assert not units_active()
    with joblib.parallel_config(backend="threading"):
        assert units_active()


@pytest.mark.parametrize("negative_sampling", ["tfn", "man", "tfn+man"])
@pytest.mark.parametrize("clustering", ["binary", "kmeans"])
def test_threading_units_equal_local(data, negative_sampling, clustering,
                                     monkeypatch):
    X, Y = data
    local = _model(negative_sampling, clustering).fit(X, Y)
    submitted = []
    start_units = skxmr.utils._units.start_units

    def spy(jobs, costs):
        submitted.append(sorted({function.__name__ for function, _ in jobs}))
        return start_units(jobs, costs)

    monkeypatch.setattr("skxmr.utils._units.start_units", spy)
    with joblib.parallel_config(backend="threading", n_jobs=3):
        units = _model(negative_sampling, clustering).fit(X, Y)
    assert_same_model(local, units)
    # The units did run: the indexer's subtrees, then the training units.
    assert submitted[0] == ["_build_subtree"]
    if negative_sampling == "tfn":
        assert submitted[1:] == [["_train_nodes_unit", "_train_subtree"]]
    else:
        assert submitted[1:] == [["_train_nodes_unit"]] * local.tree_.n_levels


def test_flat_tree_units_equal_local(data):
    # One level below the root (a given tree): its nodes are cut into ranges.
    X, Y = data
    n_labels = Y.shape[1]
    flat = skxmr.LabelTree([0, 1, 1 + n_labels], [1, 1 + n_labels],
                           np.random.RandomState(0).permutation(n_labels))
    local = XRLinearClassifier(flat, random_state=0).fit(X, Y)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        units = XRLinearClassifier(flat, random_state=0).fit(X, Y)
    assert_same_model(local, units)


def test_sample_weight_units_equal_local(data):
    X, Y = data
    w = np.random.RandomState(0).randint(0, 3, X.shape[0]).astype(float)
    local = _model().fit(X, Y, sample_weight=w)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        units = _model().fit(X, Y, sample_weight=w)
    assert_same_model(local, units)


@pytest.mark.parametrize("negative_sampling", ["tfn", "man"])
def test_dask_fit_equals_local(data, client, negative_sampling):
    X, Y = data
    local = _model(negative_sampling).fit(X, Y)
    with joblib.parallel_config(backend="dask"):
        remote = _model(negative_sampling).fit(X, Y)
    assert_same_model(local, remote)
    labels = remote.predict_topk(X[:50])[0]
    assert np.array_equal(labels, local.predict_topk(X[:50])[0])


def test_dask_ensemble_equals_local_and_predicts_on_dask(data, client):
    X, Y = data

    def ensemble():
        return XRLinearClassifier(LabelIndexer(max_leaf_size=20), n_estimators=2,
                                  diversity="branching", random_state=0)

    local = ensemble().fit(X, Y)
    with joblib.parallel_config(backend="dask"):
        remote = ensemble().fit(X, Y)
    for a, b in zip(local.estimators_, remote.estimators_):
        assert_same_model(a, b)
    expected = local.predict_topk(X)
    labels, scores = dask.compute(*predict_dask(
        remote, da.from_array(X, chunks=(500, -1), asarray=False)))
    assert np.array_equal(labels, expected[0]) and np.array_equal(scores, expected[1])


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_dask_fit_n_jobs(data, client, n_jobs):
    X, Y = data
    local = _model(clustering="kmeans").fit(X, Y)
    with joblib.parallel_config(backend="dask"):
        remote = _model(clustering="kmeans", n_jobs=n_jobs).fit(X, Y)
    assert_same_model(local, remote)


def test_dask_indexer_equals_local(data, client):
    X, Y = data
    indexer = LabelIndexer(max_leaf_size=10, random_state=0)
    local = indexer.fit(X, Y).tree_
    with joblib.parallel_config(backend="dask"):
        remote = LabelIndexer(max_leaf_size=10, random_state=0).fit(X, Y).tree_
    assert remote.equals(local)


def _kill_first_caller(marker):
    """Kill this worker process, once over all processes (the marker file)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)


def _kill_always(marker):
    with open(marker, "a") as f:
        f.write("x")
    os._exit(1)


class _HookPlugin(distributed.WorkerPlugin):
    """Installs a unit hook in every worker, restarted ones included."""

    def __init__(self, hook):
        self.hook = hook

    def setup(self, worker):
        import skxmr.utils._units

        skxmr.utils._units._unit_hook = self.hook

    def teardown(self, worker):
        import skxmr.utils._units

        skxmr.utils._units._unit_hook = None


def _set_allowed_failures(dask_scheduler, n):
    old = dask_scheduler.allowed_failures
    dask_scheduler.allowed_failures = n
    return old


def test_worker_killed_mid_fit_retries(data, client, tmp_path):
    X, Y = data
    local = _model().fit(X, Y)
    marker = str(tmp_path / "killed")
    client.register_plugin(_HookPlugin(functools.partial(_kill_first_caller, marker)),
                           name="skxmr-kill")
    try:
        with joblib.parallel_config(backend="dask"):
            remote = _model().fit(X, Y)
    finally:
        client.unregister_worker_plugin("skxmr-kill")
    assert os.path.exists(marker)  # a worker did die
    assert_same_model(local, remote)


def test_worker_always_killed_raises(data, client, tmp_path, monkeypatch):
    X, Y = data
    marker = str(tmp_path / "killed")
    monkeypatch.setattr("skxmr.utils._units._UNIT_RETRIES", 1)
    old = client.run_on_scheduler(_set_allowed_failures, n=0)
    client.register_plugin(_HookPlugin(functools.partial(_kill_always, marker)),
                           name="skxmr-kill")
    model = _model()
    try:
        with joblib.parallel_config(backend="dask"):
            with pytest.raises(RuntimeError, match="worker died"):
                model.fit(X, Y)
    finally:
        client.unregister_worker_plugin("skxmr-kill")
        client.run_on_scheduler(_set_allowed_failures, n=old)
    assert os.path.exists(marker)
    assert not hasattr(model, "coef_") and not hasattr(model, "tree_")
    with pytest.raises(skxmr_not_fitted()):
        model.predict_topk(X[:2])


def skxmr_not_fitted():
    from sklearn.exceptions import NotFittedError

    return NotFittedError


@pytest.fixture(scope="module")
def fitted(data):
    X, Y = data
    return _model().fit(X, Y)


def test_predict_dask_topk_dense_and_sparse(data, fitted, client):
    X, _ = data
    expected = fitted.predict_topk(X)
    for X_dask in (da.from_array(X.toarray(), chunks=(300, 400)),
                   da.from_array(X, chunks=(300, -1), asarray=False)):
        labels, scores = predict_dask(fitted, X_dask)
        assert isinstance(labels, da.Array)
        labels, scores = dask.compute(labels, scores)
        assert np.array_equal(labels, expected[0])
        assert np.array_equal(scores, expected[1])
    labels, _ = predict_dask(fitted, da.from_array(X, chunks=(700, -1), asarray=False),
                             k=3)
    assert np.array_equal(labels.compute(), fitted.predict_topk(X, k=3)[0])


def test_predict_dask_decision_function_and_predict(data, fitted):
    X, Y = data
    X_dask = da.from_array(X, chunks=(500, -1), asarray=False)
    scores = predict_dask(fitted, X_dask, method="decision_function").compute()
    expected = fitted.decision_function(X)
    assert sp.issparse(scores)
    assert (abs(sp.csr_matrix(scores) - expected)).nnz == 0
    pred = predict_dask(fitted, X_dask, method="predict").compute()
    assert (abs(sp.csr_matrix(pred) - fitted.predict(X))).nnz == 0
    # label collections: a bag of tuples
    sets = [tuple(row.indices.tolist()) for row in Y]
    model = XRLinearClassifier(random_state=0, top_k=2).fit(X, sets)
    bag = predict_dask(model, X_dask, method="predict")
    assert bag.compute() == model.predict(X)


def test_predict_dask_dataframe(data, fitted):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, _ = data
    frame = pd.DataFrame(X[:600].toarray())
    labels, scores = predict_dask(fitted, dd.from_pandas(frame, npartitions=3))
    labels, scores = dask.compute(labels, scores)
    assert np.array_equal(labels, fitted.predict_topk(X[:600])[0])


def test_predict_dask_errors(data, fitted, monkeypatch):
    X, _ = data
    with pytest.raises(TypeError, match="dask.array"):
        predict_dask(fitted, X)
    with pytest.raises(ValueError, match="method"):
        predict_dask(fitted, da.from_array(X.toarray()), method="score")
    with pytest.raises(ValueError, match="k"):
        predict_dask(fitted, da.from_array(X.toarray()), k=0)
    with pytest.raises(ValueError, match="only used"):
        predict_dask(fitted, da.from_array(X.toarray()), method="predict", k=3)
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r"skxmr\[dask\]"):
        predict_dask(fitted, X)


def test_import_without_dask():
    # skxmr, the unit path (joblib only) and a clear error from predict_dask.
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError(f"no {name}")
sys.meta_path.insert(0, Block())
import joblib
import skxmr
from skxmr.datasets import make_xmc_classification
X, Y = make_xmc_classification(300, 100, 30, random_state=0)
with joblib.parallel_config(backend="threading", n_jobs=2):
    model = skxmr.XRLinearClassifier(random_state=0).fit(X, Y)
try:
    skxmr.predict_dask(model, X)
except ImportError as exc:
    assert "skxmr[dask]" in str(exc), exc
    print("ok")
"""
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
