"""JSON value codecs of the model format: constructor parameters, random_state,
labels (each with its exact type), feature names, matrix shapes and dtype names.

Every ``*_to_json`` raises ``TypeError``/``ValueError`` at save time for a value
the format cannot hold; every ``*_from_json`` raises
:class:`~skxmr.ModelFormatError` for a value a valid file cannot hold.
"""

import math
from numbers import Integral, Real

import numpy as np

from skxmr._persistence._errors import ModelFormatError, check_int

_MAX_LABEL_DEPTH = 32
_NUMPY_LABEL_TYPES = {"b": bool, "i": int, "u": int, "f": float, "U": str, "S": bytes}


# ------------------------------------------------------------------ dtypes
def dtype_name(dtype, where):
    """The JSON name of a dtype the format stores (plain bool/int/float/str)."""
    dtype = np.dtype(dtype)
    if (dtype.fields is not None or dtype.subdtype is not None
            or dtype.kind not in "biufU"):
        raise TypeError(f"{where}: arrays of dtype {dtype} cannot be saved.")
    return dtype.str


def parse_dtype(name, where):
    """The dtype named ``name`` by :func:`dtype_name`, else ModelFormatError."""
    if not isinstance(name, str) or len(name) > 16:
        raise ModelFormatError(f"{where}: invalid dtype {name!r:.40}.")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        raise ModelFormatError(f"{where}: invalid dtype {name!r}.") from None
    if (dtype.fields is not None or dtype.subdtype is not None
            or dtype.kind not in "biufU" or dtype.str != name):
        raise ModelFormatError(f"{where}: dtype {name!r} is not allowed.")
    return dtype


# -------------------------------------------------------------- parameters
def plain(value, where):
    """A JSON scalar for a parameter or a small fitted value."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; only finite numbers can be saved.")
        return value
    raise TypeError(
        f"{where} of type {type(value).__name__} cannot be saved in the safe format "
        "(only None, bool, int, float and str parameters); use pickle or joblib."
    )


def random_state_to_json(value, where):
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise ValueError(
        f"{where} is a {type(value).__name__}; only an int or None random_state can be "
        "saved (the state of a random generator is not). Set an int or None with "
        "set_params before saving, or use pickle/joblib."
    )


def params_to_json(est, where, **hooks):
    """The constructor parameters of ``est`` as JSON; ``hooks[key](value)``
    encodes those that are not plain scalars (e.g. ``indexer``)."""
    out = {}
    for key, value in est.get_params(deep=False).items():
        name = f"{where}.{key}"
        if key == "random_state":
            out[key] = random_state_to_json(value, name)
        elif key in hooks:
            out[key] = hooks[key](value)
        else:
            out[key] = plain(value, name)
    return out


def params_from_json(cls, params, where, check=None, **hooks):
    """An estimator of ``cls`` from its JSON parameters, validated by its own
    constraints (and ``check(est)``, which may raise ``ValueError``);
    ``hooks[key](value)`` decodes the parameters :func:`params_to_json` hooked."""
    if not isinstance(params, dict):
        raise ModelFormatError(f"{where}: the parameters must be a JSON object.")
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ModelFormatError(f"{where}: unknown parameters {unknown} for "
                               f"{cls.__name__}.")
    kwargs = {}
    for key, value in params.items():
        if key in hooks:
            kwargs[key] = hooks[key](value)
        elif type(value) is int and not -(2**62) <= value <= 2**62:
            raise ModelFormatError(f"{where}: parameter {key!r} is out of range.")
        elif value is None or type(value) in (bool, int, float, str):
            kwargs[key] = value
        else:
            raise ModelFormatError(f"{where}: parameter {key!r} has a value of "
                                   f"unsupported type {type(value).__name__}.")
    est = cls(**kwargs)
    try:
        est._validate_params()  # scikit-learn's own parameter validation
        if check is not None:
            check(est)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFormatError(f"{where}: invalid {cls.__name__} parameters: "
                               f"{exc}") from None
    return est


# ------------------------------------------------------------------ labels
def encode_label(value, depth=0):
    """A label as JSON, keeping its exact type (see :func:`decode_label`)."""
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return value
    if kind is float:
        return ["float", value.hex()]
    if kind is bytes:
        return ["bytes", value.hex()]
    if kind is tuple and depth < _MAX_LABEL_DEPTH:
        return ["tuple", [encode_label(v, depth + 1) for v in value]]
    if (isinstance(value, np.generic) and value.dtype.kind in "biufUS"
            and value.dtype.fields is None):
        return ["numpy", value.dtype.str, encode_label(value.item(), depth + 1)]
    raise ValueError(
        f"the label {value!r:.60} of type {kind.__name__} cannot be saved in the safe "
        "format (labels must be str, int, float, bool, None, bytes, tuples of these, "
        "or NumPy scalars of such kinds); use pickle or joblib for this model."
    )


def decode_label(x, depth=0):
    """The label :func:`encode_label` encoded; ``ValueError`` for anything else."""
    if x is None or type(x) in (str, bool, int):
        return x
    if type(x) is list and x and type(x[0]) is str and depth < _MAX_LABEL_DEPTH:
        tag = x[0]
        if tag == "float" and len(x) == 2 and type(x[1]) is str:
            return float.fromhex(x[1])
        if tag == "bytes" and len(x) == 2 and type(x[1]) is str:
            return bytes.fromhex(x[1])
        if tag == "tuple" and len(x) == 2 and type(x[1]) is list:
            return tuple(decode_label(v, depth + 1) for v in x[1])
        if tag == "numpy" and len(x) == 3 and isinstance(x[1], str) and len(x[1]) <= 16:
            dtype = np.dtype(x[1])
            value = decode_label(x[2], depth + 1)
            if (dtype.fields is not None or dtype.str != x[1]
                    or type(value) is not _NUMPY_LABEL_TYPES.get(dtype.kind)):
                raise ValueError(f"inconsistent NumPy label {x!r:.60}")
            return dtype.type(value)
    raise ValueError(f"unrecognised label encoding {x!r:.60}")


# ------------------------------------------------------- names and shapes
def names_to_json(model, n_features):
    """``feature_names_in_`` as a list of str, or None."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    names = list(names)
    if len(names) != n_features or not all(isinstance(n, str) for n in names):
        raise ValueError("feature_names_in_ must hold one str per feature.")
    return [str(n) for n in names]


def names_from_json(names, n_features, where):
    if names is None:
        return None
    if (not isinstance(names, list) or len(names) != n_features
            or not all(type(n) is str for n in names)):
        raise ModelFormatError(
            f"{where}: feature_names_in_ must be null or a list of {n_features} "
            "strings."
        )
    out = np.empty(n_features, dtype=object)
    out[:] = names
    return out


def shape_from_json(value, where):
    if not isinstance(value, list) or len(value) != 2:
        raise ModelFormatError(f"{where}: a matrix shape must be a list of 2 ints.")
    return tuple(check_int(d, where) for d in value)
