"""Post-processors: how beam search turns node scores into path scores.

A post-processor is a pair (transform, combiner). Beam search scores a tree node
``c`` for a query ``x`` with its linear model, ``s_c = w_c . [x; bias]``, applies the
transform to ``s_c`` and combines the result with the accumulated score of the
node's parent. The root starts with the combiner's identity (1 for a product, 0 for
a sum). The path score of a label is the combination along its path from the root.

Registered names (``POST_PROCESSORS``):

``"l3-hinge"`` (default), and any ``"lP-hinge"`` with an integer ``P >= 1``
    transform ``exp(-max(0, 1 - s) ** P)``, in ``(0, 1]`` (1 once the margin is
    reached, ``s >= 1``); combiner: product along the path. ``l2-hinge`` suits
    models trained with the squared hinge loss, ``l1-hinge`` those trained with
    the hinge loss; PECOS uses ``l3-hinge`` by default for both.
``"sigmoid"``
    transform ``1 / (1 + exp(-s))``; combiner: product. Suits logistic models.
``"log-sigmoid"``
    transform ``log(sigmoid(s))``, computed stably (``-log1p(exp(-s))`` for
    ``s >= 0``, ``s - log1p(exp(s))`` otherwise); combiner: sum. Ranks exactly like
    ``"sigmoid"`` but never underflows on deep trees.
``"noop"``
    no transform and no combination: a node's score is its own raw score ``s``
    (the beam keeps the nodes with the highest raw scores at every level).

The kernels receive the integer ``code`` (and ``power`` for the hinge family),
defined once in ``skxmr/_cython/_postprocess.pxd`` (a ``cdef enum`` with the
inline transform/combine functions the kernels use) and read from there here;
:func:`check_post_processor` is the one validation of a post-processor name. The
Python ``transform``/``combine`` functions here are the reference semantics, used
by tests and by code that needs scores outside the kernels.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.utils._param_validation import StrOptions

# The kernels' codes, defined once: the cdef enum of skxmr/_cython/_postprocess.pxd.
from skxmr._cython._postprocess import HINGE, LOG_SIGMOID, NOOP, SIGMOID
from skxmr._cython._postprocess import _initial as _kernel_initial

__all__ = ["POST_PROCESSORS", "PostProcessor", "check_post_processor",
           "get_post_processor"]


# How each code combines a child's transformed score with its parent's path score.
_COMBINERS = {NOOP: "none", HINGE: "product", SIGMOID: "product", LOG_SIGMOID: "sum"}
# The names with a fixed code (the hinge family is "lP-hinge", P = 1 .. _MAX_POWER).
_NAMED_CODES = {"noop": NOOP, "sigmoid": SIGMOID, "log-sigmoid": LOG_SIGMOID}

_HINGE_RE = re.compile(r"^l([1-9][0-9]*)-hinge$")
_MAX_POWER = 64  # beyond this exp(-t**P) is just a step function


@dataclass(frozen=True)
class PostProcessor:
    """A transform/combiner pair.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"l3-hinge"``.
    code : int
        Kernel code (``NOOP``, ``HINGE``, ``SIGMOID`` or ``LOG_SIGMOID``).
    power : int
        The exponent ``P`` of the ``lP-hinge`` family, 0 otherwise.
    combiner : {"product", "sum", "none"}
        How a child's transformed score joins its parent's path score.
    initial : float
        Path score of the root (the combiner's identity).
    """

    name: str
    code: int
    power: int
    combiner: str
    initial: float

    def transform(self, s):
        """Transformed scores, float64 (vectorised reference implementation)."""
        s = np.asarray(s, dtype=np.float64)
        if self.code == HINGE:
            return np.exp(-np.maximum(0.0, 1.0 - s) ** self.power)
        if self.code == SIGMOID:
            out = np.empty_like(s)
            pos = s >= 0
            out[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
            e = np.exp(s[~pos])
            out[~pos] = e / (1.0 + e)
            return out
        if self.code == LOG_SIGMOID:
            return np.where(s >= 0, -np.log1p(np.exp(-np.abs(s))),
                            s - np.log1p(np.exp(np.minimum(s, 0.0))))
        return s

    def combine(self, parent, child):
        """Path score of a child from its parent's path score and its own
        transformed score."""
        if self.combiner == "product":
            return parent * child
        if self.combiner == "sum":
            return parent + child
        return np.broadcast_to(child, np.broadcast(parent, child).shape).copy()


def _make(name):
    return _make_cached(name) if isinstance(name, str) else None


def _from_code(name, code, power):
    return PostProcessor(name, code, power, _COMBINERS[code],
                         float(_kernel_initial(code)))


@lru_cache(maxsize=64)
def _make_cached(name):
    if name in _NAMED_CODES:
        return _from_code(name, _NAMED_CODES[name], 0)
    match = _HINGE_RE.match(name)
    if match is not None and int(match.group(1)) <= _MAX_POWER:
        return _from_code(name, HINGE, int(match.group(1)))
    return None


class _Registry(Mapping):
    """Name -> PostProcessor. Iterates over the usual names; also accepts any
    ``"lP-hinge"`` with ``1 <= P <= 64``."""

    _listed = ("l1-hinge", "l2-hinge", "l3-hinge", "l4-hinge", "log-sigmoid",
               "noop", "sigmoid")

    def __getitem__(self, name):
        pp = _make(name)
        if pp is None:
            raise KeyError(name)
        return pp

    def __contains__(self, name):
        return _make(name) is not None

    def __iter__(self):
        return iter(self._listed)

    def __len__(self):
        return len(self._listed)

    def __repr__(self):
        return f"POST_PROCESSORS({', '.join(self._listed)}, lP-hinge for any P)"


#: The registry of post-processor names (a read-only mapping).
POST_PROCESSORS = _Registry()


def get_post_processor(name):
    """The :class:`PostProcessor` for ``name``; ``ValueError`` for unknown names.

    Examples
    --------
    >>> from skxmr._postprocess import get_post_processor
    >>> pp = get_post_processor("l3-hinge")
    >>> pp.combiner, pp.power
    ('product', 3)
    >>> float(pp.transform(0.0))
    0.36787944117144233
    """
    if isinstance(name, PostProcessor):
        return name
    pp = _make(name)
    if pp is None:
        raise ValueError(
            f"post_processor must be one of {sorted(POST_PROCESSORS)} or "
            f"'lP-hinge' with an integer 1 <= P <= {_MAX_POWER}, got {name!r}."
        )
    return pp


def check_post_processor(name):
    """Validate a post-processor name: its kernel ``(code, power)``.

    The one check of a ``post_processor`` parameter (``ValueError`` naming the
    valid names otherwise); a :class:`PostProcessor` is accepted as well.

    Examples
    --------
    >>> from skxmr._postprocess import check_post_processor, HINGE
    >>> check_post_processor("l2-hinge") == (HINGE, 2)
    True
    """
    pp = get_post_processor(name)
    return pp.code, pp.power


class _PostProcessorNames(StrOptions):
    """The ``_parameter_constraints`` entry of a ``post_processor`` parameter:
    the listed names and any ``"lP-hinge"`` (see :data:`POST_PROCESSORS`)."""

    def __init__(self):
        super().__init__(set(POST_PROCESSORS))

    def is_satisfied_by(self, val):
        return isinstance(val, str) and val in POST_PROCESSORS

    def __str__(self):
        return (f"a str among {sorted(POST_PROCESSORS)} or 'lP-hinge' with an "
                f"integer 1 <= P <= {_MAX_POWER}")


def post_processor_constraint():
    """The ``_parameter_constraints`` entry of a ``post_processor`` parameter."""
    return [_PostProcessorNames()]
