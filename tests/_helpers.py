"""Small helpers shared by the test modules (``tests/`` is on ``sys.path`` under pytest)."""

import numpy as np


def is_memmapped(a):
    """Whether ``a`` is, or is a view of, a ``np.memmap``."""
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = a.base
    return False
