"""``skxmr.show_versions()``: what a bug report needs."""

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

_DEPENDENCIES = (
    "numpy", "scipy", "scikit-learn", "joblib", "Cython",
    "torch", "sentence-transformers", "dask", "distributed",
)


def _installed_version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _versions():
    from skxmr._version import __version__
    from skxmr.utils import effective_n_threads, openmp_enabled

    system = {
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "machine": platform.platform(),
    }
    deps = {"skxmr": __version__}
    deps.update({name: _installed_version(name) for name in _DEPENDENCIES})
    build = {
        "built with OpenMP": openmp_enabled(),
        "threads for n_jobs=None": effective_n_threads(None),
    }
    return system, deps, build


def show_versions():
    """Print the versions of skxmr, its dependencies, and how the kernels were built.

    Examples
    --------
    >>> import skxmr
    >>> skxmr.show_versions()  # doctest: +SKIP
    """
    system, deps, build = _versions()
    for title, section in (("System", system), ("Python dependencies", deps),
                           ("Build", build)):
        print(f"\n{title}:")
        for key, value in section.items():
            print(f"{key:>24}: {value}")
