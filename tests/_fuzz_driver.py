"""Driver of tests/test_fuzzing.py: runs a batch of generated cases in THIS process
(started by the test as a subprocess) and reports each case's outcome.

Usage: ``python _fuzz_driver.py CASES.pkl``. The cases file is a pickled dict
``{"scenario": name, "cases": [...], **shared}`` written by the test itself (trusted).
For every case the driver prints ``@@start <i>`` before running it and ``@@done <i>
<json>`` after it, flushing each line, so that the test names the exact case that
crashed (segfault, SIGBUS, SIGFPE: the process dies) or hung (the test's timeout
kills the process) from the last ``@@start`` without a ``@@done``.

A case's JSON outcome is ``{"status": "ok", ...}`` or ``{"status": "error", "type":
name, "mro": [base class names], "message": str, "where": step, "tb": traceback}``.
"""

import hashlib
import json
import os
import pickle
import shutil
import stat
import sys
import tempfile
import threading
import traceback
import warnings

import numpy as np

warnings.simplefilter("ignore")


def _emit(tag, i, payload=None):
    line = f"@@{tag} {i}" + ("" if payload is None else " " + json.dumps(payload))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _error(exc, where):
    return {"status": "error", "type": type(exc).__name__,
            "mro": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc)[:500], "where": where,
            "tb": traceback.format_exc()[-2500:]}


# ----------------------------------------------------------------- (a) model dirs
_HOSTILE_JSON = [None, True, False, 0, -1, 1, 2, 3, 7, 2**31, 2**63, -(2**63), 10**30,
                 0.5, -0.0, 1e308, "", "x", "<f4", "<i8", "|O", "entry", "squared_hinge",
                 [], [0], [-1], [2**40], [1, 2, 3], {}, {"a": 1}]


def _rehash(root, name):
    """Recompute the checksum the metadata lists for the array file ``name``."""
    meta_path = os.path.join(root, "skxmr_model.json")
    if not os.path.isfile(meta_path):  # never open a FIFO here: it would block
        return
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except ValueError:
        return
    key = name[:-4]
    try:  # the metadata may have been edited into any shape
        entry = meta["arrays"][key]
        if not os.path.isfile(os.path.join(root, name)):
            return
        with open(os.path.join(root, name), "rb") as f:
            entry["sha256"] = hashlib.sha256(f.read()).hexdigest()
    except (TypeError, KeyError, IndexError):
        return
    with open(meta_path, "w") as f:
        json.dump(meta, f)


