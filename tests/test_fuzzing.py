"""Fuzzing suite (hypothesis): hostile model directories, XMC text files, fit/predict
inputs and concurrent refits. Companion of test_hardening.py (which fuzzes the kernels'
input shapes, dtypes and CSR quirks through a long-lived worker).

Every generated case runs in a SUBPROCESS (``tests/_fuzz_driver.py``), many cases per
process: one hypothesis example is a batch of cases, the driver runs them one after
the other and reports each outcome on its stdout. A segfault, SIGBUS, SIGFPE or abort
kills only the driver and a hang runs into the batch timeout; either way the test
fails naming the exact case (the last one the driver started), instead of killing or
blocking the test run.

The searches are derandomized (a fixed sequence of examples, reproducible in CI) and
small by default; ``SKXMR_FUZZ_BATCHES=N`` runs N batches per property with a fresh
random seed each run, for a longer search. What the suite found (a FIFO that hung
``skxmr.load``, a directory in place of a file, re-signed non-finite weights, a refit
seen half-done by a concurrent predict) is fixed and kept at the end as regression
tests, each a minimal reproducer; ``_known_bug_*`` is where a newly found case would
be set aside (with an ``xfail(strict=True)`` pin) while the properties keep searching.
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import skxmr
from skxmr import LabelIndexer, XRLinearClassifier
from skxmr.datasets import make_xmc_classification

from conftest import describe_case as describe

_HERE = os.path.dirname(os.path.abspath(__file__))
_DRIVER = os.path.join(_HERE, "_fuzz_driver.py")
# One batch (one subprocess) may take this long on a loaded machine before it counts
# as a hang; a batch normally takes 1-3 s.
_BATCH_TIMEOUT = 60
_BATCHES = int(os.environ.get("SKXMR_FUZZ_BATCHES", "0"))


def _settings(batches):
    return settings(max_examples=_BATCHES or batches, deadline=None,
                    derandomize=not _BATCHES, database=None,
                    # a failing batch is reported with its exact case; shrinking
                    # would rerun subprocesses for minutes
                    phases=(Phase.explicit, Phase.generate),
                    suppress_health_check=list(HealthCheck))


class CaseCrashed(AssertionError):
    pass


def run_batch(scenario, cases, shared=None, timeout=_BATCH_TIMEOUT):
    """Run ``cases`` in one driver subprocess; return one outcome dict per case.

    Raises CaseCrashed (naming the case) when the driver dies or hangs.
    """
    scratch = tempfile.mkdtemp(prefix="skxmr-fuzz-")
    try:
        spec_path = os.path.join(scratch, "cases.pkl")
        spec = dict(shared or {}, scenario=scenario, cases=cases, scratch=scratch,
                    tests_dir=_HERE, skxmr_dir=os.path.dirname(skxmr.__file__))
        with open(spec_path, "wb") as f:
            pickle.dump(spec, f)
        # the driver imports the skxmr under test (this one), not an installed one
        package_root = os.path.dirname(os.path.dirname(skxmr.__file__))
        path = os.pathsep.join([package_root] + [p for p in [os.environ.get(
            "PYTHONPATH")] if p])
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1",
                   PYTHONPATH=path)
        cmd = [sys.executable, _DRIVER, spec_path]
        hung = False
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=os.path.dirname(_HERE))
            stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            hung = True
            stdout = exc.stdout or b""
            stderr = exc.stderr or b""
            stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
            stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
            code = None
        outcomes, started = {}, None
        for line in stdout.splitlines():
            if line.startswith("@@start "):
                started = int(line.split()[1])
            elif line.startswith("@@done "):
                _, i, payload = line.split(" ", 2)
                outcomes[int(i)] = json.loads(payload)
        if hung or code != 0 or len(outcomes) != len(cases):
            bad = started if started is not None and started not in outcomes else None
            what = (f"hung (no answer within {timeout} s)" if hung
                    else f"died with exit status {code} (negative = signal)")
            case = cases[bad] if bad is not None else "(before the first case)"
            raise CaseCrashed(f"the driver {what} on {scenario} case {bad}: "
                              f"{describe(case)}\nstderr: {stderr[-3000:]}")
        return [outcomes[i] for i in range(len(cases))]
    finally:
        for dirpath, dirnames, filenames in os.walk(scratch):
            for n in dirnames + filenames:  # chmod 0 edits
                p = os.path.join(dirpath, n)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        shutil.rmtree(scratch, ignore_errors=True)


def unique(cases):
    """``cases`` without repeats (hypothesis starts with a batch of identical,
    simplest cases: one subprocess start, one case)."""
    seen, kept = set(), []
    for case in cases:
        key = pickle.dumps(case)
        if key not in seen:
            seen.add(key)
            kept.append(case)
    return kept


def _is_clean_error(out, families):
    return (out["status"] == "error" and any(f in out["mro"] for f in families)
            and len(out["message"]) > 10)


# ============================================================ (a) model directories
@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A small XRLinearClassifier and LabelIndexer saved with skxmr.save, the
    queries and the answers the loaded models must reproduce."""
    root = tmp_path_factory.mktemp("fuzz-models")
    X, Y = make_xmc_classification(80, 40, 10, random_state=0)
    y = [[f"t{j}" for j in Y.indices[Y.indptr[i]:Y.indptr[i + 1]]]
         for i in range(Y.shape[0])]
    xr = XRLinearClassifier(LabelIndexer(max_leaf_size=2, branching_factor=2),
                            top_k=3, random_state=0).fit(X, y)
    indexer = LabelIndexer(max_leaf_size=3, branching_factor=2, random_state=0)
    indexer.fit(X, Y)
    skxmr.save(xr, root / "xr")
    skxmr.save(indexer, root / "indexer")
    Xq = X[:12]
    shared = dict(models={"xr": str(root / "xr"), "indexer": str(root / "indexer")},
                  X_query=Xq, expected_xr=xr.predict_topk(Xq),
                  centroids=indexer.leaf_centroids_,
                  expected_leaves=indexer.predict(indexer.leaf_centroids_),
                  expected_tree=indexer.tree_,
                  json_original={k: (root / k / "skxmr_model.json").read_bytes()
                                 for k in ("xr", "indexer")})
    # the pristine directories load and reproduce the answers
    out = run_batch("model_dir", [dict(kind=k, edits=[], mmap_mode=None, verify=True)
                                  for k in ("xr", "indexer")], shared)
    assert all(o["status"] == "ok" and o["same"] for o in out), out
    return shared


