"""What the benchmarks share: data folders and loading, arguments, child processes.

Every benchmark is a module of the ``benchmarks`` package, run from the repository root::

    python -m benchmarks.bench_xrlinear --help
    python -m benchmarks.references.bench_references --help

so ``from benchmarks._common import ...`` works without touching ``sys.path``. A
benchmark that measures in a fresh process starts itself again with
:func:`module_command` (``python -m benchmarks.<name> --worker ...``, working directory the
repository root, so the child imports this checkout's ``skxmr``).

Module level needs only the standard library, numpy and scipy (the reference venvs import
it too); scikit-learn and skxmr are imported inside the functions that use them.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
REFERENCES = BENCHMARKS / "references"
CACHE = BENCHMARKS / "_cache"
PLOTS = BENCHMARKS / "plots"
PECOS_PYTHON = REFERENCES / ".pecos" / "bin" / "python"
REFS_PYTHON = REFERENCES / ".refs" / "bin" / "python"


def _shared_data():
    """``$SKXMR_BENCH_DATA``, else the first ``shared/data`` above the checkout."""
    if os.environ.get("SKXMR_BENCH_DATA"):
        return Path(os.environ["SKXMR_BENCH_DATA"])
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path("/work/shared/data")


SHARED_DATA = _shared_data()
PARTS = ("X.trn", "Y.trn", "X.tst", "Y.tst")

# Rows are L2-normalised for these (binary or raw-count features); the TF-IDF sets
# (debian-*, reuters21578-modapte) are unit rows already (see shared/data/README.md).
NORMALIZE = {"delicious", "rcv1-subset1", "eurlex-4k-subset-nyu-dev", "bibtex", "enron",
             "medical", "corel5k"}

# make_xmc_classification sizes shared by bench_scaling, bench_distributed,
# bench_synthetic and references/bench_references: training rows per label count.
SYNTHETIC_SAMPLES = {10_000: 50_000, 100_000: 100_000, 1_000_000: 200_000}
SYNTHETIC_FEATURES = 100_000


# ----------------------------------------------------------------------------- data
def shared_datasets():
    """Names of the folders of shared/data that hold a train/test split."""
    if not SHARED_DATA.is_dir():
        return []
    return sorted(p.name for p in SHARED_DATA.iterdir() if (p / "X.trn.npz").is_file())


def data_folder(name):
    """A data folder from a path or a name under shared/data."""
    path = Path(name)
    if path.is_dir():
        return path.resolve()
    if (SHARED_DATA / str(name)).is_dir():
        return SHARED_DATA / str(name)
    raise SystemExit(f"no data folder {name!r} (nor {SHARED_DATA / str(name)})")


def load_split(folder, normalize=None):
    """``X, Y, X_test, Y_test`` (CSR) of a data folder.

    ``normalize=None`` L2-normalises the feature rows of the sets in :data:`NORMALIZE`.
    """
    folder = data_folder(folder)
    parts = [sp.load_npz(folder / f"{name}.npz").tocsr() for name in PARTS]
    if normalize is None:
        normalize = folder.name in NORMALIZE
    if normalize:
        from sklearn.preprocessing import normalize as l2_normalize

        parts[0], parts[2] = l2_normalize(parts[0]), l2_normalize(parts[2])
    return parts


def load_texts(folder):
    """``texts, Y, test_texts, Y_test`` of a folder with ``trn_texts.txt``/``tst_texts.txt``."""
    folder = data_folder(folder)

    def lines(name):
        with open(folder / name, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    return (lines("trn_texts.txt"), sp.load_npz(folder / "Y.trn.npz").tocsr(),
            lines("tst_texts.txt"), sp.load_npz(folder / "Y.tst.npz").tocsr())


def text_vectorizer():
    """The TF-IDF of XTransformerClassifier's ``vectorizer="tfidf"``, spelled out.

    Word uni- and bigrams, sublinear tf, ``min_df=2``, at most 200,000 terms, float32,
    L2-normalised rows (the settings skxmr documents for its default vectorizer).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2),
                           max_features=200_000, dtype=np.float32)


def pifa(X, Y):
    """PIFA label vectors ``rownorm(rownorm(Y)^T X)`` (CSR float32), with scipy only.

    The formula of DESIGN.md (and of PECOS's ``LabelEmbeddingFactory.pifa``); given to
    both libraries of bench_indexer as precomputed label vectors.
    """
    from sklearn.preprocessing import normalize

    Yn = normalize(sp.csr_matrix(Y, dtype=np.float32))
    Z = normalize(sp.csr_matrix(Yn.T @ sp.csr_matrix(X, dtype=np.float32)))
    Z = sp.csr_matrix(Z, dtype=np.float32)
    Z.eliminate_zeros()
    Z.sort_indices()
    return Z


def topk_to_csr(labels, scores, n_labels):
    """``predict_topk`` output as a CSR ``(n_samples, n_labels)`` (label -1 is padding)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    keep = labels >= 0
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    M = sp.csr_matrix((scores[keep], labels[keep], indptr),
                      shape=(labels.shape[0], n_labels))
    M.sort_indices()
    return M


# ----------------------------------------------------------------------------- arguments
def add_data_argument(parser, default, help_text=None):
    """``--data NAME_OR_FOLDER ...`` (names resolve under shared/data)."""
    parser.add_argument(
        "--data", nargs="+", default=list(default),
        help=help_text or f"dataset names under {SHARED_DATA} or folders "
                          f"(default: {' '.join(map(str, default))})")


def add_threads_argument(parser, default=2):
    parser.add_argument("--threads", type=int, default=default,
                        help=f"threads for every library (default {default})")


def parser_for(doc):
    """An ArgumentParser whose description is the module docstring, layout kept."""
    return argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


# ----------------------------------------------------------------------------- timing
def timed(function, *args, **kwargs):
    """``(function(*args, **kwargs), seconds)``, timed with ``time.perf_counter``."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def row_latencies(predict, X, n, warmup=0):
    """Seconds of ``predict(row)`` for each of the first ``n`` rows of ``X``, one call
    a row (rows sliced before the timed calls; ``warmup`` untimed calls first)."""
    rows = [X[i] for i in range(min(n, X.shape[0]))]
    for row in rows[:warmup]:
        predict(row)
    seconds = np.empty(len(rows))
    for i, row in enumerate(rows):
        start = time.perf_counter()
        predict(row)
        seconds[i] = time.perf_counter() - start
    return seconds


# ----------------------------------------------------------------------------- processes
def module_command(module, *args, python=None):
    """``[python, "-m", module, *args]``; run it with ``cwd=REPO`` (see :func:`run_json`)."""
    return [str(python or sys.executable), "-m", module, *map(str, args)]


def run_json(cmd, cwd=REPO, env=None, check=True):
    """Run ``cmd`` (working directory ``cwd``) and parse the JSON on its last stdout line."""
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, check=False)
    if out.returncode != 0:
        if not check:
            return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} failed:\n{out.stderr[-3000:]}")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def ensure_env(python):
    """Create the reference venv of ``python`` (PECOS_PYTHON or REFS_PYTHON) if missing."""
    if Path(python).exists():
        return
    script = "make_pecos_env.sh" if Path(python) == PECOS_PYTHON else "make_refs_env.sh"
    subprocess.run(["bash", str(REFERENCES / script)], check=True)


def peak_rss_mb():
    """Peak resident memory of this process in MB (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    """Resident memory of this process now, in MB (Linux ``/proc/self/statm``;
    None elsewhere), after a garbage collection."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
