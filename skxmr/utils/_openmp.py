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
    return _openmp_effective_n_threads(n_jobs)