_OPS = ["flip", "flip", "truncate", "swap", "copy_over", "remove", "add", "fifo",
        "symlink", "dir", "chmod", "json", "json", "npy_value", "npy_value",
        "npy_resize"]


@st.composite
def model_edits(draw):
    op = draw(st.sampled_from(_OPS))
    return dict(op=op, file=draw(st.integers(0, 200)), other=draw(st.integers(0, 200)),
                at=draw(st.floats(0, 1)), xor=draw(st.integers(1, 255)),
                bytes=draw(st.binary(max_size=40)),
                walk=draw(st.lists(st.integers(0, 50), min_size=1, max_size=5)),
                action=draw(st.sampled_from(["set", "set", "delete", "rename", "add",
                                             "nudge"])),
                value=draw(st.integers(0, 100)),
                # re-sign the edited arrays: checksums match, the validators must
                # catch what is wrong
                rehash=draw(st.booleans()))


@st.composite
def model_dir_cases(draw):
    return dict(kind=draw(st.sampled_from(["xr", "xr", "indexer"])),
                edits=draw(st.lists(model_edits(), min_size=1, max_size=3)),
                mmap_mode=draw(st.sampled_from([None, "r", "c"])),
                verify=draw(st.booleans()))


def judge_model_dir(case, out):
    """Either a clean error from load (ModelFormatError/ValueError or an OSError) or a
    loaded model that predicts; unsigned edits (checksums verified, metadata
    untouched) that load must give the original answers bit for bit."""
    if _known_bug_model_dir(case, out):
        return
    if out["status"] == "error":
        assert out["where"] == "load", (
            f"loaded, then {out['where']} raised {out['type']}: {out['message']}\n"
            f"{describe(case)}\n{out['tb']}")
        assert _is_clean_error(out, ("ValueError", "OSError")), (
            f"unclear error {out['type']}: {out['message']!r}\n{describe(case)}\n"
            f"{out['tb']}")
        assert "/model" in out["message"], (  # the driver's copy is .../model
            f"the error does not name the file: {out['type']}: {out['message']!r}\n"
            f"{describe(case)}\n{out['tb']}")
        return
    if case["verify"] and not out["json_changed"]:
        assert out["same"], f"a damaged model loaded with other answers: {describe(case)}"
    if out["type"] == "XRLinearClassifier":
        assert out["finite"], f"non-finite weights or scores loaded: {describe(case)}"
        assert out["pickle_same"], (
            f"the loaded search layout and coef_ disagree: {describe(case)}")


