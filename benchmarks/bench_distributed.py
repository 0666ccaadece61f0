"""Local fit vs a dask.distributed LocalCluster (issue 8).

    python benchmarks/bench_distributed.py [--labels 100000 1000000] [--threads 2]

For each size, a fresh subprocess generates ``make_xmc_classification`` data (100,000
features, the sample counts of ``bench_scaling.py``, random_state=0; 20,000 held-out
rows), then:

- fits ``XRLinearClassifier(n_jobs=threads, random_state=0)`` locally (OpenMP threads);
- starts ``LocalCluster(n_workers=threads, threads_per_worker=1, processes=True)``
  (start-up not timed) and fits the same model inside
  ``joblib.parallel_config(backend="dask")``; checks that both models are identical;
- predicts the held-out rows locally and with ``predict_dask`` (blocks of 2,000 rows);
- measures the per-unit costs of the teacher-forcing units (rows, nonzeros, bytes
  shipped, seconds of one unit trained alone with one thread) for ``doc/scaling_out.rst``;
- reports peak RSS of this process (the client) and of each worker.

Prints one JSON line per size and a markdown table.
"""

import argparse
import json
import subprocess
import sys

SAMPLES = {10_000: 50_000, 100_000: 100_000, 1_000_000: 200_000}
N_FEATURES = 100_000
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


def _unit_bytes(unit):
    import scipy.sparse as sp

    total = 0
    for arg in unit:
        if sp.issparse(arg):
            total += arg.data.nbytes + arg.indices.nbytes + arg.indptr.nbytes
    return total


def _child(n_labels, threads):
    import time

    import dask
    import dask.array as da
    import joblib
    import numpy as np
    from distributed import Client, LocalCluster

    from skxmr import XRLinearClassifier, predict_dask
    from skxmr import _distributed as D
    from skxmr.datasets import make_xmc_classification

    n_samples = SAMPLES.get(n_labels, 2 * n_labels)
    X, Y = make_xmc_classification(n_samples + N_TEST, N_FEATURES, n_labels,
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
            out["split_level"] = D._split_level_for(X, Y, remote.tree_, D._slots())
        out["fit_cluster_s"] = time.perf_counter() - start
        out["identical"] = bool(local.tree_.equals(remote.tree_) and all(
            np.array_equal(a.data, b.data) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.indptr, b.indptr)
            for a, b in zip(local.coef_, remote.coef_)))
        Xd = da.from_array(Xt, chunks=(2000, -1), asarray=False)
        start = time.perf_counter()
        labels, scores = dask.compute(*predict_dask(remote, Xd))
        out["predict_cluster_s"] = time.perf_counter() - start
        out["predict_identical"] = bool(np.array_equal(labels, expected[0])
                                        and np.array_equal(scores, expected[1]))
        out["worker_peak_rss_mb"] = sorted(client.run(_peak_rss_mb).values())

    # Per-unit costs, measured one unit at a time with one thread.
    tree = local.tree_
    s = out["split_level"]
    rng = np.random.RandomState(0)
    seeds = [rng.randint(np.iinfo(np.int32).max) for _ in range(tree.n_levels)]
    units, _ = D.tfn_units(X, Y, tree, s, seeds, None, local._solver_params(), 1)
    unit_rows, unit_nnz, unit_bytes, unit_s, unit_w = [], [], [], [], []
    for unit in units:
        unit_rows.append(unit[0].shape[0])
        unit_nnz.append(int(unit[0].nnz))
        unit_bytes.append(_unit_bytes(unit))
        start = time.perf_counter()
        blocks, _ = D._train_subtree(*unit)
        unit_s.append(time.perf_counter() - start)
        unit_w.append(sum(_unit_bytes([W]) for W in blocks))
    start = time.perf_counter()
    D._train_subtree(X, tree.transform(Y, s), D._upper_tree(tree, s), seeds[:s],
                     [0] * s, None, local._solver_params(), 1)
    out["top_levels_s_1thread"] = time.perf_counter() - start
    out["n_units"] = len(units)
    out["unit_rows"] = [int(np.mean(unit_rows)), int(np.max(unit_rows))]
    out["unit_mb"] = [float(np.mean(unit_bytes)) / 2**20,
                      float(np.max(unit_bytes)) / 2**20]
    out["unit_s_1thread"] = [float(np.mean(unit_s)), float(np.max(unit_s)),
                             float(np.sum(unit_s))]
    out["row_copies"] = float(np.sum(unit_rows)) / n_samples
    out["unit_weights_mb"] = [float(np.mean(unit_w)) / 2**20,
                              float(np.max(unit_w)) / 2**20]
    out["model_mb"] = sum(_unit_bytes([W]) for W in local.coef_) / 2**20
    out["X_mb"] = _unit_bytes([X]) / 2**20
    out["client_peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.threads)
        return
    rows = []
    for n_labels in args.labels:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n_labels), "--threads",
             str(args.threads)], capture_output=True, text=True, check=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
        print(line, flush=True)
        rows.append(json.loads(line))
    print("\n| labels | samples | levels | split level / units | fit local (s) | fit "
          "cluster (s) | identical | predict local / dask (s) | unit rows mean / max "
          "| unit MB mean / max | unit s (1 thread) mean / max / sum | top levels s | "
          "row copies | peak RSS client / workers (MB) |")
    print("|" + "---:|" * 14)
    for r in rows:
        print(f"| {r['n_labels']:,} | {r['n_samples']:,} | {r['level_sizes']} | "
              f"{r['split_level']} / {r['n_units']} | {r['fit_local_s']:.1f} | "
              f"{r['fit_cluster_s']:.1f} | "
              f"{r['identical'] and r['predict_identical']} | "
              f"{r['predict_local_s']:.2f} / {r['predict_cluster_s']:.2f} | "
              f"{r['unit_rows'][0]:,} / {r['unit_rows'][1]:,} | "
              f"{r['unit_mb'][0]:.1f} / {r['unit_mb'][1]:.1f} | "
              f"{r['unit_s_1thread'][0]:.2f} / {r['unit_s_1thread'][1]:.2f} / "
              f"{r['unit_s_1thread'][2]:.1f} | {r['top_levels_s_1thread']:.1f} | "
              f"{r['row_copies']:.2f} | {r['client_peak_rss_mb']:.0f} / "
              f"{', '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} |")


if __name__ == "__main__":
    main()