def _json_walk(obj, walk):
    """Follow ``walk`` (a list of ints) into ``obj``: (container, key) or None."""
    parent, key = None, None
    for step in walk:
        if isinstance(obj, dict) and obj:
            keys = sorted(obj)
            parent, key = obj, keys[step % len(keys)]
        elif isinstance(obj, list) and obj:
            parent, key = obj, step % len(obj)
        else:
            break
        obj = parent[key]
    return None if parent is None else (parent, key)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def apply_edit(root, edit):
    """Apply one edit (a dict, see test_fuzzing.model_edits) to the directory."""
    names = sorted(os.listdir(root))
    if not names:
        return
    op = edit["op"]
    name = names[edit["file"] % len(names)]
    path = os.path.join(root, name)
    if op in ("flip", "truncate", "npy_value", "npy_resize") and not os.path.isfile(path):
        return
    if op == "flip":
        data = bytearray(open(path, "rb").read())
        if data:
            data[int(edit["at"] * (len(data) - 1))] ^= edit["xor"]
        open(path, "wb").write(bytes(data))
    elif op == "truncate":
        data = open(path, "rb").read()
        open(path, "wb").write(data[: int(edit["at"] * len(data))])
    elif op in ("swap", "copy_over"):
        other = os.path.join(root, names[edit["other"] % len(names)])
        if other == path or not (os.path.isfile(path) and os.path.isfile(other)):
            return
        a, b = open(path, "rb").read(), open(other, "rb").read()
        open(path, "wb").write(b)
        if op == "swap":
            open(other, "wb").write(a)
    elif op == "remove":
        _remove(path)
    elif op == "add":
        extra = ["extra.npy", "coef.9.data.npy", ".hidden", "skxmr_model.json.tmp",
                 "encoder"][edit["other"] % 5]
        target = os.path.join(root, extra)
        if not os.path.lexists(target):
            open(target, "wb").write(bytes(edit["bytes"]))
    elif op == "fifo":
        _remove(path)
        os.mkfifo(path)
    elif op == "symlink":
        targets = [os.path.join(root, names[edit["other"] % len(names)]), "/dev/zero",
                   "/dev/null", os.path.join(root, "no-such-file"), root]
        target = targets[edit["xor"] % len(targets)]
        if target == path:
            return
        if os.path.isfile(path) and edit["xor"] % 2:  # a link to a copy elsewhere
            copy = path + ".real"
            shutil.copyfile(path, copy)
            target = copy
        _remove(path)
        os.symlink(target, path)
    elif op == "dir":
        _remove(path)
        os.mkdir(path)
        if edit["xor"] % 2:
            open(os.path.join(path, "inner.npy"), "wb").write(b"\x93NUMPY")
    elif op == "chmod":
        os.chmod(path, 0)
    elif op == "json":
        meta_path = os.path.join(root, "skxmr_model.json")
        if not os.path.isfile(meta_path):
            return
        try:
            meta = json.load(open(meta_path))
        except Exception:
            return
        hit = _json_walk(meta, edit["walk"])
        if hit is None:
            return
        parent, key = hit
        action = edit["action"]
        if action == "set":
            parent[key] = _HOSTILE_JSON[edit["value"] % len(_HOSTILE_JSON)]
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[str(key) + "_"] = parent.pop(key)
        elif action == "add" and isinstance(parent, dict):
            parent["unexpected_key"] = 1
        elif action == "nudge" and isinstance(parent[key], (int, float)) \
                and not isinstance(parent[key], bool):
            parent[key] = parent[key] + (1 if edit["value"] % 2 else -1)
        with open(meta_path, "w") as f:
            json.dump(meta, f)
    elif op in ("npy_value", "npy_resize"):
        try:
            array = np.load(path, allow_pickle=False)
        except Exception:
            return
        flat = array.reshape(-1).copy()
        if op == "npy_value":
            if not flat.size:
                return
            k = int(edit["at"] * (flat.size - 1))
            if flat.dtype.names:  # a structured record (beam-search entries)
                field = flat.dtype.names[edit["other"] % len(flat.dtype.names)]
                target = flat[field]
            else:
                target = flat
            if target.dtype.kind in "iu":
                choices = [-1, -(2**31), 2**31 - 1, flat.size, flat.size + 1, 0,
                           int(target[k]) + 1, int(target[k]) - 1]
                value = choices[edit["xor"] % len(choices)]
                info = np.iinfo(target.dtype)
                target[k] = min(max(value, info.min), info.max)
            else:
                choices = [np.nan, np.inf, -np.inf, 3e38, -3e38, 0.0, 1e-45, 1e30]
                target[k] = choices[edit["xor"] % len(choices)]
            array = flat.reshape(array.shape)
        else:
            keep = max(0, flat.size + (1 if edit["xor"] % 2 else -1))
            array = np.resize(flat, keep)
        with open(path, "wb") as f:
            np.save(f, array)
        if edit["rehash"]:
            _rehash(root, name)
    if edit.get("rehash") and op in ("flip", "truncate", "swap", "copy_over"):
        for n in (name,) + ((names[edit["other"] % len(names)],)
                            if op in ("swap", "copy_over") else ()):
            if n.endswith(".npy"):
                _rehash(root, n)


def _same_topk(a, b):
    return (a[0].shape == b[0].shape and np.array_equal(a[0], b[0])
            and np.array_equal(a[1].view(np.uint32), b[1].view(np.uint32)))