def _known_bug_model_dir(case, out):
    """Outcomes of known persistence bugs to leave aside while fuzzing: none now
    (the FIFO hang and the IsADirectoryError naming a descriptor were fixed and
    are regression tests at the end)."""
    return False


@_settings(5)
@given(st.lists(model_dir_cases(), min_size=45, max_size=45))
def test_fuzz_model_directories(saved_models, cases):
    cases = unique(cases)
    for case, out in zip(cases, run_batch("model_dir", cases, saved_models)):
        judge_model_dir(case, out)


# ================================================================= (b) XMC files
_XMC_PIECES = [b"0", b"1", b"7", b"9", b":", b",", b" ", b"\t", b"\r\n", b"\n", b"-",
               b"+", b".", b"e", b"E", b"nan", b"inf", b"e999", b"e-999", b"1e39",
               b"\x00", b"\xff", b"\x0b", b"\x0c", b"9" * 25, b"0" * 30, b"2147483647",
               b"2147483648", b"4294967296", b"9223372036854775807",
               b"18446744073709551616", b"-1", b"-2147483648", b"3.4028235e38",
               b"1e-46", b"0x1p3", b"\xef\xbb\xbf", b"#", b"1:1", b"0,1", b" 3"]
_XMC_NUMBERS = [0, 1, 2, 3, 5, 2**31 - 1, 2**31, 2**32, 2**59 - 1, 2**59, 2**63,
                10**30]


