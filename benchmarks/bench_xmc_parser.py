"""Read speed of skxmr's XMC-format parser against scikit-learn's svmlight parser.

The training split of a dataset folder (``X.trn.npz``, ``Y.trn.npz``) is written once in
the Extreme Classification Repository format (``skxmr.datasets.dump_xmc_file``) and
in multilabel svmlight format (``sklearn.datasets.dump_svmlight_file``) into a cache
folder; then each file is read ``--repeat`` times and the best time is kept::

    python -m benchmarks.bench_xmc_parser [--data debian-deps]

Output: a markdown table with file sizes, best read times and the ratio skxmr / sklearn.
"""

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from benchmarks._common import data_folder, parser_for
from skxmr.datasets import dump_xmc_file, load_xmc_file


def best_time(fn, repeat):
    best = np.inf
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    parser = parser_for(__doc__)
    parser.add_argument("--data", default="debian-deps",
                        help="dataset name under shared/data or folder (default debian-deps)")
    parser.add_argument("--split", default="trn", help="file suffix: X.<split>.npz")
    parser.add_argument("--cache", default=None, help="folder for the text files")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = data_folder(args.data)
    X = sp.load_npz(data / f"X.{args.split}.npz").tocsr().astype(np.float32)
    Y = sp.load_npz(data / f"Y.{args.split}.npz").tocsr()
    cache = Path(args.cache or Path(tempfile.gettempdir()) / "skxmr_bench_xmc")
    cache.mkdir(parents=True, exist_ok=True)
    xmc_path = cache / f"{data.name}.{args.split}.xmc.txt"
    svm_path = cache / f"{data.name}.{args.split}.svmlight.txt"

    t0 = time.perf_counter()
    dump_xmc_file(X, Y, xmc_path)
    t_dump_xmc = time.perf_counter() - t0
    t0 = time.perf_counter()
    dump_svmlight_file(X, Y, str(svm_path), multilabel=True, zero_based=True)
    t_dump_svm = time.perf_counter() - t0

    t_xmc, (X1, Y1) = best_time(lambda: load_xmc_file(xmc_path), args.repeat)
    t_svm, (X2, y2) = best_time(
        lambda: load_svmlight_file(
            str(svm_path),
            n_features=X.shape[1],
            dtype=np.float32,
            multilabel=True,
            zero_based=True,
        ),
        args.repeat,
    )
    assert (X1 != X).nnz == 0 and (Y1 != Y).nnz == 0, "skxmr round trip differs"
    assert X2.shape == X.shape and len(y2) == X.shape[0]

    mib = 1 / 2**20
    print(
        f"dataset {data.name} ({args.split}): X {X.shape} nnz={X.nnz}, "
        f"Y {Y.shape} nnz={Y.nnz}; best of {args.repeat}; "
        f"dump xmc {t_dump_xmc:.2f} s, dump svmlight {t_dump_svm:.2f} s\n"
    )
    print("| reader | file | size (MiB) | read (s) | ratio skxmr/sklearn |")
    print("|---|---|---:|---:|---:|")
    print(
        f"| skxmr.datasets.load_xmc_file | XMC | {os.path.getsize(xmc_path) * mib:.1f} "
        f"| {t_xmc:.3f} | {t_xmc / t_svm:.3f} |"
    )
    print(
        f"| sklearn.datasets.load_svmlight_file | svmlight | "
        f"{os.path.getsize(svm_path) * mib:.1f} | {t_svm:.3f} | 1 |"
    )


if __name__ == "__main__":
    main()
