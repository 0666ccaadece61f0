"""Bad and odd input never crashes: property-based tests over shapes, dtypes,
sparsity, non-finite values, empty rows and labels, malformed and unusual CSR
matrices, memory layouts and read-only buffers; huge sparse feature ids; thread
safety; determinism with matcher-aware negatives and weights; streaming memory.

The compiled kernels run in a separate worker process (``_Worker``): a case is
pickled to a temp file, the worker runs it and pickles back either a summary of
the result or the Python exception it raised. If the worker dies on a signal
(segfault, abort, out-of-memory kill) or hangs, the test fails with the case,
instead of the crash killing the test run. The worker is reused across cases
(one Python start-up for all of them) and restarted after a crash.
"""

import concurrent.futures
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skxmr import LabelIndexer, XRLinearClassifier
from skxmr.datasets import make_xmc_classification

from conftest import describe_case

# ----------------------------------------------------------------- the worker
_WORKER_SOURCE = r'''
import os, pickle, resource, sys, traceback, warnings
import numpy as np
import scipy.sparse as sp
from skxmr import LabelIndexer, XRLinearClassifier

warnings.simplefilter("ignore")


def apply_layout(X, layout):
    """Recreate what pickling loses: strides, Fortran order, read-only flags."""
    if layout == "c" or X is None:
        return X
    if sp.issparse(X):
        if layout == "strided":
            buf = np.zeros(2 * X.data.size, dtype=X.data.dtype)
            buf[::2] = X.data
            X.data = buf[::2]
        elif layout == "readonly":
            for name in ("data", "indices", "indptr", "row", "col"):
                if isinstance(getattr(X, name, None), np.ndarray):
                    getattr(X, name).setflags(write=False)
        return X
    X = np.asarray(X)
    if layout == "f":
        return np.asfortranarray(X)
    if layout == "strided":
        buf = np.zeros((X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
        buf[:, ::2] = X
        return buf[:, ::2]
    if layout == "readonly":
        X = X.copy()
        X.setflags(write=False)
        return X
    raise ValueError(layout)


def summary(out):
    if isinstance(out, tuple):
        return tuple(summary(o) for o in out)
    if sp.issparse(out):
        return ("sparse", out.shape, out.dtype.str, int(out.nnz))
    if isinstance(out, np.ndarray):
        return ("ndarray", out.shape, out.dtype.str)
    if isinstance(out, list):
        return ("list", len(out))
    return repr(out)[:200]


def run_classifier(case):
    X = apply_layout(case["X"], case["layout"])
    model = XRLinearClassifier(**case["params"]).fit(X, case["y"],
                                                     **case["fit_kwargs"])
    out = {"n_levels": model.tree_.n_levels}
    Xp = apply_layout(case["X_pred"], case["pred_layout"])
    for method in ("predict_topk", "decision_function", "predict"):
        out[method] = summary(getattr(model, method)(Xp))
    if case.get("threshold") is not None:
        out["predict_threshold"] = summary(
            model.predict(Xp, threshold=case["threshold"]))
    if sp.issparse(Xp) and Xp.shape[0] > 0:
        row = sp.csr_matrix(Xp)[:1]  # the one-query fast path
        row = apply_layout(row, case["pred_layout"])
        out["one_row"] = summary(model.predict_topk(row))
    return out


def run_indexer(case):
    X = apply_layout(case["X"], case["layout"])
    indexer = LabelIndexer(**case["params"]).fit(X, case["y"], **case["fit_kwargs"])
    return {"tree": repr(indexer.tree_),
            "transform": summary(indexer.transform(case["y"])),
            "predict": summary(indexer.predict(indexer.leaf_centroids_))}


def run_huge(case):
    X, y = case["X"], case["y"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = XRLinearClassifier(**case["params"]).fit(X, y)
    labels, scores = model.predict_topk(X)
    one = model.predict_topk(X[:1])
    index = LabelIndexer(**case["params"]["indexer"].get_params()).fit(X, y)
    leaves = index.predict(index.leaf_centroids_)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"labels": labels, "scores": scores, "one": one, "leaves": leaves,
            "n_features": model.n_features_in_, "maxrss_growth_kb": grown}


def main():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    for line in sys.stdin:
        case_path, result_path = line.split()
        with open(case_path, "rb") as f:
            case = pickle.load(f)
        try:
            result = ("ok", globals()["run_" + case["scenario"]](case))
        except BaseException as exc:  # reported to the test, which judges it
            result = ("error", type(exc).__name__, str(exc), traceback.format_exc())
        with open(result_path, "wb") as f:
            pickle.dump(result, f)
        sys.stdout.write("done\n")
        sys.stdout.flush()


main()
'''

