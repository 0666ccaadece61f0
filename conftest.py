"""pytest configuration: doctests of modules whose optional dependency is missing
are not collected (``skxmr._dask`` needs the ``dask`` extra)."""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("dask") is None or importlib.util.find_spec(
        "distributed") is None:
    collect_ignore.append("skxmr/_dask.py")
