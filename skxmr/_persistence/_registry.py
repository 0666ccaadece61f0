"""The classes :func:`skxmr.save` and :func:`skxmr.load` know: ``{class name:
codec}``. Loading looks the manifest's class name up here and nowhere else (it
never imports what a file names)."""

from collections import namedtuple

from skxmr._persistence import _indexer, _xrlinear, _xtransformer
from skxmr._indexer import LabelIndexer
from skxmr._xrlinear import XRLinearClassifier
from skxmr._xtransformer import XTransformerClassifier

Codec = namedtuple("Codec", ["cls", "dump", "load"])
Codec.__doc__ = """``dump(model, writer) -> (params, attributes)`` writes a model's
arrays with the container's writer and returns its JSON parts;
``load(meta, reader) -> model`` reads them back, checked."""

CODECS = {
    "XRLinearClassifier": Codec(XRLinearClassifier, _xrlinear.dump, _xrlinear.load),
    "LabelIndexer": Codec(LabelIndexer, _indexer.dump, _indexer.load),
    "XTransformerClassifier": Codec(XTransformerClassifier, _xtransformer.dump,
                                    _xtransformer.load),
}


def codec_of(model):
    """The codec of exactly ``type(model)`` (no subclasses), or None."""
    codec = CODECS.get(type(model).__name__)
    return codec if codec is not None and type(model) is codec.cls else None