# Address space of the worker: far below what an n_features-sized buffer per node
# (or a dense n_samples x n_labels matrix of the huge cases) would take.
_MEMORY_LIMIT = 4 << 30
_CASE_TIMEOUT = 120


class WorkerCrash(AssertionError):
    pass


class _Worker:
    """A Python process running cases; see the module docstring."""

    def __init__(self):
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="skxmr-hardening-")

    def _start(self):
        env = dict(os.environ, OMP_NUM_THREADS="2")
        source = _WORKER_SOURCE.replace("MEMORY_LIMIT", str(_MEMORY_LIMIT))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", source], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def run(self, case):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        case_path = os.path.join(self.dir, "case.pkl")
        result_path = os.path.join(self.dir, "result.pkl")
        with open(case_path, "wb") as f:
            pickle.dump(case, f)
        if os.path.exists(result_path):
            os.remove(result_path)
        self.proc.stdin.write(f"{case_path} {result_path}\n")
        self.proc.stdin.flush()
        done = []
        reader = threading.Thread(
            target=lambda: done.append(self.proc.stdout.readline()))
        reader.start()
        reader.join(_CASE_TIMEOUT)
        if not done or done[0] != "done\n":
            if reader.is_alive():
                self.proc.kill()
            code = self.proc.wait()
            stderr = self.proc.stderr.read()[-3000:]
            self.proc = None
            raise WorkerCrash(
                f"the worker died (exit status {code}; negative = signal) or hung on "
                f"case {describe_case(case)}:\n{stderr}")
        with open(result_path, "rb") as f:
            return pickle.load(f)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def worker():
    w = _Worker()
    yield w
    w.close()


_CLEAR_ERRORS = ("ValueError", "TypeError")


def assert_works_or_clear_error(result, case, must_work):
    """A case either works or raises ValueError/TypeError with a message; cases
    that are valid input (``must_work``) work."""
    if result[0] == "ok":
        return result[1]
    _, name, message, tb = result
    assert name in _CLEAR_ERRORS and len(message) > 10, (
        f"unclear error {name}: {message!r} on {describe_case(case)}\n{tb}")
    assert not must_work, (
        f"valid input raised {name}: {message}\n{describe_case(case)}\n{tb}")
    return None


# ------------------------------------------------------------ case strategies
_DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_, np.float16]
# A fixed, modest set of examples by default (the file runs in seconds); set
# SKXMR_HARDENING_EXAMPLES=500 for a longer, randomised search.
_EXAMPLES = int(os.environ.get("SKXMR_HARDENING_EXAMPLES", "0"))
_SETTINGS = settings(max_examples=_EXAMPLES or 60, deadline=None,
                     derandomize=not _EXAMPLES, database=None,
                     suppress_health_check=[HealthCheck.too_slow,
                                            HealthCheck.function_scoped_fixture])


@st.composite
def feature_matrices(draw, n_samples=None, n_features=None):
    """(X, status): dense or sparse X with odd but valid content ("valid"), NaN
    or infinities ("nonfinite") or extreme finite values ("extreme", which
    may overflow float32)."""
    n = draw(st.integers(1, 30)) if n_samples is None else n_samples
    d = draw(st.integers(1, 40)) if n_features is None else n_features
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    density = draw(st.sampled_from([0.3, 1.0, 0.05, 0.0]))
    dtype = draw(st.sampled_from(_DTYPES))
    values = rng.normal(size=(n, d)) * (rng.random((n, d)) < density)
    values[rng.random(n) < 0.2] = 0  # empty rows
    if dtype in (np.int32, np.int64):
        values = np.round(values * 3)
    values = values.astype(dtype)
    special = draw(st.sampled_from([None, None, None, "nan", "inf", "-inf", "big"]))
    fmt = draw(st.sampled_from(["dense", "csr", "csr", "csc", "coo"]))
    status = "valid"
    if special is not None and np.issubdtype(dtype, np.floating) and n > 0:
        big = np.finfo(dtype).max / 2
        value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "big": big}[special]
        values[rng.integers(n), rng.integers(d)] = value
        status = "extreme" if special == "big" else "nonfinite"
    if fmt == "dense" or dtype == np.float16:  # no float16 in scipy.sparse
        return values, status
    X = sp.csr_matrix(values) if fmt == "csr" else getattr(sp, f"{fmt}_matrix")(values)
    if fmt == "csr":
        quirk = draw(st.sampled_from([None, "unsorted", "duplicates", "int64",
                                      "explicit_zeros"]))
        X = _csr_quirk(X, quirk, rng)
    return X, status