def run_model_dir(case, shared):
    import skxmr

    work = tempfile.mkdtemp(prefix="skxmr-fuzz-", dir=shared["scratch"])
    root = os.path.join(work, "model")
    try:
        shutil.copytree(shared["models"][case["kind"]], root, symlinks=True)
        for edit in case["edits"]:
            apply_edit(root, edit)
        meta = os.path.join(root, "skxmr_model.json")
        json_changed = True  # the metadata is not checksummed: a changed one may
        if os.path.isfile(meta) and not os.path.islink(meta):  # change the model
            with open(meta, "rb") as f:
                json_changed = f.read() != shared["json_original"][case["kind"]]
        fifos = [os.path.join(dp, n) for dp, _, fs in os.walk(root) for n in fs
                 if stat.S_ISFIFO(os.lstat(os.path.join(dp, n)).st_mode)]
        blocked = []
        done = threading.Event()

        def unblock():
            """A reader blocked in open() on a FIFO gets a writer that closes at
            once (EOF), so that the load goes on; the outcome says it happened."""
            while not done.wait(0.05):
                for fifo in fifos:
                    try:
                        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                    except OSError:  # ENXIO: nobody is reading it
                        continue
                    blocked.append(os.path.basename(fifo))
                    os.close(fd)

        watcher = threading.Thread(target=unblock, daemon=True)
        if fifos:
            watcher.start()
        try:
            model = skxmr.load(root, mmap_mode=case["mmap_mode"], verify=case["verify"])
        except BaseException as exc:
            out = _error(exc, "load")
            out["fifo_blocked"] = blocked
            return out
        finally:
            done.set()
            if fifos:
                watcher.join()
        out = {"status": "ok", "loaded": True, "type": type(model).__name__,
               "json_changed": json_changed, "fifo_blocked": blocked}
        try:
            if type(model).__name__ == "XRLinearClassifier":
                Xq = shared["X_query"]
                got = model.predict_topk(Xq)
                out["same"] = bool(_same_topk(got, shared["expected_xr"]))
                one = model.predict_topk(Xq[:1])
                out["same"] &= bool(_same_topk(one, tuple(a[:1] for a in got)))
                pred = model.predict(Xq)
                out["predict_rows"] = int(pred.shape[0]) if hasattr(pred, "shape") \
                    else len(pred)
                out["finite"] = bool(all(np.isfinite(W.data).all() for W in model.coef_)
                                     and np.isfinite(got[1]).all())
                # the stored beam-search layout and coef_ tell the same model: a
                # pickled copy (which rebuilds the layout from coef_) answers the same
                copy = pickle.loads(pickle.dumps(model))
                out["pickle_same"] = bool(_same_topk(copy.predict_topk(Xq), got))
            elif type(model).__name__ == "LabelIndexer":
                leaves = model.predict(shared["centroids"])
                out["same"] = bool(np.array_equal(leaves, shared["expected_leaves"])
                                   and model.tree_.equals(shared["expected_tree"]))
            else:
                out["same"] = False
        except BaseException as exc:
            return _error(exc, "predict")
        return out
    finally:
        for dirpath, dirnames, filenames in os.walk(work):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------- (b) XMC files
def run_xmc(case, shared):
    sys.path.insert(0, shared["tests_dir"])
    import test_xmc_format as ref  # the plain-Python reference parser

    from skxmr.datasets import load_xmc_file

    data = case["data"]
    try:
        ref.check_against_reference(data)  # same matrices or same error line
    except AssertionError as exc:
        return {"status": "mismatch", "message": str(exc)[:1500]}
    except BaseException as exc:
        return _error(exc, "load")
    path = os.path.join(shared["scratch"], "case.txt")  # also through a real file
    with open(path, "wb") as f:
        f.write(data)
    try:
        X, Y = load_xmc_file(path)
    except ValueError as exc:
        return {"status": "error", "type": type(exc).__name__,
                "mro": [c.__name__ for c in type(exc).__mro__],
                "message": str(exc)[:300], "where": "load"}
    except BaseException as exc:
        return _error(exc, "load")
    return {"status": "ok", "shape": [list(X.shape), list(Y.shape)],
            "nnz": [int(X.nnz), int(Y.nnz)]}


