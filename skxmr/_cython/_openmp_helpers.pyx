"""Thread counts for the OpenMP kernels, counted the way scikit-learn counts them."""

import os
from functools import lru_cache

from joblib import cpu_count


@lru_cache(maxsize=1)
def _available_cpus():
    # joblib's count is cgroup/affinity aware but slow (~40 us): count once.
    return cpu_count()


def _openmp_parallelism_enabled():
    """Whether the kernels were compiled with OpenMP support."""
    return bool(SKXMR_OPENMP_ENABLED)


def _openmp_effective_n_threads(n_threads=None):
    """Number of OpenMP threads a kernel should use for ``n_jobs=n_threads``.

    - ``None``: the OpenMP default, i.e. ``OMP_NUM_THREADS`` when set, else the
      number of CPUs available to the process (cgroup/affinity aware);
    - a positive int: that many threads;
    - a negative int: ``n_cpus + 1 + n_threads`` (``-1`` = all), at least 1.

    Returns 1 when the kernels were built without OpenMP.
    """
    if n_threads == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive or a negative int")
    if not SKXMR_OPENMP_ENABLED:
        return 1
    if os.getenv("OMP_NUM_THREADS"):
        max_n_threads = omp_get_max_threads()
    else:
        max_n_threads = min(omp_get_max_threads(), _available_cpus())
    if n_threads is None:
        return max_n_threads
    if n_threads < 0:
        return max(1, max_n_threads + n_threads + 1)
    return int(n_threads)