@st.composite
def xmc_files(draw):
    """Headers with huge/negative/odd numbers over rows of hostile tokens, or a
    valid file mutated at random."""
    kind = draw(st.sampled_from(["rows", "rows", "mutated", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "mutated":
        from test_xmc_format import random_valid_file

        data = bytearray(random_valid_file(np.random.default_rng(
            draw(st.integers(0, 2**32 - 1)))))
        for _ in range(draw(st.integers(1, 5))):
            pos = draw(st.integers(0, len(data)))
            piece = draw(st.sampled_from(_XMC_PIECES))
            op = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
            if op == "replace":
                data[pos:pos + len(piece)] = piece
            elif op == "insert":
                data[pos:pos] = piece
            elif op == "delete":
                del data[pos:pos + draw(st.integers(1, 8))]
            else:
                del data[pos:]
        return bytes(data)
    numbers = st.sampled_from(_XMC_NUMBERS) | st.integers(-3, 12)
    head = [draw(numbers) for _ in range(draw(st.sampled_from([3, 3, 3, 2, 4])))]
    n_rows = draw(st.integers(0, 6))
    rows = []
    for _ in range(n_rows):
        tokens = []
        if draw(st.booleans()):
            tokens.append(b",".join(str(draw(numbers)).encode()
                                    for _ in range(draw(st.integers(1, 3)))))
        for _ in range(draw(st.integers(0, 4))):
            fid = str(draw(numbers)).encode()
            value = draw(st.sampled_from([b"1", b"-0.5", b"1e39", b"nan", b"3e38",
                                          b"1e-50", b"", b"x", b"1:2", b".5e+3"])
                         | st.floats(allow_nan=False, width=32).map(
                             lambda v: repr(v).encode()))
            tokens.append(fid + b":" + value)
        lead = draw(st.sampled_from([b"", b"", b" ", b"\t"]))
        rows.append(lead + b" ".join(tokens) + draw(st.sampled_from(
            [b"", b"", b" ", b"\r"] + _XMC_PIECES[:4])))
    header = b" ".join(str(v).encode() for v in head)
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    return header + eol + eol.join(rows) + draw(st.sampled_from([b"", eol, eol * 3]))


@_settings(4)
@given(st.lists(xmc_files(), min_size=100, max_size=100))
def test_fuzz_xmc_files(files):
    cases = unique([dict(data=d) for d in files])
    for case, out in zip(cases, run_batch("xmc", cases)):
        assert out["status"] != "mismatch", out["message"]
        if out["status"] == "error":
            assert out["type"] == "ValueError" and out["message"].startswith("line "), (
                f"{out['type']}: {out['message']!r} on {case['data']!r}\n"
                f"{out.get('tb', '')}")


# ============================================================ (c) fit and predict
def _x_variants(rng, n, d, kind):
    """(X, status) with status "valid", "nonfinite" or "bad" (must be refused)."""
    base = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.4)
    base[rng.random(n) < 0.2] = 0  # empty rows
    if kind == "dense64":
        return base, "valid"
    if kind == "dense32":
        return base.astype(np.float32), "valid"
    if kind == "int":
        return np.round(base * 3).astype(np.int64), "valid"
    if kind == "bool":
        return base > 0, "valid"
    if kind == "float16":
        return base.astype(np.float16), "either"  # refused, or converted exactly
    if kind == "csr":
        return sp.csr_matrix(base), "valid"
    if kind == "csr_int64_unsorted":
        X = sp.csr_matrix(base.astype(np.float32))
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
        for i in range(n):
            a, b = X.indptr[i], X.indptr[i + 1]
            X.indices[a:b], X.data[a:b] = X.indices[a:b][::-1], X.data[a:b][::-1]
        X.has_sorted_indices = False
        return X, "valid"
    if kind == "object_numbers":
        return base.astype(object), "either"
    if kind == "object_strings":
        return base.astype(str).astype(object), "either"
    if kind == "strings":
        return np.array([["a"] * d] * n), "bad"
    if kind == "complex":
        return base + 1j, "bad"
    if kind in ("nan", "inf", "csr_nan"):
        X = base.copy()
        X[rng.integers(n), rng.integers(d)] = np.nan if kind != "inf" else -np.inf
        return (sp.csr_matrix(X) if kind == "csr_nan" else X), "nonfinite"
    if kind == "one_d":
        return base[:, 0], "bad"
    if kind == "three_d":
        return base[:, :, None], "bad"
    if kind == "ragged":
        rows = [list(r) + [1.0] * (i % 2) for i, r in enumerate(base)]
        return rows, "bad" if n > 1 else "valid"
    if kind == "no_features":
        return np.zeros((n, 0)), "bad"
    raise ValueError(kind)


_X_KINDS = ["dense64", "dense32", "int", "bool", "float16", "csr", "csr_int64_unsorted",
            "object_numbers", "object_strings", "strings", "complex", "nan", "inf",
            "csr_nan", "one_d", "three_d", "ragged", "no_features"]


def _y_variants(rng, n, kind):
    """(y, status): "valid" (has a positive), "bad" or "either"."""
    n_labels = int(rng.integers(1, 7))
    Y = rng.random((n, n_labels)) < 0.4
    Y[rng.integers(n), rng.integers(n_labels)] = True
    Y[rng.random(n) < 0.25] = False  # rows without labels
    lists = [[f"L{j}" for j in np.flatnonzero(r)] for r in Y]
    if kind == "lists":
        return lists, "valid" if any(lists) else "bad"
    if kind == "ints_lists":
        return [list(np.flatnonzero(r)) for r in Y], "valid" if Y.any() else "bad"
    if kind == "mixed_types":
        return [[j if j % 2 else f"L{j}" for j in np.flatnonzero(r)] for r in Y], \
            "either"
    if kind == "mixed_1d":
        return [1 if i % 2 else "one" for i in range(n)], "either"
    if kind == "none_labels":
        return [[None] if i % 2 else ["a"] for i in range(n)], "either"
    if kind == "unhashable":
        return [[["a"]] for _ in range(n)], "bad"
    if kind == "indicator":
        return Y.astype(np.int64), "valid"
    if kind == "indicator_sparse":
        return sp.csr_matrix(Y.astype(np.float32)), "valid"
    if kind == "indicator_bad_values":
        Z = Y.astype(np.float64)
        Z[0, 0] = rng.choice([2.0, -1.0, 0.5, np.nan])
        return Z, "either"
    if kind == "no_positive":
        return np.zeros((n, n_labels), dtype=int), "either"
    if kind == "all_empty_lists":
        return [[] for _ in range(n)], "bad"
    if kind == "wrong_rows":
        return lists[:-1] if n > 1 else lists + [["x"]], "bad"
    if kind == "object_array":
        y = np.empty(n, dtype=object)
        y[:] = [tuple(r) for r in lists]
        return y, "either"
    if kind == "strings_1d":
        return np.array([f"c{i % 3}" for i in range(n)]), "valid"
    raise ValueError(kind)


_Y_KINDS = ["lists", "ints_lists", "mixed_types", "mixed_1d", "none_labels", "unhashable",
            "indicator", "indicator_sparse", "indicator_bad_values", "no_positive",
            "all_empty_lists", "wrong_rows", "object_array", "strings_1d"]
_XP_KINDS = ["same", "same", "wrong_features", "nan", "float16", "empty", "csr_int64"]


@st.composite
def fit_cases(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n, d = draw(st.integers(1, 25)), draw(st.integers(1, 12))
    x_kind, y_kind = draw(st.sampled_from(_X_KINDS)), draw(st.sampled_from(_Y_KINDS))
    X, x_status = _x_variants(rng, n, d, x_kind)
    y, y_status = _y_variants(rng, n, y_kind)
    xp_kind = draw(st.sampled_from(_XP_KINDS))
    if xp_kind == "same" or x_status != "valid":
        X_pred, xp_status = X, x_status
    elif xp_kind == "wrong_features":
        X_pred, xp_status = np.ones((2, d + 1)), "bad"
    elif xp_kind == "nan":
        X_pred, xp_status = np.full((2, d), np.nan), "bad"
    elif xp_kind == "float16":
        # (fit refuses float16; predict may convert it exactly to float32)
        X_pred, xp_status = np.ones((2, d), dtype=np.float16), "either"
    elif xp_kind == "empty":
        X_pred, xp_status = np.zeros((0, d)), "valid"
    else:
        X_pred = sp.csr_matrix(np.ones((3, d), dtype=np.float32))
        X_pred.indices = X_pred.indices.astype(np.int64)
        X_pred.indptr = X_pred.indptr.astype(np.int64)
        xp_status = "valid"
    estimator = draw(st.sampled_from(["xr", "xr", "indexer"]))
    if estimator == "xr":
        params = dict(indexer=LabelIndexer(max_leaf_size=draw(st.integers(1, 3)),
                                           branching_factor=2),
                      negative_sampling=draw(st.sampled_from(["tfn", "tfn+man"])),
                      top_k=draw(st.integers(1, 4)), random_state=0, n_jobs=1)
    else:
        params = dict(max_leaf_size=draw(st.integers(1, 3)), branching_factor=2,
                      random_state=0)
    return dict(estimator=estimator, X=X, y=y, X_pred=X_pred, params=params,
                transform=y_status == "valid" and y_kind != "strings_1d",
                kinds=(x_kind, y_kind, xp_kind), status=(x_status, y_status, xp_status))


def judge_fit(case, out):
    x_status, y_status, xp_status = case["status"]
    where = out.get("where")
    if out["status"] == "error":
        assert _is_clean_error(out, ("ValueError", "TypeError")), (
            f"unclear error {out['type']}: {out['message']!r} in {where} on "
            f"{describe(case)}\n{out['tb']}")
        must_fit = x_status == "valid" and y_status == "valid"
        assert not (must_fit and where == "fit"), (
            f"valid input refused by fit: {out['message']}\n{describe(case)}\n"
            f"{out['tb']}")
        assert not (must_fit and xp_status == "valid" and where == "predict"), (
            f"valid queries refused: {out['message']}\n{describe(case)}\n{out['tb']}")
        return
    assert x_status != "nonfinite", f"NaN or infinity accepted: {describe(case)}"
    assert x_status != "bad" and y_status != "bad", f"bad input accepted: {describe(case)}"
    if case["estimator"] == "xr":
        assert xp_status != "bad", f"bad queries accepted: {describe(case)}"
        assert out["labels_dtype"] == "<i8" and out["scores_dtype"] == "<f4", out
        assert out["labels_in_range"], out
        n_pred = case["X_pred"].shape[0]
        assert out["labels_shape"][0] == n_pred, out


def _known_bug_fit(case):
    """Cases of the pinned estimator bugs (xfail tests below)."""
    return False


@_settings(4)
@given(st.lists(fit_cases(), min_size=30, max_size=30))
def test_fuzz_fit_and_predict(cases):
    cases = unique([c for c in cases if not _known_bug_fit(c)])
    for case, out in zip(cases, run_batch("fit", cases)):
        judge_fit(case, out)


# ================================================================ (d) concurrency
def _concurrent_case(seed=0):
    X, Y = make_xmc_classification(300, 60, 24, random_state=seed)
    cols = [Y.indices[Y.indptr[i]:Y.indptr[i + 1]] for i in range(Y.shape[0])]
    y_a = [[f"a{j}" for j in r] for r in cols]
    y_b = [[f"b{(j * 7) % 20}" for j in r] for r in cols]  # another label set
    return dict(X=X, y_a=y_a, y_b=y_b, X_query=X[:40], n_threads=3, n_refits=6)


def test_concurrent_harness_without_threads():
    """The refit sequence alone (no predicting threads) ends on the expected model:
    the comparison the concurrent test makes is sound."""
    (out,) = run_batch("concurrent", [dict(_concurrent_case(), n_threads=0)])
    assert out["status"] == "ok", out
    assert out["final_ok"] and not out["bad"], out


_CONCURRENT_BUG = (
    "issue 21 finding, owner of skxmr/_xrlinear.py (transactional fit) fixes: while "
    "XRLinearClassifier.fit(X, y_b) runs on a fitted model, predict_topk/predict from "
    "other threads return answers equal to neither the old nor the new model (a mix "
    "of old and new fitted state)")


def test_concurrent_predict_during_refit():
    """One thread refits on label set B while others predict: every prediction is
    the old model's or the new model's full answer (never a mix, never an error)."""
    (out,) = run_batch("concurrent", [_concurrent_case()])
    assert out["status"] == "ok", out
    assert out["final_ok"], out
    assert out["seen"]["old"] + out["seen"]["new"] > 0, out
    assert not out["bad"], out["bad"]


# ============================================ pinned findings (xfail strict): persistence
def _edit(shared, kind, name, op, **extra):
    """A case applying ``op`` to the file ``name`` of the saved ``kind`` model."""
    names = sorted(os.listdir(shared["models"][kind]))
    edit = dict(op=op, file=names.index(name), other=0, at=0.0, xor=2, bytes=b"",
                walk=[0], action="set", value=0, rehash=False)
    edit.update(extra)
    return dict(kind=kind, edits=[edit], mmap_mode=None, verify=True)


_FIFO_BUG = (
    "issue 21 finding, owner of skxmr/_persistence.py fixes: skxmr.load blocks for "
    "ever in os.open() when a model file (an .npy or skxmr_model.json) is a FIFO "
    "(open without O_NONBLOCK waits for a writer); it should raise ModelFormatError "
    "'not a regular file'. Reproducer: skxmr.save(m, d); os.remove(d + "
    "'/tree.child_ptr.npy'); os.mkfifo(d + '/tree.child_ptr.npy'); skxmr.load(d)")


_FIFO_CASES = [("xr", "coef.1.data.npy"), ("indexer", "tree.child_ptr.npy"),
               ("xr", "skxmr_model.json")]


def fifo_outcomes(shared):
    # The driver's watcher writes EOF into a FIFO that load() blocks on and records
    # it; without the watcher these cases hang (tests/_fuzz_driver.py).
    cases = [_edit(shared, kind, name, "fifo") for kind, name in _FIFO_CASES]
    return run_batch("model_dir", cases, shared, timeout=30)


def test_load_does_not_block_on_a_fifo(saved_models):
    for (kind, name), out in zip(_FIFO_CASES, fifo_outcomes(saved_models)):
        assert not out["fifo_blocked"], f"load() blocked opening the FIFO {name}: {out}"
        assert out["type"] == "ModelFormatError" and name in out["message"], out


_DIR_BUG = (
    "issue 21 finding, owner of skxmr/_persistence.py fixes: a model file replaced by "
    "a directory makes skxmr.load raise IsADirectoryError('[Errno 21] Is a directory: "
    "<fd number>') from os.fdopen in _open_regular, naming neither the file nor the "
    "problem, instead of ModelFormatError '<file>: not a regular file'. Reproducer: "
    "skxmr.save(m, d); os.remove(d + '/coef.1.data.npy'); os.mkdir(d + "
    "'/coef.1.data.npy'); skxmr.load(d)")


_DIR_CASES = [("xr", "coef.1.data.npy"), ("indexer", "skxmr_model.json")]


def directory_outcomes(shared):
    cases = [_edit(shared, kind, name, "dir") for kind, name in _DIR_CASES]
    return run_batch("model_dir", cases, shared)


def test_load_file_replaced_by_a_directory(saved_models):
    for (kind, name), out in zip(_DIR_CASES, directory_outcomes(saved_models)):
        assert out["type"] == "ModelFormatError" and name in out["message"], out


_RESIGNED_BUG = (
    "issue 21 finding, owner of skxmr/_persistence.py fixes: skxmr.load accepts weight "
    "files whose values were changed and re-signed (sha256 in skxmr_model.json "
    "recomputed) or read with verify=False: NaN/inf in coef.<t>.data.npy or in the "
    "'val' field of search.<t>.entries.npy, and coef.<t>.data values that disagree "
    "with the stored search layout. The model predicts from the layout, its coef_ says "
    "otherwise, and a pickled copy (layout rebuilt from coef_) answers differently. "
    "Reproducer: save; a = np.load(d + '/coef.3.data.npy'); a[:] = np.nan (or 1e30); "
    "np.save(...); set meta['arrays']['coef.3.data']['sha256'] to the new file's "
    "sha256; m = skxmr.load(d): loads, np.isnan(m.coef_[2].data).all(), and "
    "pickle.loads(pickle.dumps(m)).predict_topk(X) != m.predict_topk(X)")


def resigned_outcomes(shared):
    cases = []
    # nan, 1e30 and inf in the weights (format 2 keeps coef_ only: no search.*)
    for name, xor, field in [("coef.3.data.npy", 8, 0), ("coef.3.data.npy", 7, 0),
                             ("coef.1.data.npy", 9, 0)]:
        case = _edit(shared, "xr", name, "npy_value", xor=xor, other=field, at=0.5,
                     rehash=True)
        cases.append(case)
    return run_batch("model_dir", cases, shared)


def test_load_rejects_resigned_weights(saved_models):
    for out in resigned_outcomes(saved_models):
        assert out["status"] == "error" or (out["finite"] and out["pickle_same"]), out
