"""skxmr: extreme multilabel ranking for scikit-learn.

Semantic label indexing, beam-search matching and linear ranking (XR-Linear), in
Python with Cython kernels: ``XRLinearClassifier`` (the model), ``LabelIndexer``
(the label tree), ``skxmr.metrics`` and ``skxmr.datasets``.
"""

from skxmr import _check_build  # noqa: F401  (explains an unbuilt tree)
from skxmr._calibration import CalibratedXMRClassifier
from skxmr._dask import predict_dask
from skxmr._indexer import LabelIndexer
from skxmr._label_tree import LabelTree
from skxmr._persistence import ModelFormatError, load, save
from skxmr._show_versions import show_versions
from skxmr._version import __version__
from skxmr._xrlinear import XRLinearClassifier
from skxmr._xtransformer import XTransformerClassifier

__all__ = [
    "CalibratedXMRClassifier",
    "LabelIndexer",
    "LabelTree",
    "ModelFormatError",
    "XRLinearClassifier",
    "XTransformerClassifier",
    "__version__",
    "datasets",
    "load",
    "metrics",
    "predict_dask",
    "save",
    "show_versions",
]


def __getattr__(name):
    # Submodules load on first use so that ``import skxmr`` stays light.
    if name in ("datasets", "metrics"):
        import importlib

        return importlib.import_module(f"skxmr.{name}")
    raise AttributeError(f"module 'skxmr' has no attribute {name!r}")
