"""Python face of the OpenMP helpers."""

from skxmr._cython._openmp_helpers import (
    _openmp_effective_n_threads,
    _openmp_parallelism_enabled,
)


def openmp_enabled():
    """Return True when skxmr's kernels were compiled with OpenMP."""
    return _openmp_parallelism_enabled()


def effective_n_threads(n_jobs=None):
    """Threads a kernel uses for ``n_jobs`` (None = all available CPUs, -1 = all,
    -2 = all but one, ...). Always 1 without OpenMP."""
    if n_jobs is not None and not -2**31 < n_jobs < 2**31:
        raise ValueError(
            f"n_jobs={n_jobs} is out of range: use None or -1 (all CPUs), -2 (all but "
            "one), ... or a number of threads below 2**31.")
    return _openmp_effective_n_threads(n_jobs)
