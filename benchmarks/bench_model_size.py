"""Model size on disk and in memory: low-precision weights and varint indices.

Issue 22. For each dataset: fit ``XRLinearClassifier(random_state=0)`` (the defaults)
on the train split, save it with ``weights="float32"``, ``"float16"`` and ``"int8"``,
each with ``index_coding="plain"`` and ``"varint"``, into a temporary directory, and
report per format: the directory size (sum of the file sizes, MB = 2**20 bytes), its
ratio to the float32 plain directory and to libpecos's saved model, the save and load
times (``skxmr.load(path)``, defaults, best of ``--repeat``), the stored weights
(nonzeros of all levels: int8 drops the weights that round to 0), and P@1/P@3/P@5 on
the test split of the loaded model with their difference to the float32 model in
points, plus the share of test rows whose top-5 list changes (in order, and as a
set).

libpecos: when its venv (``benchmarks/references/.pecos``) exists, the same run fits
libpecos's XR-Linear with the same defaults (``pecos_runner xlinear``), saves it and
reports its size and P@k; otherwise its size is read from
``benchmarks/plots/references.json`` (bench_references). ``--memory`` also measures
the memory in use after loading, each in a fresh process, on the test split: the
resident memory (RSS, ``/proc/self/statm``) added by the load and still in use after
one batch prediction, and the nbytes of the loaded arrays (skxmr: ``coef_``, tree and
classes, plus after the prediction the beam-search layout built from ``coef_``;
libpecos Python-side: its scipy matrices), for skxmr float32 plain and int8 varint and
libpecos (Python-side ``XLinearModel.load`` and ``is_predict_only=True``).

    python -m benchmarks.bench_model_size \
        --data debian-debtags debian-deps eurlex-4k-subset-nyu-dev --threads 2 --memory
"""

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks._common import (BENCHMARKS, NORMALIZE, PECOS_PYTHON,
                                add_data_argument, add_threads_argument, current_rss_mb,
                                data_folder, load_split, module_command, parser_for,
                                run_json, timed)

PRECISIONS = ("float32", "float16", "int8")
CODINGS = ("plain", "varint")
DEFAULT_DATA = ("debian-debtags", "debian-deps", "eurlex-4k-subset-nyu-dev")
REFERENCES_JSON = BENCHMARKS / "plots" / "references.json"


def dir_size_bytes(folder):
    """Sum of the sizes of the files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _load_data(name):
    """``(X, Y, X_test, Y_test), bundled``: the bundled debtags texts (TF-IDF of
    :func:`~benchmarks._common.text_vectorizer`) when the shared folder is missing."""
    try:
        folder = data_folder(name)
    except SystemExit:
        if name != "debian-debtags":
            raise
        folder = None
    if folder is not None:
        return load_split(folder), False
    from sklearn.preprocessing import MultiLabelBinarizer

    from benchmarks._common import text_vectorizer
    from skxmr.datasets import load_debian_debtags

    train, test = (load_debian_debtags(subset=s) for s in ("train", "test"))
    vec = text_vectorizer()
    binarizer = MultiLabelBinarizer(classes=train.target_names, sparse_output=True)
    Y = binarizer.fit_transform(train.target).astype(np.float32).tocsr()
    with warnings.catch_warnings():  # unseen test labels are dropped
        warnings.simplefilter("ignore")
        Y_test = binarizer.transform(test.target).astype(np.float32).tocsr()
    return (vec.fit_transform(train.data), Y, vec.transform(test.data), Y_test), True


def _pecos_recorded_mb(name):
    """libpecos's saved model size (MB) from bench_references' JSON, or None."""
    try:
        results = json.loads(REFERENCES_JSON.read_text())["results"]
        return results[Path(name).name]["libpecos"]["model_size_mb"]
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _pecos_args(folder, threads):
    args = ["--data-dir", folder, "--threads", threads]
    return args + (["--normalize"] if Path(folder).name in NORMALIZE else [])


def _pecos_fit(folder, threads, save_dir):
    """libpecos's XR-Linear (pecos_runner xlinear, its defaults) saved in
    ``save_dir``; its result JSON."""
    cmd = module_command("benchmarks.references.pecos_runner", "xlinear",
                         *_pecos_args(folder, threads), "--save-dir", save_dir,
                         "--latency-queries", 20, "--predict-only", 0,
                         python=PECOS_PYTHON)
    return run_json(cmd)


def _pecos_memory(folder, threads, save_dir, predict_only):
    cmd = module_command("benchmarks.references.pecos_runner", "load",
                         *_pecos_args(folder, threads), "--model-dir", save_dir,
                         "--predict-only", int(predict_only), python=PECOS_PYTHON)
    return run_json(cmd)


def _nbytes(arrays):
    return int(sum(np.asarray(a).nbytes for a in arrays))


def _model_nbytes(model):
    """``(nbytes of coef_, tree and classes, nbytes of the beam-search layout)``
    of a one-tree model (the layout: 0 before the first prediction)."""
    arrays = [model.tree_.level_ptr, model.tree_.child_ptr, model.tree_.label_perm,
              model.classes_]
    for W in model.coef_:
        arrays += [W.data, W.indices, W.indptr]
    searcher = getattr(model, "_beam_searcher", None)
    layout = 0 if searcher is None else _nbytes(
        a for level in searcher[1].chunked_levels for a in level)
    return _nbytes(arrays), layout


def memory_worker(path, folder, threads):
    """In this fresh process: RSS and nbytes of ``skxmr.load(path)``, then after
    one batch prediction of ``folder``'s test split (printed as JSON)."""
    import skxmr
    from skxmr.metrics import precision_at_k

    X_test, Y_test = load_split(folder)[2:]
    before = current_rss_mb()
    model, seconds = timed(skxmr.load, path)
    after_load = current_rss_mb()
    nbytes, _ = _model_nbytes(model)
    model.set_params(n_jobs=threads)
    labels, scores = model.predict_topk(X_test, k=5)
    after_predict = current_rss_mb()
    _, layout = _model_nbytes(model)
    print(json.dumps({"load_seconds": seconds, "rss_mb_before": before,
                      "rss_mb_after_load": after_load,
                      "rss_mb_after_predict": after_predict, "model_nbytes": nbytes,
                      "layout_nbytes": layout,
                      "P@1": 100 * precision_at_k(Y_test, (labels, scores), k=1)}),
          flush=True)