# ------------------------------------------------------------- (c) fit / predict
def run_fit(case, shared):
    from skxmr import LabelIndexer, XRLinearClassifier

    X, y = case["X"], case["y"]
    try:
        if case["estimator"] == "indexer":
            est = LabelIndexer(**case["params"]).fit(X, y)
            est.transform(y) if case["transform"] else None
            return {"status": "ok", "n_leaves": int(est.tree_.n_leaves)
                    if hasattr(est.tree_, "n_leaves") else -1}
        est = XRLinearClassifier(**case["params"]).fit(X, y)
    except BaseException as exc:
        return _error(exc, "fit")
    try:
        labels, scores = est.predict_topk(case["X_pred"])
        est.predict(case["X_pred"])
    except BaseException as exc:
        return _error(exc, "predict")
    return {"status": "ok", "labels_shape": list(labels.shape),
            "labels_dtype": labels.dtype.str, "scores_dtype": scores.dtype.str,
            "n_classes": len(est.classes_),
            "labels_in_range": bool(((labels >= -1) & (labels < len(est.classes_)))
                                    .all())}


# ------------------------------------------------------ (d) concurrent refit
def run_concurrent(case, shared):
    """Threads predict on one model while the main thread refits it on label set B;
    each prediction must equal the full old answer or the full new answer."""
    from skxmr import LabelIndexer, XRLinearClassifier

    X, ya, yb, Xq = case["X"], case["y_a"], case["y_b"], case["X_query"]

    def make():
        return XRLinearClassifier(LabelIndexer(max_leaf_size=4, branching_factor=2),
                                  top_k=4, random_state=0, n_jobs=1)

    try:
        ref_b = make().fit(X, yb)
        new = (ref_b.predict_topk(Xq), ref_b.predict(Xq))
        model = make().fit(X, ya)
        old = (model.predict_topk(Xq), model.predict(Xq))
    except BaseException as exc:
        return _error(exc, "setup")
    stop = threading.Event()
    bad = []
    seen = {"old": 0, "new": 0}

    def same(a, b):
        (la, sa), pa = a
        (lb, sb), pb = b
        return (np.array_equal(la, lb) and np.array_equal(sa, sb)
                and [list(r) for r in pa] == [list(r) for r in pb])

    def same_part(a, b, part):
        if part == 0:
            (la, sa), (lb, sb) = a[0], b[0]
            return np.array_equal(la, lb) and np.array_equal(sa, sb)
        return [list(r) for r in a[1]] == [list(r) for r in b[1]]

    def reader():
        while not stop.is_set() and len(bad) < 3:
            try:
                got = (model.predict_topk(Xq), model.predict(Xq))
            except BaseException as exc:
                bad.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            # Each call sees one model; two calls in a row may straddle a refit.
            for part in (0, 1):
                if same_part(got, old, part):
                    seen["old"] += 1
                elif same_part(got, new, part):
                    seen["new"] += 1
                else:
                    bad.append("a prediction equal to neither the old nor the new "
                               f"model's ({('predict_topk', 'predict')[part]})")

    threads = [threading.Thread(target=reader) for _ in range(case["n_threads"])]
    for t in threads:
        t.start()
    try:
        for k in range(case["n_refits"]):
            model.fit(X, yb if k % 2 == 0 else ya)
            old, new = new, old
    except BaseException as exc:
        bad.append(f"refit raised {type(exc).__name__}: {exc}"[:300])
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:  # the harness itself: after the refits, the model answers as expected
        final_ok = same((model.predict_topk(Xq), model.predict(Xq)), old)
    except BaseException as exc:
        return _error(exc, "final predict")
    return {"status": "ok", "bad": bad[:3], "seen": seen, "final_ok": bool(final_ok)}


def main():
    with open(sys.argv[1], "rb") as f:
        spec = pickle.load(f)
    run = globals()["run_" + spec["scenario"]]
    import skxmr  # (import time is not counted per case)

    here = os.path.dirname(skxmr.__file__)
    if os.path.realpath(here) != os.path.realpath(spec["skxmr_dir"]):
        sys.exit(f"the driver imported skxmr from {here}, the test runs "
                 f"{spec['skxmr_dir']}")

    for i, case in enumerate(spec["cases"]):
        _emit("start", i)
        try:
            out = run(case, spec)
        except BaseException as exc:  # a bug of the driver or the harness
            out = _error(exc, "driver")
        _emit("done", i, out)


if __name__ == "__main__":
    main()
