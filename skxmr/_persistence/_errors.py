"""The error of the model format and the two checks every part of it uses."""

MAX_DIM = 2**62


class ModelFormatError(ValueError):
    """A model directory is damaged, inconsistent, hostile or of another format.

    Raised by :func:`skxmr.load` with a message naming the file and the problem
    (missing, truncated or non-regular file, checksum mismatch, unknown, older or
    newer format version, unknown keys, wrong dtypes or shapes, non-finite
    weights, out-of-range indices, arrays the validators reject). A subclass of
    ``ValueError``.

    Examples
    --------
    >>> import os, tempfile
    >>> import skxmr
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "skxmr_model.json"), "w") as f:
    ...     _ = f.write("not JSON")
    >>> try:
    ...     skxmr.load(folder)
    ... except skxmr.ModelFormatError as exc:
    ...     print(type(exc).__name__, isinstance(exc, ValueError))
    ModelFormatError True
    """


ModelFormatError.__module__ = "skxmr"  # its public name: skxmr.ModelFormatError


def check_keys(obj, keys, where, what):
    """Raise ModelFormatError unless ``obj`` is a dict with exactly ``keys``."""
    if not isinstance(obj, dict):
        raise ModelFormatError(f"{where}: {what} must be a JSON object.")
    unknown = sorted(set(obj) - set(keys))
    missing = sorted(set(keys) - set(obj))
    if unknown or missing:
        problem = []
        if unknown:
            problem.append(f"unknown keys {unknown}")
        if missing:
            problem.append(f"missing keys {missing}")
        raise ModelFormatError(f"{where}: {what} has {' and '.join(problem)}.")


def check_int(value, where, low=0, high=MAX_DIM):
    """``value`` when it is a JSON int in ``[low, high]``, else ModelFormatError."""
    if type(value) is not int or not low <= value <= high:
        raise ModelFormatError(f"{where}: expected an int in [{low}, {high}], got "
                               f"{value!r:.40}.")
    return value