def _memory_row(what, r):
    """A memory-table row from a worker's or pecos_runner's JSON."""
    mb = 2**20
    nbytes, layout = r.get("model_nbytes"), r.get("layout_nbytes") or 0
    return {"model": what, "load_s": r["load_seconds"],
            "rss_load_mb": r["rss_mb_after_load"] - r["rss_mb_before"],
            "rss_predict_mb": r["rss_mb_after_predict"] - r["rss_mb_before"],
            "nbytes_load_mb": None if nbytes is None else nbytes / mb,
            "nbytes_predict_mb": None if nbytes is None else (nbytes + layout) / mb,
            "P@1": r["P@1"]}


def _change_details(labels, scores, ref_labels, ref_scores):
    """Where the top-5 lists change (JSON lines only): rows by first changed rank,
    median/max |score change| over the top-5 entries, the float32 model's median gap
    between consecutive top-5 scores and median rank-5 score."""
    changed = labels != ref_labels
    first = np.argmax(changed, axis=1)[changed.any(axis=1)]
    diff = np.abs(scores - ref_scores)
    return {"first_changed_rank_rows": np.bincount(first + 1, minlength=6)[1:].tolist(),
            "score_change_median": float(np.median(diff)),
            "score_change_max": float(diff.max()),
            "ref_gap_median": float(np.median(ref_scores[:, :-1] - ref_scores[:, 1:])),
            "ref_rank5_score_median": float(np.median(ref_scores[:, -1]))}


def _weights_nnz(model):
    return int(sum(W.nnz for W in model.coef_))


