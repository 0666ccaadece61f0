"""XR-Linear side by side: skxmr's XRLinearClassifier vs libpecos.

    python -m benchmarks.bench_xrlinear [--data debian-debtags ...] [--latency-queries 300]

Datasets (default: the five of issue 4): debian-debtags, debian-deps (TF-IDF rows, already
L2-normalised), delicious, rcv1-subset1 and the EURLex-4K piece (rows L2-normalised here,
for both libraries: linear XMC models expect unit rows, see ../shared/data/README.md).

Same features, same settings: B=16, leaf 100, beam 10, top-k 10, threshold 0.1, tfn
negatives, l3-hinge, squared hinge, C=1, 2 threads. Each library runs in its own process
(libpecos in the venv of benchmarks/references/make_pecos_env.sh). Reported: fit seconds,
batch predict seconds, single-query latency (median of one-row calls from Python), peak
RSS, P@1/3/5.
"""

import argparse
import json
import pickle
import resource

import numpy as np

from benchmarks._common import (
    NORMALIZE,
    PECOS_PYTHON,
    add_data_argument,
    add_threads_argument,
    data_folder,
    ensure_env,
    load_split,
    module_command,
    parser_for,
    row_latencies,
    run_json,
    timed,
)


def run_skxmr(folder, normalize_rows, threads, n_latency, seed=0):
    """Worker: fit, predict and time skxmr in this process; print JSON."""
    from skxmr import XRLinearClassifier
    from skxmr.metrics import label_propensity, topk_report

    X, Y, Xt, Yt = load_split(folder, normalize_rows)
    peak_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = XRLinearClassifier(beam_size=10, top_k=10, threshold=0.1, n_jobs=threads,
                               random_state=seed)
    _, fit_seconds = timed(model.fit, X, Y)
    peak_after_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ranking, predict_seconds = timed(model.predict_topk, Xt)
    # PSP@k with propensities from the training labels (Jain et al., A=0.55, B=1.5).
    report = topk_report(Yt, ranking, ks=(1, 3, 5), propensity=label_propensity(Y))
    latencies = row_latencies(model.predict_topk, Xt, n_latency)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Model size: the pickled estimator (measured after the peak RSS reading above).
    model_size_mb = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20
    print(json.dumps({
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "latency_ms_median": 1000 * float(np.median(latencies)),
        "peak_rss_mb": peak_rss,
        "peak_rss_mb_after_fit": peak_after_fit,
        "peak_rss_mb_after_load": peak_after_load,
        "model_size_mb": model_size_mb,
        **{f"{metric}@{k}": report[f"{metric}@{k}"]
           for metric in ("P", "nDCG", "PSP") for k in (1, 3, 5)},
        "weights_nnz": int(sum(W.nnz for W in model.coef_)),
        "level_sizes": [1] + [int(n) for n in model.tree_.level_sizes],
    }))


DEFAULT_DATA = ["debian-debtags", "debian-deps", "delicious", "rcv1-subset1",
                "eurlex-4k-subset-nyu-dev"]


def main():
    parser = parser_for(__doc__)
    add_data_argument(parser, DEFAULT_DATA)
    parser.add_argument("--normalize", action="store_true", help=argparse.SUPPRESS)
    add_threads_argument(parser)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=1,
                        help="run seeds 0..N-1 for both libraries and report means "
                             "(the small test sets are noisy)")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_skxmr(args.worker, args.normalize, args.threads, args.latency_queries,
                  args.seed)
        return
    ensure_env(PECOS_PYTHON)
    print("| data | library | P@1 | P@3 | P@5 | fit (s) | batch predict (s) | "
          "one query (ms) | peak RSS after fit (MB) | peak RSS (MB) | tree level sizes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for folder in map(data_folder, args.data):
        name = folder.name
        flags = ["--normalize"] if name in NORMALIZE else []
        runs_ours, runs_pecos = [], []
        for seed in range(args.seeds):
            runs_ours.append(run_json(module_command(
                "benchmarks.bench_xrlinear", "--worker", folder, "--threads",
                args.threads, "--latency-queries", args.latency_queries,
                "--seed", seed, *flags,
            )))
            runs_pecos.append(run_json([
                *module_command("benchmarks.references.pecos_runner", python=PECOS_PYTHON),
                "xlinear", "--data-dir", str(folder), "--nr-splits", "16", "--max-leaf-size", "100",
                "--beam-size", "10", "--threshold", "0.1", "--threads",
                str(args.threads), "--seed", str(seed), "--only-topk", "10",
                "--latency-queries", str(args.latency_queries), *flags,
            ]))
        ours, pecos = mean_runs(runs_ours), mean_runs(runs_pecos)
        if args.seeds > 1:
            name = f"{name} (mean of {args.seeds} seeds)"
        print(f"| {name} | skxmr | {100 * ours['P@1']:.2f} | {100 * ours['P@3']:.2f} "
              f"| {100 * ours['P@5']:.2f} | {ours['fit_seconds']:.2f} | "
              f"{ours['predict_seconds']:.3f} | {ours['latency_ms_median']:.3f} | "
              f"{ours['peak_rss_mb_after_fit']:.0f} | {ours['peak_rss_mb']:.0f} | "
              f"{ours['level_sizes']} |")
        print(f"| {name} | libpecos | {pecos_value(pecos, 'P@1')} | "
              f"{pecos_value(pecos, 'P@3')} | {pecos_value(pecos, 'P@5')} | "
              f"{pecos.get('fit_seconds', float('nan')):.2f} | "
              f"{pecos.get('predict_seconds', float('nan')):.3f} "
              f"(predict-only {pecos.get('predict_only_seconds', float('nan')):.3f}) | "
              f"{pecos.get('latency_ms_median', float('nan')):.3f} "
              f"(predict-only {pecos.get('latency_predict_only_ms_median', float('nan')):.3f})"
              f" | {pecos.get('peak_rss_mb_after_fit', float('nan')):.0f} | "
              f"{pecos.get('peak_rss_mb', float('nan')):.0f} | "
              f"{pecos.get('level_sizes', '?')} |", flush=True)


def mean_runs(runs):
    """Mean of every numeric field over the runs (other fields: the first run's)."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(np.mean([r[key] for r in runs]))
    return out


def pecos_value(result, key):
    value = result.get(key, result.get(key.lower().replace("@", "_at_")))
    if value is None:
        return "?"
    return f"{100 * value:.2f}" if value <= 1 else f"{value:.2f}"


if __name__ == "__main__":
    main()