def _csr_quirk(X, quirk, rng):
    X = X.copy()
    if quirk == "unsorted" and X.nnz:
        for i in range(X.shape[0]):
            a, b = X.indptr[i], X.indptr[i + 1]
            perm = a + rng.permutation(b - a)
            X.indices[a:b], X.data[a:b] = X.indices[perm], X.data[perm]
        X.has_sorted_indices = False
    elif quirk == "duplicates" and X.nnz:
        # Every entry split into two halves at the same column (same matrix).
        rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        with np.errstate(invalid="ignore"):  # inf - inf: invalid input anyway
            half = (X.data / 2).astype(X.dtype) if X.dtype.kind == "f" else X.data
            rest = X.data - half if X.dtype.kind == "f" else np.zeros_like(X.data)
        coo = sp.coo_matrix((np.r_[half, rest], (np.r_[rows, rows],
                                                 np.r_[X.indices, X.indices])),
                            shape=X.shape)
        order = np.lexsort((coo.col, coo.row))
        indptr = np.r_[0, np.cumsum(np.bincount(coo.row, minlength=X.shape[0]))]
        X = sp.csr_matrix((coo.data[order], coo.col[order], indptr), shape=X.shape)
        X.has_canonical_format = False
    elif quirk == "int64":
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
    elif quirk == "explicit_zeros" and X.nnz:
        X.data[rng.random(X.nnz) < 0.3] = 0
    return X


@st.composite
def label_targets(draw, n):
    """(y, has_positive): y in one of the forms the classifier takes, with rows
    without labels, labels without rows, a single label..."""
    n_labels = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    per_row = draw(st.sampled_from([0.3, 0.7, 0.1, 0.0]))
    Y = rng.random((n, n_labels)) < per_row
    if draw(st.booleans()):
        Y[rng.random(n) < 0.3] = False  # rows without labels
    if draw(st.booleans()) and n_labels > 1:
        Y[:, rng.integers(n_labels)] = False  # a label without rows
    if per_row > 0:
        Y[rng.integers(n), rng.integers(n_labels)] = True  # at least one positive
    form = draw(st.sampled_from(["sparse", "dense", "dense_int", "lists", "1d",
                                 "1d_str"]))
    if form == "sparse":
        return sp.csr_matrix(Y.astype(np.float32)), bool(Y.any())
    if form == "dense":
        return Y, bool(Y.any())
    if form == "dense_int":
        return Y.astype(np.int64), bool(Y.any())
    if form == "lists":
        return [[f"L{j}" for j in np.flatnonzero(row)] for row in Y], bool(Y.any())
    labels = rng.integers(0, n_labels, size=n)
    return ([f"c{j}" for j in labels] if form == "1d_str" else labels), True


_LAYOUTS = st.sampled_from(["c", "c", "f", "strided", "readonly"])


@st.composite
def classifier_params(draw):
    return dict(
        indexer=LabelIndexer(max_leaf_size=draw(st.integers(1, 5)),
                             branching_factor=draw(st.sampled_from([2, 4])),
                             clustering=draw(st.sampled_from(["binary", "kmeans"]))),
        negative_sampling=draw(st.sampled_from(["tfn", "man", "tfn+man"])),
        loss=draw(st.sampled_from(["squared_hinge", "hinge", "log"])),
        beam_size=draw(st.integers(1, 6)),
        top_k=draw(st.integers(1, 6)),
        post_processor=draw(st.sampled_from(["l3-hinge", "sigmoid", "log-sigmoid",
                                             "noop"])),
        bias=draw(st.sampled_from([0.0, 1.0])),
        n_jobs=draw(st.sampled_from([1, 2])),
        random_state=0,
    )


