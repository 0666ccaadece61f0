"""Speed of two skxmr source trees against libpecos, in one interleaved run.

    python -m benchmarks.references.bench_before_after --before /tmp/skxmr_before \\
        --after . [--data debian-deps debian-debtags] [--repeats 3] [--threads 2]

``--before`` and ``--after`` are skxmr checkouts with built kernels. Each measurement is
a fresh process: skxmr runs this file as its worker with ``PYTHONPATH=DIR`` (working
directory a temporary folder; the worker stops if ``skxmr`` is not imported from DIR),
libpecos runs ``benchmarks/references/pecos_runner.py xlinear`` in the venv of
``make_pecos_env.sh`` (created if missing).

Same features and settings for all three, those of ``bench_xrlinear``: the
``X.trn/Y.trn/X.tst/Y.tst.npz`` of each shared/data folder, PIFA + hierarchical
clustering with B=16 and leaves of at most 100 labels, beam 10, top-k 10, weight
threshold 0.1, tfn negatives, l3-hinge, squared hinge, C=1, ``--threads`` threads,
seed 0 (``XRLinearClassifier(beam_size=10, top_k=10, threshold=0.1, n_jobs=threads,
random_state=0)``, all else default). Measured: fit seconds (PIFA and indexing
included), batch ``predict_topk`` of the whole test set, one-query latency (median of
``--latency-queries`` one-row calls from Python) and P@1 (a check that the runs are the
same model). libpecos's predict and latency are its fastest mode, the C++ predict-only
model (its regular predict is also printed).

Interleaving: for repeat r the three runs go in a rotated order (before, after,
libpecos; then after, libpecos, before; ...) so that the machine's drift hits all
alike. Reported: the median over the repeats of each number, and the ratios
after/before, after/libpecos and before/libpecos (below 1: the first is faster), then
the after/before ratio of each round (the two runs of a round are close in time).
The summary is the fastest run of each (``--statistic min``, the default: load from other
jobs only ever slows a run down, so on a shared machine the minimum is the most stable
estimate) or the median (``--statistic median``). ``--json FILE`` also writes every raw run;
``--from-json FILE`` prints the tables of a saved run again without running anything.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("fit_seconds", "predict_seconds", "latency_ms")


# ----------------------------------------------------------------------------- worker
# Runs with PYTHONPATH=<tree>: imports nothing from the benchmarks package (the tree
# may have another one); this checkout's benchmarks/_common.py is loaded by its path.
def _common_module():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "_common.py"
    spec = importlib.util.spec_from_file_location("_bench_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(tree_dir, folder, threads, n_latency, seed):
    import numpy as np
    import scipy.sparse as sp

    import skxmr
    from skxmr import XRLinearClassifier
    from skxmr.metrics import precision_at_k

    where = Path(skxmr.__file__).resolve()
    if Path(tree_dir).resolve() not in where.parents:
        raise SystemExit(f"imported skxmr from {where}, not from {tree_dir}")
    X, Y, Xt, Yt = (sp.load_npz(Path(folder) / f"{part}.npz").tocsr()
                    for part in ("X.trn", "Y.trn", "X.tst", "Y.tst"))
    model = XRLinearClassifier(beam_size=10, top_k=10, threshold=0.1, n_jobs=threads,
                               random_state=seed)
    common = _common_module()
    _, fit_seconds = common.timed(model.fit, X, Y)
    ranking, predict_seconds = common.timed(model.predict_topk, Xt)
    latencies = common.row_latencies(model.predict_topk, Xt, n_latency)
    print(json.dumps({
        "skxmr": str(where), "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "latency_ms": 1000 * float(np.median(latencies)),
        "P@1": 100 * float(precision_at_k(Yt, ranking, k=1)),
    }))


# ----------------------------------------------------------------------------- driver
def run_skxmr(tree_dir, folder, args):
    from benchmarks._common import run_json

    env = {**os.environ, "PYTHONPATH": str(Path(tree_dir).resolve())}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tree_dir),
           str(folder), "--threads", str(args.threads), "--latency-queries",
           str(args.latency_queries), "--seed", str(args.seed)]
    with tempfile.TemporaryDirectory() as cwd:
        return run_json(cmd, cwd=cwd, env=env)


def run_pecos(folder, args):
    from benchmarks._common import PECOS_PYTHON, module_command, run_json

    raw = run_json([
        *module_command("benchmarks.references.pecos_runner", python=PECOS_PYTHON),
        "xlinear", "--data-dir", str(folder), "--nr-splits", "16", "--max-leaf-size",
        "100", "--beam-size", "10", "--threshold", "0.1", "--only-topk", "10",
        "--threads", str(args.threads), "--seed", str(args.seed),
        "--latency-queries", str(args.latency_queries)])
    return {"fit_seconds": raw["fit_seconds"],
            "predict_seconds": min(raw["predict_seconds"],
                                   raw.get("predict_only_seconds", float("inf"))),
            "latency_ms": min(raw["latency_ms_median"],
                              raw.get("latency_predict_only_ms_median", float("inf"))),
            "predict_seconds_regular": raw["predict_seconds"],
            "latency_ms_regular": raw["latency_ms_median"],
            "P@1": raw["P@1"]}


def summary(runs, statistic):
    reduce = statistics.median if statistic == "median" else min
    return {key: reduce(r[key] for r in runs)
            for key in runs[0] if isinstance(runs[0][key], (int, float))}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="skxmr checkout with built kernels")
    parser.add_argument("--after", help="skxmr checkout with built kernels")
    parser.add_argument("--data", nargs="+", default=["debian-deps", "debian-debtags"],
                        help="dataset names under shared/data or folders "
                             "(default: debian-deps debian-debtags)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="interleaved rounds per dataset (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--statistic", choices=["min", "median"], default="min",
                        help="summary of the rounds (default min)")
    parser.add_argument("--from-json", help="print the tables of a saved --json run")
    parser.add_argument("--json", help="write every raw run to this file")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.threads, args.latency_queries, args.seed)
        return
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        args.before, args.after = saved.get("before"), saved.get("after")
        args.repeats, args.threads = saved.get("repeats"), saved.get("threads")
        args.latency_queries = saved.get("latency_queries")
        report(saved["runs"], args, None)
        return
    if not (args.before and args.after):
        parser.error("--before and --after are required")
    args.before, args.after = (str(Path(d).resolve()) for d in (args.before, args.after))
    from benchmarks._common import PECOS_PYTHON, data_folder, ensure_env

    ensure_env(PECOS_PYTHON)
    start = time.perf_counter()
    runners = {"before": lambda f: run_skxmr(args.before, f, args),
               "after": lambda f: run_skxmr(args.after, f, args),
               "libpecos": lambda f: run_pecos(f, args)}
    names = list(runners)
    raw = {}
    for folder in map(data_folder, args.data):
        runs = {name: [] for name in names}
        for r in range(args.repeats):
            for name in names[r % 3:] + names[:r % 3]:
                runs[name].append(runners[name](folder))
                print(f"# {folder.name} round {r + 1} {name}: " + ", ".join(
                    f"{k} {runs[name][-1][k]:.3f}" for k in (*METRICS, "P@1")),
                    flush=True)
        raw[folder.name] = runs
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "before": str(args.before), "after": str(args.after), "repeats": args.repeats,
            "threads": args.threads, "latency_queries": args.latency_queries,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": raw}, indent=1))
    report(raw, args, time.perf_counter() - start)


def report(raw, args, seconds):
    names = ["before", "after", "libpecos"]
    table = [(name, {lib: summary(runs[lib], args.statistic) for lib in names})
             for name, runs in raw.items()]
    print(f"\n{args.statistic} of {args.repeats} interleaved rounds, {args.threads} threads, "
          f"{args.latency_queries} one-row queries; before={args.before} "
          f"after={args.after}; libpecos: predict-only mode for predict and latency\n")
    print("| data | metric | before | after | libpecos | after / before | "
          "after / libpecos | before / libpecos |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, med in table:
        for metric, label, digits in (("fit_seconds", "fit (s)", 2),
                                      ("predict_seconds", "batch predict (s)", 3),
                                      ("latency_ms", "one query (ms)", 3),
                                      ("P@1", "P@1", 2)):
            b, a, p = (med[lib][metric] for lib in names)
            ratios = (" | -" * 3 if metric == "P@1"
                      else f" | {a / b:.2f} | {a / p:.2f} | {b / p:.2f}")
            print(f"| {name} | {label} | {b:.{digits}f} | {a:.{digits}f} | "
                  f"{p:.{digits}f}{ratios} |")
    print("\nafter / before, round by round:")
    for name, runs in raw.items():
        for metric in METRICS:
            ratios = [a[metric] / b[metric] for a, b in zip(runs["after"], runs["before"])]
            print(f"- {name} {metric}: " + ", ".join(f"{r:.2f}" for r in ratios))
    if seconds is not None:
        print(f"\n{seconds:.0f} s in all")


if __name__ == "__main__":
    main()
