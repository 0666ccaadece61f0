"""Fail early, with instructions, when the compiled kernels are missing."""

try:
    from skxmr._cython import _openmp_helpers  # noqa: F401
except ImportError as exc:  # pragma: no cover - only on a broken install
    if not (exc.name or "").startswith("skxmr"):
        raise  # a missing dependency, not a missing build
    raise ImportError(
        "skxmr's compiled kernels are not built. Install the package with "
        "`pip install .` (or `pip install -e . --no-build-isolation` for "
        "development, which needs Cython and numpy installed first), or run "
        "`python setup.py build_ext --inplace` in the source tree.\n"
        f"Original error: {exc}"
    ) from exc
