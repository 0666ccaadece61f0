"""How skxmr's XRLinearClassifier scales with the number of labels (issue 5 groundwork).

    python -m benchmarks.bench_scaling [--labels 10000 100000 1000000] [--threads 2]

For each size, a fresh subprocess generates ``make_xmc_classification`` data (100,000
features, the sample counts of ``_common.SYNTHETIC_SAMPLES``, random_state=0), holds out 5,000
rows, fits ``XRLinearClassifier(n_jobs=threads, random_state=0)`` on the rest, and
measures fit seconds, peak RSS, batch predict of the held-out rows and one-query latency
(median of 300 one-row calls from Python). Prints a markdown table; the per-query cost
should grow roughly with log(L) (tree depth), not with L.
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
    peak_rss_mb,
    row_latencies,
    timed,
)

N_TEST = 5_000


def _child(n_labels, threads, n_latency):
    import numpy as np

    from skxmr import XRLinearClassifier
    from skxmr.datasets import make_xmc_classification
    from skxmr.metrics import precision_at_k

    n_samples = SYNTHETIC_SAMPLES.get(n_labels, 2 * n_labels)
    X, Y = make_xmc_classification(n_samples + N_TEST, SYNTHETIC_FEATURES, n_labels,
                                   random_state=0)
    X, Xt, Y, Yt = X[:n_samples], X[n_samples:], Y[:n_samples], Y[n_samples:]
    model = XRLinearClassifier(n_jobs=threads, random_state=0)
    _, fit_seconds = timed(model.fit, X, Y)
    ranking, predict_seconds = timed(model.predict_topk, Xt)
    latencies = row_latencies(model.predict_topk, Xt, n_latency)
    print(json.dumps({
        "n_labels": n_labels, "n_samples": n_samples,
        "level_sizes": [int(s) for s in model.tree_.level_sizes],
        "fit_seconds": fit_seconds, "predict_seconds": predict_seconds,
        "latency_ms": 1000 * float(np.median(latencies)),
        "p_at_1": float(precision_at_k(Yt, ranking, k=1)),
        "peak_rss_mb": peak_rss_mb(),
    }))


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--labels", type=int, nargs="+", default=sorted(SYNTHETIC_SAMPLES))
    add_threads_argument(parser)
    parser.add_argument("--latency-queries", type=int, default=300)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.threads, args.latency_queries)
        return
    print("| labels | samples | tree level sizes | fit (s) | peak RSS (MB) | "
          f"predict {N_TEST} rows (s) | one query (ms) | P@1 |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for n_labels in args.labels:
        out = subprocess.run(
            module_command("benchmarks.bench_scaling", "--child", n_labels, "--threads",
                           args.threads, "--latency-queries", args.latency_queries),
            capture_output=True, text=True, cwd=REPO, check=False)
        if out.returncode != 0:
            print(f"| {n_labels} | failed: {out.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['n_labels']:,} | {r['n_samples']:,} | {r['level_sizes']} | "
              f"{r['fit_seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
              f"{r['predict_seconds']:.2f} | {r['latency_ms']:.3f} | "
              f"{100 * r['p_at_1']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