# --------------------------------------------------------------- properties
@_SETTINGS
@given(data=st.data())
def test_fit_and_predict_any_input(worker, data):
    X, x_status = data.draw(feature_matrices())
    n, d = X.shape
    y, has_positive = data.draw(label_targets(n))
    X_pred, pred_status = data.draw(feature_matrices(
        n_samples=data.draw(st.integers(0, 8)), n_features=d))
    weights = data.draw(st.sampled_from([None, "ones", "random", "some_zero"]))
    sw = {None: None, "ones": np.ones(n), "random": np.random.default_rng(n).random(n),
          "some_zero": (np.arange(n) % 2).astype(float)}[weights]
    case = dict(scenario="classifier", X=X, y=y, params=data.draw(classifier_params()),
                fit_kwargs={} if sw is None else {"sample_weight": sw},
                layout=data.draw(_LAYOUTS), X_pred=X_pred,
                pred_layout=data.draw(_LAYOUTS),
                threshold=data.draw(st.sampled_from([None, 0.5, -1.0])))
    # Zero weights may leave no positive label; float16 is refused.
    must_work = (x_status == pred_status == "valid" and has_positive
                 and X.dtype != np.float16 and weights != "some_zero")
    result = worker.run(case)
    out = assert_works_or_clear_error(result, case, must_work)
    if out is not None:
        labels, scores = out["predict_topk"]
        assert labels[1][0] == X_pred.shape[0] and labels[2] == "<i8"
        assert scores[2] == "<f4"
    if x_status == "nonfinite" or (pred_status == "nonfinite" and X_pred.shape[0]):
        assert result[0] == "error", "NaN or infinity accepted"
    if x_status == "nonfinite":
        assert result[1] == "ValueError" and ("NaN" in result[2] or "inf" in result[2])