def measure(name, threads, repeat, memory=False):
    import skxmr
    from skxmr import XRLinearClassifier
    from skxmr.metrics import precision_at_k

    (X, Y, X_test, Y_test), bundled = _load_data(name)
    model, fit_s = timed(XRLinearClassifier(random_state=0, n_jobs=threads).fit, X, Y)
    ref_labels, ref_scores = model.predict_topk(X_test, k=5)
    out = {"data": Path(name).name + (" (bundled texts)" if bundled else ""),
           "n_labels": int(Y.shape[1]), "fit_s": fit_s, "rows": [], "memory": [],
           "libpecos_model_mb": None if bundled else _pecos_recorded_mb(name),
           "libpecos_measured": False}
    tmp = tempfile.mkdtemp(prefix="skxmr_size_")
    try:
        pecos_dir = os.path.join(tmp, "libpecos")
        if not bundled and PECOS_PYTHON.exists():
            r = _pecos_fit(data_folder(name), threads, pecos_dir)
            out.update(libpecos_model_mb=dir_size_bytes(pecos_dir) / 2**20,
                       libpecos_measured=True, libpecos_fit_s=r["fit_seconds"],
                       libpecos_pk=[r[f"P@{k}"] for k in (1, 3, 5)])
            print(json.dumps({"data": out["data"], "libpecos": out["libpecos_model_mb"],
                              "P@k": out["libpecos_pk"]}), flush=True)
        base = None
        for weights in PRECISIONS:
            for coding in CODINGS:
                row = _measure_format(model, os.path.join(tmp, f"{weights}.{coding}"),
                                      weights, coding, threads, repeat, X_test, Y_test,
                                      ref_labels, ref_scores, precision_at_k)
                base = base or row
                row["ratio"] = row["size_mb"] / base["size_mb"]
                pecos = out["libpecos_model_mb"]
                row["ratio_pecos"] = None if pecos is None else row["size_mb"] / pecos
                for k in ("P@1", "P@3", "P@5"):
                    row[f"d{k}"] = row[k] - base[k]
                out["rows"].append(row)
                print(json.dumps({"data": out["data"], **row}), flush=True)
        if memory and not bundled:
            folder = data_folder(name)
            for weights, coding in (("float32", "plain"), ("int8", "varint")):
                cmd = module_command("benchmarks.bench_model_size", "--worker-memory",
                                     os.path.join(tmp, f"{weights}.{coding}"),
                                     "--data", folder, "--threads", threads)
                out["memory"].append(_memory_row(f"skxmr {weights} {coding}",
                                                 run_json(cmd)))
            if out["libpecos_measured"]:
                for predict_only in (False, True):
                    what = "libpecos " + ("predict-only (C++)" if predict_only
                                          else "Python-side")
                    out["memory"].append(_memory_row(what, _pecos_memory(
                        folder, threads, pecos_dir, predict_only)))
            for row in out["memory"]:
                print(json.dumps({"data": out["data"], **row}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _measure_format(model, path, weights, coding, threads, repeat, X_test, Y_test,
                    ref_labels, ref_scores, precision_at_k):
    import skxmr

    _, save_s = timed(skxmr.save, model, path, weights=weights, index_coding=coding)
    size = dir_size_bytes(path)
    load_s = []
    for _ in range(repeat):
        loaded, seconds = timed(skxmr.load, path)
        load_s.append(seconds)
    loaded.set_params(n_jobs=threads)
    labels, scores = loaded.predict_topk(X_test, k=5)
    pk = [100 * precision_at_k(Y_test, (labels, scores), k=k) for k in (1, 3, 5)]
    return {"weights": weights, "index_coding": coding, "size_mb": size / 2**20,
            "save_s": save_s, "load_s": min(load_s), "weights_nnz": _weights_nnz(loaded),
            "P@1": pk[0], "P@3": pk[1], "P@5": pk[2],
            "top5_changed": float(np.mean((labels != ref_labels).any(axis=1))),
            "top5_set_changed": float(np.mean(
                [set(a) != set(b) for a, b in zip(labels, ref_labels)])),
            **_change_details(labels, scores, ref_labels, ref_scores)}


def _fmt(value, spec):
    return "" if value is None else format(value, spec)


def table(results):
    lines = ["| data | weights | indices | size (MB) | / float32 plain | / libpecos "
             "| save (s) | load (s) | stored weights | P@1 | P@3 | P@5 "
             "| dP@1 | dP@3 | dP@5 | top-5 changed | top-5 set changed |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:"
             "|---:|---:|"]
    for res in results:
        for r in res["rows"]:
            lines.append(
                f"| {res['data']} | {r['weights']} | {r['index_coding']} "
                f"| {r['size_mb']:.2f} | {r['ratio']:.3f} "
                f"| {_fmt(r['ratio_pecos'], '.3f')} | {r['save_s']:.3f} "
                f"| {r['load_s']:.3f} | {r['weights_nnz']:,} "
                f"| {r['P@1']:.2f} | {r['P@3']:.2f} | {r['P@5']:.2f} "
                f"| {r['dP@1']:+.2f} | {r['dP@3']:+.2f} | {r['dP@5']:+.2f} "
                f"| {100 * r['top5_changed']:.2f}% "
                f"| {100 * r['top5_set_changed']:.2f}% |")
        if res["libpecos_model_mb"] is not None:
            pecos = res["libpecos_model_mb"]
            source = "this run" if res["libpecos_measured"] else "bench_references"
            pk = res.get("libpecos_pk") or [None] * 3
            lines.append(f"| {res['data']} | libpecos float32 ({source}) | "
                         f"| {pecos:.2f} | {pecos / res['rows'][0]['size_mb']:.3f} "
                         "| 1.000 | | | | " + " | ".join(_fmt(v, ".2f") for v in pk)
                         + " | | | | | |")
    return "\n".join(lines)


def memory_table(results):
    lines = ["| data | model | load (s) | RSS added by load (MB) | arrays (MB) "
             "| RSS after 1st predict (MB) | arrays + layout (MB) | P@1 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for r in res["memory"]:
            lines.append(f"| {res['data']} | {r['model']} | {r['load_s']:.3f} "
                         f"| {r['rss_load_mb']:.1f} | {_fmt(r['nbytes_load_mb'], '.1f')} "
                         f"| {r['rss_predict_mb']:.1f} "
                         f"| {_fmt(r['nbytes_predict_mb'], '.1f')} | {r['P@1']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = parser_for(__doc__)
    add_data_argument(parser, DEFAULT_DATA)
    add_threads_argument(parser)
    parser.add_argument("--repeat", type=int, default=3,
                        help="loads per format, the best counts (default 3)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the memory after loading, in fresh processes")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker-memory", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_memory:
        return memory_worker(args.worker_memory, args.data[0], args.threads)
    start = time.perf_counter()
    results = [measure(name, args.threads, args.repeat, args.memory)
               for name in args.data]
    for res in results:
        line = f"{res['data']}: {res['n_labels']} labels, fit {res['fit_s']:.2f} s"
        if res["libpecos_measured"]:
            line += f" (libpecos {res['libpecos_fit_s']:.2f} s)"
        print(line)
    print(table(results))
    if args.memory:
        print(memory_table(results))
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
