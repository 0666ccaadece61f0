"""Model size on disk with low-precision weights, ``skxmr.save(weights=...)``.

Issue 22. For each dataset: fit ``XRLinearClassifier(random_state=0)`` (the defaults)
on the train split, save it with ``weights="float32"``, ``"float16"`` and ``"int8"``
into a temporary directory, and report per precision: the directory size (sum of the
file sizes, MB = 2**20 bytes), its ratio to the float32 directory, the load time
(``skxmr.load(path)``, defaults, best of ``--repeat``), the stored weights (nonzeros of
all levels: int8 drops the weights that round to 0), and P@1/P@3/P@5 on the test split
of the loaded model with their difference to the float32 model in points, plus the
share of test rows whose top-5 list changes (in order, and as a set). libpecos's saved
XR-Linear model size is added from ``benchmarks/plots/references.json``
(bench_references, same defaults) when it holds one for the dataset.

    python -m benchmarks.bench_model_size \
        --data debian-debtags debian-deps eurlex-4k-subset-nyu-dev --threads 2
"""

import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks._common import (BENCHMARKS, add_data_argument, add_threads_argument,
                                data_folder, load_split, parser_for, timed)

PRECISIONS = ("float32", "float16", "int8")
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


def _pecos_size_mb(name):
    """libpecos's saved model size (MB) from bench_references' JSON, or None."""
    try:
        results = json.loads(REFERENCES_JSON.read_text())["results"]
        return results[Path(name).name]["libpecos"]["model_size_mb"]
    except (OSError, KeyError, TypeError, ValueError):
        return None


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


def measure(name, threads, repeat):
    import skxmr
    from skxmr import XRLinearClassifier
    from skxmr.metrics import precision_at_k

    (X, Y, X_test, Y_test), bundled = _load_data(name)
    model, fit_s = timed(XRLinearClassifier(random_state=0, n_jobs=threads).fit, X, Y)
    ref_labels, ref_scores = model.predict_topk(X_test, k=5)
    out = {"data": Path(name).name + (" (bundled texts)" if bundled else ""),
           "n_labels": int(Y.shape[1]), "fit_s": fit_s,
           "libpecos_model_mb": None if bundled else _pecos_size_mb(name), "rows": []}
    tmp = tempfile.mkdtemp(prefix="skxmr_size_")
    try:
        base = None
        for weights in PRECISIONS:
            path = os.path.join(tmp, weights)
            _, save_s = timed(skxmr.save, model, path, weights=weights)
            size = dir_size_bytes(path)
            load_s = []
            for _ in range(repeat):
                loaded, seconds = timed(skxmr.load, path)
                load_s.append(seconds)
            loaded.set_params(n_jobs=threads)
            labels, scores = loaded.predict_topk(X_test, k=5)
            pk = [100 * precision_at_k(Y_test, (labels, scores), k=k)
                  for k in (1, 3, 5)]
            row = {"weights": weights, "size_mb": size / 2**20, "save_s": save_s,
                   "load_s": min(load_s), "weights_nnz": _weights_nnz(loaded),
                   "P@1": pk[0], "P@3": pk[1], "P@5": pk[2],
                   "top5_changed": float(np.mean((labels != ref_labels).any(axis=1))),
                   "top5_set_changed": float(np.mean(
                       [set(a) != set(b) for a, b in zip(labels, ref_labels)])),
                   **_change_details(labels, scores, ref_labels, ref_scores)}
            if base is None:
                base = row
            row["ratio"] = row["size_mb"] / base["size_mb"]
            for k in ("P@1", "P@3", "P@5"):
                row[f"d{k}"] = row[k] - base[k]
            out["rows"].append(row)
            print(json.dumps({"data": out["data"], **row}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def table(results):
    lines = ["| data | weights | size (MB) | / float32 | load (s) | stored weights "
             "| P@1 | P@3 | P@5 | dP@1 | dP@3 | dP@5 | top-5 changed "
             "| top-5 set changed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for r in res["rows"]:
            lines.append(
                f"| {res['data']} | {r['weights']} | {r['size_mb']:.2f} "
                f"| {r['ratio']:.3f} | {r['load_s']:.3f} | {r['weights_nnz']:,} "
                f"| {r['P@1']:.2f} | {r['P@3']:.2f} | {r['P@5']:.2f} "
                f"| {r['dP@1']:+.2f} | {r['dP@3']:+.2f} | {r['dP@5']:+.2f} "
                f"| {100 * r['top5_changed']:.2f}% "
                f"| {100 * r['top5_set_changed']:.2f}% |")
        if res["libpecos_model_mb"] is not None:
            pecos = res["libpecos_model_mb"]
            lines.append(f"| {res['data']} | libpecos (float32, bench_references) "
                         f"| {pecos:.2f} | {pecos / res['rows'][0]['size_mb']:.3f} "
                         "| | | | | | | | | | |")
    return "\n".join(lines)


def main(argv=None):
    parser = parser_for(__doc__)
    add_data_argument(parser, DEFAULT_DATA)
    add_threads_argument(parser)
    parser.add_argument("--repeat", type=int, default=3,
                        help="loads per precision, the best counts (default 3)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = [measure(name, args.threads, args.repeat) for name in args.data]
    for res in results:
        print(f"{res['data']}: {res['n_labels']} labels, fit {res['fit_s']:.2f} s")
    print(table(results))
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