@_SETTINGS
@given(data=st.data())
def test_malformed_csr_is_rejected(worker, data):
    """Indices out of range, negative indices, pointers that do not add up:
    scipy does not check these when the arrays are set directly."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    X, Y = make_xmc_classification(40, 30, 6, random_state=0)
    where = data.draw(st.sampled_from(["predict", "fit", "one_row"]))
    bad = sp.csr_matrix(X[:1] if where == "one_row" else X[:5], copy=True)
    flaws = ["index_high", "index_negative", "indptr_past_end", "data_short"]
    if where != "one_row":
        flaws += ["indptr_short", "indptr_decreasing"]
    flaw = data.draw(st.sampled_from(flaws))
    i = rng.integers(bad.nnz)
    if flaw == "index_high":
        bad.indices[i] = data.draw(st.sampled_from([30, 31, 2**31 - 1]))
    elif flaw == "index_negative":
        bad.indices[i] = -data.draw(st.sampled_from([1, 2**31]))
    elif flaw == "indptr_short":
        bad.indptr = bad.indptr[:-1]
    elif flaw == "indptr_decreasing":
        bad.indptr[2], bad.indptr[3] = bad.indptr[3], bad.indptr[2]
    elif flaw == "indptr_past_end":
        bad.indptr[-1] += 5
    elif flaw == "data_short":
        bad.data = bad.data[:-1]
    case = dict(scenario="classifier", X=bad if where == "fit" else X,
                y=Y[:5] if where == "fit" else Y,
                params=dict(indexer=LabelIndexer(max_leaf_size=2), random_state=0),
                fit_kwargs={}, layout="c", X_pred=bad, pred_layout="c", threshold=None)
    result = worker.run(case)
    assert result[0] == "error", f"malformed CSR ({flaw}) accepted in {where}"
    assert_works_or_clear_error(result, case, must_work=False)


@_SETTINGS
@given(data=st.data())
def test_label_indexer_any_input(worker, data):
    X, x_status = data.draw(feature_matrices())
    y, has_positive = data.draw(label_targets(X.shape[0]))
    representation = data.draw(st.sampled_from(["pifa", "pii", "spectral"]))
    case = dict(scenario="indexer", X=X, y=y, layout=data.draw(_LAYOUTS),
                params=dict(representation=representation,
                            max_leaf_size=data.draw(st.integers(1, 4)),
                            branching_factor=data.draw(st.sampled_from([2, 4])),
                            clustering=data.draw(st.sampled_from(["binary", "kmeans"])),
                            n_components=2, random_state=0,
                            n_jobs=data.draw(st.sampled_from([1, 2]))),
                fit_kwargs={})
    result = worker.run(case)
    # The spectral embedding needs 2 rows and 2 labels; float16 is refused.
    must_work = (x_status == "valid" and has_positive and representation != "spectral"
                 and X.dtype != np.float16)
    assert_works_or_clear_error(result, case, must_work)


_X1 = sp.csr_matrix(np.array([[0.0, 1.5, 0.0, -2.0]], dtype=np.float32))


@pytest.mark.parametrize("X, y", [
    (_X1, [["a"]]),  # one sample, one label
    (_X1, [["a", "b", "c"]]),  # one sample, labels that never co-occur apart
    (_X1, ["only"]),  # multiclass with one sample and one class
    (np.ones((6, 1)), [["a"], ["b"], [], ["a", "b"], ["b"], ["a"]]),  # one feature
    (sp.csr_matrix((5, 4), dtype=np.float64), [["a"], ["b"], ["a"], [], ["c"]]),
    (np.eye(5, 3), np.ones(5, dtype=int)),  # one class for all rows
], ids=["1x1", "1x3", "1-class-1-sample", "1-feature", "all-zero-X", "1-class"])
def test_tiny_problems(worker, X, y):
    for params in (dict(random_state=0),
                   dict(indexer=LabelIndexer(max_leaf_size=1, branching_factor=2),
                        negative_sampling="tfn+man", beam_size=1, random_state=0)):
        case = dict(scenario="classifier", X=X, y=y, params=params, fit_kwargs={},
                    layout="c", X_pred=X, pred_layout="c", threshold=0.5)
        out = assert_works_or_clear_error(worker.run(case), case, must_work=True)
        assert out["predict_topk"][0][1][0] == X.shape[0]


# ------------------------------------------------------- huge sparse feature ids
def _huge_case(n_features, n=80, n_labels=16, seed=0):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), 4)
    # Labels own a few feature ids spread over the whole range.
    owner = rng.integers(0, n_features, size=(n_labels, 3))
    y_rows = [rng.choice(n_labels, 2, replace=False) for _ in range(n)]
    cols = np.concatenate([np.r_[owner[a, :2], owner[b, :2]] for a, b in y_rows])
    X = sp.csr_matrix((rng.random(rows.size).astype(np.float32) + 0.5, (rows, cols)),
                      shape=(n, n_features))
    y = [[f"t{j}" for j in r] for r in y_rows]
    return dict(scenario="huge", X=X, y=y, params=dict(
        indexer=LabelIndexer(max_leaf_size=4, branching_factor=2, random_state=0),
        random_state=0, top_k=4))


def test_huge_sparse_feature_ids_work_in_little_memory(worker):
    """n_features = 2**31 - 10 with a few nonzeros: the model trains and predicts
    without buffers as wide as the feature space (the worker's address space is
    limited to 4 GiB; one float per feature id would be 8 GiB)."""
    case = _huge_case(2**31 - 10)
    result = worker.run(case)
    assert result[0] == "ok", result[3] if result[0] == "error" else result
    out = result[1]
    assert out["n_features"] == 2**31 - 10
    assert out["maxrss_growth_kb"] < 400 * 1024
    labels, scores = out["labels"], out["scores"]
    classes = sorted({t for row in case["y"] for t in row})  # the columns
    truth = [{classes.index(t) for t in row} for row in case["y"]]
    assert np.mean([labels[i, 0] in truth[i] for i in range(len(truth))]) > 0.9
    np.testing.assert_array_equal(out["one"][0], labels[:1])
    # The same model as with the feature ids renumbered 0 .. n_used - 1.
    used, small = np.unique(case["X"].indices, return_inverse=True)
    Xs = sp.csr_matrix((case["X"].data, small, case["X"].indptr),
                       shape=(case["X"].shape[0], used.size))
    ref = XRLinearClassifier(**case["params"]).fit(Xs, case["y"])
    ref_labels, ref_scores = ref.predict_topk(Xs)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)


def test_feature_ids_beyond_int32_raise_or_work(worker):
    result = worker.run(_huge_case(2**31 + 5))
    assert_works_or_clear_error(result, {"n_features": 2**31 + 5}, must_work=False)


# ----------------------------------------------------------------- threads
@pytest.fixture(scope="module")
def fitted():
    X, Y = make_xmc_classification(1500, 500, 400, random_state=2)
    assert (Y.getnnz(axis=0) > 0).all()
    model = XRLinearClassifier(LabelIndexer(branching_factor=4, max_leaf_size=10),
                               top_k=5, random_state=0, n_jobs=1).fit(X, Y)
    assert model.tree_.n_levels == 4
    return model, X


def test_concurrent_predictions_equal_sequential(fitted, monkeypatch):
    model, X = fitted
    blocks = [X[i::7] for i in range(7)] + [X[3]]  # the last: one-row fast path
    expected = [model.predict_topk(b) for b in blocks]
    expected_pred = [model.predict(b) for b in blocks]
    # A fresh copy: its searcher is built lazily, by whichever thread comes first.
    import skxmr._xrlinear as xrl

    builds = []

    class SlowSearcher(xrl.BeamSearcher):
        def __init__(self, *args, **kwargs):
            builds.append(threading.get_ident())
            time.sleep(0.05)  # widen the window in which threads could race
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(xrl, "BeamSearcher", SlowSearcher)
    copy = pickle.loads(pickle.dumps(model))
    assert getattr(copy, "_beam_searcher", None) is None

    def job(i):
        b = blocks[i % len(blocks)]
        if i % 3 == 2:
            return i, copy.predict(b)
        return i, copy.predict_topk(b)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(job, range(48)))
    assert len(builds) == 1  # one searcher, shared by all threads
    for i, out in results:
        j = i % len(blocks)
        if i % 3 == 2:
            assert (out != expected_pred[j]).nnz == 0
        else:
            np.testing.assert_array_equal(out[0], expected[j][0])
            np.testing.assert_array_equal(out[1], expected[j][1])


# ------------------------------------------------------------- determinism
def test_same_model_for_any_n_jobs_with_man_and_weights():
    """(Teacher forcing without weights: test_xrlinear_sklearn.py.)"""
    X, Y = make_xmc_classification(400, 300, 60, random_state=2)
    weights = np.random.default_rng(0).random(X.shape[0]) * 2
    models = [
        XRLinearClassifier(LabelIndexer(branching_factor=4, max_leaf_size=5),
                           negative_sampling="tfn+man", beam_size=3, n_jobs=n_jobs,
                           random_state=11).fit(X, Y, sample_weight=weights)
        for n_jobs in (1, 2)
    ]
    a, b = models
    assert a.tree_.equals(b.tree_) and len(a.coef_) == 3
    for Wa, Wb in zip(a.coef_, b.coef_):
        np.testing.assert_array_equal(Wa.indptr, Wb.indptr)
        np.testing.assert_array_equal(Wa.indices, Wb.indices)
        np.testing.assert_array_equal(Wa.data, Wb.data)


# ------------------------------------------------------------------ memory
def test_predicting_many_rows_streams(fitted):
    """50k rows x 400 labels: nothing of size n_samples x n_labels is allocated
    (the beam search works in blocks; decision_function is CSR)."""
    model, X = fitted
    rows = np.random.default_rng(0).integers(0, X.shape[0], size=50_000)
    big = X[rows]
    n_labels = len(model.classes_)
    model.predict_topk(big[:10])  # the searcher, built once
    dense_bytes = 8 * big.shape[0] * n_labels  # 160 MB
    k = model.top_k
    topk_bytes = 12 * big.shape[0] * k  # int64 labels + float32 scores: 3 MB
    for method in ("predict_topk", "decision_function", "predict"):
        tracemalloc.start()
        out = getattr(model, method)(big)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 6 * topk_bytes < dense_bytes / 8, (method, peak)
        del out
