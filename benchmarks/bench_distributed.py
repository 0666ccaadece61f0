"""Local fit vs a dask.distributed LocalCluster (issue 8), public API only.

    python -m benchmarks.bench_distributed [--labels 100000 1000000] [--threads 2]

For each size, a fresh subprocess generates ``make_xmc_classification`` data (100,000
features, the sample counts of ``_common.SYNTHETIC_SAMPLES``, random_state=0; 20,000
held-out rows), then:

- fits ``XRLinearClassifier(n_jobs=threads, random_state=0)`` locally (OpenMP threads);
- starts ``LocalCluster(n_workers=threads, threads_per_worker=1, processes=True)``
  (start-up not timed) and fits the same model inside
  ``joblib.parallel_config(backend="dask")``; checks that both models are identical
  (tree arrays and every ``coef_`` level, exactly);
- predicts the held-out rows locally and with ``predict_dask`` (blocks of 2,000 rows)
  and checks that the predictions are identical;
- reports peak RSS of this process (the client) and of each worker.

(The per-unit costs that ``doc/scaling_out.rst`` quotes were measured by an earlier
version of this script through skxmr's private unit runner; they are not measurable
through the public API and are no longer produced here.)

Prints one JSON line per size and a markdown table.
"""

import argparse
import json
import subprocess

from benchmarks._common import (
    REPO,
    SYNTHETIC_FEATURES,
    SYNTHETIC_SAMPLES,
    add_threads_argument,
    module_command,
    parser_for,
)

N_TEST = 20_000


def _peak_rss_mb():
    """Peak resident memory of this process (VmHWM: per process, unlike ru_maxrss,
    which a worker forked from a server process inherits)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _same_model(a, b):
    import numpy as np

    tree_a, tree_b = a.tree_, b.tree_
    same_tree = all(np.array_equal(getattr(tree_a, name), getattr(tree_b, name))
                    for name in ("level_ptr", "child_ptr", "label_perm"))
    return bool(same_tree and len(a.coef_) == len(b.coef_) and all(
        np.array_equal(A.data, B.data) and np.array_equal(A.indices, B.indices)
        and np.array_equal(A.indptr, B.indptr) for A, B in zip(a.coef_, b.coef_)))


def _child(n_labels, threads):
    import time

    import dask
    import dask.array as da
    import joblib
    import numpy as np
    from distributed import Client, LocalCluster

    from skxmr import XRLinearClassifier, predict_dask
    from skxmr.datasets import make_xmc_classification

    n_samples = SYNTHETIC_SAMPLES.get(n_labels, 2 * n_labels)
    X, Y = make_xmc_classification(n_samples + N_TEST, SYNTHETIC_FEATURES, n_labels,
                                   random_state=0)
    X, Xt, Y = X[:n_samples], X[n_samples:], Y[:n_samples]
    out = {"n_labels": n_labels, "n_samples": n_samples, "nnz_X": int(X.nnz),
           "threads": threads}

    start = time.perf_counter()
    local = XRLinearClassifier(n_jobs=threads, random_state=0).fit(X, Y)
    out["fit_local_s"] = time.perf_counter() - start
    out["level_sizes"] = [int(s) for s in local.tree_.level_sizes]
    start = time.perf_counter()
    expected = local.predict_topk(Xt)
    out["predict_local_s"] = time.perf_counter() - start

    with LocalCluster(n_workers=threads, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as client:
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            remote = XRLinearClassifier(n_jobs=None, random_state=0).fit(X, Y)
        out["fit_cluster_s"] = time.perf_counter() - start
        out["identical"] = _same_model(local, remote)
        Xd = da.from_array(Xt, chunks=(2000, -1), asarray=False)
        start = time.perf_counter()
        labels, scores = dask.compute(*predict_dask(remote, Xd))
        out["predict_cluster_s"] = time.perf_counter() - start
        out["predict_identical"] = bool(np.array_equal(labels, expected[0])
                                        and np.array_equal(scores, expected[1]))
        out["worker_peak_rss_mb"] = sorted(client.run(_peak_rss_mb).values())
    out["model_mb"] = sum(W.data.nbytes + W.indices.nbytes + W.indptr.nbytes
                          for W in local.coef_) / 2**20
    out["client_peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--labels", type=int, nargs="+", default=[100_000, 1_000_000])
    add_threads_argument(parser)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.threads)
        return
    rows = []
    for n_labels in args.labels:
        proc = subprocess.run(
            module_command("benchmarks.bench_distributed", "--child", n_labels,
                           "--threads", args.threads),
            capture_output=True, text=True, check=True, cwd=REPO)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
        print(line, flush=True)
        rows.append(json.loads(line))
    print("\n| labels | samples | levels | fit local (s) | fit cluster (s) | identical "
          "(model and predictions) | predict local / dask (s) | model MB | "
          "peak RSS client / workers (MB) |")
    print("|" + "---:|" * 9)
    for r in rows:
        print(f"| {r['n_labels']:,} | {r['n_samples']:,} | {r['level_sizes']} | "
              f"{r['fit_local_s']:.1f} | {r['fit_cluster_s']:.1f} | "
              f"{r['identical'] and r['predict_identical']} | "
              f"{r['predict_local_s']:.2f} / {r['predict_cluster_s']:.2f} | "
              f"{r['model_mb']:.0f} | {r['client_peak_rss_mb']:.0f} / "
              f"{', '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} |")


if __name__ == "__main__":
    main()
