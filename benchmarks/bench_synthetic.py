"""Time and peak memory of ``make_xmc_classification`` at 10k, 100k and 1M labels.

Each size runs in a fresh Python subprocess so that the peak resident set size
(``resource.getrusage(...).ru_maxrss``) of one size does not leak into the
next. Sizes (all with 100,000 features and the default 5 labels and 50
feature tokens per sample):

=========  =========
n_labels   n_samples
=========  =========
10,000     50,000
100,000    100,000
1,000,000  200,000
=========  =========

Usage::

    python -m benchmarks.bench_synthetic            # all sizes, markdown table
    python -m benchmarks.bench_synthetic --repeat 3 # best time of 3 runs each

"""

import argparse
import json
import os
import subprocess

from benchmarks._common import (
    REPO,
    SYNTHETIC_SAMPLES,
    module_command,
    parser_for,
)
from benchmarks._common import (
    SYNTHETIC_FEATURES as N_FEATURES,
)

SIZES = sorted(SYNTHETIC_SAMPLES.items())  # (n_labels, n_samples)


def _child(n_labels, n_samples, repeat):
    import resource
    import time

    import numpy as np

    from skxmr.datasets import make_xmc_classification

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        X, Y = make_xmc_classification(
            n_samples=n_samples,
            n_features=N_FEATURES,
            n_labels=n_labels,
            random_state=0,
        )
        times.append(time.perf_counter() - tic)
        if len(times) < repeat:
            del X, Y
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out_mb = (
        X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
        + Y.data.nbytes + Y.indices.nbytes + Y.indptr.nbytes
    ) / 2**20
    print(
        json.dumps(
            dict(
                n_labels=n_labels,
                n_samples=n_samples,
                seconds=min(times),
                peak_rss_mb=peak_kb / 1024,
                base_rss_mb=base_kb / 1024,
                output_mb=out_mb,
                x_nnz=int(X.nnz),
                y_nnz=int(Y.nnz),
                labels_seen=int(np.count_nonzero(Y.getnnz(axis=0))),
            )
        )
    )


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.repeat)
        return

    rows = []
    for n_labels, n_samples in SIZES:
        cmd = module_command("benchmarks.bench_synthetic", "--child", n_labels, n_samples,
                             "--repeat", args.repeat)
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))

    print(f"n_features = {N_FEATURES:,}, cpus = {os.cpu_count()}, "
          f"best of {args.repeat}\n")
    print(
        "| n_labels | n_samples | time (s) | peak RSS (MB) | RSS after import (MB)"
        " | X+Y size (MB) | X nnz | Y nnz | labels with >= 1 positive |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n_labels']:,} | {r['n_samples']:,} | {r['seconds']:.2f} "
            f"| {r['peak_rss_mb']:.0f} | {r['base_rss_mb']:.0f} "
            f"| {r['output_mb']:.0f} | {r['x_nnz']:,} | {r['y_nnz']:,} "
            f"| {r['labels_seen']:,} |"
        )


if __name__ == "__main__":
    main()
